// Packyard's web UI works without this file; it adds copy buttons and upload progress.
"use strict";

function announce(message) {
  const region = document.getElementById("announce");
  if (region) {
    region.textContent = "";
    window.setTimeout(() => { region.textContent = message; }, 50);
  }
}

// navigator.clipboard exists only in secure contexts; plain-http installs fall back to
// selecting a hidden textarea and execCommand("copy").
function copyText(text) {
  if (window.isSecureContext && navigator.clipboard) {
    return navigator.clipboard.writeText(text);
  }
  return new Promise((resolve, reject) => {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    if (copied) { resolve(); } else { reject(new Error("copy refused")); }
  });
}

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) { return; }
      copyText(source.textContent.trim()).then(
        () => { button.textContent = "Copied"; announce("Copied to the clipboard"); },
        () => { announce("Copying failed: select the text and copy it by hand"); },
      );
      window.setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
}

// Each file is its own request, so one bad package does not lose the others, and each
// gets a progress bar.
function uploadOne(form, file, row) {
  return new Promise((resolve) => {
    const data = new FormData();
    data.append("csrf", form.elements.csrf.value);
    data.append("distro_version_id", form.elements.distro_version_id.value);
    data.append("package_file", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        row.progress.value = event.loaded / event.total;
      }
    });
    request.addEventListener("load", () => {
      let result = {};
      try { result = JSON.parse(request.responseText); } catch (e) { result = {}; }
      row.progress.value = 1;
      if (request.status < 300 && result.url) {
        const link = document.createElement("a");
        link.href = result.url;
        link.textContent = result.status;
        row.status.replaceChildren(link);
      } else {
        row.status.textContent = "failed: " + (result.error || request.statusText);
      }
      resolve();
    });
    request.addEventListener("error", () => {
      row.status.textContent = "failed: the connection was lost";
      resolve();
    });
    request.send(data);
  });
}

function setUpUpload() {
  const form = document.getElementById("upload-form");
  const list = document.getElementById("upload-progress");
  if (!form || !list) { return; }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const files = Array.from(form.elements.package_file.files);
    if (files.length === 0) { return; }
    list.replaceChildren();
    const rows = files.map((file) => {
      const item = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = file.name + " ";
      const progress = document.createElement("progress");
      progress.max = 1;
      progress.value = 0;
      progress.setAttribute("aria-label", "Upload of " + file.name);
      const status = document.createElement("span");
      status.className = "upload-status";
      status.textContent = " uploading";
      item.append(name, progress, status);
      list.appendChild(item);
      return { progress, status };
    });
    for (let i = 0; i < files.length; i += 1) {
      await uploadOne(form, files[i], rows[i]);
    }
    announce("Upload finished");
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpUpload();
});
