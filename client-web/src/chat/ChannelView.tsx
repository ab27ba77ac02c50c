// A channel: header, the virtualised message list with history paging both ways, the composer,
// live updates (posts, edits, deletes, reactions, pins, typing, presence), a thread side panel,
// the pinned list, permalinks, drag-and-drop and pasted file uploads, and read marking.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { Me } from '../api';
import { api, ApiError } from '../api';
import { currentStatus, emit, on, onOutbox, pendingPosts } from '../live';
import type { DomainEvent } from '../live';
import { Blocks } from './Blocks';
import { blocksOf } from './blockkit';
import { Composer } from './Composer';
import { UploadList, uploadFile } from './files';
import type { UploadJob } from './files';
import { namesToMentions, plainText, renderMessage } from './markdown';
import { Icon } from './icons';
import { MessageList } from './MessageList';
import { PinsPanel } from './PinsPanel';
import type { Row, ScrollRequest } from './MessageList';
import { forgetPeople, loadPeople, nameOf } from './people';
import { ThreadPanel } from './ThreadPanel';
import type { Channel, FileInfo, Message, MessageVersion, Person, SlashCommand } from './types';
import { channelLabel, errorText, mergeMessages, replaceMessage, updateMessage } from './types';
import { ChatContext, Dialog, dayKey, dayLabel, fullTime } from './ui';
import type { ChatActions, ChatContextValue } from './ui';
import './chat.css';

export interface ChannelViewProps {
  workspaceId: string;
  channelId: string;
  /** A permalinked message to scroll to and highlight. */
  messageId?: string;
  me: Me;
  navigate: (path: string) => void;
}

const PAGE = 50;

/**
 * Applies the answer of a change made here. Online, the hub's event (sent in commit order) does
 * it instead, so a slower answer never overwrites someone else's newer change.
 */
function applyLocally(ev: DomainEvent) {
  if (currentStatus() !== 'online') emit({ ...ev, local: true });
}
const OLDER_PAGE = 200;
const GROUP_WITHIN_MS = 5 * 60_000;
const TYPING_SHOWN_MS = 6000;

type DialogState =
  | { kind: 'history'; message: Message; versions?: MessageVersion[]; error?: string }
  | { kind: 'delete'; message: Message; busy?: boolean; error?: string }
  | { kind: 'link'; url: string };

interface Toast {
  id: number;
  text: string;
}

/** A bot's message for this user only (or a command's failure), shown until dismissed or reloaded. */
interface Ephemeral {
  id: string;
  author_id: string | null;
  text: string;
  /** Its Block Kit layout, shown in place of the text. */
  blocks?: unknown[];
  error?: boolean;
}

export default function ChannelView(props: ChannelViewProps) {
  const { workspaceId, channelId, messageId, me } = props;
  const [channel, setChannel] = useState<Channel | null>(null);
  const [people, setPeople] = useState<Map<string, Person>>(new Map());
  const [peopleVersion, setPeopleVersion] = useState(0);
  const [memberIds, setMemberIds] = useState<string[]>([]);
  const [messages, setMessages] = useState<Message[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState('');
  const [hasOlder, setHasOlder] = useState(false);
  const [hasNewer, setHasNewer] = useState(false);
  const [pagingError, setPagingError] = useState('');
  const [loadingOlder, setLoadingOlder] = useState(false);
  const [files, setFiles] = useState<Map<string, FileInfo[]>>(new Map());
  const [thread, setThread] = useState<{ root: string; highlight?: string } | null>(null);
  const [pinsOpen, setPinsOpen] = useState(false);
  const [typing, setTyping] = useState<Map<string, number>>(new Map());
  const [highlight, setHighlight] = useState<string | undefined>(undefined);
  const [scroll, setScroll] = useState<ScrollRequest>({ kind: 'end', nonce: 0 });
  const [atBottom, setAtBottom] = useState(true);
  const [uploads, setUploads] = useState<UploadJob[]>([]);
  const [dragging, setDragging] = useState(false);
  const [dialog, setDialog] = useState<DialogState | null>(null);
  const [ephemerals, setEphemerals] = useState<Ephemeral[]>([]);
  const [commands, setCommands] = useState<SlashCommand[]>([]);
  const [toasts, setToasts] = useState<Toast[]>([]);
  const [presenceVersion, setPresenceVersion] = useState(0);
  const [, setOutboxTick] = useState(0);
  const [announce, setAnnounce] = useState('');
  const [unseen, setUnseen] = useState(0);
  const [editRequest, setEditRequest] = useState<{ id: string; done: boolean } | null>(null);

  const gen = useRef(0);
  const busyNewer = useRef(false);
  const busyOlder = useRef(false);
  const latestSeq = useRef(0);
  const markedSeq = useRef(0);
  const hasNewerRef = useRef(false);
  hasNewerRef.current = hasNewer;
  const atBottomRef = useRef(true);
  atBottomRef.current = atBottom;
  const peopleRef = useRef(people);
  peopleRef.current = people;
  const seenReplies = useRef(new Set<string>());
  /** Messages that arrived while the view was not showing the latest ones (permalinks). */
  const arrivedBehind = useRef<Message[]>([]);
  /** Where this user had read up to when the channel opened (for the "New" line). */
  const readAtOpen = useRef<number | null>(null);
  const dragDepth = useRef(0);

  const toast = (text: string) => {
    const id = Date.now() + Math.random();
    setToasts((t) => [...t.slice(-2), { id, text }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), 4000);
  };

  const noteSeq = (seq: number) => {
    if (seq > latestSeq.current) latestSeq.current = seq;
  };

  const refreshFiles = () => {
    api('get', '/api/v1/channels/{channel_id}/files', { params: { path: { channel_id: channelId } } }).then(
      (list) => {
        const map = new Map<string, FileInfo[]>();
        for (const f of list) {
          if (!f.message_id) continue;
          map.set(f.message_id, [...(map.get(f.message_id) ?? []), f]);
        }
        setFiles(map);
      },
      () => {
        /* previews are optional; messages still show */
      },
    );
  };
  const filesTimer = useRef<ReturnType<typeof setTimeout>>();
  const refreshFilesSoon = () => {
    clearTimeout(filesTimer.current);
    filesTimer.current = setTimeout(refreshFiles, 250);
  };

  const loadPeopleNow = () => {
    loadPeople(workspaceId).then(
      (p) => {
        setPeople(p);
        setPeopleVersion((v) => v + 1);
      },
      () => {
        /* names fall back to "Someone" */
      },
    );
    api('get', '/api/v1/channels/{channel_id}/members', { params: { path: { channel_id: channelId } } }).then(
      (list) => setMemberIds(list.map((m) => m.user_id)),
      () => {},
    );
  };

  // Loads the channel: its latest page, or the neighbourhood of a permalinked message.
  const load = async () => {
    const mine = ++gen.current;
    setLoading(true);
    setError('');
    setPagingError('');
    try {
      const ch = await api('get', '/api/v1/channels/{channel_id}', { params: { path: { channel_id: channelId } } });
      if (mine !== gen.current) return;
      setChannel(ch);
      if (readAtOpen.current === null) {
        // Nothing unread at opening: what arrives while watching needs no "New" line.
        const read = ch.last_read_seq ?? 0;
        readAtOpen.current = read >= ch.last_seq ? Number.MAX_SAFE_INTEGER : read;
      }
      noteSeq(ch.last_seq);
      let ctx: { message: Message; messages: Message[] } | null = null;
      if (messageId) {
        try {
          ctx = await api('get', '/api/v1/messages/{message_id}/context', {
            params: { path: { message_id: messageId }, query: { around: 30 } },
          });
        } catch (err) {
          if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 410)) throw err;
          toast('That message no longer exists; showing the latest messages.');
        }
        if (mine !== gen.current) return;
        if (ctx && ctx.message.channel_id !== channelId) {
          // A link to a message of another channel, or a thread reply's link: go where it lives.
          props.navigate(`/w/${workspaceId}/c/${ctx.message.channel_id}/m/${ctx.message.id}`);
          return;
        }
      }
      if (ctx) {
        const list = mergeMessages([], ctx.messages);
        setMessages(list);
        setHasOlder(list.length > 0);
        setHasNewer(list.length > 0 && list[list.length - 1].seq < ch.last_seq);
        const anchor = ctx.message.thread_root_id ?? ctx.message.id;
        setHighlight(ctx.message.thread_root_id ? ctx.message.thread_root_id : ctx.message.id);
        if (ctx.message.thread_root_id) setThread({ root: ctx.message.thread_root_id, highlight: ctx.message.id });
        setScroll((s) => ({ kind: 'key', key: anchor, nonce: s.nonce + 1 }));
      } else {
        const list = await api('get', '/api/v1/channels/{channel_id}/messages', {
          params: { path: { channel_id: channelId }, query: { limit: PAGE } },
        });
        if (mine !== gen.current) return;
        setMessages((old) => {
          // Live events that arrived while loading are kept (dedupe by id).
          const merged = mergeMessages(list, old.filter((m) => m.channel_id === channelId));
          return merged;
        });
        setHasOlder(list.length === PAGE);
        setHasNewer(false);
        setHighlight(undefined);
        setScroll((s) => ({ kind: 'end', nonce: s.nonce + 1 }));
      }
      setLoading(false);
    } catch (err) {
      if (mine !== gen.current) return;
      setError(errorText(err));
      setLoading(false);
    }
  };

  // After a missed-events resync: fetch the latest page and keep what still connects.
  const reloadLatest = async () => {
    if (hasNewerRef.current) return;
    try {
      const list = await api('get', '/api/v1/channels/{channel_id}/messages', {
        params: { path: { channel_id: channelId }, query: { limit: PAGE } },
      });
      setMessages((old) => {
        const last = old[old.length - 1];
        if (!last || list.length === 0 || list[0].seq <= last.seq) return mergeMessages(old, list);
        setHasOlder(true);
        return list; // a gap: start again from the latest page
      });
      refreshFiles();
    } catch (err) {
      toast(`Could not refresh the channel: ${errorText(err)}`);
    }
  };

  useEffect(() => {
    setChannel(null);
    setMessages([]);
    setFiles(new Map());
    setThread(null);
    setPinsOpen(false);
    setTyping(new Map());
    setUploads([]);
    setUnseen(0);
    setDialog(null);
    latestSeq.current = 0;
    markedSeq.current = 0;
    readAtOpen.current = null;
    seenReplies.current.clear();
    arrivedBehind.current = [];
    loadPeopleNow();
    refreshFiles();
    load();
  }, [channelId, messageId]);

  // Live updates.
  useEffect(() => {
    const offs = [
      on('message_created', (ev) => {
        const m = ev.message;
        if (m.channel_id !== channelId) return;
        noteSeq(m.seq);
        setTyping((t) => {
          if (!t.has(m.author_id)) return t;
          const n = new Map(t);
          n.delete(m.author_id);
          return n;
        });
        if (m.thread_root_id) {
          if (seenReplies.current.has(m.id)) return;
          seenReplies.current.add(m.id);
          setMessages((list) =>
            updateMessage(list, m.thread_root_id!, (root) => ({
              ...root,
              reply_count: root.reply_count + 1,
              last_reply_at: m.created_at,
            })),
          );
          return;
        }
        if (hasNewerRef.current) {
          // Not showing the latest: kept until paging down reaches the end.
          arrivedBehind.current.push(m);
          return;
        }
        setMessages((list) => mergeMessages(list, [m]));
        if (m.author_id !== me.id) {
          setAnnounce(`${nameOf(peopleRef.current, m.author_id)}: ${plainText(m.text, peopleRef.current).slice(0, 140)}`);
          if (!atBottomRef.current) setUnseen((n) => n + 1);
        }
      }),
      on('ack', (ev) => {
        const m = ev.message;
        if (m.channel_id !== channelId || m.thread_root_id || hasNewerRef.current) return;
        noteSeq(m.seq);
        setMessages((list) => mergeMessages(list, [m]));
      }),
      on('message_updated', (ev) => {
        const m = ev.message;
        if (m.channel_id !== channelId) return;
        setMessages((list) => replaceMessage(list, m));
      }),
      on('message_deleted', (ev) => {
        if (ev.channel_id !== channelId) return;
        setMessages((list) => updateMessage(list, ev.message_id, (m) => ({ ...m, deleted: true, text: '' })));
      }),
      on('file_shared', (ev) => {
        if (ev.channel_id === channelId) refreshFilesSoon();
      }),
      on('file_deleted', (ev) => {
        if (ev.channel_id !== channelId) return;
        setFiles((map) => {
          const next = new Map<string, FileInfo[]>();
          for (const [message, list] of map) {
            const kept = list.filter((f) => f.id !== ev.file_id);
            if (kept.length) next.set(message, kept);
          }
          return next;
        });
      }),
      on('ephemeral', (ev) => {
        const m = ev.message;
        if (m.channel_id !== channelId) return;
        setEphemerals((list) => (list.some((e) => e.id === m.id) ? list : [...list, { id: m.id, author_id: m.author_id, text: m.text, blocks: blocksOf(m) }]));
      }),
      on('typing', (ev) => {
        if (ev.channel_id !== channelId || ev.user_id === me.id) return;
        setTyping((t) => new Map(t).set(ev.user_id, Date.now() + TYPING_SHOWN_MS));
      }),
      on('presence', () => setPresenceVersion((v) => v + 1)),
      on('hello', () => setPresenceVersion((v) => v + 1)),
      on('presence_snapshot', () => setPresenceVersion((v) => v + 1)),
      on('channel_changed', (ev) => {
        if (ev.channel_id !== channelId) return;
        api('get', '/api/v1/channels/{channel_id}', {
          params: { path: { channel_id: channelId } },
        }).then(setChannel, () => {});
      }),
      on('channel_member_added', (ev) => {
        if (ev.channel_id !== channelId) return;
        forgetPeople(workspaceId);
        loadPeopleNow();
      }),
      on('resync', () => {
        reloadLatest();
      }),
      on('channel_member_removed', (ev) => {
        if (ev.channel_id !== channelId || ev.user_id !== me.id) return;
        gen.current++;
        setError('You are no longer a member of this channel.');
      }),
      onOutbox(() => setOutboxTick((t) => t + 1)),
    ];
    return () => offs.forEach((off) => off());
  }, [channelId, workspaceId, me.id]);

  // Typing notices expire.
  useEffect(() => {
    if (typing.size === 0) return;
    const t = setInterval(() => {
      const now = Date.now();
      setTyping((m) => {
        const n = new Map([...m].filter(([, until]) => until > now));
        return n.size === m.size ? m : n;
      });
    }, 1000);
    return () => clearInterval(t);
  }, [typing.size > 0]);

  // Read marking: what is on screen at the bottom of a visible tab is read.
  useEffect(() => {
    if (loading || hasNewer || !atBottom) return;
    const last = messages[messages.length - 1];
    if (last) noteSeq(last.seq);
    const mark = () => {
      if (document.visibilityState !== 'visible') return;
      const seq = latestSeq.current;
      if (seq <= 0 || seq <= markedSeq.current) return;
      markedSeq.current = seq;
      api('put', '/api/v1/channels/{channel_id}/read', {
        params: { path: { channel_id: channelId } },
        json: { seq },
      }).catch(() => {
        markedSeq.current = 0; // try again next time
      });
    };
    const t = setTimeout(mark, 400);
    document.addEventListener('visibilitychange', mark);
    return () => {
      clearTimeout(t);
      document.removeEventListener('visibilitychange', mark);
    };
  }, [messages, loading, hasNewer, atBottom, channelId]);

  useEffect(() => {
    if (atBottom) setUnseen(0);
  }, [atBottom]);

  const loadOlder = async () => {
    if (!hasOlder || busyOlder.current || loading || messages.length === 0) return;
    busyOlder.current = true;
    setLoadingOlder(true);
    setPagingError('');
    const mine = gen.current;
    try {
      const list = await api('get', '/api/v1/channels/{channel_id}/messages', {
        params: { path: { channel_id: channelId }, query: { before: messages[0].seq, limit: OLDER_PAGE } },
      });
      if (mine !== gen.current) return;
      setMessages((old) => mergeMessages(old, list));
      setHasOlder(list.length === OLDER_PAGE);
    } catch (err) {
      setPagingError(`Could not load older messages: ${errorText(err)}`);
    } finally {
      busyOlder.current = false;
      setLoadingOlder(false);
    }
  };

  const loadNewer = async () => {
    if (!hasNewer || busyNewer.current || loading || messages.length === 0) return;
    busyNewer.current = true;
    const mine = gen.current;
    try {
      const list = await api('get', '/api/v1/channels/{channel_id}/messages', {
        params: {
          path: { channel_id: channelId },
          query: { after: messages[messages.length - 1].seq, limit: OLDER_PAGE },
        },
      });
      if (mine !== gen.current) return;
      const reachedEnd = list.length < OLDER_PAGE;
      const extra = reachedEnd ? arrivedBehind.current.splice(0) : [];
      setMessages((old) => mergeMessages(old, [...list, ...extra]));
      if (reachedEnd) {
        hasNewerRef.current = false;
        setHasNewer(false);
      }
    } catch (err) {
      setPagingError(`Could not load newer messages: ${errorText(err)}`);
    } finally {
      busyNewer.current = false;
    }
  };

  const channelPath = `/w/${workspaceId}/c/${channelId}`;
  const jumpToLatest = () => {
    if (hasNewer || messageId) props.navigate(channelPath);
    else setScroll((s) => ({ kind: 'end', nonce: s.nonce + 1 }));
  };

  // Files: drag-and-drop, paste and the attach button all land here.
  const startUploads = (list: File[]) => {
    if (channel?.archived) {
      toast('This channel is archived; files cannot be shared here.');
      return;
    }
    for (const file of list) {
      uploadFile(channelId, file, (job) =>
        setUploads((jobs) => {
          const i = jobs.findIndex((j) => j.key === job.key);
          if (i < 0) return [...jobs, job];
          const next = jobs.slice();
          next[i] = job;
          return next;
        }),
      ).then((info) => {
        if (info?.message_id) {
          setFiles((m) => new Map(m).set(info.message_id!, [...(m.get(info.message_id!) ?? []).filter((f) => f.id !== info.id), info]));
        }
        setTimeout(() => setUploads((jobs) => jobs.filter((j) => j.state !== 'done')), 1500);
      });
    }
    setScroll((s) => ({ kind: 'end', nonce: s.nonce + 1 }));
  };

  const actions: ChatActions = {
    react: async (m, emoji) => {
      const mine = (m.reactions[emoji] ?? []).includes(me.id);
      try {
        const reaction = { params: { path: { message_id: m.id, emoji } } };
        const updated = mine
          ? await api('delete', '/api/v1/messages/{message_id}/reactions/{emoji}', reaction)
          : await api('put', '/api/v1/messages/{message_id}/reactions/{emoji}', reaction);
        const what = mine ? 'reaction_removed' : 'reaction_added';
        applyLocally({ type: 'message_updated', workspace_id: workspaceId, message: updated, what });
      } catch (err) {
        toast(`Could not ${mine ? 'remove' : 'add'} the reaction: ${errorText(err)}`);
      }
    },
    edit: async (m, text) => {
      const updated = await api('patch', '/api/v1/messages/{message_id}', {
        params: { path: { message_id: m.id } },
        json: { text: namesToMentions(text.trim(), people.values()) },
      });
      applyLocally({ type: 'message_updated', workspace_id: workspaceId, message: updated, what: 'edited' });
    },
    remove: (m) => setDialog({ kind: 'delete', message: m }),
    pin: async (m) => {
      try {
        const pin = { params: { path: { message_id: m.id } } };
        const updated = m.pinned
          ? await api('delete', '/api/v1/messages/{message_id}/pin', pin)
          : await api('put', '/api/v1/messages/{message_id}/pin', pin);
        applyLocally({ type: 'message_updated', workspace_id: workspaceId, message: updated, what: updated.pinned ? 'pinned' : 'unpinned' });
        toast(updated.pinned ? 'Pinned to the channel' : 'Unpinned');
      } catch (err) {
        toast(`Could not ${m.pinned ? 'unpin' : 'pin'} the message: ${errorText(err)}`);
      }
    },
    openThread: (root) => setThread({ root }),
    copyLink: (m) => {
      const url = `${location.origin}/w/${workspaceId}/c/${m.channel_id}/m/${m.id}`;
      if (navigator.clipboard?.writeText) {
        navigator.clipboard.writeText(url).then(
          () => toast('Link copied'),
          () => setDialog({ kind: 'link', url }),
        );
      } else {
        setDialog({ kind: 'link', url });
      }
    },
    history: (m) => {
      setDialog({ kind: 'history', message: m });
      api('get', '/api/v1/messages/{message_id}/versions', { params: { path: { message_id: m.id } } }).then(
        (versions) => setDialog((d) => (d?.kind === 'history' && d.message.id === m.id ? { ...d, versions } : d)),
        (err) => setDialog((d) => (d?.kind === 'history' && d.message.id === m.id ? { ...d, error: errorText(err) } : d)),
      );
    },
    toast,
  };

  const confirmDelete = async (m: Message) => {
    setDialog({ kind: 'delete', message: m, busy: true });
    try {
      await api('delete', '/api/v1/messages/{message_id}', { params: { path: { message_id: m.id } } });
      applyLocally({ type: 'message_deleted', workspace_id: workspaceId, channel_id: m.channel_id, message_id: m.id, seq: m.seq });
      setDialog(null);
      toast('Message deleted');
    } catch (err) {
      setDialog({ kind: 'delete', message: m, error: errorText(err) });
    }
  };

  const ctx: ChatContextValue = {
    me: me.id,
    workspaceId,
    channel,
    people,
    peopleVersion,
    filesByMessage: files,
    actions,
    presenceVersion,
    editRequest,
  };

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/workspaces/{workspace_id}/commands', { params: { path: { workspace_id: workspaceId } } }).then(
      (list) => live && setCommands(list),
      () => {},
    );
    return () => {
      live = false;
    };
  }, [workspaceId]);
  useEffect(() => setEphemerals([]), [channelId]);

  const runCommand = async (command: string, text: string) => {
    try {
      const reply = await api('post', '/api/v1/channels/{channel_id}/commands', {
        params: { path: { channel_id: channelId } },
        json: { command, text },
      });
      const m = reply.ephemeral;
      if (m) setEphemerals((list) => (list.some((e) => e.id === m.id) ? list : [...list, { id: m.id, author_id: m.author_id, text: m.text, blocks: blocksOf(m) }]));
    } catch (err) {
      const id = `failed-${Date.now()}`;
      setEphemerals((list) => [...list, { id, author_id: null, text: `${command} failed: ${errorText(err)}`, error: true }]);
    }
  };

  const editLast = () => {
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i];
      if (m.author_id === me.id && !m.deleted) {
        setEditRequest({ id: m.id, done: false });
        setScroll((s) => ({ kind: 'key', key: m.id, nonce: s.nonce + 1 }));
        return true;
      }
    }
    return false;
  };

  const pending = pendingPosts(channelId, null);
  const rows = useMemo(() => {
    const out: Row[] = [];
    let prev: { author: string; at: number; day: string } | null = null;
    const push = (key: string, author: string, created: string, extra: Partial<Row>, groupable: boolean) => {
      const at = Date.parse(created);
      const day = dayKey(created);
      const newDay = !prev || prev.day !== day;
      const compact = groupable && !!prev && !newDay && prev.author === author && at - prev.at < GROUP_WITHIN_MS;
      out.push({ key, compact, day: newDay ? dayLabel(created) : undefined, ...extra });
      prev = { author, at, day };
    };
    const readTo = readAtOpen.current;
    let unreadShown = false;
    for (const m of messages) {
      const unread = readTo !== null && readTo > 0 && !unreadShown && m.seq > readTo && m.author_id !== me.id;
      if (unread) unreadShown = true;
      push(m.client_msg_id ?? m.id, m.author_id, m.created_at, { message: m, unread }, !m.deleted && !m.pinned && !unread);
    }
    if (!hasNewer) {
      const have = new Set(messages.map((m) => m.client_msg_id).filter(Boolean));
      for (const p of pending) {
        if (have.has(p.client_msg_id)) continue;
        push(p.client_msg_id, p.user_id, p.created_at, { pending: p }, true);
      }
    }
    return out;
  }, [messages, pending.map((p) => p.client_msg_id + p.state).join(), hasNewer, peopleVersion, presenceVersion]);

  const members = useMemo(() => {
    const ids = memberIds.length ? memberIds : [...people.keys()];
    return ids.map((id) => people.get(id)).filter((p): p is Person => !!p);
  }, [memberIds, people]);

  const typingNames = [...typing.keys()].map((id) => nameOf(people, id));
  const typingText =
    typingNames.length === 0
      ? ''
      : typingNames.length === 1
        ? `${typingNames[0]} is typing…`
        : typingNames.length === 2
          ? `${typingNames[0]} and ${typingNames[1]} are typing…`
          : 'Several people are typing…';

  const label = channelLabel(channel, people, me.id);
  const archived = channel?.archived ? 'This channel is archived and read-only.' : undefined;

  const header = (
    <div class="list-start">
      {loadingOlder && (
        <p class="muted" role="status">
          Loading older messages…
        </p>
      )}
      {!hasOlder && !loading && !error && (
        <p class="muted">
          This is the very beginning of <strong>{label}</strong>.
        </p>
      )}
      {pagingError && (
        <p class="inline-error" role="alert">
          {pagingError}{' '}
          <button type="button" class="btn-small" onClick={() => (setPagingError(''), loadOlder())}>
            Retry
          </button>
        </p>
      )}
    </div>
  );

  return (
    <ChatContext.Provider value={ctx}>
      <section
        class={`channel-view${thread || pinsOpen ? ' with-panel' : ''}`}
        aria-label={label}
        onDragEnter={(e) => {
          if (!e.dataTransfer?.types.includes('Files')) return;
          e.preventDefault();
          dragDepth.current += 1;
          setDragging(true);
        }}
        onDragOver={(e) => {
          if (!e.dataTransfer?.types.includes('Files')) return;
          e.preventDefault();
          e.dataTransfer.dropEffect = 'copy';
        }}
        onDragLeave={() => {
          dragDepth.current = Math.max(0, dragDepth.current - 1);
          if (dragDepth.current === 0) setDragging(false);
        }}
        onDrop={(e) => {
          if (!e.dataTransfer?.files.length) return;
          e.preventDefault();
          dragDepth.current = 0;
          setDragging(false);
          startUploads([...e.dataTransfer.files]);
        }}
      >
        <div class="channel-main">
          <header class="channel-head">
            <div class="channel-title">
              <h1>{channel ? label : '…'}</h1>
              {channel?.topic && (
                <p class="channel-topic" title={channel.topic}>
                  {channel.topic}
                </p>
              )}
            </div>
            <div class="channel-tools">
              <button
                type="button"
                class={`btn-small${pinsOpen ? ' active' : ''}`}
                aria-pressed={pinsOpen}
                onClick={() => {
                  setPinsOpen((o) => !o);
                  setThread(null);
                }}
              >
                <Icon name="pin" size={15} /> Pinned
              </button>
            </div>
          </header>

          {error ? (
            <div class="channel-error" role="alert">
              <p>Could not open {label}: {error}</p>
              <button type="button" class="btn-small primary" onClick={load}>
                Try again
              </button>
            </div>
          ) : loading && messages.length === 0 ? (
            <div class="channel-loading" role="status">
              <span class="spinner" aria-hidden="true" /> Loading messages…
            </div>
          ) : (
            <MessageList
              rows={rows}
              label={`Messages in ${label}`}
              highlightId={highlight}
              header={header}
              busy={loading || loadingOlder}
              scroll={scroll}
              onNearTop={loadOlder}
              onNearBottom={loadNewer}
              onAtBottom={setAtBottom}
            />
          )}

          {(!atBottom || hasNewer) && !loading && !error && (
            <button type="button" class="jump-latest" onClick={jumpToLatest}>
              {unseen > 0 ? `${unseen} new message${unseen === 1 ? '' : 's'} ↓` : 'Jump to latest ↓'}
            </button>
          )}

          {ephemerals.length > 0 && (
            <ul class="ephemerals" aria-label="Only visible to you">
              {ephemerals.map((e) => (
                <li key={e.id} class={`ephemeral${e.error ? ' error' : ''}`} role={e.error ? 'alert' : 'status'}>
                  <div class="ephemeral-head">
                    <strong>{e.author_id ? nameOf(people, e.author_id) : 'Concord'}</strong>
                    <span class="muted"> · Only visible to you</span>
                    <button
                      type="button"
                      class="icon-btn"
                      aria-label="Dismiss"
                      onClick={() => setEphemerals((list) => list.filter((x) => x.id !== e.id))}
                    >
                      ×
                    </button>
                  </div>
                  {e.blocks ? (
                    <Blocks blocks={e.blocks} fallback={e.text} ephemeralId={e.id} />
                  ) : (
                    <div class="msg-body" dangerouslySetInnerHTML={{ __html: renderMessage(e.text, people, me.id, peopleVersion) }} />
                  )}
                </li>
              ))}
            </ul>
          )}
          <div class="typing-line" aria-live="polite">
            {typingText}
          </div>
          <UploadList
            jobs={uploads}
            onDismiss={(key) => setUploads((j) => j.filter((x) => x.key !== key))}
            onRetry={(job) => {
              setUploads((j) => j.filter((x) => x.key !== job.key));
              startUploads([job.file]);
            }}
          />
          <Composer
            me={me.id}
            channelId={channelId}
            label={`Message ${label}`}
            placeholder={`Message ${label}`}
            members={members}
            disabled={archived}
            onFiles={startUploads}
            onEditLast={editLast}
            commands={commands}
            onCommand={runCommand}
            onSent={() => {
              if (hasNewer || messageId) props.navigate(channelPath);
              else setScroll((s) => ({ kind: 'end', nonce: s.nonce + 1 }));
            }}
          />
        </div>

        {thread && (
          <ThreadPanel
            key={thread.root}
            rootId={thread.root}
            highlightId={thread.highlight}
            channelId={channelId}
            me={me.id}
            members={members}
            disabled={archived}
            onClose={() => {
              setThread(null);
              requestAnimationFrame(() => document.querySelector<HTMLElement>('.channel-main .composer textarea')?.focus());
            }}
          />
        )}
        {pinsOpen && !thread && (
          <PinsPanel
            channelId={channelId}
            onClose={() => setPinsOpen(false)}
            onJump={(m) => props.navigate(`${channelPath}/m/${m.id}`)}
          />
        )}

        {dragging && (
          <div class="drop-overlay" aria-hidden="true">
            <div>Drop files to share them in {label}</div>
          </div>
        )}

        {dialog?.kind === 'history' && (
          <Dialog title="Edit history" onClose={() => setDialog(null)} wide>
            <ol class="history-list">
              <li>
                <div class="history-when">Current · edited {dialog.message.edited_at ? fullTime(dialog.message.edited_at) : ''}</div>
                <div class="msg-body" dangerouslySetInnerHTML={{ __html: renderMessage(dialog.message.text, people, me.id, peopleVersion) }} />
              </li>
              {dialog.versions
                ?.slice()
                .sort((a, b) => b.version - a.version)
                .map((v) => (
                  <li key={v.version}>
                    <div class="history-when">
                      Version {v.version} · replaced {fullTime(v.replaced_at)}
                    </div>
                    <div class="msg-body" dangerouslySetInnerHTML={{ __html: renderMessage(v.text, people, me.id, peopleVersion) }} />
                  </li>
                ))}
            </ol>
            {!dialog.versions && !dialog.error && (
              <p class="muted" role="status">
                Loading earlier versions…
              </p>
            )}
            {dialog.error && (
              <p class="inline-error" role="alert">
                {dialog.error}
              </p>
            )}
          </Dialog>
        )}
        {dialog?.kind === 'delete' && (
          <Dialog title="Delete message" onClose={() => setDialog(null)}>
            <p>Delete this message? Everyone in the channel will see that it was deleted.</p>
            <blockquote class="quote">{plainText(dialog.message.text, people).slice(0, 200)}</blockquote>
            {dialog.error && (
              <p class="inline-error" role="alert">
                {dialog.error}
              </p>
            )}
            <div class="dialog-actions">
              <button type="button" class="btn-small" onClick={() => setDialog(null)}>
                Cancel
              </button>
              <button type="button" class="btn-small danger" disabled={dialog.busy} onClick={() => confirmDelete(dialog.message)}>
                {dialog.busy ? 'Deleting…' : 'Delete'}
              </button>
            </div>
          </Dialog>
        )}
        {dialog?.kind === 'link' && (
          <Dialog title="Link to message" onClose={() => setDialog(null)}>
            <label class="field">
              <span>Copy this link</span>
              <input type="text" readOnly value={dialog.url} onFocus={(e) => (e.target as HTMLInputElement).select()} />
            </label>
          </Dialog>
        )}

        <div class="toasts" role="status" aria-live="polite">
          {toasts.map((t) => (
            <div class="toast" key={t.id}>
              {t.text}
            </div>
          ))}
        </div>
        <div class="visually-hidden" aria-live="polite">
          {announce}
        </div>
      </section>
    </ChatContext.Provider>
  );
}
