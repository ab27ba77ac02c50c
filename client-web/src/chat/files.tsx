// Files in the channel: resumable uploads through the server's tus endpoint, image previews
// from the thumbnail endpoint, and downloads (all fetched with the bearer token).

import { useEffect, useState } from 'preact/hooks';
import * as tus from 'tus-js-client';
import { accessToken, api } from '../api';
import { Icon } from './icons';
import type { FileInfo } from './types';
import { errorText } from './types';

export interface UploadJob {
  key: string;
  name: string;
  size: number;
  sent: number;
  state: 'uploading' | 'done' | 'failed';
  error?: string;
  abort: () => void;
  /** The file, to try again after a failure (tus continues where it stopped). */
  file: File;
}

/**
 * Uploads one file to a channel with tus (resumable: an interrupted upload continues where it
 * stopped, even after a reload). `onChange` reports progress; resolves with the stored file.
 */
export function uploadFile(
  channelId: string,
  file: File,
  onChange: (job: UploadJob) => void,
): Promise<FileInfo | null> {
  return new Promise((resolve) => {
    const key = `${file.name}-${file.size}-${Date.now()}-${Math.random()}`;
    let job: UploadJob;
    const upload = new tus.Upload(file, {
      endpoint: `${location.origin}/api/v1/channels/${channelId}/uploads`,
      metadata: { filename: file.name || 'pasted-image.png' },
      chunkSize: 8 * 1024 * 1024,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      removeFingerprintOnSuccess: true,
      storeFingerprintForResuming: true,
      async onBeforeRequest(req) {
        req.setHeader('Authorization', `Bearer ${await accessToken()}`);
      },
      onProgress(sent, total) {
        job = { ...job, sent, size: total };
        onChange(job);
      },
      onError(err) {
        const detail = (err as tus.DetailedError).originalResponse;
        let message = errorText(err);
        try {
          const body = detail?.getBody();
          const parsed = body ? JSON.parse(body) : null;
          message = parsed?.error?.message ?? parsed?.message ?? message;
        } catch {
          /* not JSON */
        }
        if (detail?.getStatus() === 413) message = `Too large: ${message}`;
        job = { ...job, state: 'failed', error: message };
        onChange(job);
        resolve(null);
      },
      async onSuccess() {
        const id = (upload.url ?? '').split('/').pop() ?? '';
        job = { ...job, state: 'done', sent: job.size };
        onChange(job);
        try {
          resolve(await api('get', '/api/v1/files/{file_id}', { params: { path: { file_id: id } } }));
        } catch {
          resolve(null);
        }
      },
    });
    job = {
      key,
      file,
      name: file.name || 'pasted image',
      size: file.size,
      sent: 0,
      state: 'uploading',
      abort: () => {
        upload.abort(true).catch(() => {});
        job = { ...job, state: 'failed', error: 'Cancelled' };
        onChange(job);
        resolve(null);
      },
    };
    onChange(job);
    upload
      .findPreviousUploads()
      .then((previous) => {
        if (previous.length > 0) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      })
      .catch(() => upload.start());
  });
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

const blobUrls = new Map<string, Promise<string>>();

/** A blob URL for an authenticated GET (kept for the session: rows remount while scrolling). */
function authedBlobUrl(path: string): Promise<string> {
  let p = blobUrls.get(path);
  if (!p) {
    p = (async () => {
      const res = await fetch(path, { headers: { authorization: `Bearer ${await accessToken()}` } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return URL.createObjectURL(await res.blob());
    })();
    p.catch(() => blobUrls.delete(path));
    blobUrls.set(path, p);
    if (blobUrls.size > 300) {
      const [oldest, url] = blobUrls.entries().next().value!;
      blobUrls.delete(oldest);
      url.then((u) => URL.revokeObjectURL(u), () => {});
    }
  }
  return p;
}

async function download(file: FileInfo, setBusy: (b: boolean) => void, setError: (e: string) => void) {
  setBusy(true);
  setError('');
  try {
    const res = await fetch(`/api/v1/files/${file.id}/content?download=true`, {
      headers: { authorization: `Bearer ${await accessToken()}` },
    });
    if (!res.ok) {
      let msg = res.statusText;
      try {
        const b = await res.json();
        msg = b?.error?.message ?? b?.message ?? msg;
      } catch {
        /* not JSON */
      }
      throw new Error(msg || `HTTP ${res.status}`);
    }
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = file.name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30_000);
  } catch (err) {
    setError(`Download failed: ${errorText(err)}`);
  } finally {
    setBusy(false);
  }
}

/** A shared file on its message: a preview for images, name, size and a download button. */
export function FileCard({ file }: { file: FileInfo }) {
  const [thumb, setThumb] = useState<string | null>(null);
  const [thumbFailed, setThumbFailed] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  useEffect(() => {
    if (!file.has_thumbnail || file.status !== 'ready') return;
    let live = true;
    authedBlobUrl(`/api/v1/files/${file.id}/thumbnail`).then(
      (u) => live && setThumb(u),
      () => live && setThumbFailed(true),
    );
    return () => {
      live = false;
    };
  }, [file.id, file.has_thumbnail, file.status]);
  const quarantined = file.status === 'quarantined';
  return (
    <div class="file-card">
      {file.has_thumbnail && !quarantined && (
        <button
          type="button"
          class="file-thumb"
          aria-label={`Download ${file.name}`}
          onClick={() => download(file, setBusy, setError)}
        >
          {thumb ? (
            <img src={thumb} alt={`Preview of ${file.name}`} />
          ) : (
            <span class="file-thumb-placeholder">{thumbFailed ? 'No preview' : 'Loading preview…'}</span>
          )}
        </button>
      )}
      <div class="file-meta">
        <span class="file-icon">
          <Icon name="file" />
        </span>
        <span class="file-name" title={file.name}>
          {file.name}
        </span>
        <span class="file-size">{formatBytes(file.size)}</span>
        {quarantined ? (
          <span class="file-blocked" role="note">
            Blocked by the malware scan
          </span>
        ) : (
          <button type="button" class="btn-small" disabled={busy} onClick={() => download(file, setBusy, setError)}>
            {busy ? 'Downloading…' : 'Download'}
          </button>
        )}
      </div>
      {error && (
        <p class="inline-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export function UploadList({
  jobs,
  onDismiss,
  onRetry,
}: {
  jobs: UploadJob[];
  onDismiss: (key: string) => void;
  onRetry: (job: UploadJob) => void;
}) {
  if (jobs.length === 0) return null;
  return (
    <ul class="upload-list" aria-label="Uploads">
      {jobs.map((j) => {
        const pct = j.size > 0 ? Math.round((j.sent / j.size) * 100) : 0;
        return (
          <li key={j.key} class={`upload upload-${j.state}`}>
            <span class="upload-name">{j.name}</span>
            {j.state === 'uploading' && (
              <>
                <progress max={100} value={pct} aria-label={`Uploading ${j.name}`}>
                  {pct}%
                </progress>
                <span class="upload-pct">{pct}%</span>
                <button type="button" class="btn-small" onClick={j.abort}>
                  Cancel
                </button>
              </>
            )}
            {j.state === 'failed' && (
              <>
                <span class="inline-error" role="alert">
                  {j.error ?? 'Upload failed'}
                </span>
                {j.error !== 'Cancelled' && (
                  <button type="button" class="btn-small" onClick={() => onRetry(j)}>
                    Retry
                  </button>
                )}
                <button type="button" class="btn-small" onClick={() => onDismiss(j.key)}>
                  Dismiss
                </button>
              </>
            )}
            {j.state === 'done' && <span class="upload-done">Shared</span>}
          </li>
        );
      })}
    </ul>
  );
}
