/*
 * The overall bar of a widget with several files (.upload-overall): the total
 * progress and time left of the files in the queue, and the buttons that act
 * on all of them. Each button's data-all names the queue's method; a button
 * is enabled only when there is a file it would act on.
 */

import {ACTIONS} from "../core.js";
import {formatBytes, formatDuration} from "../format.js";
import {t} from "../words.js";

// Which files each button acts on.
const APPLIES = {
  pauseAll: (file) => file.busy,
  resumeAll: (file) => file.state === "paused",
  retryFailed: (file) => file.state === "error",
  cancelAll: (file) => file.native && ACTIONS[file.state].includes("cancel"),
  clearFinished: (file) => file.finished,
};

export function showOverall(element, queue) {
  const bar = element.querySelector(".upload-bar");
  const fill = element.querySelector(".upload-bar-fill");
  const summary = element.querySelector(".upload-overall-summary");
  const buttons = [...element.querySelectorAll("button[data-all]")];

  function draw() {
    element.hidden = !queue.files.length;
    const {size, done, remaining, speed} = queue.totals;
    const percent = size ? Math.min(100, Math.floor(done * 100 / size)) : 0;
    const total = t("%(done)s of %(size)s (%(percent)s%)", {done: formatBytes(Math.round(done)), size: formatBytes(size), percent});
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", total);
    fill.style.width = percent + "%";
    const parts = [total];
    if (speed && queue.busy) {
      parts.push(t("%(speed)s/s", {speed: formatBytes(Math.round(speed))}));
      parts.push(t("%(time)s left", {time: formatDuration(remaining / speed)}));
    }
    summary.textContent = parts.join(" · ");
    for (const button of buttons) {
      button.disabled = !queue.files.some(APPLIES[button.dataset.all]);
    }
  }

  queue.addEventListener("change", draw);
  queue.addEventListener("remove", draw);
  element.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-all]");
    if (button) queue[button.dataset.all]();
  });
  draw();
}
