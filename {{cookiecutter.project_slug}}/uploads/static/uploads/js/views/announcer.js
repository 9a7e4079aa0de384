/*
 * The widget's one polite live region (.upload-announcer, in drop_zone.html):
 * screen readers hear what happened to a file, once, when it happens. Each
 * announcement is a new paragraph, so that two files finishing together are
 * both read and the same words twice are read twice; old ones are dropped.
 */

const KEPT = 5;

export function announcerOf(root) {
  const region = root.querySelector(".upload-announcer");
  return (text) => {
    if (!region || !text) return;
    const line = document.createElement("p");
    line.textContent = text;
    region.append(line);
    while (region.childElementCount > KEPT) region.firstElementChild.remove();
  };
}
