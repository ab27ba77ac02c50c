// A thread in a side panel (full screen at phone width): the root, its replies live, pending
// replies, and a composer that replies in the thread.

import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { on, onOutbox, pendingPosts } from '../live';
import { Composer } from './Composer';
import { MessageRow } from './Message';
import { Icon } from './icons';
import type { Message, Person } from './types';
import { errorText, mergeMessages, replaceMessage, updateMessage } from './types';

export function ThreadPanel(props: {
  rootId: string;
  channelId: string;
  me: string;
  members: Person[];
  highlightId?: string;
  disabled?: string;
  onClose: () => void;
}) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState('');
  const [, setOutboxTick] = useState(0);
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const revealed = useRef(false);

  const load = () => {
    setLoading(true);
    setError('');
    api('get', '/api/v1/messages/{message_id}/thread', { params: { path: { message_id: props.rootId } } }).then(
      (list) => {
        setMessages((old) => mergeMessages(old, list));
        setLoading(false);
      },
      (err) => {
        setError(errorText(err));
        setLoading(false);
      },
    );
  };

  useEffect(() => {
    setMessages([]);
    stick.current = true;
    load();
    const offs = [
      on('message_created', (ev) => {
        const m = ev.message;
        if (m.thread_root_id === props.rootId) setMessages((list) => mergeMessages(list, [m]));
      }),
      on('ack', (ev) => {
        const m = ev.message;
        if (m.thread_root_id === props.rootId) setMessages((list) => mergeMessages(list, [m]));
      }),
      on('message_updated', (ev) => setMessages((list) => replaceMessage(list, ev.message))),
      on('message_deleted', (ev) =>
        setMessages((list) => updateMessage(list, ev.message_id, (m) => ({ ...m, deleted: true, text: '' }))),
      ),
      on('resync', load),
      onOutbox(() => setOutboxTick((t) => t + 1)),
    ];
    return () => offs.forEach((off) => off());
  }, [props.rootId]);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (props.highlightId && !revealed.current && !loading) {
      const target = el.querySelector(`[data-message-id="${props.highlightId}"]`);
      if (target) {
        revealed.current = true;
        stick.current = false;
        target.scrollIntoView({ block: 'center' });
      }
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  });

  const root = messages.find((m) => m.id === props.rootId);
  const replies = messages.filter((m) => m.id !== props.rootId);
  const pending = pendingPosts(props.channelId, props.rootId).filter(
    (p) => !replies.some((m) => m.client_msg_id === p.client_msg_id),
  );

  return (
    <aside
      class="side-panel thread-panel"
      aria-label="Thread"
      onKeyDown={(e) => {
        if (e.key === 'Escape') {
          e.preventDefault();
          props.onClose();
        }
      }}
    >
      <header class="side-head">
        <h2>Thread</h2>
        <button type="button" class="icon-btn" aria-label="Close thread" onClick={props.onClose}>
          <Icon name="close" />
        </button>
      </header>
      <div
        class="side-body"
        ref={scroller}
        onScroll={(e) => {
          const el = e.currentTarget as HTMLDivElement;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        {loading && messages.length === 0 && (
          <p class="muted pad" role="status">
            Loading thread…
          </p>
        )}
        {error && (
          <div class="inline-error pad" role="alert">
            Could not load the thread: {error}{' '}
            <button type="button" class="btn-small" onClick={load}>
              Retry
            </button>
          </div>
        )}
        {root && <MessageRow message={root} inThread highlight={props.highlightId === root.id} />}
        {root && (
          <div class="reply-divider" role="separator">
            <span>{replies.length === 1 ? '1 reply' : `${replies.length} replies`}</span>
          </div>
        )}
        <div role="list" aria-label="Replies">
          {replies.map((m) => (
            <div role="listitem" key={m.client_msg_id ?? m.id}>
              <MessageRow message={m} inThread highlight={props.highlightId === m.id} />
            </div>
          ))}
          {pending.map((p) => (
            <div role="listitem" key={p.client_msg_id}>
              <MessageRow pending={p} inThread />
            </div>
          ))}
        </div>
      </div>
      <Composer
        me={props.me}
        channelId={props.channelId}
        threadRootId={props.rootId}
        label="Reply in thread"
        placeholder="Reply…"
        members={props.members}
        disabled={props.disabled}
        onSent={() => (stick.current = true)}
      />
    </aside>
  );
}
