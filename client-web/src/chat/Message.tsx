// One message: author, time, sanitised body, "edited" marker (opens the edit history), file
// preview, reactions, thread summary, and its actions (react, reply, edit, pin, link, delete).
// A pending post (written offline, or not acknowledged yet) renders the same way, dimmed.

import { useContext, useEffect, useRef, useState } from 'preact/hooks';
import { presenceOf, retryPost, discardPost } from '../live';
import type { OutboxItem } from '../live';
import { Blocks } from './Blocks';
import { blocksOf } from './blockkit';
import { FileCard } from './files';
import { Icon } from './icons';
import { mentionsToNames, renderMessage } from './markdown';
import { hueOf, initials, nameOf } from './people';
import type { Message as Msg } from './types';
import { ChatContext, EmojiPicker, fullTime, timeOf } from './ui';

export interface RowProps {
  message?: Msg;
  pending?: OutboxItem;
  /** Same author as the previous row, shortly after: no header. */
  compact?: boolean;
  /** The first message of a day: a day divider above it. */
  day?: string;
  unread?: boolean;
  /** Position in the feed (the total is unknown while older history remains). */
  position?: number;
  highlight?: boolean;
  /** Shown in the thread panel: no thread summary, no "reply" action. */
  inThread?: boolean;
}

export function MessageRow(props: RowProps) {
  const ctx = useContext(ChatContext)!;
  const { message, pending } = props;
  const [picking, setPicking] = useState(false);
  const [editing, setEditing] = useState(false);
  const article = useRef<HTMLElement>(null);
  const req = ctx.editRequest;
  useEffect(() => {
    if (req && !req.done && message && req.id === message.id) {
      req.done = true;
      setEditing(true);
    }
  }, [req, message?.id]);
  const stopEditing = () => {
    setEditing(false);
    requestAnimationFrame(() => article.current?.focus());
  };
  const author = message?.author_id ?? pending?.user_id ?? '';
  const name = nameOf(ctx.people, author);
  const created = message?.created_at ?? pending?.created_at ?? new Date().toISOString();
  const text = message?.text ?? pending?.text ?? '';
  const mine = author === ctx.me;
  const files = message ? ctx.filesByMessage.get(message.id) : undefined;
  // A bot's Block Kit layout replaces its text (which is the notification's fallback).
  const blocks = message ? blocksOf(message) : undefined;
  const canModerate = ctx.channel?.my_role === 'moderator' || ctx.channel?.my_role === 'owner' || ctx.channel?.my_role === 'admin';
  const presence = presenceOf(author);
  const rowClass = [
    'msg',
    props.compact ? 'compact' : '',
    props.highlight ? 'highlight' : '',
    pending ? `pending ${pending.state}` : '',
    message?.deleted ? 'deleted' : '',
    message?.pinned ? 'pinned' : '',
  ]
    .filter(Boolean)
    .join(' ');

  return (
    <div class="msg-wrap">
      {props.day && (
        <div class="day-divider" role="separator">
          <span>{props.day}</span>
        </div>
      )}
      {props.unread && (
        <div class="unread-divider" role="separator">
          <span>New</span>
        </div>
      )}
      <article
        ref={article}
        class={rowClass}
        aria-posinset={props.position}
        aria-setsize={props.position ? -1 : undefined}
        tabIndex={0}
        aria-label={`${name}, ${fullTime(created)}`}
        data-message-id={message?.id}
        data-client-msg-id={message?.client_msg_id ?? pending?.client_msg_id}
        onKeyDown={(e) => {
          if (e.target !== e.currentTarget || !message || message.deleted) return;
          if (e.key === 'e' && mine) {
            e.preventDefault();
            setEditing(true);
          } else if (e.key === 'r' && !props.inThread) {
            e.preventDefault();
            ctx.actions.openThread(message.id);
          }
        }}
      >
        <div class="msg-gutter" aria-hidden="true">
          {props.compact ? (
            <span class="msg-time-hover">{timeOf(created)}</span>
          ) : (
            <span class="avatar" style={{ background: `hsl(${hueOf(author)} 45% 42%)` }}>
              {initials(name)}
              <span class={`presence-dot ${presence ?? 'unknown'}`} />
            </span>
          )}
        </div>
        <div class="msg-main">
          {!props.compact && (
            <header class="msg-head">
              <span class="msg-author">{name}</span>
              {presence && <span class="visually-hidden">({presence})</span>}
              <time class="msg-time" dateTime={created} title={fullTime(created)}>
                {timeOf(created)}
              </time>
              {message?.pinned && (
                <span class="pin-flag">
                  <Icon name="pin" size={13} /> Pinned
                </span>
              )}
            </header>
          )}
          {message?.deleted ? (
            <p class="msg-body deleted-text">This message was deleted.</p>
          ) : editing && message ? (
            <EditBox message={message} onDone={stopEditing} />
          ) : blocks && message ? (
            <Blocks blocks={blocks} fallback={text} messageId={message.id} />
          ) : files && files.some((f) => f.name === text.trim()) ? null : (
            <div
              class="msg-body"
              // Sanitised by DOMPurify in renderMessage.
              dangerouslySetInnerHTML={{ __html: renderMessage(text, ctx.people, ctx.me, ctx.peopleVersion) }}
            />
          )}
          {message?.edited_at && !message.deleted && !editing && (
            <button type="button" class="edited" title={`Edited ${fullTime(message.edited_at)}`} onClick={() => ctx.actions.history(message)}>
              (edited)
            </button>
          )}
          {files?.map((f) => <FileCard key={f.id} file={f} />)}
          {pending && (
            <div class="pending-state" role="status">
              {pending.state === 'failed' ? (
                <>
                  <span class="inline-error">Not sent: {pending.error ?? 'failed'}</span>
                  <button type="button" class="btn-small" onClick={() => retryPost(pending.client_msg_id)}>
                    Retry
                  </button>
                  <button type="button" class="btn-small" onClick={() => discardPost(pending.client_msg_id)}>
                    Discard
                  </button>
                </>
              ) : (
                <span>{pending.state === 'sending' ? 'Sending…' : 'Waiting for connection…'}</span>
              )}
            </div>
          )}
          {message && !message.deleted && <Reactions message={message} onAdd={() => setPicking(true)} />}
          {message && !props.inThread && message.reply_count > 0 && (
            <button type="button" class="thread-summary" onClick={() => ctx.actions.openThread(message.id)}>
              {message.reply_count === 1 ? '1 reply' : `${message.reply_count} replies`}
              {message.last_reply_at && <span class="thread-last"> · last {timeOf(message.last_reply_at)}</span>}
            </button>
          )}
        </div>
        {message && !message.deleted && !editing && (
          <div class="msg-actions" role="toolbar" aria-label="Message actions">
            <button type="button" class="icon-btn" aria-label="Add reaction" title="Add reaction" onClick={() => setPicking(true)}>
              <Icon name="smile" />
            </button>
            {!props.inThread && (
              <button type="button" class="icon-btn" aria-label="Reply in thread" title="Reply in thread" onClick={() => ctx.actions.openThread(message.id)}>
                <Icon name="reply" />
              </button>
            )}
            {mine && (
              <button type="button" class="icon-btn" aria-label="Edit message" title="Edit" onClick={() => setEditing(true)}>
                <Icon name="edit" />
              </button>
            )}
            <button
              type="button"
              class="icon-btn"
              aria-label={message.pinned ? 'Unpin message' : 'Pin message'}
              title={message.pinned ? 'Unpin' : 'Pin'}
              onClick={() => ctx.actions.pin(message)}
            >
              <Icon name="pin" />
            </button>
            <button type="button" class="icon-btn" aria-label="Copy link to message" title="Copy link" onClick={() => ctx.actions.copyLink(message)}>
              <Icon name="link" />
            </button>
            {(mine || canModerate) && (
              <button type="button" class="icon-btn danger" aria-label="Delete message" title="Delete" onClick={() => ctx.actions.remove(message)}>
                <Icon name="trash" />
              </button>
            )}
          </div>
        )}
        {picking && message && (
          <EmojiPicker
            onPick={(e) => {
              setPicking(false);
              ctx.actions.react(message, e);
            }}
            onClose={() => setPicking(false)}
          />
        )}
      </article>
    </div>
  );
}

function Reactions({ message, onAdd }: { message: Msg; onAdd: () => void }) {
  const ctx = useContext(ChatContext)!;
  const entries = Object.entries(message.reactions ?? {}).filter(([, who]) => who.length > 0);
  if (entries.length === 0) return null;
  return (
    <div class="reactions" role="group" aria-label="Reactions">
      {entries.map(([emoji, who]) => {
        const mineToo = who.includes(ctx.me);
        const names = who.map((id) => (id === ctx.me ? 'You' : nameOf(ctx.people, id))).join(', ');
        return (
          <button
            type="button"
            key={emoji}
            class={`reaction${mineToo ? ' mine' : ''}`}
            aria-pressed={mineToo}
            aria-label={`${emoji} ${who.length}: ${names}`}
            title={names}
            onClick={() => ctx.actions.react(message, emoji)}
          >
            <span class="reaction-emoji">{emoji}</span>
            <span class="reaction-count">{who.length}</span>
          </button>
        );
      })}
      <button type="button" class="reaction add" aria-label="Add reaction" onClick={onAdd}>
        +
      </button>
    </div>
  );
}

function EditBox({ message, onDone }: { message: Msg; onDone: () => void }) {
  const ctx = useContext(ChatContext)!;
  const [text, setText] = useState(() => mentionsToNames(message.text, ctx.people));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const save = async () => {
    if (!text.trim()) {
      setError('A message cannot be empty; delete it instead.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      await ctx.actions.edit(message, text);
      onDone();
    } catch (err) {
      setError(err instanceof Error ? err.message : 'Could not save the edit');
      setBusy(false);
    }
  };
  return (
    <div class="edit-box">
      <textarea
        aria-label="Edit message"
        value={text}
        rows={Math.min(8, text.split('\n').length + 1)}
        ref={(el) => {
          if (el && !el.dataset.focused) {
            el.dataset.focused = '1';
            el.focus();
            el.setSelectionRange(el.value.length, el.value.length);
          }
        }}
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            save();
          } else if (e.key === 'Escape') {
            e.preventDefault();
            e.stopPropagation();
            onDone();
          }
        }}
      />
      <div class="edit-actions">
        <button type="button" class="btn-small" onClick={onDone} disabled={busy}>
          Cancel
        </button>
        <button type="button" class="btn-small primary" onClick={save} disabled={busy}>
          {busy ? 'Saving…' : 'Save'}
        </button>
        <span class="hint">Enter to save · Esc to cancel</span>
      </div>
      {error && (
        <p class="inline-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

