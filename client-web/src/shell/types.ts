// What the shell reads from the API.

export interface Workspace {
  id: string;
  name: string;
  slug: string;
  role: string | null;
}

export interface Channel {
  id: string;
  workspace_id: string;
  /** `public`, `private`, `direct` or `group`. */
  kind: string;
  name: string | null;
  topic: string;
  purpose: string;
  archived: boolean;
  last_seq: number;
  my_role: string | null;
  last_read_seq: number | null;
  unread_count: number | null;
  mention_count: number | null;
  participants?: string[];
}

export interface Member {
  user_id: string;
  display_name: string;
  email: string;
  role: string;
  joined_at: string;
}

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
