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
 *   busy       whether anything is uploading changed (queue.busy tells)
 *
 * A failure that goes away by itself (the server restarting, the network
 * lost) is retried here, with a growing delay (retrying.js): the file is
 * "retrying" meanwhile, and says when the next attempt is.
 *
 * Resuming after a reload works because a file's identifier is stable (size,
 * modification time, path): choosing the same file again makes the client ask
 * the server for each chunk first (the test GET) and send only the missing ones.
 */

import {identifier as identifierOf, nextAttempt} from "./drivers/common.js";
import {describeFailure, refusalOf} from "./format.js";
import {GIVE_UP_MS, retryDelay} from "./retrying.js";
import {Speedometer} from "./speed.js";
import {t} from "./words.js";

// The states of a file, and what the person may do in each.
export const ACTIONS = {
  waiting: ["pause", "cancel"], // queued behind other files: no byte sent yet
  uploading: ["pause", "cancel"],
  retrying: ["retry", "cancel"], // waiting to try again by itself; Retry is now
  paused: ["resume", "cancel"],
  processing: [],
  complete: [],
  error: ["retry", "cancel"],
  failed: ["remove"],
  rejected: ["remove"],
  cancelled: ["remove"],
};

// While a file is in one of these, leaving the page loses work.
const BUSY = new Set(["waiting", "uploading", "retrying"]);
// Done with, one way or another: what "Clear finished" clears.
const FINISHED = new Set(["complete", "failed", "rejected", "cancelled"]);
// Given up on: the same file chosen again is a new upload.
const GIVEN_UP = new Set(["failed", "rejected", "cancelled"]);

// While the server says "processing" the page keeps asking, however long it
// takes: a file hashed as it arrived is finished a few milliseconds after its
// last chunk, but one the server must read back takes up to minutes, and a
// finish the server retries (a full disk, a restarted worker) longer. From a
// tenth of a second, half as long again each time, to every 30 s.
const POLL_INTERVAL_MS = 100;
const POLL_INTERVAL_MAX_MS = 30000;

class QueuedFile {
  constructor(name, size, native) {
    this.name = name;
    this.size = size;
    this.native = native; // the driver's file object; null for a refused file
    this.state = "waiting";
    this.message = "";
    this.link = null; // {url, text}: Download, Log in again
    this.fraction = 0;
    this.id = null; // the upload's id on the server, once an answer names it
    this.sent = 0; // bytes this page sent, which speed is made of
    this.driverSent = 0; // the driver's count when last asked
    this.speedometer = new Speedometer();
    this.speed = 0; // bytes a second
    this.failures = 0; // retries since a byte last got through
    this.failingSince = null;
    this.retryAt = 0;
    this.timer = null;
  }

  get remaining() {
    return this.size * (1 - this.fraction);
  }

  get busy() {
    return BUSY.has(this.state);
  }

  get finished() {
    return FINISHED.has(this.state);
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
      error: (native, text, status, retryAfter) => this.errored(native, text, status, retryAfter),
    });
    this.wasBusy = false;
    this.ticker = null; // redraws the countdowns while a file is retrying
  }

  get busy() {
    return this.files.some((file) => file.busy);
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

  // The libraries ignore a file they already have, so the drop zone tells the
  // person instead of choosing it: one that is still in a row, not given up on.
  alreadyQueued(file) {
    const id = identifierOf(file);
    return this.files.some((queued) => queued.identifier === id && !GIVEN_UP.has(queued.state));
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
    for (const file of this.files.filter((queued) => queued.finished)) this.remove(file);
  }

  find(native) {
    return this.files.find((file) => file.native === native) || null;
  }

  update(file, changes) {
    Object.assign(file, changes);
    this.emit("change", file);
    if (this.busy !== this.wasBusy) {
      this.wasBusy = !this.wasBusy;
      this.dispatchEvent(new CustomEvent("busy", {detail: {busy: this.wasBusy}}));
    }
  }

  emit(name, file, upload) {
    this.dispatchEvent(new CustomEvent(name, {detail: {file, upload}}));
  }

  // ---- What the driver reports ----------------------------------------------

  added(native) {
    const file = new QueuedFile(this.driver.name(native), native.size, native);
    file.identifier = native.uniqueIdentifier;
    this.files.push(file);
    this.update(file, {message: t("Waiting")});
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

  // Speed counts only the bytes this page sent; the progress bar also moves
  // for chunks the server already had.
  progressed(native, text) {
    const file = this.find(native);
    if (!file || !file.busy) return;
    if (text) this.remember(file, text);
    const driverSent = this.driver.sent(native);
    file.sent += Math.max(0, driverSent - file.driverSent);
    file.driverSent = driverSent;
    file.speedometer.sample(file.sent);
    // A retry slices the file anew and tests each chunk again: the bar does
    // not go back meanwhile.
    const fraction = Math.max(file.fraction, this.driver.progress(native));
    if (fraction > file.fraction) Object.assign(file, {failures: 0, failingSince: null});
    this.update(file, {fraction, state: "uploading", message: "", speed: file.speedometer.speed});
  }

  succeeded(native, text) {
    const file = this.find(native);
    if (!file) return;
    const data = this.remember(file, text) || {};
    this.update(file, {fraction: 1, state: "processing", message: t("Checking the file…"), speed: 0});
    this.waitUntilComplete(file, data);
  }

  // The last chunk's answer may come before another worker has finished the
  // file (hashing, moving it into storage): ask the status API until it has.
  async waitUntilComplete(file, data) {
    for (let interval = POLL_INTERVAL_MS; ; interval = Math.min(interval * 1.5, POLL_INTERVAL_MAX_MS)) {
      if (data.status === "complete") {
        const link = data.download_url ? {url: data.download_url, text: t("Download")} : null;
        this.update(file, {state: "complete", message: t("Uploaded."), link});
        this.emit("complete", file, data);
        return;
      }
      if (data.status && data.status !== "processing" && data.status !== "uploading") {
        const message = t("The server could not keep the file: %(reason)s.", {reason: data.error || data.status});
        this.update(file, {state: "failed", message});
        this.emit("failed", file, data);
        return;
      }
      if (!file.id) {
        this.update(file, {state: "error", message: t("The server did not confirm the file. Retry to check again.")});
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, interval));
      data = await this.api.get(file.id).catch(() => ({}));
    }
  }

  errored(native, text, status, retryAfter) {
    const file = this.find(native);
    if (!file || !file.busy) return;
    this.remember(file, text);
    const failure = describeFailure(status, text, this.config);
    const now = Date.now();
    if (failure.transient && now - (file.failingSince || now) < GIVE_UP_MS) {
      const delay = retryDelay(file.failures, retryAfter);
      clearTimeout(file.timer);
      file.timer = setTimeout(() => this.retry(file), delay);
      Object.assign(file, {failures: file.failures + 1, failingSince: file.failingSince || now, retryAt: now + delay});
      this.update(file, {state: "retrying", speed: 0, message: this.countdown(file)});
      this.tick();
      return;
    }
    const message = failure.transient
      ? t("The server could not be reached for a long while: %(detail)s Retry when it is back.", {detail: failure.text})
      : failure.text;
    this.update(file, {state: failure.retry ? "error" : "failed", message, link: failure.link || null, speed: 0});
    this.emit("failed", file, {error: message});
  }

  // What a retrying file says, counting down to its next attempt.
  countdown(file) {
    const seconds = Math.max(0, Math.ceil((file.retryAt - Date.now()) / 1000));
    return navigator.onLine === false
      ? t("Offline: the upload continues by itself when the network is back (retry in %(seconds)s s).", {seconds})
      : t("Reconnecting… (retry in %(seconds)s s)", {seconds});
  }

  tick() {
    if (this.ticker) return;
    this.ticker = setInterval(() => {
      const retrying = this.files.filter((file) => file.state === "retrying");
      for (const file of retrying) this.update(file, {message: this.countdown(file)});
      if (!retrying.length) {
        clearInterval(this.ticker);
        this.ticker = null;
      }
    }, 1000);
  }

  // ---- What the person does ---------------------------------------------------

  pause(file) {
    clearTimeout(file.timer);
    this.driver.pause(file.native);
    file.speedometer.reset();
    this.update(file, {state: "paused", speed: 0, message: t("Paused. Resume continues from here, even after a reload.")});
  }

  // After a pause or an error the server may have chunks the page does not
  // know it has (aborted, or answered too late): test them again.
  resume(file) {
    this.update(file, {state: "waiting", message: t("Waiting")});
    this.fresh.delete(file.native.file);
    this.driver.resume(file.native);
  }

  retry(file) {
    clearTimeout(file.timer);
    if (file.state === "error") Object.assign(file, {failures: 0, failingSince: null});
    this.update(file, {state: "waiting", message: t("Waiting"), link: null});
    this.fresh.delete(file.native.file);
    this.driver.retry(file.native);
  }

  // The network is back: files waiting for it try now, not at their next turn.
  retryNow() {
    for (const file of this.files.filter((queued) => queued.state === "retrying")) this.retry(file);
  }

  // The overall bar's buttons.
  pauseAll() {
    for (const file of this.files.filter((queued) => queued.busy)) this.pause(file);
  }

  resumeAll() {
    for (const file of this.files.filter((queued) => queued.state === "paused")) this.resume(file);
  }

  retryFailed() {
    for (const file of this.files.filter((queued) => queued.state === "error")) this.retry(file);
  }

  cancelAll() {
    return Promise.all(this.files.filter((queued) => ACTIONS[queued.state].includes("cancel")).map((file) => this.cancel(file)));
  }

  // All the files that count towards the overall bar: the ones refused,
  // failed or cancelled do not.
  get totals() {
    const counted = this.files.filter((file) => file.native && !["failed", "cancelled"].includes(file.state));
    const size = counted.reduce((sum, file) => sum + file.size, 0);
    const remaining = counted.reduce((sum, file) => sum + file.remaining, 0);
    const speed = counted.reduce((sum, file) => sum + (file.state === "uploading" ? file.speed : 0), 0);
    return {size, done: size - remaining, remaining, speed};
  }

  // Stop sending, then have the server drop the bytes it already has.
  // The library aborts its requests in flight and sends nothing more for
  // the file; the server refuses a chunk that arrives late anyway.
  async cancel(file) {
    clearTimeout(file.timer);
    this.driver.cancel(file.native);
    if (file.native) nextAttempt(file.native.file);
    this.update(file, {state: "cancelled", speed: 0, message: t("Cancelling…")});
    try {
      const id = await this.serverId(file);
      if (id) await this.api.cancel(id);
      this.update(file, {message: t("Cancelled. The part already sent was deleted.")});
      this.emit("cancelled", file, {id});
    } catch (e) {
      this.update(file, {message: t("Cancelled here, but the server could not be told: it deletes the part within a day.")});
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

  // A finished upload the page already knows of (a form shown again with an
  // error keeps the file the person uploaded): shown as done, not sent again.
  restore(upload) {
    const file = new QueuedFile(upload.filename, upload.size, null);
    file.id = upload.id;
    this.files.push(file);
    const link = upload.download_url ? {url: upload.download_url, text: t("Download")} : null;
    this.update(file, {state: "complete", fraction: 1, message: t("Uploaded."), link});
  }
}
