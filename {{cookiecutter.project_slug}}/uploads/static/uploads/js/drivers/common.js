/*
 * What flow.js and resumable.js share: their options are nearly the same
 * (resumable.js is flow.js's ancestor), and so are their chunks.
 *
 * A driver is a function (config, hooks) -> driver, where hooks are
 *   headers        the headers every chunk request carries (the CSRF token),
 *   isFresh(file)  whether the server has no part of this File (see below),
 *   added(native), progress(native, responseText or ""),
 *   success(native, responseText),
 *   error(native, responseText, HTTP status (0: no answer), Retry-After or null),
 * and the driver has `supported`, add(files), and pause, resume, cancel, retry,
 * progress (0..1), sent (bytes this page sent) and name of one of its own file
 * objects ("native").
 *
 * The libraries do not retry: a failed chunk fails its file at once, and the
 * queue (core.js, retrying.js) decides whether and when to try again. Their
 * own retries wait a fixed interval, ignore Retry-After, and a retry timer
 * still pending when the file is cancelled sends a chunk that starts the
 * upload anew.
 */

// Only what the chunk tests (GET) may answer matters here: a chunk request
// (POST) is never retried by the library.
const PERMANENT_ERRORS = [400, 401, 403, 404, 409, 410, 413, 415, 429];

// Stable across reloads for the same file, different for a changed file: this
// is what lets choosing the same file again resume it. After a Cancel the
// server refuses that identifier's chunks for a day (a late chunk must not
// revive the upload), so a file cancelled here starts its next upload under a
// new attempt number, remembered in localStorage across reloads.
const ATTEMPTS_KEY = "uploads.attempts";

function attempts() {
  try {
    return JSON.parse(window.localStorage.getItem(ATTEMPTS_KEY)) || {};
  } catch (e) {
    return {}; // storage disabled or damaged: every file is on its first attempt
  }
}

function baseIdentifier(file) {
  const path = file.relativePath || file.webkitRelativePath || file.name;
  return (file.size + "-" + (file.lastModified || 0) + "-" + path)
    .replace(/[^0-9A-Za-z_.-]/g, "_").slice(0, 200);
}

function identifier(file) {
  const base = baseIdentifier(file);
  const attempt = attempts()[base];
  return attempt ? base.slice(0, 190) + "-attempt" + attempt : base;
}

// The file was cancelled: its next upload is a new one, under a new identifier.
function nextAttempt(file) {
  const base = baseIdentifier(file);
  const known = attempts();
  known[base] = (known[base] || 0) + 1;
  try {
    window.localStorage.setItem(ATTEMPTS_KEY, JSON.stringify(known));
  } catch (e) {
    // Without storage the same file cannot be sent again until the server forgets it.
  }
}

export {identifier, nextAttempt};

export function clientOptions(config, hooks) {
  return {
    target: config.target,
    chunkSize: config.chunkSize,
    simultaneousUploads: config.simultaneousChunks,
    // Both libraries ask the server whether it has a chunk before sending it:
    // one more request per chunk, which lets a file resume where it stopped.
    // For a file the server has no part of the answer is always "no", so its
    // chunks are marked tested and sent straight away. `tested` is an internal
    // flag of both libraries; the vendored versions are pinned, and the
    // browser tests count the requests.
    testChunks: true,
    preprocess(chunk) {
      if (hooks.isFresh(chunk.fileObj.file)) chunk.tested = true;
      chunk.preprocessFinished();
    },
    headers: hooks.headers,
    generateUniqueIdentifier: identifier,
    maxChunkRetries: 0,
    permanentErrors: PERMANENT_ERRORS,
  };
}

// Bytes that went up in this page's requests, per file, never going down: a
// chunk found on the server by its test request sent none (both libraries
// count `loaded` only from a POST's upload progress), a chunk sent again
// after a pause counts again, and the chunks a retry throws away keep what
// they sent.
export class SentCounter {
  constructor() {
    this.counted = new WeakMap(); // chunk -> its bytes counted so far
    this.totals = new WeakMap(); // file -> bytes
  }

  count(file, chunks) {
    let total = this.totals.get(file) || 0;
    for (const chunk of chunks) {
      const loaded = Math.min(chunk.loaded || 0, chunk.endByte - chunk.startByte);
      const before = this.counted.get(chunk) || 0;
      if (loaded > before) total += loaded - before;
      this.counted.set(chunk, loaded); // lower after a resend restarts it
    }
    this.totals.set(file, total);
    return total;
  }
}

// What the failed chunk's answer said: its status (0 for no answer) and Retry-After.
export function answerOf(chunk) {
  const xhr = chunk && chunk.xhr;
  if (!xhr || xhr.readyState !== 4) return {status: 0, retryAfter: null};
  return {status: xhr.status, retryAfter: xhr.status ? xhr.getResponseHeader("Retry-After") : null};
}

// The vendored library is a classic script loaded before the widget's modules
// (uploads.widgets.widget_media): its global, or a clear error if it is missing.
export function libraryGlobal(name) {
  const library = window[name];
  if (!library) throw new Error(`uploads: ${name} is not loaded; its script must come before the widget's`);
  return library;
}
