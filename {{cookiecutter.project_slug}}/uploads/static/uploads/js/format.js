/*
 * Words and numbers the widget shows: sizes, durations, and what a refusal
 * from the server means for the person who chose the file.
 */

import {isTransient} from "./retrying.js";
import {t} from "./words.js";

const UNITS = ["bytes", "KB", "MB", "GB", "TB", "PB"];

// The same units and rounding as Django's filesizeformat, so that a row in the
// widget and the same upload in the server-rendered list agree.
export function formatBytes(bytes) {
  if (bytes < 1024) return bytes === 1 ? t("1 byte") : t("%(bytes)s bytes", {bytes});
  let i = 0;
  while (bytes >= 1024 && i < UNITS.length - 1) {
    bytes /= 1024;
    i += 1;
  }
  return bytes.toFixed(1) + "\u00a0" + t(UNITS[i]);
}

export function formatDuration(seconds) {
  if (!isFinite(seconds) || seconds < 0) return "";
  seconds = Math.round(seconds);
  if (seconds < 60) return t("%(s)s s", {s: seconds});
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return t("%(min)s min %(s)s s", {min: minutes, s: seconds % 60});
  return t("%(h)s h %(min)s min", {h: Math.floor(minutes / 60), min: minutes % 60});
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

// What went wrong, in words, and what can be done: `transient` failures are
// retried by themselves (retrying.js), `retry` ones offer a Retry button (the
// person can change something first), the others stop the file for good.
// `link` is where to go to fix it, when there is such a page.
export function describeFailure(status, message, config) {
  const detail = errorDetail(message);
  if (isTransient(status)) return {text: detail, transient: true, retry: true};
  if (status === 401 || status === 403) {
    return {
      text: t("Your session has ended: log in again (in another tab, to keep this page), then Retry."),
      retry: true,
      link: config.loginUrl ? {url: config.loginUrl, text: t("Log in again")} : null,
    };
  }
  if (status === 413) return {text: t("Too large: %(detail)s", {detail}), retry: false};
  if (status === 415) return {text: t("Type not allowed: %(detail)s", {detail}), retry: false};
  if (status === 404 || status === 410) {
    return {text: t("This upload was cancelled or has expired: choose the file again to upload it anew."), retry: false};
  }
  if (status === 429) {
    return {text: detail || t("Too many unfinished uploads: finish or cancel one, then Retry."), retry: true};
  }
  return {text: t("The server refused the file: %(detail)s", {detail: detail || t("error %(status)s.", {status})}), retry: false};
}

// Why a chosen file is refused before any byte is sent, or "" when it is not.
export function refusalOf(file, config) {
  const ext = extensionOf(file.name);
  if (file.size > config.maxBytes) {
    return t("Too large: this file is %(size)s; the largest accepted is %(max)s.",
      {size: formatBytes(file.size), max: formatBytes(config.maxBytes)});
  }
  if (config.allowedExtensions.length && !config.allowedExtensions.includes(ext)) {
    const allowed = config.allowedExtensions.join(", ");
    return ext
      ? t("Type not allowed: .%(ext)s files are not accepted; allowed: %(allowed)s.", {ext, allowed})
      : t("Type not allowed: files without an extension are not accepted; allowed: %(allowed)s.", {allowed});
  }
  return "";
}
