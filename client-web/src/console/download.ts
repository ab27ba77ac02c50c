// Downloads from the API (exports): fetched with the bearer token, handed to the browser as a file.
import { request } from '../api';

/** Saves what `path` answers under the server's file name (or `fallbackName`). */
export async function downloadFrom(path: `/api/v1/${string}`, fallbackName: string): Promise<void> {
  const res = await request('get', path);
  const blob = await res.blob();
  const disposition = res.headers.get('content-disposition') ?? '';
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? fallbackName;
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = name;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10_000);
}
