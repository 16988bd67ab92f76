// The upload page: pick or drop files, one tus Upload per file, with progress, pause and
// resume, and the list of uploads this browser left unfinished (from localStorage).
import { Upload, describe, resumeStore } from "./tus-client.js";

const endpoint = document.body.dataset.endpoint;
const params = new URLSearchParams(location.search);
// ?chunk=<bytes> sets the PATCH size (smaller chunks show progress more often).
const chunkSize = Number(params.get("chunk")) || 2 * 1024 * 1024;
const list = document.getElementById("uploads");

export function formatBytes(n) {
  if (n == null) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function showUnfinished() {
  const records = resumeStore.all();
  const ul = document.getElementById("unfinished");
  ul.replaceChildren(...records.map((record) => {
    const li = document.createElement("li");
    li.dataset.key = record.key;
    const pct = record.size ? Math.floor((100 * record.offset) / record.size) : 0;
    li.append(`${record.name} · ${formatBytes(record.offset)} of ${formatBytes(record.size)} (${pct}%) `);
    const forget = document.createElement("button");
    forget.type = "button";
    forget.textContent = "Forget";
    forget.onclick = () => { resumeStore.remove(record.key); showUnfinished(); };
    li.append(forget);
    return li;
  }));
  document.getElementById("unfinished-section").hidden = records.length === 0;
}

function addFile(file) {
  const row = document.getElementById("upload-row").content.firstElementChild.cloneNode(true);
  const $ = (selector) => row.querySelector(selector);
  $(".name").textContent = file.name;
  $(".size").textContent = formatBytes(file.size);
  row.dataset.name = file.name;
  row.dataset.state = "uploading";
  list.prepend(row);
  document.getElementById("empty").hidden = true;
  const metadata = { filename: file.name, filetype: file.type || "application/octet-stream" };

  const upload = new Upload(file, {
    endpoint, chunkSize, metadata,
    onStatus: (text) => { $(".status").textContent = text; },
    onProgress: (offset, total) => {
      const pct = total ? (100 * offset) / total : 100;
      $("progress").value = pct;
      $(".status").textContent = `${formatBytes(offset)} of ${formatBytes(total)} (${Math.floor(pct)}%)`;
      row.dataset.offset = offset;
      showUnfinished();
    },
    onSuccess: async ({ url, offset, resumedFrom }) => {
      row.dataset.url = url;
      if (resumedFrom !== null) row.dataset.resumedFrom = resumedFrom;
      $("progress").value = 100;
      $(".status").textContent = resumedFrom ? `done (resumed at ${formatBytes(resumedFrom)})` : "done";
      $(".actions").hidden = true;
      $(".id").textContent = url.split("/").pop();
      $(".download").href = url;
      $(".download").textContent = url;
      // Size and metadata as the server recorded them.
      let stored = { offset, metadata };
      try { stored = await describe(url); } catch { /* show what was sent */ }
      $(".bytes").textContent = `${stored.offset} bytes`;
      $(".metadata").textContent = Object.entries(stored.metadata).map(([k, v]) => `${k}=${v}`).join(", ");
      $(".result").hidden = false;
      row.dataset.state = "done";
      showUnfinished();
    },
    onError: (error) => {
      row.dataset.state = "failed";
      $(".status").textContent = `failed: ${error.message}`;
      $(".pause").hidden = true;
      $(".resume").hidden = false;
    },
  });

  $(".pause").onclick = () => {
    upload.pause();
    row.dataset.state = "paused";
    $(".pause").hidden = true;
    $(".resume").hidden = false;
  };
  $(".resume").onclick = () => {
    row.dataset.state = "uploading";
    $(".pause").hidden = false;
    $(".resume").hidden = true;
    upload.start();
  };
  $(".cancel").onclick = async () => {
    await upload.abort();
    row.remove();
    showUnfinished();
  };
  upload.start();
}

function addFiles(files) {
  for (const file of files) addFile(file);
}

const input = document.getElementById("files");
input.addEventListener("change", () => { addFiles(input.files); input.value = ""; });
const drop = document.getElementById("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  addFiles(event.dataTransfer.files);
});
showUnfinished();
document.body.dataset.ready = "yes";
