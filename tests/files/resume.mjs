// Uploads a file to Concord with the real tus-js-client, has the connection stall and cut
// part-way (like a network that goes away), then resumes from the upload URL the server
// handed out. Prints one JSON line: {"url", "cut_at", "resumed_from", "size"}.
//
//   node resume.mjs ENDPOINT TOKEN FILE [CUT_FRACTION]
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import * as tus from 'tus-js-client';

const [endpoint, token, path, fraction = '0.4'] = process.argv.slice(2);
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
        // once bytes flow, give them time to arrive, then cut the connection mid-request.
        if (!cut) {
          cut = true;
          setTimeout(() => upload.abort(false).then(() => resolve(upload.url), reject), 1500);
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

const url = await interrupted();
const resumedFrom = await resume(url);
console.log(JSON.stringify({ url, cut_at: cutAt, resumed_from: resumedFrom, size }));
