// Documents: the API's shapes and small helpers shared by the list and the editor. Nothing here
// pulls in TipTap or Yjs, so the list stays light.
import { accessToken, api, ApiError, type Schemas } from '../api';

export type Level = Schemas['Level'];
/** What everyone in the workspace may do with a document (`general_access`). */
export type GeneralAccess = 'none' | 'view' | 'comment' | 'edit';

export type DocumentInfo = Schemas['DocumentView'];
export type Version = Schemas['VersionView'];
export type Channel = Schemas['ChannelView'];
export type Member = Schemas['MemberView'];

export type ExportFormat = 'text' | 'markdown' | 'json';

export const LEVEL_LABEL: Record<Level, string> = {
  view: 'Can view',
  comment: 'Can comment',
  edit: 'Can edit',
  manage: 'Owner',
};

export const ACCESS_LABEL: Record<GeneralAccess, string> = {
  none: 'Only people with access',
  view: 'Workspace can view',
  comment: 'Workspace can comment',
  edit: 'Workspace can edit',
};

/** The label of a document's `general_access` (the value itself if unknown). */
export function accessLabel(access: string): string {
  const labels: Record<string, string | undefined> = ACCESS_LABEL;
  return labels[access] ?? access;
}

export function canEdit(level: Level | undefined): boolean {
  return level === 'edit' || level === 'manage';
}

/** The message to show for a failed call. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.message || `Request failed (${e.status})`;
  if (e instanceof Error) return e.message;
  return 'Something went wrong';
}

/** A stable, readable colour per user (on both light and dark backgrounds). */
export function colourFor(id: string): string {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  const hue = h % 360;
  // Convert HSL to hex: the caret extension accepts hex colours only.
  const s = 0.65;
  const l = 0.42;
  const f = (n: number) => {
    const k = (n + hue / 30) % 12;
    const c = l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(c * 255)
      .toString(16)
      .padStart(2, '0');
  };
  return `#${f(0)}${f(8)}${f(4)}`;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function fullTime(iso: string): string {
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : absolute.format(d);
}

/** "3 minutes ago", "yesterday", or a date for anything older than a week. */
export function ago(iso: string, now = Date.now()): string {
  const t = new Date(iso).getTime();
  if (isNaN(t)) return iso;
  const s = Math.round((t - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return 'just now';
  if (abs < 3600) return relative.format(Math.round(s / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(s / 3600), 'hour');
  if (abs < 7 * 86400) return relative.format(Math.round(s / 86400), 'day');
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' }).format(new Date(t));
}

/** The WebSocket URL of an API path on this origin. */
export function wsUrl(path: string): string {
  const u = new URL(path, location.href);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

/** Fetches an authenticated download and hands it to the browser as a file. */
export async function download(path: string, fallbackName: string): Promise<void> {
  const token = await accessToken();
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    let message = res.statusText || `Download failed (${res.status})`;
    try {
      const body = await res.json();
      if (body?.message) message = body.message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, 'download_failed', message);
  }
  const blob = await res.blob();
  const disposition = res.headers.get('content-disposition') ?? '';
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const docsApi = {
  list: (ws: string) => api('get', '/api/v1/workspaces/{workspace_id}/documents', {
    params: { path: { workspace_id: ws } },
  }),
  get: (id: string) => api('get', '/api/v1/documents/{document_id}', { params: { path: { document_id: id } } }),
  create: (ws: string, body: { title: string; channel_id?: string; general_access?: GeneralAccess }) =>
    api('post', '/api/v1/workspaces/{workspace_id}/documents', { params: { path: { workspace_id: ws } }, json: body }),
  rename: (id: string, title: string) =>
    api('patch', '/api/v1/documents/{document_id}', { params: { path: { document_id: id } }, json: { title } }),
  channels: (ws: string) => api('get', '/api/v1/workspaces/{workspace_id}/channels', {
    params: { path: { workspace_id: ws } },
  }),
  members: (ws: string) => api('get', '/api/v1/workspaces/{workspace_id}/members', {
    params: { path: { workspace_id: ws } },
  }),
  versions: (id: string) => api('get', '/api/v1/documents/{document_id}/versions', {
    params: { path: { document_id: id } },
  }),
  nameVersion: (id: string, name: string) =>
    api('post', '/api/v1/documents/{document_id}/versions', { params: { path: { document_id: id } }, json: { name } }),
  versionJson: (id: string, v: string) =>
    api('get', '/api/v1/documents/{document_id}/versions/{version_id}', {
      params: { path: { document_id: id, version_id: v }, query: { format: 'json' } },
    }),
  restore: (id: string, v: string) =>
    api('post', '/api/v1/documents/{document_id}/versions/{version_id}/restore', {
      params: { path: { document_id: id, version_id: v } },
    }),
};

export type Grant = Schemas['GrantView'];

export const sharingApi = {
  grants: (id: string) => api('get', '/api/v1/documents/{document_id}/access', {
    params: { path: { document_id: id } },
  }),
  grant: (id: string, user_id: string, level: Level) =>
    api('put', '/api/v1/documents/{document_id}/access', {
      params: { path: { document_id: id } },
      json: { user_id, level },
    }),
  revoke: (id: string, user_id: string) =>
    api('delete', '/api/v1/documents/{document_id}/access/users/{user_id}', {
      params: { path: { document_id: id, user_id } },
    }),
  update: (id: string, changes: { general_access?: GeneralAccess; channel_id?: string | null }) =>
    api('patch', '/api/v1/documents/{document_id}', { params: { path: { document_id: id } }, json: changes }),
};
