// The live connection: one WebSocket to /api/v1/ws per tab, with the resume protocol
// (epoch + last_seq), reconnection with backoff, and a queue of messages written offline.
//
// The frames are the server's, generated from the OpenAPI document (`ServerFrame`,
// `ClientFrame` and `LiveEvent` in generated/api.d.ts). What listeners receive (`on(type, fn)`,
// typed by `type`):
//   - each domain event of an `event` frame, under its own type ('message_created',
//     'message_updated', 'message_deleted', 'read_state_changed', 'channel_changed',
//     'channel_member_added', ...), with the event's own fields plus `stream_seq`, the hub's
//     sequence number (events are delivered at most once per tab, in order);
//   - the server's other frames as they are: 'typing' {channel_id, user_id},
//     'ephemeral' {message} (a bot's message for this user only, never stored),
//     'presence' {user_id, status}, 'presence_snapshot' {presence}, 'ack' {client_msg_id,
//     message}, 'error' {code, message, client_msg_id?};
//   - 'hello' {user_id, resumed} after every (re)connection, and 'resync' when events were
//     missed for good: views reload what they show over REST.
// Presence (`presenceOf`): the server's `hello` starts the snapshot of who is connected (at
// most 64 people) and the `presence_snapshot` frames sent right after it carry the rest, in
// chunks of at most 64, so no frame grows with the number of people online; each is merged
// here before listeners hear of it. `presence` frames carry the changes from then on.
//   - 'session_ended' {code} when the server signed this session out (revoked or invalid).
// Events applied here before the server's (a change made offline) carry `local: true`.
// `onOutbox(fn)` reports changes to the queue of posts not yet acknowledged. `disconnect()`
// (sign-out) also forgets what the browser kept of the user's writing.

import { accessToken, api, ApiError, type Schemas } from './api';

export type LiveStatus = 'connecting' | 'online' | 'offline';

/** A frame the server sends. */
export type ServerFrame = Schemas['ServerFrame'];
/** A frame this client sends. */
export type ClientFrame = Schemas['ClientFrame'];
/** A domain event, as an `event` frame carries it. */
export type DomainEvent = Schemas['LiveEvent'];
export type PresenceStatus = Schemas['PresenceStatus'];
type Frame<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;

/** What listeners receive: see the top of this file. */
export type LiveEvent =
  | (DomainEvent & { stream_seq?: number; local?: boolean })
  | Frame<'typing'>
  | Frame<'ephemeral'>
  | (Frame<'presence'> & { local?: boolean })
  | Frame<'presence_snapshot'>
  | Frame<'ack'>
  | Frame<'error'>
  | { type: 'hello'; user_id: string; resumed: boolean }
  | { type: 'resync' }
  | { type: 'session_ended'; code: number };
export type LiveType = LiveEvent['type'];
export type LiveEventOf<T extends LiveType> = Extract<LiveEvent, { type: T }>;

type Listener = (ev: LiveEvent) => void;

const listeners = new Map<string, Set<Listener>>();
const statusListeners = new Set<(s: LiveStatus) => void>();
let status: LiveStatus = 'connecting';

/** Subscribes to server events of one `type` ('*' for all); returns the unsubscribe function. */
export function on<T extends LiveType>(type: T, fn: (ev: LiveEventOf<T>) => void): () => void;
export function on(type: '*', fn: Listener): () => void;
// Listeners are kept by type and called only with events of that type.
export function on(type: string, fn: Listener): () => void {
  let set = listeners.get(type);
  if (!set) listeners.set(type, (set = new Set()));
  set.add(fn);
  return () => set!.delete(fn);
}

export function currentStatus(): LiveStatus {
  return status;
}

export function onStatus(fn: (s: LiveStatus) => void): () => void {
  statusListeners.add(fn);
  return () => statusListeners.delete(fn);
}

export function emit(ev: LiveEvent) {
  for (const set of [listeners.get(ev.type), listeners.get('*')]) {
    set?.forEach((fn) => {
      try {
        fn(ev);
      } catch (err) {
        console.warn('live listener failed', err);
      }
    });
  }
}

export function setStatus(s: LiveStatus) {
  if (s === status) return;
  status = s;
  if (s === 'offline' && userId && presence.get(userId) !== 'offline') {
    // Our own dot follows the connection; others' stay as last heard.
    presence.set(userId, 'offline');
    emit({ type: 'presence', user_id: userId, status: 'offline', local: true });
  }
  statusListeners.forEach((fn) => fn(s));
}

// ---------------------------------------------------------------------------------------------
// The connection

const PING_EVERY_MS = 25_000;
const PONG_WITHIN_MS = 10_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const HELLO_WITHIN_MS = 15_000;

let wanted = false; // connect() called and not disconnected since
let socket: WebSocket | null = null;
let epoch: string | null = null;
let lastSeq: number | null = null;
let userId: string | null = null;
let attempt = 0;
let authFailures = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let pingTimer: ReturnType<typeof setInterval> | undefined;
let pongTimer: ReturnType<typeof setTimeout> | undefined;
let helloTimer: ReturnType<typeof setTimeout> | undefined;
let windowHooks = false;
let opening = false; // between open() and the socket's creation (fetching a token)

/** The signed-in user as the server confirmed it in `hello` (null before). */
export function liveUserId(): string | null {
  return userId;
}

/** Opens the connection once signed in (idempotent). */
export function connect(): void {
  hookWindow();
  wanted = true;
  if (socket || opening || retryTimer !== undefined) return;
  open();
}

/**
 * Closes the connection on sign-out. What this browser kept of the user's writing (posts not
 * sent yet, drafts, resumable uploads) is removed with it: nothing is left behind on a shared
 * computer.
 */
export function disconnect(): void {
  wanted = false;
  outbox = [];
  try {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const key = localStorage.key(i);
      if (key && (key === OUTBOX_KEY || key.startsWith('concord.draft.') || key.startsWith('tus::'))) {
        localStorage.removeItem(key);
      }
    }
  } catch {
    /* storage disabled */
  }
  notifyOutbox();
  clearTimeout(retryTimer);
  retryTimer = undefined;
  drop();
  epoch = null;
  lastSeq = null;
  userId = null;
  presence.clear();
  setStatus('offline');
}

/** Sends a client frame (typing notices and the like) when online; dropped otherwise. */
export function send(frame: ClientFrame): boolean {
  if (!socket || socket.readyState !== WebSocket.OPEN || status !== 'online') return false;
  try {
    socket.send(JSON.stringify(frame));
    return true;
  } catch {
    return false;
  }
}

/** Reconnects at once (the "retry now" of an offline banner). */
export function reconnectNow(): void {
  if (!wanted) return;
  attempt = 0;
  clearTimeout(retryTimer);
  retryTimer = undefined;
  if (!socket && !opening) open();
}

function hookWindow() {
  if (windowHooks || typeof window === 'undefined') return;
  windowHooks = true;
  addEventListener('online', () => reconnectNow());
  addEventListener('offline', () => {
    drop();
    setStatus('offline');
  });
  document.addEventListener('visibilitychange', () => {
    send({ type: 'presence', status: document.hidden ? 'away' : 'online' });
    // A tab coming back to the front checks its connection at once.
    if (!document.hidden && wanted && !socket) reconnectNow();
  });
  addEventListener('storage', (e) => {
    if (e.key === OUTBOX_KEY) {
      outbox = loadOutbox();
      notifyOutbox();
    }
  });
}

function wsUrl(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/api/v1/ws`;
}

async function open() {
  if (!wanted || socket || opening) return;
  if (typeof navigator !== 'undefined' && navigator.onLine === false) {
    setStatus('offline');
    return; // the `online` event reconnects
  }
  setStatus('connecting');
  let token: string;
  opening = true;
  try {
    token = await accessToken();
  } catch (err) {
    opening = false;
    if (err instanceof ApiError && err.status === 401) {
      wanted = false;
      setStatus('offline');
      emit({ type: 'session_ended', code: 401 });
      return;
    }
    scheduleRetry();
    return;
  }
  opening = false;
  if (!wanted || socket) return;
  let ws: WebSocket;
  try {
    ws = new WebSocket(wsUrl());
  } catch {
    scheduleRetry();
    return;
  }
  socket = ws;
  ws.onopen = () => {
    const auth: ClientFrame =
      epoch !== null && lastSeq !== null ? { type: 'auth', token, epoch, last_seq: lastSeq } : { type: 'auth', token };
    ws.send(JSON.stringify(auth));
    // A server that accepts the socket but never greets it is treated as unreachable.
    clearTimeout(helloTimer);
    helloTimer = setTimeout(() => {
      if (socket === ws && status !== 'online') ws.close(4000, 'no hello');
    }, HELLO_WITHIN_MS);
  };
  ws.onmessage = (e) => {
    if (socket !== ws) return;
    armPong(false);
    let frame: ServerFrame;
    try {
      // The server's frames are its OpenAPI document's `ServerFrame`s (tested on both sides).
      frame = JSON.parse(typeof e.data === 'string' ? e.data : '');
    } catch {
      return;
    }
    if (frame && typeof frame === 'object') receive(frame);
  };
  ws.onclose = (e) => {
    if (socket !== ws) return;
    socket = null;
    stopPing();
    requeueSending();
    onClosed(e.code);
  };
  ws.onerror = () => {
    /* onclose follows */
  };
}

function receive(frame: ServerFrame) {
  switch (frame.type) {
    case 'hello': {
      clearTimeout(helloTimer);
      const resumed = epoch !== null && frame.epoch === epoch && !frame.resync;
      const wasResuming = epoch !== null;
      epoch = frame.epoch;
      if (!resumed) lastSeq = frame.seq;
      userId = frame.user_id;
      attempt = 0;
      authFailures = 0;
      setStatus('online');
      startPing();
      if (document.hidden) send({ type: 'presence', status: 'away' });
      // The greeting starts the list of everyone else connected now; the `presence_snapshot`
      // frames right after it (`presence_frames` of them) finish it, and the whole list then
      // replaces what we knew (so nobody past the first frame flickers offline meanwhile).
      snapshot = { ...frame.presence };
      snapshotFramesDue = frame.presence_frames ?? 0;
      if (snapshotFramesDue === 0) applySnapshot();
      emit({ type: 'hello', user_id: frame.user_id, resumed });
      if (frame.resync || (wasResuming && !resumed)) emit({ type: 'resync' });
      flushOutbox();
      return;
    }
    case 'event': {
      const seq = frame.seq;
      if (lastSeq !== null && seq <= lastSeq) return; // already seen
      lastSeq = seq;
      emit({ ...frame.event, stream_seq: seq });
      return;
    }
    case 'ack': {
      removeFromOutbox(frame.client_msg_id);
      emit(frame);
      return;
    }
    case 'error': {
      if (frame.client_msg_id) failOutbox(frame.client_msg_id, frame.message || frame.code);
      emit(frame);
      return;
    }
    case 'presence': {
      presence.set(frame.user_id, frame.status);
      emit(frame);
      return;
    }
    case 'presence_snapshot': {
      // The rest of the hello's snapshot: more people connected now.
      Object.assign(snapshot, frame.presence);
      snapshotFramesDue -= 1;
      if (snapshotFramesDue <= 0) applySnapshot();
      emit(frame);
      return;
    }
    case 'typing':
    case 'ephemeral':
      emit(frame);
      return;
    case 'pong':
      return;
    default:
      // A frame this client does not know (a newer server): nothing to do with it.
      return;
  }
}

function onClosed(code: number) {
  if (!wanted) return;
  if (code === 4403 || code === 4440) {
    // The session was revoked, or ended after inactivity (automatic logoff): nothing to retry.
    wanted = false;
    setStatus('offline');
    emit({ type: 'session_ended', code });
    return;
  }
  if (code === 4401) {
    authFailures += 1;
    if (authFailures >= 3) {
      wanted = false;
      setStatus('offline');
      emit({ type: 'session_ended', code });
      return;
    }
    // The access token may have just expired: a REST call refreshes it.
    api('get', '/api/v1/users/me').then(
      () => scheduleRetry(),
      () => scheduleRetry(),
    );
    return;
  }
  scheduleRetry();
}

function scheduleRetry() {
  if (!wanted) return;
  setStatus(navigator.onLine === false || attempt > 0 ? 'offline' : 'connecting');
  // Exponential backoff with full jitter; the first retry is quick.
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  const delay = attempt === 0 ? 250 + Math.random() * 250 : Math.random() * ceiling + 250;
  attempt += 1;
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => {
    retryTimer = undefined;
    open();
  }, delay);
}

function drop() {
  stopPing();
  const ws = socket;
  socket = null;
  requeueSending();
  if (ws) {
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close(1000, 'bye');
    } catch {
      /* already closed */
    }
  }
}

function startPing() {
  stopPing();
  pingTimer = setInterval(() => {
    if (send({ type: 'ping' })) armPong(true);
  }, PING_EVERY_MS);
}

function stopPing() {
  clearInterval(pingTimer);
  clearTimeout(pongTimer);
  pingTimer = undefined;
  pongTimer = undefined;
}

/** Any frame proves the connection alive; a ping unanswered in time means it is dead. */
function armPong(waiting: boolean) {
  clearTimeout(pongTimer);
  pongTimer = undefined;
  if (!waiting) return;
  pongTimer = setTimeout(() => {
    const ws = socket;
    if (!ws) return;
    socket = null;
    stopPing();
    requeueSending();
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close(4000, 'no answer');
    } catch {
      /* ignore */
    }
    scheduleRetry();
  }, PONG_WITHIN_MS);
}

// ---------------------------------------------------------------------------------------------
// Presence: the snapshot in `hello` and the `presence_snapshot` frames after it, then the
// changes in `presence` frames

const presence = new Map<string, PresenceStatus>();
/** The greeting's snapshot while its `presence_snapshot` frames are still arriving. */
let snapshot: Record<string, PresenceStatus> = {};
let snapshotFramesDue = 0;

/** The completed snapshot replaces what we knew of everyone else's presence. */
function applySnapshot() {
  for (const user of presence.keys()) if (!(user in snapshot)) presence.set(user, 'offline');
  for (const [user, state] of Object.entries(snapshot)) presence.set(user, state);
  snapshot = {};
  snapshotFramesDue = 0;
  if (userId) {
    presence.set(userId, document.hidden ? 'away' : 'online');
    emit({ type: 'presence', user_id: userId, status: presence.get(userId) ?? 'online', local: true });
  }
}

/** 'online', 'away', 'offline', or undefined when not known yet. */
export function presenceOf(user: string): PresenceStatus | undefined {
  return presence.get(user);
}

// ---------------------------------------------------------------------------------------------
// The outbox: posts written here and not acknowledged yet, kept in localStorage so that
// nothing written offline is lost by a reload. Each carries its `client_msg_id`, so sending it
// again after a reconnect never duplicates it.

export interface OutboxItem {
  client_msg_id: string;
  user_id: string;
  channel_id: string;
  text: string;
  thread_root_id: string | null;
  created_at: string;
  state: 'queued' | 'sending' | 'failed';
  error?: string;
}

const OUTBOX_KEY = 'concord.outbox';
let outbox: OutboxItem[] = loadOutbox();
const outboxListeners = new Set<() => void>();

function loadOutbox(): OutboxItem[] {
  try {
    const raw = localStorage.getItem(OUTBOX_KEY);
    const items = raw ? (JSON.parse(raw) as OutboxItem[]) : [];
    // Whatever was being sent when the page went away is sent again.
    return items.map((i) => (i.state === 'sending' ? { ...i, state: 'queued' } : i));
  } catch {
    return [];
  }
}

function saveOutbox() {
  try {
    localStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox));
  } catch {
    /* storage full or disabled: the queue still lives in memory */
  }
}

function notifyOutbox() {
  outboxListeners.forEach((fn) => fn());
}

function changed() {
  saveOutbox();
  notifyOutbox();
}

export function onOutbox(fn: () => void): () => void {
  outboxListeners.add(fn);
  return () => outboxListeners.delete(fn);
}

/** Posts not acknowledged yet in a channel (or a thread), oldest first. */
export function pendingPosts(channelId: string, threadRootId: string | null = null): OutboxItem[] {
  return outbox.filter((i) => i.channel_id === channelId && (i.thread_root_id ?? null) === threadRootId);
}

export function newClientMsgId(): string {
  return typeof crypto !== 'undefined' && 'randomUUID' in crypto
    ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** Queues a post and sends it as soon as the connection is up. */
export function post(p: { user_id: string; channel_id: string; text: string; thread_root_id?: string | null }): OutboxItem {
  const item: OutboxItem = {
    client_msg_id: newClientMsgId(),
    user_id: p.user_id,
    channel_id: p.channel_id,
    text: p.text,
    thread_root_id: p.thread_root_id ?? null,
    created_at: new Date().toISOString(),
    state: 'queued',
  };
  outbox = [...outbox, item];
  changed();
  flushOutbox();
  return item;
}

/** Sends a failed post again (same key: never a duplicate). */
export function retryPost(clientMsgId: string) {
  outbox = outbox.map((i) => (i.client_msg_id === clientMsgId ? { ...i, state: 'queued', error: undefined } : i));
  changed();
  flushOutbox();
}

export function discardPost(clientMsgId: string) {
  outbox = outbox.filter((i) => i.client_msg_id !== clientMsgId);
  changed();
}

function flushOutbox() {
  if (status !== 'online' || !userId) return;
  let any = false;
  outbox = outbox.map((i) => {
    if (i.state !== 'queued' || i.user_id !== userId) return i;
    const frame: ClientFrame = {
      type: 'post',
      channel_id: i.channel_id,
      text: i.text,
      client_msg_id: i.client_msg_id,
      ...(i.thread_root_id ? { thread_root_id: i.thread_root_id } : {}),
    };
    if (!send(frame)) return i;
    any = true;
    return { ...i, state: 'sending' };
  });
  if (any) changed();
}

function requeueSending() {
  if (!outbox.some((i) => i.state === 'sending')) return;
  outbox = outbox.map((i) => (i.state === 'sending' ? { ...i, state: 'queued' } : i));
  changed();
}

function removeFromOutbox(clientMsgId: string) {
  if (!outbox.some((i) => i.client_msg_id === clientMsgId)) return;
  outbox = outbox.filter((i) => i.client_msg_id !== clientMsgId);
  changed();
}

function failOutbox(clientMsgId: string, error: string) {
  outbox = outbox.map((i) => (i.client_msg_id === clientMsgId ? { ...i, state: 'failed', error } : i));
  changed();
}
