/*
 * "Your uploads" on the upload page. The server draws it (uploads/list.html,
 * included in uploads/index.html), unfinished uploads first; this keeps it
 * current, with the server's list as the one renderer:
 *
 * - a row whose file is uploading in this page's widget shows the widget's
 *   own progress (the row is "live");
 * - while any other row is unfinished or being processed, the status API is
 *   asked again, less often while nothing changes, not at all once nothing
 *   is; when a status changed, the page is fetched again and the server's
 *   fresh list put in place;
 * - an unfinished row's Resume asks for its file, checks it is the same one
 *   (name, size, and the identifier the client gives it) and hands it to the
 *   widget, which sends only the chunks the server does not have;
 * - its Cancel asks the status API to drop the upload, and a finished row's
 *   Delete (the same DELETE, after asking) its file.
 *
 * `container` is the page's #uploads-list, whose data-refresh-url is the page
 * to fetch; returns the function that refreshes it.
 */

import {identifier} from "../drivers/common.js";
import {formatBytes} from "../format.js";
import {t} from "../words.js";

const FIRST_POLL_MS = 2000;
const LONGEST_POLL_MS = 30_000;
const PENDING = ["uploading", "processing"];

export function keepListCurrent(container, api, queue) {
  let latest = 0; // answers may come back out of order: only the newest is shown
  let pollDelay = FIRST_POLL_MS;
  let pollTimer = null;
  const rows = () => [...container.querySelectorAll("tr[data-status]")];

  async function refresh() {
    const asked = ++latest;
    const response = await fetch(container.dataset.refreshUrl, {
      credentials: "same-origin",
      headers: {"Accept": "text/html"},
    });
    if (!response.ok) throw new Error(`the uploads list: status ${response.status}`);
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById(container.id);
    if (fresh && asked === latest) {
      container.replaceChildren(...fresh.childNodes);
      if (queue) queue.files.forEach(follow);
      pollSoon();
    }
  }

  // When the server cannot be reached the list stays as it was, and the next
  // refresh catches up; a cancel the server refuses (the upload finished
  // meanwhile) shows as the upload's real status.
  const refreshQuietly = () => refresh().catch(() => {});

  // ---- Following the widget ---------------------------------------------------

  // The row of a file in the widget: by the upload's id, or (resumable.js
  // names it only at the end) by name and size among the unfinished ones.
  function rowOf(file) {
    if (file.id) {
      const row = document.getElementById("upload-" + file.id);
      if (row) return row;
    }
    return rows().find((row) => row.dataset.status === "uploading" && row.dataset.filename === file.name &&
      Number(row.dataset.size) === file.size) || null;
  }

  function follow(file) {
    if (!file.native) return;
    const row = rowOf(file);
    if (!row || row.dataset.status !== "uploading") return;
    const live = file.busy || file.state === "paused";
    row.classList.toggle("is-live", live);
    const state = row.querySelector(".upload-list-state");
    const done = row.querySelector(".upload-list-done");
    const actions = row.querySelector(".upload-list-actions");
    if (actions) actions.hidden = live;
    if (!live || !state) return;
    state.textContent = file.state === "paused" ? t("Paused") : file.state === "waiting" ? t("Waiting") : t("Uploading");
    done.textContent = t("%(percent)s% (%(sent)s) — in the upload box above", {
      percent: Math.floor(file.fraction * 100), sent: formatBytes(Math.round(file.fraction * file.size)),
    });
    showNotice();
  }

  // The unfinished notice counts what the person still has to do something
  // about: not the files uploading right now.
  function showNotice() {
    const notice = container.querySelector("#uploads-unfinished");
    if (!notice) return;
    notice.hidden = !rows().some((row) => row.dataset.status === "uploading" && !row.classList.contains("is-live"));
  }

  // ---- Asking the server ------------------------------------------------------

  function pollSoon(delay = FIRST_POLL_MS) {
    clearTimeout(pollTimer);
    pollTimer = null;
    pollDelay = delay;
    const waiting = rows().some((row) => PENDING.includes(row.dataset.status) && !row.classList.contains("is-live"));
    if (waiting) pollTimer = setTimeout(poll, pollDelay);
  }

  async function poll() {
    let uploads;
    try {
      uploads = await api.list();
    } catch (e) {
      return pollSoon(Math.min(LONGEST_POLL_MS, pollDelay * 2));
    }
    const known = new Map(uploads.map((upload) => [upload.id, upload]));
    let moved = false;
    for (const row of rows()) {
      const upload = known.get(row.id.replace(/^upload-/, ""));
      if (!upload || row.classList.contains("is-live")) continue;
      if (upload.status !== row.dataset.status) return refreshQuietly();
      const done = row.querySelector(".upload-list-done");
      if (done && upload.received_bytes !== Number(row.dataset.received || -1)) {
        moved = row.dataset.received !== undefined;
        row.dataset.received = upload.received_bytes;
        const percent = upload.size ? Math.floor(upload.received_bytes * 100 / upload.size) : null;
        done.textContent = (percent === null ? "" : percent + "% ") + "(" + formatBytes(upload.received_bytes) + ")";
      }
    }
    pollSoon(moved ? FIRST_POLL_MS : Math.min(LONGEST_POLL_MS, pollDelay * 2));
  }

  // ---- The rows' buttons ------------------------------------------------------

  container.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-cancel]");
    if (!button) return;
    // Delete (a finished file) asks first, and says why the server refused.
    const confirm = button.getAttribute("data-confirm");
    if (confirm && !window.confirm(confirm)) return;
    button.disabled = true;
    const id = button.getAttribute("data-cancel");
    api.cancel(id)
      .catch((error) => { if (confirm) window.alert(error.message); })
      .then(refreshQuietly)
      .then(() => {
        // The redrawn row has no such button: focus its name, never <body>.
        const name = container.querySelector(`#upload-${id} .name`);
        if (name && !container.contains(document.activeElement)) name.focus();
      });
  });

  container.addEventListener("change", (event) => {
    const input = event.target.closest("input[data-resume]");
    if (!input || !input.files.length || !queue) return;
    const file = input.files[0];
    input.value = "";
    const row = input.closest("tr");
    const message = row.querySelector(".upload-list-message");
    const {filename, size} = row.dataset;
    if (file.name !== filename || String(file.size) !== size) {
      message.textContent = " " + t("That is %(name)s (%(size)s), not %(expected)s (%(expectedSize)s): choose the same file.", {
        name: file.name, size: formatBytes(file.size), expected: filename, expectedSize: formatBytes(Number(size)),
      });
      return;
    }
    if (row.dataset.identifier && identifier(file) !== row.dataset.identifier) {
      message.textContent = " " + t("This file has changed since it was uploaded (or is another file of the same name): upload it in the box above to start again.");
      return;
    }
    message.textContent = "";
    queue.choose([file]);
  });

  if (queue) {
    queue.addEventListener("change", ({detail: {file}}) => follow(file));
    queue.addEventListener("started", () => pollSoon());
  }
  pollSoon();
  return refreshQuietly;
}
