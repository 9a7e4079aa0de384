/* resumable.js behind the drivers' interface (see common.js). */

import {SentCounter, answerOf, clientOptions, libraryGlobal} from "./common.js";

export function resumableDriver(config, hooks) {
  const Resumable = libraryGlobal("Resumable");
  const resumable = new Resumable({...clientOptions(config, hooks), throttleProgressCallbacks: 0.2});
  // resumable.js empties file.chunks before it reports an error, and passes
  // neither the chunk nor its status: keep the chunks seen last, to find the
  // one that failed and what it was told.
  const chunks = new WeakMap();
  const sent = new SentCounter();
  const seen = (file) => {
    if (file.chunks.length) chunks.set(file, file.chunks);
    return chunks.get(file) || [];
  };
  resumable.on("fileAdded", (file) => { hooks.added(file); });
  resumable.on("filesAdded", () => resumable.upload());
  resumable.on("fileProgress", (file) => {
    seen(file);
    hooks.progress(file, "");
  });
  resumable.on("fileSuccess", (file, message) => hooks.success(file, message));
  resumable.on("fileError", (file, message) => {
    const failed = seen(file).find((chunk) => chunk.status() === "error");
    const {status, retryAfter} = answerOf(failed);
    hooks.error(file, message, status, retryAfter);
  });
  const retry = (file) => {
    chunks.delete(file);
    file.retry();
  };
  return {
    supported: resumable.support,
    add: (files) => resumable.addFiles(files),
    pause: (file) => { file.pause(true); file.abort(); },
    resume: (file) => { file.pause(false); resumable.upload(); },
    cancel: (file) => file.cancel(),
    retry,
    progress: (file) => file.progress(),
    sent: (file) => sent.count(file, file.chunks),
    name: (file) => file.fileName,
  };
}
