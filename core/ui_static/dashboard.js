// The dashboard: renders the snapshots the server streams (server-sent events) into two
// tables, and asks the server to retry failed hook deliveries.

const RETRYABLE = new Set(["failed", "dead", "error", "gave_up", "given_up"]);

function formatBytes(n) {
  if (n == null) return "deferred";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function formatTime(seconds) {
  if (seconds == null) return "never";
  return new Date(seconds * 1000).toLocaleString();
}

function cell(row, content, className) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content); else td.textContent = content ?? "";
  if (className) td.className = className;
  row.append(td);
  return td;
}

function renderUploads(uploads) {
  const body = document.querySelector("#uploads tbody");
  body.replaceChildren(...uploads.map((upload) => {
    const tr = document.createElement("tr");
    tr.dataset.id = upload.id;
    tr.dataset.offset = upload.offset;
    tr.className = upload.complete ? "complete" : "partial";
    const link = document.createElement("a");
    link.href = upload.url;
    link.textContent = upload.id;
    cell(tr, link, "mono");
    cell(tr, upload.length == null ? "deferred" : `${formatBytes(upload.length)} (${upload.length} B)`);
    const pct = upload.length ? Math.floor((100 * upload.offset) / upload.length) : 100;
    cell(tr, `${upload.offset} B · ${upload.complete ? "complete" : pct + "%"}${upload.kind ? " · " + upload.kind : ""}`);
    cell(tr, formatTime(upload.created_at));
    cell(tr, formatTime(upload.expires_at));
    cell(tr, Object.entries(upload.metadata || {}).map(([k, v]) => `${k}=${v}`).join(", "), "meta");
    return tr;
  }));
  document.getElementById("upload-count").textContent = `(${uploads.length})`;
}

async function retry(eventId, button) {
  button.disabled = true;
  const response = await fetch(`api/deliveries/${encodeURIComponent(eventId)}/retry`, { method: "POST" });
  button.textContent = response.ok ? "queued" : `failed: ${response.status}`;
}

function renderDeliveries(deliveries, enabled) {
  document.getElementById("no-deliveries").hidden = enabled;
  document.getElementById("deliveries").hidden = !enabled;
  const body = document.querySelector("#deliveries tbody");
  const newestFirst = [...deliveries].sort((a, b) => (b.recorded_at || 0) - (a.recorded_at || 0));
  body.replaceChildren(...newestFirst.map((d) => {
    const tr = document.createElement("tr");
    tr.dataset.eventId = d.event_id;
    tr.dataset.event = d.event;
    tr.dataset.state = d.state;
    tr.className = `state-${d.state}`;
    cell(tr, formatTime(d.recorded_at));
    cell(tr, d.event);
    cell(tr, d.upload_id, "mono");
    cell(tr, d.notifier);
    cell(tr, d.state, "state");
    cell(tr, String(d.attempts));
    cell(tr, d.last_error, "error");
    const actions = cell(tr, "");
    if (RETRYABLE.has(String(d.state).toLowerCase())) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Retry";
      button.onclick = () => retry(d.event_id, button);
      actions.append(button);
    }
    return tr;
  }));
  document.getElementById("delivery-count").textContent = `(${deliveries.length})`;
}

const live = document.getElementById("live");
const source = new EventSource("api/stream");
source.addEventListener("open", () => { live.textContent = "live"; live.className = "badge live"; });
source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "badge"; });
source.addEventListener("snapshot", (event) => {
  const snapshot = JSON.parse(event.data);
  renderUploads(snapshot.uploads);
  renderDeliveries(snapshot.deliveries, snapshot.deliveries_enabled);
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
});
