/*
 * The widget's file inputs, its drop zone and pasting: whatever the person
 * picks, drops or pastes (Ctrl+V / ⌘V on the page, or on this widget when the
 * page has several), folders walked into files (each with its relativePath),
 * goes to the queue's `choose(files)`, except a file already in the list
 * (the same identifier: size, modification time and name, see
 * queue.alreadyQueued): the widget says so instead.
 */

import {t} from "../words.js";
import {announcerOf} from "./announcer.js";

export function bindDropZone(root, queue) {
  const notice = root.querySelector(".upload-notice");
  const announce = announcerOf(root);
  const choose = (files) => {
    const listed = files.filter((file) => queue.alreadyQueued(file));
    const names = listed.map((file) => file.name).join(", ");
    const text = listed.length ? t("Already in the list: %(names)s.", {names}) : "";
    if (notice) notice.textContent = text;
    announce(text);
    const fresh = files.filter((file) => !listed.includes(file));
    if (fresh.length) queue.choose(fresh);
  };
  for (const input of root.querySelectorAll("input[type=file]")) {
    input.addEventListener("change", () => {
      choose([...input.files]);
      input.value = "";
    });
  }
  document.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData ? event.clipboardData.files : [])];
    const mine = root.contains(document.activeElement) ||
      document.querySelectorAll("[data-upload-widget]").length === 1;
    if (!files.length || !mine) return;
    event.preventDefault();
    choose(files);
  });
  const zone = root.querySelector(".upload-drop");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("is-over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("is-over"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    filesFromDrop(event.dataTransfer).then(choose);
  });
}

async function filesFromDrop(dataTransfer) {
  const items = [...(dataTransfer.items || [])];
  const entries = items.map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
  // Files made by a script have no entries: take the plain list.
  if (!items.length || entries.length < items.length) return [...dataTransfer.files];
  return (await Promise.all(entries.map(walk))).flat();
}

function walk(entry) {
  if (entry.isFile) {
    return new Promise((resolve) => {
      entry.file((file) => {
        file.relativePath = entry.fullPath.replace(/^\//, "");
        resolve([file]);
      }, () => resolve([]));
    });
  }
  return readAll(entry.createReader()).then(async (children) => (await Promise.all(children.map(walk))).flat());
}

// readEntries() gives a folder's entries in batches, until an empty one.
function readAll(reader) {
  return new Promise((resolve) => {
    const all = [];
    const next = () => reader.readEntries((batch) => {
      if (!batch.length) return resolve(all);
      all.push(...batch);
      next();
    }, () => resolve(all));
    next();
  });
}
