// A small tus 1.0.0 client on fetch: creation, PATCH in chunks, HEAD to resume, the upload
// URL kept in localStorage so a reloaded page picks up where it stopped, pause and resume.
// Written for tuspluggy's page; it has no dependencies and loads nothing from elsewhere.

const TUS_VERSION = "1.0.0";
const STORE_PREFIX = "tuspluggy::";

function encodeMetadata(metadata) {
  return Object.entries(metadata)
    .map(([key, value]) => {
      const bytes = new TextEncoder().encode(String(value));
      let binary = "";
      for (const b of bytes) binary += String.fromCharCode(b);
      return value === "" ? key : `${key} ${btoa(binary)}`;
    })
    .join(",");
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); reject(new DOMException("paused", "AbortError")); }, { once: true });
  });
}

// Upload-Metadata as the server stores it ("key base64,key2 base64") → {key: text}.
export function decodeMetadata(header) {
  const metadata = {};
  for (const pair of (header || "").split(",")) {
    const [key, value] = pair.trim().split(" ");
    if (!key) continue;
    const binary = value ? atob(value) : "";
    metadata[key] = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
  }
  return metadata;
}

// What the server says about a finished upload (a pre-create hook may have changed it).
export async function describe(url) {
  const response = await fetch(url, { method: "HEAD", cache: "no-store", headers: { "Tus-Resumable": TUS_VERSION } });
  if (response.status !== 200) throw new TusError(`HEAD answered ${response.status}`, response);
  return {
    length: Number(response.headers.get("Upload-Length")),
    offset: Number(response.headers.get("Upload-Offset")),
    metadata: decodeMetadata(response.headers.get("Upload-Metadata")),
  };
}

export class TusError extends Error {
  constructor(message, response) {
    super(message);
    this.status = response?.status;
  }
}

// Unfinished uploads remembered by this browser, keyed by endpoint + file name, size and mtime.
export const resumeStore = {
  key(endpoint, file) {
    return `${STORE_PREFIX}${new URL(endpoint, location.href).href}::${file.name}::${file.size}::${file.lastModified}`;
  },
  get(key) {
    try { return JSON.parse(localStorage.getItem(key)); } catch { return null; }
  },
  set(key, record) { localStorage.setItem(key, JSON.stringify(record)); },
  remove(key) { localStorage.removeItem(key); },
  all() {
    const records = [];
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (key?.startsWith(STORE_PREFIX)) {
        const record = this.get(key);
        if (record) records.push({ key, ...record });
      }
    }
    return records;
  },
};

export class Upload {
  // options: endpoint, chunkSize, metadata, retryDelays, and callbacks onProgress(offset,
  // total), onStatus(text), onSuccess({url, offset, resumedFrom}), onError(error).
  constructor(file, options) {
    this.file = file;
    this.options = { chunkSize: 2 * 1024 * 1024, retryDelays: [500, 1500, 3000, 6000], metadata: {}, ...options };
    this.key = resumeStore.key(this.options.endpoint, file);
    this.url = null;
    this.offset = 0;
    this.resumedFrom = null;
    this.running = false;
    this.controller = null;
  }

  emit(name, ...args) { this.options[name]?.(...args); }

  async request(method, url, headers = {}, body = undefined) {
    const response = await fetch(url, {
      method, body, signal: this.controller.signal, cache: "no-store",
      headers: { "Tus-Resumable": TUS_VERSION, ...headers },
    });
    return response;
  }

  // Starts or resumes. Resolves when the upload is complete, paused, or failed for good.
  async start() {
    if (this.running) return;
    this.running = true;
    this.controller = new AbortController();
    let failures = 0;
    try {
      while (true) {
        try {
          await this.run();
          return;
        } catch (error) {
          if (error.name === "AbortError") { this.emit("onStatus", "paused"); return; }
          // 4xx other than the retryable ones are final; network errors and 5xx are retried.
          const retryable = error.status === undefined || error.status >= 500 || [409, 423, 429].includes(error.status);
          if (!retryable || failures >= this.options.retryDelays.length) throw error;
          const delay = this.options.retryDelays[failures++];
          this.emit("onStatus", `${error.message}; retrying in ${delay / 1000}s`);
          await sleep(delay, this.controller.signal);
        }
      }
    } catch (error) {
      if (error.name === "AbortError") { this.emit("onStatus", "paused"); return; }
      this.emit("onError", error);
    } finally {
      this.running = false;
    }
  }

  pause() {
    this.controller?.abort();
  }

  // Forget the stored URL and delete the upload on the server (termination).
  async abort() {
    this.pause();
    resumeStore.remove(this.key);
    if (this.url) {
      try {
        await fetch(this.url, { method: "DELETE", headers: { "Tus-Resumable": TUS_VERSION } });
      } catch { /* best effort */ }
    }
  }

  async run() {
    if (!this.url) {
      const stored = resumeStore.get(this.key);
      if (stored?.url) this.url = stored.url;
    }
    if (this.url) {
      await this.resync();
    }
    if (!this.url) {
      await this.create();
    }
    while (this.offset < this.file.size) {
      const end = Math.min(this.offset + this.options.chunkSize, this.file.size);
      const response = await this.request("PATCH", this.url, {
        "Upload-Offset": String(this.offset),
        "Content-Type": "application/offset+octet-stream",
      }, this.file.slice(this.offset, end));
      if (response.status === 409) {
        // Our idea of the offset is stale (another tab, a lost answer): ask the server.
        await this.resync();
        continue;
      }
      if (response.status !== 204) throw await this.failure("PATCH", response);
      this.offset = Number(response.headers.get("Upload-Offset"));
      this.remember();
      this.emit("onProgress", this.offset, this.file.size);
    }
    resumeStore.remove(this.key);
    this.emit("onSuccess", { url: this.url, offset: this.offset, resumedFrom: this.resumedFrom });
  }

  async create() {
    const response = await this.request("POST", this.options.endpoint, {
      "Upload-Length": String(this.file.size),
      "Upload-Metadata": encodeMetadata(this.options.metadata),
    });
    if (response.status !== 201) throw await this.failure("creation", response);
    this.url = new URL(response.headers.get("Location"), new URL(this.options.endpoint, location.href)).href;
    this.offset = 0;
    this.remember();
    this.emit("onStatus", "uploading");
  }

  // HEAD the stored URL: continue from the server's offset, or start over if it is gone.
  async resync() {
    const response = await this.request("HEAD", this.url);
    if ([404, 410, 403].includes(response.status)) {
      resumeStore.remove(this.key);
      this.url = null;
      this.offset = 0;
      return;
    }
    if (response.status !== 200) throw await this.failure("HEAD", response);
    this.offset = Number(response.headers.get("Upload-Offset"));
    if (this.resumedFrom === null) this.resumedFrom = this.offset;
    this.emit("onStatus", `resumed at ${this.offset} bytes`);
    this.emit("onProgress", this.offset, this.file.size);
  }

  remember() {
    resumeStore.set(this.key, {
      url: this.url, name: this.file.name, size: this.file.size, offset: this.offset, savedAt: Date.now(),
    });
  }

  async failure(what, response) {
    let text = "";
    try { text = (await response.text()).trim().split("\n")[0]; } catch { /* no body */ }
    return new TusError(`${what} answered ${response.status}${text ? ": " + text : ""}`, response);
  }
}
