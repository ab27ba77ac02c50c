// Documents: the API's shapes and small helpers shared by the list and the editor. Nothing here
// pulls in TipTap or Yjs, so the list stays light.
import { accessToken, api, ApiError } from '../api';

export type Level = 'view' | 'comment' | 'edit' | 'manage';
export type GeneralAccess = 'none' | 'view' | 'comment' | 'edit';

export interface DocumentInfo {
  id: string;
  workspace_id: string;
  channel_id: string | null;
  title: string;
  general_access: GeneralAccess;
  created_by: string;
  created_at: string;
  updated_at: string;
  my_access: Level;
}

export interface Version {
  id: string;
  name: string;
  created_by: string;
  created_at: string;
}

export interface Channel {
  id: string;
  kind: string;
  name: string | null;
  archived: boolean;
}

export interface Member {
  user_id: string;
  display_name: string;
  email: string;
  role: string;
}

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
  list: (ws: string) => api<DocumentInfo[]>(`/api/v1/workspaces/${ws}/documents`),
  get: (id: string) => api<DocumentInfo>(`/api/v1/documents/${id}`),
  create: (ws: string, body: { title: string; channel_id?: string; general_access?: GeneralAccess }) =>
    api<DocumentInfo>(`/api/v1/workspaces/${ws}/documents`, { method: 'POST', json: body }),
  rename: (id: string, title: string) =>
    api<DocumentInfo>(`/api/v1/documents/${id}`, { method: 'PATCH', json: { title } }),
  channels: (ws: string) => api<Channel[]>(`/api/v1/workspaces/${ws}/channels`),
  members: (ws: string) => api<Member[]>(`/api/v1/workspaces/${ws}/members`),
  versions: (id: string) => api<Version[]>(`/api/v1/documents/${id}/versions`),
  nameVersion: (id: string, name: string) =>
    api<Version>(`/api/v1/documents/${id}/versions`, { method: 'POST', json: { name } }),
  versionJson: (id: string, v: string) =>
    api<unknown>(`/api/v1/documents/${id}/versions/${v}?format=json`),
  restore: (id: string, v: string) =>
    api<void>(`/api/v1/documents/${id}/versions/${v}/restore`, { method: 'POST' }),
};

export interface Grant {
  principal_kind: 'user' | 'role';
  principal_id: string;
  level: Level;
  granted_by: string;
  granted_at: string;
}

export const sharingApi = {
  grants: (id: string) => api<Grant[]>(`/api/v1/documents/${id}/access`),
  grant: (id: string, user_id: string, level: Level) =>
    api<Grant[]>(`/api/v1/documents/${id}/access`, { method: 'PUT', json: { user_id, level } }),
  revoke: (id: string, user_id: string) =>
    api<void>(`/api/v1/documents/${id}/access/users/${user_id}`, { method: 'DELETE' }),
  update: (id: string, changes: { general_access?: GeneralAccess; channel_id?: string | null }) =>
    api<DocumentInfo>(`/api/v1/documents/${id}`, { method: 'PATCH', json: changes }),
};
