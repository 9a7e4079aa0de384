/* flow.js behind the drivers' interface (see common.js). */

import {answerOf, clientOptions, libraryGlobal, sentBytes} from "./common.js";

export function flowDriver(config, hooks) {
  const Flow = libraryGlobal("Flow");
  const flow = new Flow({
    ...clientOptions(config, hooks),
    progressCallbacksInterval: 200,
    allowDuplicateUploads: false,
  });
  const sent = new WeakMap(); // file -> bytes sent by chunks no longer in file.chunks
  flow.on("fileAdded", (file) => { hooks.added(file); });
  flow.on("filesSubmitted", () => flow.upload());
  // flow.js reports each chunk's answer, so the upload's id is known early.
  flow.on("fileProgress", (file, chunk) => {
    hooks.progress(file, chunk && chunk.xhr && chunk.xhr.status === 200 ? chunk.xhr.responseText : "");
  });
  flow.on("fileSuccess", (file, message) => hooks.success(file, message));
  flow.on("fileError", (file, message, chunk) => {
    const {status, retryAfter} = answerOf(chunk);
    hooks.error(file, message, status, retryAfter);
  });
  // retry() slices the file into new chunks: keep what the old ones sent.
  const retry = (file) => {
    sent.set(file, (sent.get(file) || 0) + sentBytes(file.chunks));
    file.retry();
  };
  return {
    supported: flow.support,
    add: (files) => flow.addFiles(files),
    pause: (file) => file.pause(),
    resume: (file) => file.resume(),
    cancel: (file) => file.cancel(),
    retry,
    progress: (file) => file.progress(),
    sent: (file) => (sent.get(file) || 0) + sentBytes(file.chunks),
    name: (file) => file.name,
  };
}
