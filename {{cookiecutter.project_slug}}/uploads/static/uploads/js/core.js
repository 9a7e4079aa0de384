/*
 * The upload queue: the files of one widget, the state of each, and events.
 * It owns no DOM and sends no chunk itself: a driver (drivers/) moves the
 * bytes, the status API (api.js) answers questions, and views (views/) draw
 * what the events say.
 *
 * Events, each a CustomEvent whose detail is {file} or {file, upload}:
 *   change     a file's state, message or progress changed (also when added)
 *   remove     a file left the queue
 *   started, complete, failed, cancelled
 *              what a page or a form around the widget cares about; `upload`
 *              is the status API's JSON for it, as far as it is known.
 *
 * Resuming after a reload works because a file's identifier is stable (size,
 * modification time, path): choosing the same file again makes the client ask
 * the server for each chunk first (the test GET) and send only the missing ones.
 */

import {describeFailure, errorDetail, refusalOf} from "./format.js";

// The states of a file, and what the person may do in each.
export const ACTIONS = {
  uploading: ["pause", "cancel"],
  paused: ["resume", "cancel"],
  processing: [],
  complete: [],
  error: ["retry", "cancel"],
  failed: ["remove"],
  rejected: ["remove"],
  cancelled: ["remove"],
};

// While the server says "processing" the page keeps asking, however long it
// takes: hashing tens of GB takes minutes, and a finish the server retries (a
// full disk, a restarted worker) takes longer. From every second to every 30 s.
const POLL_INTERVAL_MS = 1000;
const POLL_INTERVAL_MAX_MS = 30000;

class QueuedFile {
  constructor(name, size, native) {
    this.name = name;
    this.size = size;
    this.native = native; // the driver's file object; null for a refused file
    this.state = "uploading";
    this.message = "";
    this.fraction = 0;
    this.id = null; // the upload's id on the server, once an answer names it
    this.downloadUrl = "";
    this.retryOnline = false; // failed because the network was lost
  }
}

export class UploadQueue extends EventTarget {
  constructor(config, api, driver) {
    super();
    this.config = config;
    this.api = api;
    this.single = Boolean(config.single);
    this.files = [];
    // Files the server had no part of when they were chosen (see drivers/common.js).
    this.fresh = new WeakSet();
    this.driver = driver(config, {
      headers: {"X-CSRFToken": api.token},
      isFresh: (file) => this.fresh.has(file),
      added: (native) => this.added(native),
      progress: (native, text) => this.progressed(native, text),
      success: (native, text) => this.succeeded(native, text),
      error: (native, text, status) => this.errored(native, text, status),
    });
  }

  get supported() {
    return Boolean(this.driver.supported);
  }

  // Files the person chose or dropped: refused here, before any byte is sent,
  // when the server would refuse them anyway.
  async choose(files) {
    if (this.single) files = files.slice(0, 1);
    const accepted = [];
    for (const file of files) {
      const reason = refusalOf(file, this.config);
      if (!reason) {
        accepted.push(file);
        continue;
      }
      const refused = new QueuedFile(file.name, file.size, null);
      this.files.push(refused);
      this.update(refused, {state: "rejected", message: reason});
    }
    if (!accepted.length) return;
    if (this.single) this.clearFinished();
    const unfinished = await this.unfinishedOnServer();
    for (const file of accepted) {
      if (unfinished && !unfinished.has(file.name + "/" + file.size)) this.fresh.add(file);
    }
    this.driver.add(accepted);
  }

  // "name/size" of the user's unfinished uploads of this protocol (the newest
  // page of them), or null when the server does not answer: then every file is
  // tested chunk by chunk, as the libraries do by default.
  async unfinishedOnServer() {
    try {
      const uploads = await this.api.list();
      return new Set(this.unfinishedOf(uploads).map((upload) => upload.filename + "/" + upload.size));
    } catch (e) {
      return null;
    }
  }

  unfinishedOf(uploads) {
    return uploads.filter((u) => u.status === "uploading" && u.protocol === this.config.protocol);
  }

  clearFinished() {
    for (const file of this.files.slice()) {
      if (!file.native || file.state !== "uploading") this.remove(file);
    }
  }

  find(native) {
    return this.files.find((file) => file.native === native) || null;
  }

  update(file, changes) {
    Object.assign(file, changes);
    this.emit("change", file);
  }

  emit(name, file, upload) {
    this.dispatchEvent(new CustomEvent(name, {detail: {file, upload}}));
  }

  // ---- What the driver reports ----------------------------------------------

  added(native) {
    const file = new QueuedFile(this.driver.name(native), native.size, native);
    file.identifier = native.uniqueIdentifier;
    this.files.push(file);
    this.emit("change", file);
  }

  // The first answer that names the upload's id: from then on the page can ask
  // about it, and a form can hold it.
  remember(file, text) {
    let data;
    try {
      data = JSON.parse(text);
    } catch (e) {
      return null;
    }
    if (data && data.id && !file.id) {
      file.id = data.id;
      this.emit("started", file, data);
    }
    return data;
  }

  progressed(native, text) {
    const file = this.find(native);
    if (!file || file.state === "cancelled") return;
    if (text) this.remember(file, text);
    this.update(file, {fraction: this.driver.progress(native)});
  }

  succeeded(native, text) {
    const file = this.find(native);
    if (!file) return;
    const data = this.remember(file, text) || {};
    this.update(file, {fraction: 1, state: "processing", message: "Checking the file…"});
    this.waitUntilComplete(file, data);
  }

  // The last chunk's answer may come before another worker has finished the
  // file (hashing, moving it into storage): ask the status API until it has.
  async waitUntilComplete(file, data) {
    for (let interval = POLL_INTERVAL_MS; ; interval = Math.min(interval * 1.5, POLL_INTERVAL_MAX_MS)) {
      if (data.status === "complete") {
        this.update(file, {state: "complete", message: "Uploaded.", downloadUrl: data.download_url || ""});
        this.emit("complete", file, data);
        return;
      }
      if (data.status && data.status !== "processing" && data.status !== "uploading") {
        const message = "The server could not keep the file: " + (data.error || data.status) + ".";
        this.update(file, {state: "failed", message});
        this.emit("failed", file, data);
        return;
      }
      if (!file.id) {
        this.update(file, {state: "error", message: "The server did not confirm the file. Retry to check again."});
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, interval));
      data = await this.api.get(file.id).catch(() => ({}));
    }
  }

  errored(native, text, status) {
    const file = this.find(native);
    if (!file || file.state === "cancelled") return;
    this.remember(file, text);
    const failure = describeFailure(status, text);
    this.update(file, {
      state: failure.retry ? "error" : "failed",
      message: failure.text,
      retryOnline: !status && !errorDetail(text),
    });
    this.emit("failed", file, {error: failure.text});
  }

  // ---- What the person does ---------------------------------------------------

  pause(file) {
    this.driver.pause(file.native);
    this.update(file, {state: "paused", message: "Paused. Resume continues from here, even after a reload."});
  }

  // After a pause or an error the server may have chunks the page does not
  // know it has (aborted, or answered too late): test them again.
  resume(file) {
    this.update(file, {state: "uploading", message: ""});
    this.fresh.delete(file.native.file);
    this.driver.resume(file.native);
  }

  retry(file) {
    this.update(file, {state: "uploading", message: ""});
    this.fresh.delete(file.native.file);
    this.driver.retry(file.native);
  }

  // Once the network is back, files that failed only because it was lost.
  retryAfterNetworkLoss() {
    for (const file of this.files) {
      if (file.state === "error" && file.retryOnline) this.retry(file);
    }
  }

  // Stop sending, then have the server drop the bytes it already has.
  async cancel(file) {
    this.driver.cancel(file.native);
    this.update(file, {state: "cancelled", message: "Cancelling…"});
    try {
      const id = await this.serverId(file);
      if (id) await this.api.cancel(id);
      this.update(file, {message: "Cancelled. The part already sent was deleted."});
      this.emit("cancelled", file, {id});
    } catch (e) {
      this.update(file, {message: "Cancelled here, but the server could not be told: it deletes the part within a day."});
    }
  }

  // resumable.js only reports the upload's id with the last chunk: find it by
  // name and size among the user's unfinished uploads.
  async serverId(file) {
    if (file.id) return file.id;
    const match = this.unfinishedOf(await this.api.list())
      .find((upload) => upload.filename === file.name && upload.size === file.size);
    return match ? match.id : null;
  }

  remove(file) {
    this.files.splice(this.files.indexOf(file), 1);
    this.emit("remove", file);
  }
}
