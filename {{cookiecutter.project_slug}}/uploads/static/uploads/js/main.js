/*
 * The upload widget's entry point, on the upload page and inside forms
 * (uploads.widgets.ResumableFileWidget, the admin's included). Loaded as a
 * native ES module, after the vendored client's classic script (in direct
 * mode the s3 driver imports the vendored Uppy module itself); no build step.
 *
 * For every [data-upload-widget] it reads the settings the server wrote into
 * the widget's JSON <script> (never hard-coded here), builds a queue (core.js)
 * over the chosen client's driver, and wires the views to it. The queue's
 * started/complete/failed/cancelled events bubble from the widget as
 * "uploads:<name>" DOM events, with {upload, name} in event.detail.
 * attach(root) is exported for a widget added to the page later.
 *
 * While any widget is uploading, leaving the page asks first, and the
 * submit buttons of a widget's form wait until its upload is complete.
 */

import {StatusApi, csrfToken} from "./api.js";
import {UploadQueue} from "./core.js";
import {flowDriver} from "./drivers/flow.js";
import {resumableDriver} from "./drivers/resumable.js";
import {s3Driver} from "./drivers/s3.js";
import {bindDropZone} from "./views/drop_zone.js";
import {keepListCurrent} from "./views/list.js";
import {showOverall} from "./views/overall.js";
import {showRows} from "./views/rows.js";

// "s3": straight into the bucket (direct mode), through Uppy's AwsS3 plugin.
const DRIVERS = {flow: flowDriver, resumable: resumableDriver, s3: s3Driver};
const PAGE_EVENTS = ["started", "complete", "failed", "cancelled"];
const queues = [];

function configOf(root) {
  return JSON.parse(root.querySelector("script[type='application/json']").textContent);
}

export function attach(root) {
  const config = configOf(root);
  const driver = DRIVERS[config.protocol];
  if (!driver) throw new Error("uploads: unknown client " + config.protocol);
  const queue = new UploadQueue(config, new StatusApi(config.api, csrfToken(root)), driver);
  if (!queue.supported) {
    root.querySelector(".upload-unsupported").hidden = false;
    return queue;
  }
  queues.push(queue);
  showRows(root.querySelector(".upload-rows"), queue);
  const overall = root.querySelector(".upload-overall");
  if (overall) showOverall(overall, queue);
  bindDropZone(root, queue);
  window.addEventListener("online", () => queue.retryNow());
  // The countdowns say "Offline" from now on.
  window.addEventListener("offline", () => queue.files.forEach((file) => {
    if (file.state === "retrying") queue.update(file, {message: queue.countdown(file)});
  }));
  for (const name of PAGE_EVENTS) {
    queue.addEventListener(name, ({detail: {file, upload}}) => {
      root.dispatchEvent(new CustomEvent("uploads:" + name, {bubbles: true, detail: {upload, name: file.name}}));
    });
  }
  const hidden = root.querySelector("input.upload-value");
  if (hidden) fillFormField(queue, hidden, root.querySelector(".upload-current"));
  if (config.uploaded) queue.restore(config.uploaded);
  const form = root.closest("form");
  if (form) holdSubmit(form, queue);
  return queue;
}

// In a form the field's value is the upload's id, set as soon as it is known,
// so that a form sent too early gets the server's "not finished" error.
function fillFormField(queue, hidden, current) {
  queue.addEventListener("started", ({detail: {upload}}) => { hidden.value = upload.id; });
  queue.addEventListener("complete", ({detail: {upload}}) => {
    hidden.value = upload.id;
    if (current) current.textContent = "";
  });
}

// A form's submit buttons are disabled while its upload is under way, so
// that it is not saved with a file that is not there yet.
function holdSubmit(form, queue) {
  const buttons = [...form.querySelectorAll("button[type=submit], button:not([type]), input[type=submit]")];
  queue.addEventListener("busy", ({detail: {busy}}) => {
    for (const button of buttons) button.disabled = busy;
  });
}

// The browser's own "Leave site?" prompt; its text cannot be changed.
window.addEventListener("beforeunload", (event) => {
  if (!queues.some((queue) => queue.busy)) return;
  event.preventDefault();
  event.returnValue = "";
});

// Module scripts run once the document is parsed: every widget is there.
document.querySelectorAll("[data-upload-widget]").forEach(attach);

const list = document.getElementById("uploads-list");
if (list) {
  const refresh = keepListCurrent(list, new StatusApi(list.dataset.api, csrfToken(list)), queues[0]);
  for (const name of ["complete", "cancelled", "failed"]) {
    document.addEventListener("uploads:" + name, refresh);
  }
}
