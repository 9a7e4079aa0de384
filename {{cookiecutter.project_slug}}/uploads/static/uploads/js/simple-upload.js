/*
 * The plain upload page: flow.js sends each chosen file in chunks and this
 * script shows how far each one got. Settings come from the page
 * (#upload-config), the CSRF token from the form Django rendered.
 */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("upload-config").textContent);
  var csrfToken = document.querySelector("[name=csrfmiddlewaretoken]").value;
  var list = document.getElementById("progress");
  var flow = new Flow({
    target: config.target,
    chunkSize: config.chunkSize,
    simultaneousUploads: config.simultaneousChunks,
    headers: {"X-CSRFToken": csrfToken},
    testChunks: true,
    maxChunkRetries: 5,
    chunkRetryInterval: 1000,
    permanentErrors: [400, 403, 404, 409, 410, 413, 415, 500, 501]
  });
  var rows = {};

  function row(file) {
    if (!rows[file.uniqueIdentifier]) {
      var li = document.createElement("li");
      li.innerHTML = '<span class="name"></span> <progress max="100" value="0"></progress> <span class="state"></span>';
      li.querySelector(".name").textContent = file.name;
      list.appendChild(li);
      rows[file.uniqueIdentifier] = li;
    }
    return rows[file.uniqueIdentifier];
  }

  function errorText(message) {
    try { return JSON.parse(message).error; } catch (e) { return message || "the server refused the file"; }
  }

  flow.on("filesSubmitted", function () { flow.upload(); });
  flow.on("fileProgress", function (file) {
    var li = row(file);
    li.querySelector("progress").value = Math.floor(file.progress() * 100);
    li.querySelector(".state").textContent = Math.floor(file.progress() * 100) + "%";
  });
  flow.on("fileSuccess", function (file) {
    row(file).querySelector(".state").textContent = "done";
  });
  flow.on("fileError", function (file, message) {
    row(file).querySelector(".state").textContent = "failed: " + errorText(message);
  });
  document.getElementById("file-input").addEventListener("change", function (event) {
    flow.addFiles(event.target.files);
    event.target.value = "";
  });
})();
