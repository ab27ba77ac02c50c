// Small pieces of the chat's interface: the shared context, a modal dialog, the emoji picker,
// time formatting.

import { createContext } from 'preact';
import { Icon } from './icons';
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { Channel, FileInfo, Message, Person } from './types';

export interface ChatActions {
  react: (m: Message, emoji: string) => void;
  edit: (m: Message, text: string) => Promise<void>;
  remove: (m: Message) => void;
  pin: (m: Message) => void;
  openThread: (rootId: string) => void;
  copyLink: (m: Message) => void;
  history: (m: Message) => void;
  toast: (text: string) => void;
}

export interface ChatContextValue {
  me: string;
  workspaceId: string;
  channel: Channel | null;
  people: Map<string, Person>;
  peopleVersion: number;
  filesByMessage: Map<string, FileInfo[]>;
  actions: ChatActions;
  /** Bumped when presence changes so dots re-render. */
  presenceVersion: number;
  /** A message to open for editing (Up arrow in an empty composer); `done` once taken. */
  editRequest: { id: string; done: boolean } | null;
}

export const ChatContext = createContext<ChatContextValue | null>(null);

export const QUICK_EMOJI = ['👍', '❤️', '😂', '🎉', '👀', '🙏', '✅', '🔥', '😮', '😢', '🚀', '👏'];

/** A modal dialog: focus moves in, Escape or the backdrop closes, focus returns on close. */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const first = box.current?.querySelector<HTMLElement>('button, [href], input, textarea, [tabindex]:not([tabindex="-1"])');
    (first ?? box.current)?.focus();
    return () => before?.focus?.();
  }, []);
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      props.onClose();
    }
    if (e.key === 'Tab' && box.current) {
      const items = [...box.current.querySelectorAll<HTMLElement>('button:not([disabled]), [href], input, textarea, [tabindex]:not([tabindex="-1"])')];
      if (items.length === 0) return;
      const first = items[0];
      const last = items[items.length - 1];
      if (e.shiftKey && document.activeElement === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && document.activeElement === last) {
        e.preventDefault();
        first.focus();
      }
    }
  };
  return (
    <div class="chat-backdrop" onMouseDown={(e) => e.target === e.currentTarget && props.onClose()}>
      <div
        class={`chat-dialog${props.wide ? ' wide' : ''}`}
        role="dialog"
        aria-modal="true"
        aria-label={props.title}
        ref={box}
        tabIndex={-1}
        onKeyDown={onKey}
      >
        <header class="chat-dialog-head">
          <h2>{props.title}</h2>
          <button type="button" class="icon-btn" aria-label="Close" onClick={props.onClose}>
            <Icon name="close" />
          </button>
        </header>
        <div class="chat-dialog-body">{props.children}</div>
      </div>
    </div>
  );
}

/** A grid of common emoji; arrow keys move, Enter picks, Escape closes. */
export function EmojiPicker(props: { onPick: (emoji: string) => void; onClose: () => void }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.querySelector<HTMLElement>('button')?.focus();
    const away = (e: MouseEvent) => {
      if (ref.current && !ref.current.contains(e.target as Node)) props.onClose();
    };
    document.addEventListener('mousedown', away);
    return () => document.removeEventListener('mousedown', away);
  }, []);
  const onKey = (e: KeyboardEvent) => {
    const buttons = [...(ref.current?.querySelectorAll<HTMLButtonElement>('button') ?? [])];
    const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
    const move = (d: number) => {
      e.preventDefault();
      buttons[(i + d + buttons.length) % buttons.length]?.focus();
    };
    if (e.key === 'ArrowRight') move(1);
    else if (e.key === 'ArrowLeft') move(-1);
    else if (e.key === 'ArrowDown') move(6);
    else if (e.key === 'ArrowUp') move(-6);
    else if (e.key === 'Escape') {
      e.stopPropagation();
      props.onClose();
    }
  };
  return (
    <div class="emoji-picker" role="group" aria-label="Add a reaction" ref={ref} onKeyDown={onKey}>
      {QUICK_EMOJI.map((e) => (
        <button type="button" key={e} aria-label={`React with ${e}`} onClick={() => props.onPick(e)}>
          {e}
        </button>
      ))}
    </div>
  );
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long', day: 'numeric' });

export function timeOf(iso: string): string {
  return timeFmt.format(new Date(iso));
}

export function fullTime(iso: string): string {
  return fullFmt.format(new Date(iso));
}

export function dayKey(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function dayLabel(iso: string): string {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86_400_000);
  if (dayKey(iso) === dayKey(today.toISOString())) return 'Today';
  if (dayKey(iso) === dayKey(yesterday.toISOString())) return 'Yesterday';
  return d.getFullYear() === today.getFullYear() ? dayFmt.format(d) : dayYearFmt.format(d);
}
