// The API's chat shapes (generated from the OpenAPI document: see ../api.ts) and helpers.
import type { Schemas } from '../api';
import type { Channel } from '../shell/types';

export type Message = Schemas['MessageView'];

export type { Channel } from '../shell/types';

export type MessageVersion = Schemas['MessageVersionView'];

export type FileInfo = Schemas['FileView'];
/** A slash command members can type. */
export type SlashCommand = Schemas['SlashCommandView'];

/** A workspace member as chat shows them. */
export type Person = Pick<Schemas['MemberView'], 'user_id' | 'display_name' | 'email'>;

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
