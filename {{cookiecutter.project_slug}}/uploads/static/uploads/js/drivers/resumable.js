/* resumable.js behind the drivers' interface (see common.js). */

import {clientOptions, libraryGlobal} from "./common.js";

export function resumableDriver(config, hooks) {
  const Resumable = libraryGlobal("Resumable");
  const resumable = new Resumable({...clientOptions(config, hooks), throttleProgressCallbacks: 0.2});
  resumable.on("fileAdded", (file) => { hooks.added(file); });
  resumable.on("filesAdded", () => resumable.upload());
  resumable.on("fileProgress", (file) => hooks.progress(file, ""));
  resumable.on("fileSuccess", (file, message) => hooks.success(file, message));
  // resumable.js does not pass the HTTP status: the message tells.
  resumable.on("fileError", (file, message) => hooks.error(file, message, null));
  return {
    supported: resumable.support,
    add: (files) => resumable.addFiles(files),
    pause: (file) => { file.pause(true); file.abort(); },
    resume: (file) => { file.pause(false); resumable.upload(); },
    cancel: (file) => file.cancel(),
    retry: (file) => file.retry(),
    progress: (file) => file.progress(),
    name: (file) => file.fileName,
  };
}
