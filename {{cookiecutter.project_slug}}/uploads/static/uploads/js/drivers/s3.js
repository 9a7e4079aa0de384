/*
 * Straight into the bucket (UPLOADS_DIRECT) behind the drivers' interface
 * (see common.js): Uppy's AwsS3 plugin, headless (the vendored bundle's Uppy
 * core and AwsS3, no Dashboard), over the site's Companion-compatible routes
 * (config.companion + "/s3/..."). The site signs each part and keeps the
 * record; the bytes go from the browser to the bucket, never through an app
 * host.
 *
 * One Uppy per file: Uppy's upload() also retries every file that failed, and
 * here the queue (core.js, retrying.js) decides whether and when a failed file
 * tries again. AwsS3 sends one file's parts one after the other, so at most
 * config.simultaneousChunks files send at once, as many parts as the other
 * clients send chunks; the others wait their turn.
 *
 * Resuming after a reload: the multipart upload's uploadId and key are kept in
 * localStorage under the file's identifier (common.js: the same file chosen
 * again has the same one, a file cancelled gets a new one). Given them, AwsS3
 * asks the list-parts route what the bucket has and sends only the missing parts.
 */

import {t} from "../words.js";
import {identifier} from "./common.js";

// S3's smallest part (but the last); the site's chunk size when it is larger.
const MIN_PART = 5 * 1024 * 1024;
const SAVED_KEY = "uploads.direct"; // file identifier -> {uploadId, key}

function savedUploads() {
  try {
    return JSON.parse(window.localStorage.getItem(SAVED_KEY)) || {};
  } catch (e) {
    return {}; // storage disabled or damaged: every file starts anew
  }
}

function keep(id, state) {
  const saved = savedUploads();
  if (state) saved[id] = state;
  else delete saved[id];
  try {
    window.localStorage.setItem(SAVED_KEY, JSON.stringify(saved));
  } catch (e) {
    // Without storage the upload still goes on; only a reload starts it anew.
  }
}

/*
 * AwsS3 asks the routes with the page's fetch() and no header of ours (Uppy 6
 * has no companionHeaders for it), and of a refusal keeps only its status
 * text. The routes' requests get the CSRF header here, and each refusal is
 * kept, by the upload's key (or, creating one, the file's name), for the
 * driver to say what the server said. Requests elsewhere pass untouched.
 */
const answers = new Map(); // key or "name:" + file name -> {status, text, retryAfter}
const listed = new Set(); // keys whose parts the bucket was just asked for
let routesWatched = "";

function watchRoutes(endpoint, token) {
  if (routesWatched) return;
  routesWatched = new URL(endpoint + "/s3/", window.location.href).href;
  const pageFetch = window.fetch.bind(window);
  window.fetch = async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input), window.location.href);
    if (!url.href.startsWith(routesWatched)) return pageFetch(input, init);
    const headers = new Headers(init.headers);
    headers.set("X-CSRFToken", token);
    headers.set("Accept", "application/json");
    const about = url.searchParams.get("key") || "name:" + (url.searchParams.get("filename") || nameCreated(init));
    let response;
    try {
      response = await pageFetch(input, {...init, headers, credentials: "same-origin"});
    } catch (error) {
      answers.set(about, {status: 0, text: "", retryAfter: null});
      throw error;
    }
    const text = await response.clone().text().catch(() => "");
    answers.set(about, {status: response.ok ? 200 : response.status, text, retryAfter: response.headers.get("Retry-After")});
    if (response.ok && (init.method || "GET") === "GET" && /\/multipart\/[^/]+$/.test(url.pathname)) listed.add(about);
    return response;
  };
}

// The file name a create request (POST multipart) names; a signed POST's
// request (GET params) names it in its query.
function nameCreated(init) {
  try {
    return JSON.parse(init.body).filename || "";
  } catch (e) {
    return "";
  }
}

export function s3Driver(config, hooks) {
  watchRoutes(config.companion, hooks.headers["X-CSRFToken"]);
  // A module of 600 KB, loaded only on a page in direct mode; files chosen
  // before it arrives wait for it.
  const bundle = import(config.uppy);
  const partSize = Math.max(MIN_PART, config.chunkSize);
  const slots = Math.max(1, config.simultaneousChunks);
  const waiting = []; // natives ready to send once a slot frees
  const sending = new Set();

  const take = () => {
    while (sending.size < slots && waiting.length) start(waiting.shift());
  };
  const release = (native) => {
    sending.delete(native);
    const at = waiting.indexOf(native);
    if (at >= 0) waiting.splice(at, 1);
    take();
  };
  const enqueue = (native) => {
    if (!sending.has(native) && !waiting.includes(native)) waiting.push(native);
    take();
  };

  // Sends, or goes on sending: a new upload, the rest of a paused one, or
  // (retry) the parts the bucket does not have.
  const start = (native) => {
    sending.add(native);
    const {uppy, id} = native;
    const file = uppy.getFile(id);
    native.base = null; // the next progress counts from where the upload is
    if (native.failed) {
      native.failed = false;
      uppy.retryUpload(id).catch(() => {});
    } else if (file.isPaused) {
      uppy.pauseResume(id);
    } else if (!file.progress.uploadStarted) {
      uppy.upload().catch(() => {});
    }
  };

  const progressed = (native, bytesUploaded) => {
    const state = native.uppy.getFile(native.id).s3Multipart;
    if (state && !native.key) created(native, state);
    if (!native.siteId) native.siteId = postedId(native);
    // What the bucket already had (listed on resuming) was not sent by this page.
    if (native.base === null || listed.delete(native.key)) native.base = bytesUploaded;
    if (bytesUploaded > native.base) native.sent += bytesUploaded - native.base;
    native.base = bytesUploaded; // lower when a part sent again after a pause restarts
    native.fraction = native.size ? bytesUploaded / native.size : 0;
    hooks.progress(native, native.siteId ? JSON.stringify({id: native.siteId}) : "");
  };

  // The multipart upload exists: kept for a reload. The routes name it by
  // the site's upload id (the status API's), which a form's field holds.
  const created = (native, state) => {
    native.key = state.key;
    native.siteId = state.uploadId;
    keep(native.uniqueIdentifier, state);
  };

  // A file under S3's smallest part goes as one signed POST, whose answer
  // (GET params) names the site's upload; the status API notices the object.
  const postedId = (native) => {
    try {
      return JSON.parse(answers.get("name:" + native.name).text).uploadId || null;
    } catch (e) {
      return null;
    }
  };

  const succeeded = (native) => {
    release(native);
    if (!native.siteId) native.siteId = postedId(native);
    keep(native.uniqueIdentifier, null);
    hooks.success(native, JSON.stringify({id: native.siteId}));
  };

  // A refusal of a route says what the site said; a failed PUT to the bucket
  // is one of the network's (0, 5xx: tried again) or a refusal of the bucket's.
  const failed = (native, error) => {
    release(native);
    native.failed = true;
    const request = error && error.request;
    if (request instanceof XMLHttpRequest) {
      const status = request.status;
      if (status === 0 || status >= 500) return hooks.error(native, "", status, null);
      const text = JSON.stringify({error: t("the bucket refused a part (HTTP %(status)s).", {status})});
      return hooks.error(native, text, 400, null);
    }
    const answer = answers.get(native.key) || answers.get("name:" + native.name) || {status: 0, text: "", retryAfter: null};
    if (answer.status === 200) {
      // The routes answered, yet AwsS3 gave up: a bucket's answer it cannot use
      // (no ETag: the bucket's CORS rule does not expose it). Not transient.
      const detail = t("the bucket's answer could not be used: %(error)s", {error: error && error.message});
      return hooks.error(native, JSON.stringify({error: detail}), 400, null);
    }
    // The saved upload is gone (cancelled elsewhere, expired): the next try starts anew.
    if ([404, 410].includes(answer.status) && native.key) forget(native);
    hooks.error(native, answer.text, answer.status, answer.retryAfter);
  };

  const forget = (native) => {
    keep(native.uniqueIdentifier, null);
    native.uppy.setFileState(native.id, {s3Multipart: undefined});
    native.key = null;
    native.siteId = null;
  };

  const add = async (files) => {
    const {Uppy, AwsS3} = await bundle;
    for (const file of files) {
      const uppy = new Uppy({autoProceed: false, allowMultipleUploadBatches: true});
      uppy.use(AwsS3, {
        companionEndpoint: config.companion,
        shouldUseMultipart: true,
        getChunkSize: () => partSize,
        limit: 1,
      });
      const native = {
        uppy, file, name: file.name, size: file.size, uniqueIdentifier: identifier(file),
        id: null, key: null, siteId: null, sent: 0, base: null, fraction: 0, failed: false,
      };
      const id = uppy.addFile({name: file.name, type: file.type, data: file, meta: {size: file.size}});
      native.id = id;
      const saved = savedUploads()[native.uniqueIdentifier];
      if (saved) {
        uppy.setFileState(id, {s3Multipart: saved});
        created(native, saved);
      }
      uppy.on("upload-progress", (_, progress) => progressed(native, progress.bytesUploaded));
      uppy.on("upload-success", () => succeeded(native));
      uppy.on("upload-error", (_, error) => failed(native, error));
      hooks.added(native);
      enqueue(native);
    }
  };

  return {
    supported: typeof window.fetch === "function" && typeof Blob.prototype.slice === "function",
    add: (files) => { add(files).catch((error) => console.error("uploads: Uppy did not load", error)); },
    pause: (native) => {
      if (sending.has(native) && !native.failed && !native.uppy.getFile(native.id).isPaused) {
        native.uppy.pauseResume(native.id);
      }
      release(native);
    },
    resume: enqueue,
    retry: enqueue,
    // The plugin aborts the multipart upload (the DELETE route); the queue
    // then cancels the site's upload through the status API.
    cancel: (native) => {
      release(native);
      keep(native.uniqueIdentifier, null);
      native.uppy.removeFile(native.id);
    },
    progress: (native) => native.fraction,
    sent: (native) => native.sent,
    name: (native) => native.name,
  };
}
