/*
 * One row per file of a queue (core.js), in the widget's <ul class="upload-rows">:
 * name, size, progress bar, speed and time left, message, and the buttons the
 * file's state allows. It only draws what the queue's events say; a button
 * click calls the queue.
 *
 * For screen readers and keyboards: each button's name says which file it acts
 * on ("Pause report.pdf"), the bar speaks its value, a state change (not a
 * progress tick) is announced once (announcer.js), and after a click focus
 * goes to the button that replaced the one clicked, never to <body>.
 */

import {ACTIONS} from "../core.js";
import {formatBytes, formatDuration} from "../format.js";
import {gettext_noop, t} from "../words.js";
import {announcerOf} from "./announcer.js";

const LABELS = {
  pause: gettext_noop("Pause"),
  resume: gettext_noop("Resume"),
  cancel: gettext_noop("Cancel"),
  retry: gettext_noop("Retry"),
  remove: gettext_noop("Remove"),
};
// What is announced when a file enters a state; other states are announced by their message.
const ANNOUNCEMENTS = {
  uploading: gettext_noop("Uploading %(name)s."),
  paused: gettext_noop("%(name)s paused."),
  processing: gettext_noop("%(name)s sent; checking it."),
  complete: gettext_noop("%(name)s uploaded."),
  error: gettext_noop("%(name)s failed: %(message)s"),
  failed: gettext_noop("%(name)s failed: %(message)s"),
  rejected: gettext_noop("%(name)s refused: %(message)s"),
  cancelled: gettext_noop("%(name)s cancelled."),
};
// Where a file starts, and where Retry puts it: heard as "Uploading" a moment
// later; a file queued behind others says "Waiting" in its row.
const UNANNOUNCED = new Set(["waiting"]);

const ROW_HTML =
  '<div class="upload-row-head"><span class="upload-name" tabindex="-1"></span>' +
  '<span class="upload-size"></span></div>' +
  '<div class="upload-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">' +
  '<span class="upload-bar-fill"></span></div>' +
  '<div class="upload-row-foot"><span class="upload-percent">0%</span>' +
  '<span class="upload-sent"></span><span class="upload-speed"></span>' +
  '<span class="upload-eta"></span></div>' +
  '<p class="upload-message"></p>' +
  '<div class="upload-actions"></div>';

class Row {
  constructor(file, announce) {
    this.announce = announce;
    this.name = file.name;
    this.el = document.createElement("li");
    this.el.className = "upload-row";
    this.el.innerHTML = ROW_HTML;
    this.part = (name) => this.el.querySelector(".upload-" + name);
    this.part("name").textContent = file.name;
    this.part("size").textContent = formatBytes(file.size);
    this.part("bar").setAttribute("aria-label", t("Upload of %(name)s", {name: file.name}));
    if (file.identifier) this.el.setAttribute("data-identifier", file.identifier);
    this.state = null;
  }

  draw(file) {
    if (file.id) this.el.setAttribute("data-upload-id", file.id);
    if (file.state !== this.state) {
      this.drawState(file.state);
      this.announceState(file);
    }
    this.drawMessage(file);
    this.drawProgress(file);
  }

  drawState(state) {
    this.state = state;
    this.el.setAttribute("data-state", state);
    const actions = this.part("actions");
    actions.textContent = "";
    for (const action of ACTIONS[state] || []) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "upload-button upload-button-" + action;
      button.setAttribute("data-action", action);
      button.textContent = t(LABELS[action]);
      button.setAttribute("aria-label", this.named(t(LABELS[action])));
      actions.appendChild(button);
    }
  }

  // An action's accessible name says which file it acts on: "Pause report.pdf".
  named(action) {
    return t("%(action)s %(name)s", {action, name: this.name});
  }

  announceState(file) {
    if (UNANNOUNCED.has(file.state)) return;
    const words = ANNOUNCEMENTS[file.state];
    if (words) this.announce(t(words, {name: file.name, message: file.message}));
    else if (file.message) this.announce(file.name + ": " + file.message);
  }

  drawMessage(file) {
    const message = this.part("message");
    message.textContent = file.message;
    if (file.link) {
      const link = document.createElement("a");
      link.href = file.link.url;
      link.textContent = file.link.text;
      link.setAttribute("aria-label", this.named(file.link.text));
      message.append(" ", link);
    }
  }

  drawProgress(file) {
    const percent = Math.min(100, Math.floor(file.fraction * 100));
    const sent = Math.round(file.fraction * file.size);
    const bar = this.part("bar");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", t("%(percent)s%, %(sent)s of %(size)s", {
      percent, sent: formatBytes(sent), size: formatBytes(file.size),
    }));
    this.part("bar-fill").style.width = percent + "%";
    this.part("percent").textContent = percent + "%";
    this.part("sent").textContent = t("%(sent)s of %(size)s", {sent: formatBytes(sent), size: formatBytes(file.size)});
    const speed = file.state === "uploading" ? file.speed : 0;
    this.part("speed").textContent = speed ? t("%(speed)s/s", {speed: formatBytes(Math.round(speed))}) : "";
    this.part("eta").textContent = speed ? t("%(time)s left", {time: formatDuration(file.remaining / speed)}) : "";
  }
}

export function showRows(list, queue) {
  const rows = new Map(); // queued file -> Row
  const announce = announcerOf(list.closest("[data-upload-widget]") || list.parentElement);
  queue.addEventListener("change", ({detail: {file}}) => {
    let row = rows.get(file);
    if (!row) {
      row = new Row(file, announce);
      rows.set(file, row);
      list.appendChild(row.el);
    }
    row.draw(file);
  });
  queue.addEventListener("remove", ({detail: {file}}) => {
    rows.get(file).el.remove();
    rows.delete(file);
  });
  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const el = button.closest(".upload-row");
    const file = [...rows].find(([, row]) => row.el === el)?.[0];
    if (!file) return;
    const neighbour = el.nextElementSibling || el.previousElementSibling;
    queue[button.getAttribute("data-action")](file);
    if (!button.isConnected) keepFocus(el, neighbour, list);
  });
}

// The clicked button was redrawn away: focus its row's first action (Resume
// after Pause, Remove after Cancel), else the row's name; a removed row hands
// focus to the next row, or to the widget's file input.
function keepFocus(el, neighbour, list) {
  const target = [el, neighbour].find((row) => row && row.isConnected);
  if (target) {
    const button = target.querySelector(".upload-actions button");
    (button || target.querySelector(".upload-name")).focus();
    return;
  }
  const widget = list.closest("[data-upload-widget]");
  const input = widget && widget.querySelector("input[type=file]");
  if (input) input.focus();
}
