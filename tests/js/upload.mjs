// Upload a file to a tus server with tus-js-client, as a browser or Node app would.
// usage: node upload.mjs <endpoint> <file> [--chunk-size N] [--abort-after N] [--upload-url URL]
// Prints one JSON line: {"url": ..., "offset": ..., "done": bool}.
import fs from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, path, ...rest] = process.argv.slice(2);
const opts = {};
for (let i = 0; i < rest.length; i += 2) opts[rest[i].replace(/^--/, "")] = rest[i + 1];
const data = fs.readFileSync(path);
const abortAfter = opts["abort-after"] ? Number(opts["abort-after"]) : null;

const upload = new tus.Upload(data, {
  endpoint,
  uploadUrl: opts["upload-url"] || null,
  chunkSize: opts["chunk-size"] ? Number(opts["chunk-size"]) : Infinity,
  retryDelays: [200, 500, 1000, 1000, 2000, 2000, 3000, 3000, 5000],
  metadata: { filename: "upload.bin", filetype: "application/octet-stream" },
  onProgress(sent) {
    if (abortAfter !== null && sent >= abortAfter) {
      upload.abort(false).then(() => {
        console.log(JSON.stringify({ url: upload.url, offset: sent, done: false }));
        process.exit(0);
      });
    }
  },
  onError(error) {
    console.error(String(error));
    process.exit(1);
  },
  onSuccess() {
    console.log(JSON.stringify({ url: upload.url, offset: data.length, done: true }));
  },
});
upload.start();
