/*
 * The upload widget, on the upload page and inside forms (ResumableFileWidget).
 *
 * One widget, two wire clients: flow.js or resumable.js (settings.UPLOADS_CLIENT)
 * does the chunking, retrying and test requests; this file only adapts each one
 * to the same small interface (`clients.flow`, `clients.resumable`) and draws
 * the rows. Everything it needs comes from a JSON <script> inside the widget,
 * written by the server: never hard-coded here. Its only global is `Uploads`.
 *
 * Resuming after a reload works because a file's identifier is stable (size,
 * modification time, path): choosing the same file again makes the client ask
 * the server for each chunk first (the test GET) and send only the missing ones.
 */
(function (window, document) {
  "use strict";

  var Uploads = (window.Uploads = window.Uploads || {});

  // Statuses the server gives to every chunk the client sends: anything else is
  // retried (network lost, 503 lock timeout) up to MAX_RETRIES times.
  var PERMANENT_ERRORS = [400, 401, 403, 404, 409, 410, 413, 415, 500, 501];
  var MAX_RETRIES = 8;
  var RETRY_INTERVAL_MS = 2000;
  var POLL_INTERVAL_MS = 1000;
  var POLL_LIMIT = 120; // finishing a very large file (hashing) can take a while

  // ---- Words and numbers ---------------------------------------------------

  function formatBytes(bytes) {
    // The same units and rounding as Django's filesizeformat, so that the page's
    // rows and its server-rendered list agree.
    var units = ["bytes", "KB", "MB", "GB", "TB", "PB"];
    if (bytes < 1024) return bytes + (bytes === 1 ? " byte" : " bytes");
    var i = 0;
    while (bytes >= 1024 && i < units.length - 1) {
      bytes /= 1024;
      i += 1;
    }
    return bytes.toFixed(1) + "\u00a0" + units[i];
  }

  function formatDuration(seconds) {
    if (!isFinite(seconds) || seconds < 0) return "";
    seconds = Math.round(seconds);
    if (seconds < 60) return seconds + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + (seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function extensionOf(name) {
    var dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  }

  function errorDetail(message) {
    try {
      return JSON.parse(message).error || "";
    } catch (e) {
      return "";
    }
  }

  // What went wrong, in words, and whether trying again can help.
  function describeFailure(status, message) {
    var detail = errorDetail(message);
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

  // ---- The CSRF token --------------------------------------------------------

  // Django's documented ways, in order: the {% csrf_token %} input (works with
  // CSRF_COOKIE_HTTPONLY), then the csrftoken cookie.
  function csrfToken(element) {
    var form = element && element.closest("form");
    var input = (form && form.querySelector("[name=csrfmiddlewaretoken]")) ||
      document.querySelector("[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function apiRequest(method, url, token) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: {"X-CSRFToken": token, "Accept": "application/json"}
    });
  }

  // ---- The two clients, behind one interface --------------------------------
  //
  // client.add(files); client.pause/resume/cancel/retry(native file);
  // client.progress(native) -> 0..1. Events: added(native), progress(native,
  // responseText or ""), success(native, responseText), error(native,
  // responseText, HTTP status or 0).

  function identifier(file) {
    // Stable across reloads for the same file, different for a changed file.
    var path = file.relativePath || file.webkitRelativePath || file.name;
    return (file.size + "-" + (file.lastModified || 0) + "-" + path)
      .replace(/[^0-9A-Za-z_.-]/g, "_").slice(0, 200);
  }

  // Both libraries ask the server whether it has a chunk before sending it
  // (testChunks): one more request per chunk, which lets a file resume where
  // it stopped. For a file the server has no part of, the answer is always
  // "no", so the widget marks its chunks tested and sends them straight away.
  // `tested` is an internal flag of both libraries; the vendored versions are
  // pinned, and the browser tests count the requests.
  function skipTestsOf(fresh) {
    return function (chunk) {
      if (fresh.has(chunk.fileObj.file)) chunk.tested = true;
      chunk.preprocessFinished();
    };
  }

  function clientOptions(config, token, fresh) {
    return {
      target: config.target,
      chunkSize: config.chunkSize,
      simultaneousUploads: config.simultaneousChunks,
      testChunks: true,
      preprocess: skipTestsOf(fresh),
      headers: {"X-CSRFToken": token},
      generateUniqueIdentifier: identifier,
      maxChunkRetries: MAX_RETRIES,
      chunkRetryInterval: RETRY_INTERVAL_MS,
      permanentErrors: PERMANENT_ERRORS
    };
  }

  var clients = {};

  clients.flow = function (config, token, events, fresh) {
    var options = clientOptions(config, token, fresh);
    options.progressCallbacksInterval = 200;
    options.allowDuplicateUploads = false;
    var flow = new window.Flow(options);
    flow.on("fileAdded", function (file) { events.added(file); });
    flow.on("filesSubmitted", function () { flow.upload(); });
    flow.on("fileProgress", function (file, chunk) {
      events.progress(file, chunk && chunk.xhr && chunk.xhr.status === 200 ? chunk.xhr.responseText : "");
    });
    flow.on("fileSuccess", function (file, message) { events.success(file, message); });
    flow.on("fileError", function (file, message, chunk) {
      events.error(file, message, chunk && chunk.xhr ? chunk.xhr.status : 0);
    });
    return {
      supported: flow.support,
      add: function (files) { flow.addFiles(files); },
      pause: function (file) { file.pause(); },
      resume: function (file) { file.resume(); },
      cancel: function (file) { file.cancel(); },
      retry: function (file) { file.retry(); },
      progress: function (file) { return file.progress(); },
      name: function (file) { return file.name; }
    };
  };

  clients.resumable = function (config, token, events, fresh) {
    var options = clientOptions(config, token, fresh);
    options.throttleProgressCallbacks = 0.2;
    var resumable = new window.Resumable(options);
    resumable.on("fileAdded", function (file) { events.added(file); });
    resumable.on("filesAdded", function () { resumable.upload(); });
    resumable.on("fileProgress", function (file) { events.progress(file, ""); });
    resumable.on("fileSuccess", function (file, message) { events.success(file, message); });
    // resumable.js does not pass the HTTP status: the message tells.
    resumable.on("fileError", function (file, message) { events.error(file, message, null); });
    return {
      supported: resumable.support,
      add: function (files) { resumable.addFiles(files); },
      pause: function (file) { file.pause(true); file.abort(); },
      resume: function (file) { file.pause(false); resumable.upload(); },
      cancel: function (file) { file.cancel(); },
      retry: function (file) { file.retry(); },
      progress: function (file) { return file.progress(); },
      name: function (file) { return file.fileName; }
    };
  };

  // ---- Folders dropped on the zone ------------------------------------------

  function filesFromDrop(dataTransfer) {
    var items = dataTransfer.items;
    if (!items || !items.length || !items[0].webkitGetAsEntry) {
      return Promise.resolve(Array.prototype.slice.call(dataTransfer.files));
    }
    var entries = [];
    for (var i = 0; i < items.length; i++) {
      var entry = items[i].webkitGetAsEntry();
      if (!entry) break;
      entries.push(entry);
    }
    // Files made by a script have no entries: take the plain list.
    if (entries.length < items.length) {
      return Promise.resolve(Array.prototype.slice.call(dataTransfer.files));
    }
    return Promise.all(entries.map(walk)).then(function (lists) {
      return [].concat.apply([], lists);
    });
  }

  function walk(entry) {
    if (entry.isFile) {
      return new Promise(function (resolve) {
        entry.file(function (file) {
          file.relativePath = entry.fullPath.replace(/^\//, "");
          resolve([file]);
        }, function () { resolve([]); });
      });
    }
    var reader = entry.createReader();
    var all = [];
    return new Promise(function (resolve) {
      (function readBatch() {
        reader.readEntries(function (batch) {
          if (!batch.length) {
            Promise.all(all.map(walk)).then(function (lists) { resolve([].concat.apply([], lists)); });
            return;
          }
          all = all.concat(Array.prototype.slice.call(batch));
          readBatch();
        }, function () { resolve([]); });
      })();
    });
  }

  // ---- One row per file ------------------------------------------------------

  var ACTIONS = {
    queued: ["pause", "cancel"],
    uploading: ["pause", "cancel"],
    paused: ["resume", "cancel"],
    processing: [],
    complete: [],
    error: ["retry", "cancel"],
    failed: ["remove"],
    rejected: ["remove"],
    cancelled: ["remove"]
  };
  var LABELS = {pause: "Pause", resume: "Resume", cancel: "Cancel", retry: "Retry", remove: "Remove"};

  function Row(name, size, list) {
    this.size = size;
    this.samples = [];
    this.el = document.createElement("li");
    this.el.className = "upload-row";
    this.el.innerHTML =
      '<div class="upload-row-head"><span class="upload-name"></span>' +
      '<span class="upload-size"></span></div>' +
      '<div class="upload-bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0">' +
      '<span class="upload-bar-fill"></span></div>' +
      '<div class="upload-row-foot"><span class="upload-percent">0%</span>' +
      '<span class="upload-sent"></span><span class="upload-speed"></span>' +
      '<span class="upload-eta"></span></div>' +
      '<p class="upload-message" role="status"></p>' +
      '<div class="upload-actions"></div>';
    this.el.querySelector(".upload-name").textContent = name;
    this.el.querySelector(".upload-size").textContent = formatBytes(size);
    this.el.querySelector(".upload-bar").setAttribute("aria-label", "Upload of " + name);
    list.appendChild(this.el);
  }

  Row.prototype.setState = function (state, message) {
    this.state = state;
    this.el.setAttribute("data-state", state);
    this.el.querySelector(".upload-message").textContent = message || "";
    var actions = this.el.querySelector(".upload-actions");
    actions.textContent = "";
    (ACTIONS[state] || []).forEach(function (action) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "upload-button upload-button-" + action;
      button.setAttribute("data-action", action);
      button.textContent = LABELS[action];
      actions.appendChild(button);
    });
    if (state !== "uploading") {
      this.samples = [];
      this.el.querySelector(".upload-speed").textContent = "";
      this.el.querySelector(".upload-eta").textContent = "";
    }
  };

  Row.prototype.setProgress = function (fraction) {
    var percent = Math.min(100, Math.floor(fraction * 100));
    var sent = Math.round(fraction * this.size);
    this.el.querySelector(".upload-bar").setAttribute("aria-valuenow", String(percent));
    this.el.querySelector(".upload-bar-fill").style.width = percent + "%";
    this.el.querySelector(".upload-percent").textContent = percent + "%";
    this.el.querySelector(".upload-sent").textContent = formatBytes(sent) + " of " + formatBytes(this.size);
    if (this.state !== "uploading") return;
    // Speed over the last few seconds, so that a pause or a burst fades out.
    var now = Date.now();
    this.samples.push([now, sent]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    var first = this.samples[0];
    var seconds = (now - first[0]) / 1000;
    if (seconds >= 0.5 && sent > first[1]) {
      var speed = (sent - first[1]) / seconds;
      this.el.querySelector(".upload-speed").textContent = formatBytes(Math.round(speed)) + "/s";
      this.el.querySelector(".upload-eta").textContent =
        formatDuration((this.size - sent) / speed) + " left";
    }
  };

  // ---- The widget -------------------------------------------------------------

  function Widget(root, config) {
    this.root = root;
    this.config = config;
    this.token = csrfToken(root);
    this.items = [];
    this.list = root.querySelector(".upload-rows");
    this.single = Boolean(config.single);
    var self = this;
    var events = {
      added: function (native) { self.added(native); },
      progress: function (native, text) { self.progress(native, text); },
      success: function (native, text) { self.succeeded(native, text); },
      error: function (native, text, status) { self.failed(native, text, status); }
    };
    var makeClient = clients[config.protocol];
    if (!makeClient) throw new Error("Uploads: unknown client " + config.protocol);
    // Files the server had no part of when they were chosen (skipTestsOf).
    this.fresh = new WeakSet();
    this.client = makeClient(config, this.token, events, this.fresh);
    if (!this.client.supported) {
      root.querySelector(".upload-unsupported").hidden = false;
      return;
    }
    this.bindInputs();
    this.list.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-action]");
      if (!button) return;
      var item = self.itemOf(button.closest(".upload-row"));
      if (item) self[button.getAttribute("data-action")](item);
    });
    window.addEventListener("online", function () {
      self.items.forEach(function (item) {
        if (item.row.state === "error" && item.retryOnline) self.retry(item);
      });
    });
  }

  Widget.prototype.bindInputs = function () {
    var self = this;
    var zone = this.root.querySelector(".upload-drop");
    Array.prototype.forEach.call(this.root.querySelectorAll("input[type=file]"), function (input) {
      input.addEventListener("change", function () {
        self.choose(Array.prototype.slice.call(input.files));
        input.value = "";
      });
    });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("is-over");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("is-over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      filesFromDrop(event.dataTransfer).then(function (files) { self.choose(files); });
    });
  };

  // Files the user chose or dropped: refused here, before any byte is sent,
  // when the server would refuse them anyway.
  Widget.prototype.choose = function (files) {
    var config = this.config;
    if (this.single) files = files.slice(0, 1);
    var accepted = [];
    files.forEach(function (file) {
      var reason = "";
      var ext = extensionOf(file.name);
      if (file.size > config.maxBytes) {
        reason = "Too large: this file is " + formatBytes(file.size) +
          "; the largest accepted is " + formatBytes(config.maxBytes) + ".";
      } else if (config.allowedExtensions.length && config.allowedExtensions.indexOf(ext) < 0) {
        reason = "Type not allowed: " + (ext ? "." + ext : "files without an extension") +
          " files are not accepted; allowed: " + config.allowedExtensions.join(", ") + ".";
      }
      if (reason) {
        var row = new Row(file.name, file.size, this.list);
        row.setState("rejected", reason);
        this.items.push({row: row, native: null});
      } else {
        accepted.push(file);
      }
    }, this);
    if (!accepted.length) return;
    if (this.single) this.clearFinished();
    var self = this;
    this.unfinishedOnServer().then(function (unfinished) {
      accepted.forEach(function (file) {
        if (unfinished && !unfinished[file.name + "/" + file.size]) self.fresh.add(file);
      });
      self.client.add(accepted);
    });
  };

  // {"name/size": true} for the user's unfinished uploads of this protocol
  // (the newest page of them), or null when the server does not answer: then
  // every file is tested chunk by chunk, as the libraries do by default.
  Widget.prototype.unfinishedOnServer = function () {
    var protocol = this.config.protocol;
    return apiRequest("GET", this.config.api, this.token)
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (data) {
        var unfinished = {};
        (data.results || []).forEach(function (upload) {
          if (upload.status === "uploading" && upload.protocol === protocol) {
            unfinished[upload.filename + "/" + upload.size] = true;
          }
        });
        return unfinished;
      })
      .catch(function () { return null; });
  };

  Widget.prototype.clearFinished = function () {
    this.items.slice().forEach(function (item) {
      if (!item.native || item.row.state !== "uploading") this.remove(item, true);
    }, this);
  };

  Widget.prototype.itemOf = function (el) {
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].row.el === el) return this.items[i];
    }
    return null;
  };

  Widget.prototype.find = function (native) {
    for (var i = 0; i < this.items.length; i++) {
      if (this.items[i].native === native) return this.items[i];
    }
    return null;
  };

  Widget.prototype.added = function (native) {
    var row = new Row(this.client.name(native), native.size, this.list);
    var item = {row: row, native: native, id: null};
    row.el.setAttribute("data-identifier", native.uniqueIdentifier);
    this.items.push(item);
    row.setState("uploading", "");
    row.setProgress(0);
  };

  Widget.prototype.remember = function (item, text) {
    var data;
    try { data = JSON.parse(text); } catch (e) { return null; }
    if (data && data.id && !item.id) {
      item.id = data.id;
      item.row.el.setAttribute("data-upload-id", data.id);
      this.emit("started", item, data);
    }
    return data;
  };

  Widget.prototype.progress = function (native, text) {
    var item = this.find(native);
    if (!item || item.row.state === "cancelled") return;
    if (text) this.remember(item, text);
    item.row.setProgress(this.client.progress(native));
  };

  Widget.prototype.succeeded = function (native, text) {
    var item = this.find(native);
    if (!item) return;
    var data = this.remember(item, text) || {};
    item.row.setProgress(1);
    item.row.setState("processing", "Checking the file…");
    this.waitUntilComplete(item, data, 0);
  };

  // The last chunk's answer may come before another worker has finished the
  // file (hashing, moving it into storage): ask the status API until it has.
  Widget.prototype.waitUntilComplete = function (item, data, attempt) {
    var self = this;
    if (data.status === "complete") return this.completed(item, data);
    if (data.status && data.status !== "processing" && data.status !== "uploading") {
      item.row.setState("failed", "The server could not keep the file: " + (data.error || data.status) + ".");
      return this.emit("failed", item, data);
    }
    if (!item.id || attempt >= POLL_LIMIT) {
      item.row.setState("error", "The server did not confirm the file. Retry to check again.");
      return;
    }
    window.setTimeout(function () {
      apiRequest("GET", self.config.api + item.id + "/", self.token)
        .then(function (response) { return response.json(); })
        .then(function (next) { self.waitUntilComplete(item, next, attempt + 1); })
        .catch(function () { self.waitUntilComplete(item, {}, attempt + 1); });
    }, POLL_INTERVAL_MS);
  };

  Widget.prototype.completed = function (item, data) {
    item.row.setState("complete", "");
    var message = item.row.el.querySelector(".upload-message");
    message.textContent = "Uploaded. ";
    if (data.download_url) {
      var link = document.createElement("a");
      link.href = data.download_url;
      link.textContent = "Download";
      message.appendChild(link);
    }
    this.emit("complete", item, data);
  };

  Widget.prototype.failed = function (native, text, status) {
    var item = this.find(native);
    if (!item || item.row.state === "cancelled") return;
    this.remember(item, text);
    var failure = describeFailure(status, text);
    item.retryOnline = !status && !errorDetail(text);
    item.row.setState(failure.retry ? "error" : "failed", failure.text);
    this.emit("failed", item, {error: failure.text});
  };

  Widget.prototype.pause = function (item) {
    this.client.pause(item.native);
    item.row.setState("paused", "Paused. Resume continues from here, even after a reload.");
  };

  // After a pause or an error the server may have chunks the page does not
  // know it has (aborted, or answered too late): test them again.
  Widget.prototype.resume = function (item) {
    item.row.setState("uploading", "");
    this.fresh.delete(item.native.file);
    this.client.resume(item.native);
  };

  Widget.prototype.retry = function (item) {
    item.row.setState("uploading", "");
    if (item.id && !item.native) return;
    this.fresh.delete(item.native.file);
    this.client.retry(item.native);
  };

  // Stop sending, then have the server drop the bytes it already has.
  Widget.prototype.cancel = function (item) {
    var self = this;
    this.client.cancel(item.native);
    item.row.setState("cancelled", "Cancelling…");
    this.serverId(item).then(function (id) {
      if (!id) return null;
      return apiRequest("DELETE", self.config.api + id + "/", self.token);
    }).then(function () {
      item.row.setState("cancelled", "Cancelled. The part already sent was deleted.");
      self.emit("cancelled", item, {});
    }).catch(function () {
      item.row.setState("cancelled", "Cancelled here, but the server could not be told: it deletes the part within a day.");
    });
  };

  // resumable.js only reports the upload's id with the last chunk: find it by
  // name and size among the user's unfinished uploads.
  Widget.prototype.serverId = function (item) {
    if (item.id) return Promise.resolve(item.id);
    var protocol = this.config.protocol;
    var name = this.client.name(item.native);
    var size = item.native.size;
    return apiRequest("GET", this.config.api, this.token)
      .then(function (response) { return response.json(); })
      .then(function (data) {
        var match = (data.results || []).filter(function (upload) {
          return upload.status === "uploading" && upload.protocol === protocol &&
            upload.filename === name && upload.size === size;
        })[0];
        return match ? match.id : null;
      });
  };

  Widget.prototype.remove = function (item, quiet) {
    this.items.splice(this.items.indexOf(item), 1);
    item.row.el.remove();
    if (!quiet) this.emit("removed", item, {});
  };

  // Events for the page or the form around the widget: "uploads:complete" etc.,
  // with {item, upload} in event.detail.
  Widget.prototype.emit = function (name, item, data) {
    this.root.dispatchEvent(new CustomEvent("uploads:" + name, {
      bubbles: true, detail: {upload: data, name: item.native ? this.client.name(item.native) : ""}
    }));
  };

  // ---- The list of the user's uploads (upload page) ---------------------------

  function UploadList(table, config, token) {
    this.table = table;
    this.config = config;
    this.token = token;
    var self = this;
    table.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-cancel]");
      if (!button) return;
      button.disabled = true;
      apiRequest("DELETE", config.api + button.getAttribute("data-cancel") + "/", token)
        .then(function () { self.refresh(); });
    });
  }

  UploadList.prototype.refresh = function () {
    var self = this;
    return apiRequest("GET", this.config.api, this.token)
      .then(function (response) { return response.json(); })
      .then(function (data) { self.render(data.results || []); });
  };

  UploadList.prototype.render = function (uploads) {
    var body = this.table.querySelector("tbody");
    body.textContent = "";
    uploads.forEach(function (upload) {
      var tr = document.createElement("tr");
      tr.id = "upload-" + upload.id;  // Upload.get_absolute_url() points here
      tr.setAttribute("data-upload-id", upload.id);
      tr.innerHTML = '<td class="name"></td><td></td><td><span class="status"></span></td><td></td><td></td>';
      tr.children[0].textContent = upload.filename;
      // A tus client may defer the size until its last bytes: null until then.
      tr.children[1].textContent = upload.size === null ? "not known yet" : formatBytes(upload.size);
      var status = tr.children[2].firstChild;
      status.className = "status status-" + upload.status;
      status.textContent = upload.status.charAt(0).toUpperCase() + upload.status.slice(1);
      if (upload.status === "uploading") {
        var done = document.createElement("span");
        done.className = "muted";
        var percent = upload.size ? Math.floor(100 * upload.received_bytes / upload.size) : 0;
        done.textContent = " " + (upload.size === null ? "" : percent + "% ") +
          "(" + formatBytes(upload.received_bytes) + ")";
        tr.children[2].appendChild(done);
      }
      tr.children[3].textContent = upload.created.slice(0, 16).replace("T", " ");
      var cell = tr.children[4];
      if (upload.download_url) {
        var link = document.createElement("a");
        link.href = upload.download_url;
        link.textContent = "Download";
        cell.appendChild(link);
      } else if (upload.status === "uploading") {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "upload-button";
        button.setAttribute("data-cancel", upload.id);
        button.textContent = "Cancel";
        cell.appendChild(button);
      }
      body.appendChild(tr);
    });
    this.table.hidden = !uploads.length;
    var empty = document.getElementById("uploads-empty");
    if (empty) empty.hidden = Boolean(uploads.length);
    var unfinished = uploads.filter(function (u) { return u.status === "uploading"; }).length;
    var hint = document.getElementById("uploads-unfinished");
    if (hint) {
      hint.hidden = !unfinished;
      hint.querySelector("strong").textContent = unfinished + " unfinished upload" + (unfinished === 1 ? "" : "s");
    }
  };

  // ---- Start every widget on the page ----------------------------------------

  function configOf(root) {
    return JSON.parse(root.querySelector("script[type='application/json']").textContent);
  }

  function attach(root) {
    if (root.uploadWidget) return root.uploadWidget;
    var widget = new Widget(root, configOf(root));
    root.uploadWidget = widget;
    var hidden = root.querySelector("input.upload-value");
    if (hidden) {
      // In a form: the field's value is the upload's id, set as soon as known,
      // so that a form sent too early gets the server's "not finished" error.
      var status = root.querySelector(".upload-current");
      root.addEventListener("uploads:started", function (event) { hidden.value = event.detail.upload.id; });
      root.addEventListener("uploads:complete", function (event) {
        hidden.value = event.detail.upload.id;
        if (status) status.textContent = "";
      });
    }
    return widget;
  }

  function attachAll() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-upload-widget]"), attach);
    var table = document.getElementById("uploads-table");
    if (table) {
      var root = document.querySelector("[data-upload-widget]");
      var list = new UploadList(table, configOf(root), csrfToken(root));
      Uploads.list = list;
      ["complete", "cancelled", "failed"].forEach(function (name) {
        document.addEventListener("uploads:" + name, function () { list.refresh(); });
      });
    }
  }

  Uploads.formatBytes = formatBytes;
  Uploads.formatDuration = formatDuration;
  Uploads.csrfToken = csrfToken;
  Uploads.clients = clients;
  Uploads.Widget = Widget;
  Uploads.UploadList = UploadList;
  Uploads.attach = attach;

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", attachAll);
  } else {
    attachAll();
  }
})(window, document);
