/* flow.js behind the drivers' interface (see common.js). */

import {SentCounter, answerOf, clientOptions, libraryGlobal} from "./common.js";

export function flowDriver(config, hooks) {
  const Flow = libraryGlobal("Flow");
  const flow = new Flow({
    ...clientOptions(config, hooks),
    progressCallbacksInterval: 200,
    allowDuplicateUploads: false,
  });
  const sent = new SentCounter();
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
  return {
    supported: flow.support,
    add: (files) => flow.addFiles(files),
    pause: (file) => file.pause(),
    resume: (file) => file.resume(),
    cancel: (file) => file.cancel(),
    retry: (file) => file.retry(),
    progress: (file) => file.progress(),
    sent: (file) => sent.count(file, file.chunks),
    name: (file) => file.name,
  };
}
