// What the shell reads from the API (generated from the OpenAPI document: see ../api.ts).
import type { Schemas } from '../api';

export type Workspace = Schemas['WorkspaceView'];
export type Channel = Schemas['ChannelView'];
export type Member = Schemas['MemberView'];

export function isConversation(c: Channel): boolean {
  return c.kind === 'direct' || c.kind === 'group';
}

/** How a channel or conversation is named in lists: `general`, or the other people's names. */
export function channelLabel(c: Channel, meId: string, members: Map<string, Member>): string {
  if (!isConversation(c)) return c.name ?? 'unnamed';
  const others = (c.participants ?? []).filter((id) => id !== meId);
  if (others.length === 0) return `${members.get(meId)?.display_name ?? 'You'} (you)`;
  return others.map((id) => members.get(id)?.display_name ?? 'Former member').join(', ');
}
