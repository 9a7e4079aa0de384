/*
 * What flow.js and resumable.js share: their options are nearly the same
 * (resumable.js is flow.js's ancestor), and so is the retry policy.
 *
 * A driver is a function (config, hooks) -> driver, where hooks are
 *   headers        the headers every chunk request carries (the CSRF token),
 *   isFresh(file)  whether the server has no part of this File (see below),
 *   added(native), progress(native, responseText or ""),
 *   success(native, responseText), error(native, responseText, HTTP status or 0 or null),
 * and the driver has `supported`, add(files), and pause, resume, cancel, retry,
 * progress (0..1) and name of one of its own file objects ("native").
 */

// Statuses the server gives to every chunk the client sends: anything else is
// retried (network lost, 503 lock timeout) up to MAX_RETRIES times.
const PERMANENT_ERRORS = [400, 401, 403, 404, 409, 410, 413, 415, 500, 501];
const MAX_RETRIES = 8;
const RETRY_INTERVAL_MS = 2000;

// Stable across reloads for the same file, different for a changed file: this
// is what lets choosing the same file again resume it.
function identifier(file) {
  const path = file.relativePath || file.webkitRelativePath || file.name;
  return (file.size + "-" + (file.lastModified || 0) + "-" + path)
    .replace(/[^0-9A-Za-z_.-]/g, "_").slice(0, 200);
}

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
    maxChunkRetries: MAX_RETRIES,
    chunkRetryInterval: RETRY_INTERVAL_MS,
    permanentErrors: PERMANENT_ERRORS,
  };
}

// The vendored library is a classic script loaded before the widget's modules
// (uploads.widgets.widget_media): its global, or a clear error if it is missing.
export function libraryGlobal(name) {
  const library = window[name];
  if (!library) throw new Error(`uploads: ${name} is not loaded; its script must come before the widget's`);
  return library;
}
