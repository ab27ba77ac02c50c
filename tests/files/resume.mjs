// Uploads a file to Concord with the real tus-js-client, has the connection stall and cut
// part-way (like a network that goes away), then resumes from the upload URL the server
// handed out. Prints one JSON line: {"url", "cut_at", "resumed_from", "size"}.
//
//   node resume.mjs ENDPOINT TOKEN FILE [CUT_FRACTION] [--crash]
//
// With --crash the connection is not cut by the client: once the bytes up to the cut are
// sent, the script prints {"url", "cut_at"} and waits for a line on stdin naming the base URL
// of the server restarted after being killed (the test kills it), then resumes there.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import * as tus from 'tus-js-client';

const [endpoint, token, path, fraction = '0.4', mode = ''] = process.argv.slice(2);
const crash = mode === '--crash';
const data = readFileSync(path);
const size = data.length;
const cutAt = Math.floor(size * Number(fraction));
const headers = { Authorization: `Bearer ${token}` };
const metadata = { filename: basename(path), filetype: 'application/octet-stream' };

// A source whose stream delivers the bytes up to `cutAt` and then stalls.
const stalling = {
  openFile: async () => ({
    size,
    slice: async (start) => {
      const stream = new Readable({ read() {} });
      for (let i = start; i < cutAt; i += 65536) {
        stream.push(data.subarray(i, Math.min(i + 65536, cutAt)));
      }
      return { value: stream, done: false };
    },
    close() {},
  }),
};

function interrupted() {
  return new Promise((resolve, reject) => {
    let cut = false;
    const upload = new tus.Upload(data, {
      endpoint,
      headers,
      metadata,
      fileReader: stalling,
      retryDelays: null,
      onError: (err) => (cut ? resolve(upload.url) : reject(err)),
      onSuccess: () => reject(new Error('the interrupted upload finished')),
      onProgress: () => {
        // Progress reports are throttled, so the last one before the stall may never come:
        // once bytes flow, give them time to arrive (generously: on a loaded machine the
        // server can take seconds to receive and record them), then cut the connection
        // mid-request (or, with --crash, leave it hanging for the server to die under it).
        if (!cut) {
          cut = true;
          setTimeout(
            () => (crash ? resolve(upload.url) : upload.abort(false).then(() => resolve(upload.url), reject)),
            5000,
          );
        }
      },
    });
    upload.start();
  });
}

function resume(url) {
  return new Promise((resolve, reject) => {
    let resumedFrom = null;
    const upload = new tus.Upload(data, {
      uploadUrl: url,
      headers,
      metadata,
      retryDelays: [100, 250, 500, 1000, 2000, 4000],
      onAfterResponse: (req, res) => {
        if (req.getMethod() === 'HEAD' && res.getStatus() === 200 && resumedFrom === null) {
          resumedFrom = Number.parseInt(res.getHeader('Upload-Offset'), 10);
        }
      },
      onError: reject,
      onSuccess: () => resolve(resumedFrom),
    });
    upload.start();
  });
}

let url = await interrupted();
if (crash) {
  console.log(JSON.stringify({ url, cut_at: cutAt }));
  const lines = createInterface({ input: process.stdin });
  const base = await new Promise((resolve) => lines.once('line', resolve));
  lines.close();
  url = new URL(new URL(url).pathname, base.trim()).href;
}
const resumedFrom = await resume(url);
console.log(JSON.stringify({ url, cut_at: cutAt, resumed_from: resumedFrom, size }));
