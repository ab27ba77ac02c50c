// Who is who: display names of a workspace's members, loaded once per workspace and shared by
// every view of the chat (author names, mentions, reactions, typing).

import { api } from '../api';
import { on } from '../live';
import type { Person } from './types';

const cache = new Map<string, Promise<Map<string, Person>>>();

// Someone changed their name: every directory is read again at its next use.
on('user_updated', () => cache.clear());

export function loadPeople(workspaceId: string): Promise<Map<string, Person>> {
  let p = cache.get(workspaceId);
  if (!p) {
    p = api('get', '/api/v1/workspaces/{workspace_id}/members', {
      params: { path: { workspace_id: workspaceId } },
    }).then(
      (list) => new Map(list.map((x) => [x.user_id, x])),
    );
    p.catch(() => cache.delete(workspaceId));
    cache.set(workspaceId, p);
  }
  return p;
}

/** Forgets a workspace's directory (someone joined): the next load asks again. */
export function forgetPeople(workspaceId: string) {
  cache.delete(workspaceId);
}

export function nameOf(people: Map<string, Person>, id: string): string {
  return people.get(id)?.display_name ?? 'Someone';
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] ?? '?').slice(0, 2);
  return s.toUpperCase();
}

/** A stable hue per user for avatars. */
export function hueOf(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) >>> 0;
  return h % 360;
}
