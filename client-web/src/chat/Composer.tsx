// The message composer: Enter sends, Shift+Enter adds a line; `@` opens autocomplete over the
// channel's members; files come in by paste or the attach button; typing notices are sent
// (throttled). Posts go to the live outbox, so they are kept and sent later when offline.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { post, send } from '../live';
import { Icon } from './icons';
import { namesToMentions } from './markdown';
import type { Person, SlashCommand } from './types';

const TYPING_EVERY_MS = 3000;
/** The server's limit on a message's Markdown source. */
const MAX_BYTES = 16 * 1024;

function draftKey(channelId: string, root: string | null) {
  return `concord.draft.${channelId}${root ? `.${root}` : ''}`;
}

export function Composer(props: {
  me: string;
  channelId: string;
  threadRootId?: string | null;
  label: string;
  placeholder: string;
  members: Person[];
  disabled?: string;
  onFiles?: (files: File[]) => void;
  onSent?: () => void;
  /** Up arrow in an empty composer: edit your last message (returns whether there was one). */
  onEditLast?: () => boolean;
  autoFocus?: boolean;
  /** Slash commands offered as `/` is typed (top-level composers only). */
  commands?: SlashCommand[];
  /** Runs a slash command typed here instead of posting it. */
  onCommand?: (command: string, text: string) => void;
}) {
  const root = props.threadRootId ?? null;
  const key = draftKey(props.channelId, root);
  const [text, setText] = useState(() => localStorage.getItem(key) ?? '');
  const [query, setQuery] = useState<{ start: number; q: string } | null>(null);
  const [active, setActive] = useState(0);
  const [tooLong, setTooLong] = useState('');
  const area = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const lastTyping = useRef(0);
  const mentioned = useRef(new Map<string, Person>());
  const listId = `mentions-${root ?? props.channelId}`;
  const commandListId = `commands-${props.channelId}`;
  const [commandActive, setCommandActive] = useState(0);
  const commandMatches = useMemo(() => {
    if (root || !props.onCommand || !/^\/[^\s]*$/.test(text)) return [];
    const typed = text.toLowerCase();
    return (props.commands ?? []).filter((c) => c.command.startsWith(typed)).slice(0, 8);
  }, [text, root, props.commands, props.onCommand]);
  const pickCommand = (c: SlashCommand) => {
    const next = `${c.command} `;
    const el = area.current;
    if (el) {
      el.value = next;
      el.focus();
      el.setSelectionRange(next.length, next.length);
    }
    setText(next);
    setCommandActive(0);
  };

  // Another channel or thread: its own draft. Not on mount, where the state already holds the
  // draft and the effect (run after paint) would wipe what was typed in the first moments.
  const shownKey = useRef(key);
  useEffect(() => {
    if (shownKey.current !== key) {
      shownKey.current = key;
      setText(localStorage.getItem(key) ?? '');
      mentioned.current.clear();
    }
    if (props.autoFocus !== false && !matchMedia('(pointer: coarse)').matches) area.current?.focus();
  }, [key]);

  useEffect(() => {
    const t = setTimeout(() => {
      if (text) localStorage.setItem(key, text);
      else localStorage.removeItem(key);
    }, 300);
    return () => clearTimeout(t);
  }, [text, key]);

  useEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 200)}px`;
  }, [text]);

  const matches = useMemo(() => {
    if (!query) return [];
    const q = query.q.toLowerCase();
    return props.members
      .filter((p) => p.user_id !== props.me)
      .filter((p) => !q || p.display_name.toLowerCase().includes(q) || p.email.toLowerCase().startsWith(q))
      .sort((a, b) => {
        const as = a.display_name.toLowerCase().startsWith(q) ? 0 : 1;
        const bs = b.display_name.toLowerCase().startsWith(q) ? 0 : 1;
        return as - bs || a.display_name.localeCompare(b.display_name);
      })
      .slice(0, 8);
  }, [query, props.members, props.me]);

  const detect = (value: string, caret: number) => {
    const before = value.slice(0, caret);
    const m = before.match(/(^|[\s(])@([^\s@]{0,30})$/);
    if (m) {
      setQuery({ start: caret - m[2].length - 1, q: m[2] });
      setActive(0);
    } else {
      setQuery(null);
    }
  };

  const pick = (p: Person) => {
    if (!query) return;
    const el = area.current;
    const caret = el?.selectionStart ?? text.length;
    const insert = `@${p.display_name} `;
    const next = text.slice(0, query.start) + insert + text.slice(caret);
    mentioned.current.set(p.user_id, p);
    // The caret moves in the same task as the text: a key pressed right after picking must
    // land after the mention, not before it (no frame in between for it to slip into).
    if (el) {
      const pos = query.start + insert.length;
      el.value = next;
      el.focus();
      el.setSelectionRange(pos, pos);
    }
    setText(next);
    setQuery(null);
  };

  const clear = () => {
    setText('');
    localStorage.removeItem(key);
    mentioned.current.clear();
    setQuery(null);
    lastTyping.current = 0;
  };

  const submit = () => {
    let raw = text.trim();
    if (!raw || props.disabled) return;
    if (!root && props.onCommand && raw.startsWith('/')) {
      if (raw.startsWith('//')) {
        // `//` sends the text as a message, starting with one `/`.
        raw = raw.slice(1);
      } else {
        const m = raw.match(/^(\/[\p{L}\p{N}_-]+)(?:\s+([\s\S]*))?$/u);
        if (m) {
          const name = m[1].toLowerCase();
          if ((props.commands ?? []).some((c) => c.command === name)) {
            setTooLong('');
            props.onCommand(name, m[2] ?? '');
            clear();
            props.onSent?.();
            return;
          }
          setTooLong(`${name} is not a command here. To send this as a message, start it with //.`);
          return;
        }
      }
    }
    const body = namesToMentions(raw, mentioned.current.values());
    const bytes = new TextEncoder().encode(body).length;
    if (bytes > MAX_BYTES) {
      setTooLong(`This message is too long (${bytes.toLocaleString()} of ${MAX_BYTES.toLocaleString()} bytes). Shorten it or share it as a file.`);
      return;
    }
    setTooLong('');
    post({ user_id: props.me, channel_id: props.channelId, text: body, thread_root_id: root });
    clear();
    props.onSent?.();
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (commandMatches.length > 0) {
      const current = commandMatches[commandActive % commandMatches.length];
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const step = e.key === 'ArrowDown' ? 1 : commandMatches.length - 1;
        setCommandActive((a) => (a + step) % commandMatches.length);
        return;
      }
      if (e.key === 'Tab' || (e.key === 'Enter' && !e.shiftKey && current.command !== text.toLowerCase())) {
        e.preventDefault();
        pickCommand(current);
        return;
      }
    }
    if (query && matches.length > 0) {
      if (e.key === 'ArrowDown') {
        e.preventDefault();
        setActive((a) => (a + 1) % matches.length);
        return;
      }
      if (e.key === 'ArrowUp') {
        e.preventDefault();
        setActive((a) => (a - 1 + matches.length) % matches.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        pick(matches[active]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        setQuery(null);
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === 'ArrowUp' && !text && props.onEditLast?.()) {
      e.preventDefault();
    }
  };

  const onInput = (e: Event) => {
    const el = e.target as HTMLTextAreaElement;
    setText(el.value);
    setCommandActive(0);
    if (tooLong) setTooLong('');
    detect(el.value, el.selectionStart ?? el.value.length);
    const now = Date.now();
    if (el.value.trim() && now - lastTyping.current > TYPING_EVERY_MS) {
      lastTyping.current = now;
      send({ type: 'typing', channel_id: props.channelId });
    }
  };

  const onPaste = (e: ClipboardEvent) => {
    const files = [...(e.clipboardData?.files ?? [])];
    if (files.length > 0 && props.onFiles) {
      e.preventDefault();
      props.onFiles(files);
    }
  };

  const open = !!query && matches.length > 0;
  const commandsOpen = commandMatches.length > 0;
  return (
    <div class={`composer${props.disabled ? ' disabled' : ''}`}>
      {commandsOpen && (
        <ul class="mention-list command-list" id={commandListId} role="listbox" aria-label="Commands">
          {commandMatches.map((c, i) => (
            <li
              key={c.command}
              id={`${commandListId}-${i}`}
              role="option"
              aria-selected={i === commandActive % commandMatches.length}
              class={i === commandActive % commandMatches.length ? 'active' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                pickCommand(c);
              }}
            >
              <strong>{c.command}</strong> {c.usage_hint && <code>{c.usage_hint}</code>} <span class="muted">{c.description}</span>
            </li>
          ))}
        </ul>
      )}
      {open && (
        <ul class="mention-list" id={listId} role="listbox" aria-label="People to mention">
          {matches.map((p, i) => (
            <li
              key={p.user_id}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === active}
              class={i === active ? 'active' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(p);
              }}
            >
              <strong>{p.display_name}</strong> <span class="muted">{p.email}</span>
            </li>
          ))}
        </ul>
      )}
      <div class="composer-box">
        {props.onFiles && (
          <>
            <button
              type="button"
              class="icon-btn attach"
              aria-label="Attach files"
              title="Attach files"
              disabled={!!props.disabled}
              onClick={() => fileInput.current?.click()}
            >
              <Icon name="clip" />
            </button>
            <input
              ref={fileInput}
              type="file"
              multiple
              hidden
              aria-hidden="true"
              tabIndex={-1}
              onChange={(e) => {
                const input = e.target as HTMLInputElement;
                const files = [...(input.files ?? [])];
                input.value = '';
                if (files.length) props.onFiles?.(files);
              }}
            />
          </>
        )}
        <textarea
          ref={area}
          rows={1}
          value={text}
          aria-label={props.label}
          placeholder={props.disabled ?? props.placeholder}
          disabled={!!props.disabled}
          role="combobox"
          aria-autocomplete="list"
          aria-expanded={open || commandsOpen}
          aria-controls={open ? listId : commandsOpen ? commandListId : undefined}
          aria-activedescendant={
            open ? `${listId}-${active}` : commandsOpen ? `${commandListId}-${commandActive % commandMatches.length}` : undefined
          }
          onInput={onInput}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
          onClick={(e) => {
            const el = e.target as HTMLTextAreaElement;
            detect(el.value, el.selectionStart ?? 0);
          }}
          onBlur={() => setTimeout(() => setQuery(null), 150)}
        />
        <button type="button" class="send-btn" aria-label="Send message" disabled={!text.trim() || !!props.disabled} onClick={submit}>
          Send
        </button>
      </div>
      {tooLong && (
        <p class="inline-error" role="alert">
          {tooLong}
        </p>
      )}
      <p class="composer-hint" aria-hidden="true">
        <kbd>Enter</kbd> to send · <kbd>Shift</kbd>+<kbd>Enter</kbd> for a new line · <kbd>@</kbd> to mention{props.commands?.length ? <> · <kbd>/</kbd> for commands</> : null}
      </p>
    </div>
  );
}
