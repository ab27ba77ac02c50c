// The API's chat shapes as the client uses them (see server/src/chat/views.rs and files/views.rs).
import type { Channel } from '../shell/types';

export interface Message {
  id: string;
  channel_id: string;
  seq: number;
  author_id: string;
  text: string;
  thread_root_id: string | null;
  reply_count: number;
  last_reply_at: string | null;
  client_msg_id: string | null;
  created_at: string;
  edited_at: string | null;
  deleted: boolean;
  reactions: Record<string, string[]>;
  pinned: boolean;
}

export type { Channel } from '../shell/types';

export interface MessageVersion {
  version: number;
  text: string;
  replaced_at: string;
}

export interface FileInfo {
  id: string;
  name: string;
  size: number;
  received: number;
  content_type: string | null;
  status: string;
  parent_kind: string;
  parent_id: string;
  message_id: string | null;
  uploader_id: string;
  has_thumbnail: boolean;
  created_at: string;
  completed_at: string | null;
}

export interface Person {
  user_id: string;
  display_name: string;
  email: string;
}

/** Merges messages into a list sorted by `seq`, the newer copy of each id winning. */
export function mergeMessages(list: Message[], incoming: Message[]): Message[] {
  if (incoming.length === 0) return list;
  const byId = new Map<string, Message>();
  for (const m of list) byId.set(m.id, m);
  let changed = false;
  for (const m of incoming) {
    const had = byId.get(m.id);
    if (had === m) continue;
    byId.set(m.id, m);
    changed = true;
  }
  if (!changed) return list;
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

/** Replaces a message in place if present (edits, reactions, pins). */
export function replaceMessage(list: Message[], m: Message): Message[] {
  const i = list.findIndex((x) => x.id === m.id);
  if (i < 0) return list;
  const next = list.slice();
  next[i] = m;
  return next;
}

export function updateMessage(list: Message[], id: string, fn: (m: Message) => Message): Message[] {
  const i = list.findIndex((x) => x.id === id);
  if (i < 0) return list;
  const next = list.slice();
  next[i] = fn(next[i]);
  return next;
}

/** `#name` for channels; the other people's names for direct and group conversations. */
export function channelLabel(c: Channel | null, people?: Map<string, Person>, me?: string): string {
  if (!c) return 'channel';
  if (c.name) return `#${c.name}`;
  const names = (c.participants ?? [])
    .filter((id) => id !== me)
    .map((id) => people?.get(id)?.display_name)
    .filter((n): n is string => !!n);
  if (names.length > 0) return names.join(', ');
  return c.kind === 'direct' ? 'direct message' : 'group conversation';
}

export function errorText(err: unknown): string {
  if (err && typeof err === 'object' && 'message' in err && typeof err.message === 'string' && err.message) {
    return err.message;
  }
  return 'Something went wrong. Please try again.';
}
