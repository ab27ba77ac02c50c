// The channel's pinned messages in a side panel, kept current from live updates, with a way to
// jump to each one and to unpin it.

import { useContext, useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { on } from '../live';
import { FileCard } from './files';
import { Icon } from './icons';
import { renderMessage } from './markdown';
import { nameOf } from './people';
import type { Message } from './types';
import { errorText } from './types';
import { ChatContext, fullTime } from './ui';

export function PinsPanel(props: { channelId: string; onClose: () => void; onJump: (m: Message) => void }) {
  const ctx = useContext(ChatContext)!;
  const [pins, setPins] = useState<Message[] | null>(null);
  const [error, setError] = useState('');
  const load = () => {
    setError('');
    api('get', '/api/v1/channels/{channel_id}/pins', {
      params: { path: { channel_id: props.channelId } },
    }).then(setPins, (err) => setError(errorText(err)));
  };
  useEffect(() => {
    load();
    return on('message_updated', (ev) => {
      const m = ev.message;
      if (m.channel_id !== props.channelId) return;
      setPins((list) => {
        if (!list) return list;
        const rest = list.filter((x) => x.id !== m.id);
        return m.pinned ? [m, ...rest] : rest;
      });
    });
  }, [props.channelId]);
  return (
    <aside
      class="side-panel pins-panel"
      aria-label="Pinned messages"
      onKeyDown={(e) => e.key === 'Escape' && props.onClose()}
    >
      <header class="side-head">
        <h2>Pinned messages</h2>
        <button type="button" class="icon-btn" aria-label="Close pinned messages" onClick={props.onClose}>
          <Icon name="close" />
        </button>
      </header>
      <div class="side-body">
        {pins === null && !error && (
          <p class="muted pad" role="status">
            Loading…
          </p>
        )}
        {error && (
          <p class="inline-error pad" role="alert">
            Could not load pinned messages: {error}{' '}
            <button type="button" class="btn-small" onClick={load}>
              Retry
            </button>
          </p>
        )}
        {pins?.length === 0 && <p class="muted pad">Nothing is pinned yet. Pin important messages from their menu.</p>}
        <ul class="pin-list">
          {pins?.map((m) => (
            <li key={m.id}>
              <div class="pin-author">
                {nameOf(ctx.people, m.author_id)} · <time dateTime={m.created_at}>{fullTime(m.created_at)}</time>
              </div>
              <div class="msg-body" dangerouslySetInnerHTML={{ __html: renderMessage(m.text, ctx.people, ctx.me, ctx.peopleVersion) }} />
              {ctx.filesByMessage.get(m.id)?.map((f) => <FileCard key={f.id} file={f} />)}
              <div class="pin-actions">
                <button type="button" class="btn-small" onClick={() => props.onJump(m)}>
                  Jump to message
                </button>
                <button type="button" class="btn-small" onClick={() => ctx.actions.pin(m)}>
                  Unpin
                </button>
              </div>
            </li>
          ))}
        </ul>
      </div>
    </aside>
  );
}
