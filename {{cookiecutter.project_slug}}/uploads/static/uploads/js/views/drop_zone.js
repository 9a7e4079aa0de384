/*
 * The widget's file inputs and its drop zone: whatever the person picks or
 * drops, folders walked into files (each with its relativePath), goes to
 * `choose(files)`.
 */

export function bindDropZone(root, choose) {
  for (const input of root.querySelectorAll("input[type=file]")) {
    input.addEventListener("change", () => {
      choose([...input.files]);
      input.value = "";
    });
  }
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
