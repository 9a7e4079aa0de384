/*
 * One row per file of a queue (core.js), in the widget's <ul class="upload-rows">:
 * name, size, progress bar, speed and time left, message, and the buttons the
 * file's state allows. It only draws what the queue's events say; a button
 * click calls the queue.
 */

import {ACTIONS} from "../core.js";
import {formatBytes, formatDuration} from "../format.js";
import {t} from "../words.js";

const LABELS = {pause: "Pause", resume: "Resume", cancel: "Cancel", retry: "Retry", remove: "Remove"};

const ROW_HTML =
  '<div class="upload-row-head"><span class="upload-name"></span>' +
  '<span class="upload-size"></span></div>' +
  '<div class="upload-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">' +
  '<span class="upload-bar-fill"></span></div>' +
  '<div class="upload-row-foot"><span class="upload-percent">0%</span>' +
  '<span class="upload-sent"></span><span class="upload-speed"></span>' +
  '<span class="upload-eta"></span></div>' +
  '<p class="upload-message" role="status"></p>' +
  '<div class="upload-actions"></div>';

class Row {
  constructor(file) {
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
    if (file.state !== this.state) this.drawState(file.state);
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
      actions.appendChild(button);
    }
  }

  drawMessage(file) {
    const message = this.part("message");
    message.textContent = file.message;
    if (file.link) {
      const link = document.createElement("a");
      link.href = file.link.url;
      link.textContent = file.link.text;
      message.append(" ", link);
    }
  }

  drawProgress(file) {
    const percent = Math.min(100, Math.floor(file.fraction * 100));
    const sent = Math.round(file.fraction * file.size);
    this.part("bar").setAttribute("aria-valuenow", String(percent));
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
  queue.addEventListener("change", ({detail: {file}}) => {
    let row = rows.get(file);
    if (!row) {
      row = new Row(file);
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
    if (file) queue[button.getAttribute("data-action")](file);
  });
}
