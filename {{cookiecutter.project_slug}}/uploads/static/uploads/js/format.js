/*
 * Words and numbers the widget shows: sizes, durations, and what a refusal
 * from the server means for the person who chose the file.
 */

const UNITS = ["bytes", "KB", "MB", "GB", "TB", "PB"];

// The widget's words, translated when the page has Django's JavaScriptCatalog
// (window.gettext); `values` fill the text's %(name)s placeholders afterwards,
// so that a translation may put them in another order.
export function t(text, values) {
  const translated = typeof window.gettext === "function" ? window.gettext(text) : text;
  return values ? translated.replace(/%\((\w+)\)s/g, (_, key) => values[key]) : translated;
}

// The same units and rounding as Django's filesizeformat, so that a row in the
// widget and the same upload in the server-rendered list agree.
export function formatBytes(bytes) {
  if (bytes < 1024) return bytes + (bytes === 1 ? " byte" : " bytes");
  let i = 0;
  while (bytes >= 1024 && i < UNITS.length - 1) {
    bytes /= 1024;
    i += 1;
  }
  return bytes.toFixed(1) + "\u00a0" + UNITS[i];
}

export function formatDuration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "";
  seconds = Math.round(seconds);
  if (seconds < 60) return seconds + " s";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return minutes + " min " + (seconds % 60) + " s";
  return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
}

export function extensionOf(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

// The server's JSON error ({"error": "..."}), or "" when the answer was not one.
export function errorDetail(message) {
  try {
    return JSON.parse(message).error || "";
  } catch (e) {
    return "";
  }
}

// What went wrong, in words, and whether trying again can help.
export function describeFailure(status, message) {
  const detail = errorDetail(message);
  if (status === 413) return {text: "Too large: " + detail, retry: false};
  if (status === 415) return {text: "Type not allowed: " + detail, retry: false};
  if (status === 403 || status === 401) {
    return {text: "The server refused the file: " + (detail || "log in again, then retry."), retry: true};
  }
  if (status === 410) {
    return {text: "This upload was cancelled or has expired: retry to start it again.", retry: true};
  }
  if (!detail && !status) {
    return {text: "Network lost: the server could not be reached. Retry when you are back online.", retry: true};
  }
  return {text: "The server refused the file: " + (detail || "error " + status + "."), retry: true};
}

// Why a chosen file is refused before any byte is sent, or "" when it is not.
export function refusalOf(file, config) {
  const ext = extensionOf(file.name);
  if (file.size > config.maxBytes) {
    return "Too large: this file is " + formatBytes(file.size) +
      "; the largest accepted is " + formatBytes(config.maxBytes) + ".";
  }
  if (config.allowedExtensions.length && !config.allowedExtensions.includes(ext)) {
    return "Type not allowed: " + (ext ? "." + ext : "files without an extension") +
      " files are not accepted; allowed: " + config.allowedExtensions.join(", ") + ".";
  }
  return "";
}
