// A workspace's channels (with unread and mention counts) and members, kept current from the
// live connection: new messages in channels that are not open raise their badges; opening a
// channel or reading it elsewhere clears them.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, describeError, type Me } from '../api';
import { on, onStatus } from '../live';
import { channelLabel, type Channel, type Member } from './types';

export interface WorkspaceData {
  channels: Channel[] | null;
  members: Map<string, Member>;
  error: string | null;
  reload: () => void;
  reloadMembers: () => void;
  /** Adds or replaces one channel (after creating, joining or opening it). */
  upsert: (c: Channel) => void;
  label: (c: Channel) => string;
}

export function useWorkspaceData(workspaceId: string | null, me: Me, openChannel: string | undefined): WorkspaceData {
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [members, setMembers] = useState<Map<string, Member>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const openRef = useRef(openChannel);
  openRef.current = openChannel;
  const reloadTimer = useRef<number | undefined>(undefined);
  const inFlight = useRef(false);
  const missed = useRef(false);
  const channelsRef = useRef(channels);
  channelsRef.current = channels;

  // Load (and reload on demand) the channel list.
  useEffect(() => {
    if (!workspaceId) {
      setChannels(null);
      return;
    }
    let live = true;
    inFlight.current = true;
    missed.current = false;
    api('get', '/api/v1/workspaces/{workspace_id}/channels', { params: { path: { workspace_id: workspaceId } } })
      .then((list) => {
        if (!live) return;
        inFlight.current = false;
        // A message that arrived while the list was on its way may not be counted in it, and
        // the list replaces the counts the event raised: ask again (the answer converges).
        if (missed.current) setTick((t) => t + 1);
        setError(null);
        setChannels(
          list.map((c) => (c.id === openRef.current ? { ...c, unread_count: 0, mention_count: 0, last_read_seq: c.last_seq } : c)),
        );
      })
      .catch((e) => {
        inFlight.current = false;
        if (live) setError(describeError(e));
      });
    return () => {
      live = false;
    };
  }, [workspaceId, tick]);

  // A new workspace starts with an empty list rather than the previous one's.
  useEffect(() => {
    setChannels(null);
    setMembers(new Map());
  }, [workspaceId]);

  const [memberTick, setMemberTick] = useState(0);
  useEffect(() => {
    if (!workspaceId) return;
    let live = true;
    api('get', '/api/v1/workspaces/{workspace_id}/members', { params: { path: { workspace_id: workspaceId } } })
      .then((list) => live && setMembers(new Map(list.map((m) => [m.user_id, m]))))
      .catch(() => {
        /* names fall back to "Former member"; the channel list shows its own errors */
      });
    return () => {
      live = false;
    };
  }, [workspaceId, memberTick]);

  // Someone who joined after the member list was loaded: load it again (once per person).
  const asked = useRef(new Set<string>());
  useEffect(() => {
    if (!channels || members.size === 0) return;
    const missing = channels.flatMap((c) => c.participants ?? []).filter((id) => !members.has(id) && !asked.current.has(id));
    if (missing.length === 0) return;
    missing.forEach((id) => asked.current.add(id));
    setMemberTick((t) => t + 1);
  }, [channels, members]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  const reloadMembers = useCallback(() => setMemberTick((t) => t + 1), []);
  const reloadSoon = useCallback(() => {
    clearTimeout(reloadTimer.current);
    reloadTimer.current = window.setTimeout(reload, 250);
  }, [reload]);
  useEffect(() => () => clearTimeout(reloadTimer.current), []);

  // Opening a channel clears its badges.
  useEffect(() => {
    if (!openChannel) return;
    setChannels((list) =>
      list
        ? list.map((c) =>
            c.id === openChannel && (c.unread_count || c.mention_count)
              ? { ...c, unread_count: 0, mention_count: 0, last_read_seq: c.last_seq }
              : c,
          )
        : list,
    );
  }, [openChannel]);

  // Live updates.
  useEffect(() => {
    if (!workspaceId) return;
    const offEvents = on('*', (ev) => {
      switch (ev.type) {
        case 'message_created': {
          if (ev.workspace_id && ev.workspace_id !== workspaceId) return;
          const msg = ev.message;
          if (!msg) return;
          if (inFlight.current) missed.current = true;
          const mentioned = Array.isArray(ev.mentioned) && ev.mentioned.includes(me.id);
          const known = channelsRef.current?.some((c) => c.id === msg.channel_id) ?? true;
          setChannels((list) => {
            if (!list) return list;
            return list.map((c) => {
              if (c.id !== msg.channel_id) return c;
              const last_seq = Math.max(c.last_seq, msg.seq ?? c.last_seq);
              const counts = !msg.thread_root_id && msg.author_id !== me.id && c.id !== openRef.current;
              if (c.id === openRef.current || msg.author_id === me.id) {
                return { ...c, last_seq };
              }
              return {
                ...c,
                last_seq,
                unread_count: (c.unread_count ?? 0) + (counts ? 1 : 0),
                mention_count: (c.mention_count ?? 0) + (mentioned && c.id !== openRef.current ? 1 : 0),
              };
            });
          });
          // A conversation someone just opened with me, or a channel I was added to.
          if (!known && ev.workspace_id === workspaceId) reloadSoon();
          return;
        }
        case 'read_state_changed': {
          if (ev.user_id && ev.user_id !== me.id) return;
          setChannels((list) => {
            if (!list) return list;
            let stale = false;
            const next = list.map((c) => {
              if (c.id !== ev.channel_id) return c;
              if (typeof ev.last_read_seq === 'number' && ev.last_read_seq >= c.last_seq) {
                return { ...c, last_read_seq: ev.last_read_seq, unread_count: 0, mention_count: 0 };
              }
              stale = true;
              return c;
            });
            if (stale) reloadSoon();
            return next;
          });
          return;
        }
        case 'user_updated':
          // A name changed (or was corrected): the member list shows it.
          reloadMembers();
          return;
        case 'message_deleted':
        case 'channel_changed':
        case 'channel_member_added':
        case 'channel_member_removed':
          if (!ev.workspace_id || ev.workspace_id === workspaceId) reloadSoon();
          return;
      }
    });
    // After a reconnection, events may have been missed: reload the counts.
    let wasOffline = false;
    const offStatus = onStatus((s) => {
      if (s === 'offline') wasOffline = true;
      if (s === 'online' && wasOffline) {
        wasOffline = false;
        reloadSoon();
      }
    });
    // Missed events could not be replayed: reload the counts.
    const offResync = on('resync', () => reloadSoon());
    return () => {
      offEvents();
      offStatus();
      offResync();
    };
  }, [workspaceId, me.id, reloadSoon, reloadMembers]);

  const upsert = useCallback((c: Channel) => {
    setChannels((list) => {
      if (!list) return [c];
      const i = list.findIndex((x) => x.id === c.id);
      if (i < 0) return [...list, c];
      const copy = list.slice();
      copy[i] = c;
      return copy;
    });
  }, []);

  const label = useCallback((c: Channel) => channelLabel(c, me.id, members), [me.id, members]);

  return useMemo(
    () => ({ channels, members, error, reload, reloadMembers, upsert, label }),
    [channels, members, error, reload, reloadMembers, upsert, label],
  );
}
