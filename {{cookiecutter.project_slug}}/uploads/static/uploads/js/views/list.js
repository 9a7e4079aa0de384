/*
 * "Your uploads" on the upload page. The server draws it (uploads/list.html,
 * included in uploads/index.html); this only keeps it current: after an upload
 * finishes, fails or is cancelled it fetches the page again and puts the
 * server's fresh list in place, so the list has one renderer. Its Cancel
 * buttons ask the status API to drop an unfinished upload.
 *
 * `container` is the page's #uploads-list, whose data-refresh-url is the page
 * to fetch; returns the function that refreshes it.
 */

export function keepListCurrent(container, api) {
  let latest = 0; // answers may come back out of order: only the newest is shown

  async function refresh() {
    const asked = ++latest;
    const response = await fetch(container.dataset.refreshUrl, {
      credentials: "same-origin",
      headers: {"Accept": "text/html"},
    });
    if (!response.ok) throw new Error(`the uploads list: status ${response.status}`);
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById(container.id);
    if (fresh && asked === latest) container.replaceChildren(...fresh.childNodes);
  }

  // When the server cannot be reached the list stays as it was, and the next
  // refresh catches up; a cancel the server refuses (the upload finished
  // meanwhile) shows as the upload's real status.
  const refreshQuietly = () => refresh().catch(() => {});

  container.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-cancel]");
    if (!button) return;
    button.disabled = true;
    const id = button.getAttribute("data-cancel");
    api.cancel(id).catch(() => {}).then(refreshQuietly).then(() => {
      // The redrawn row has no Cancel: focus its name, never <body>.
      const name = container.querySelector(`#upload-${id} .name`);
      if (name && !container.contains(document.activeElement)) name.focus();
    });
  });
  return refreshQuietly;
}
