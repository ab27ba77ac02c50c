// The workspace's documents: who can do what with each, and a form to create one.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import {
  ACCESS_LABEL,
  ago,
  type Channel,
  docsApi,
  type DocumentInfo,
  errorText,
  fullTime,
  type GeneralAccess,
  LEVEL_LABEL,
} from './model';

interface Props {
  workspaceId: string;
  navigate: (path: string) => void;
}

type Load<T> = { state: 'loading' } | { state: 'error'; message: string } | { state: 'ready'; data: T };

export function DocumentList({ workspaceId, navigate }: Props) {
  const [docs, setDocs] = useState<Load<DocumentInfo[]>>({ state: 'loading' });
  const [channels, setChannels] = useState<Channel[]>([]);
  const [filter, setFilter] = useState('');
  const [attempt, setAttempt] = useState(0);
  const [creating, setCreating] = useState(false);
  const newButton = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    let live = true;
    setDocs({ state: 'loading' });
    docsApi
      .list(workspaceId)
      .then((data) => {
        if (!live) return;
        data.sort((a, b) => b.updated_at.localeCompare(a.updated_at));
        setDocs({ state: 'ready', data });
      })
      .catch((e) => live && setDocs({ state: 'error', message: errorText(e) }));
    docsApi
      .channels(workspaceId)
      .then((c) => live && setChannels(c.filter((x) => x.name && !x.archived)))
      .catch(() => live && setChannels([]));
    return () => {
      live = false;
    };
  }, [workspaceId, attempt]);

  useEffect(() => {
    document.title = 'Documents · Concord';
  }, []);

  const channelName = useMemo(() => {
    const m = new Map<string, string>();
    channels.forEach((c) => c.name && m.set(c.id, c.name));
    return m;
  }, [channels]);

  const shown =
    docs.state === 'ready'
      ? docs.data.filter((d) => d.title.toLowerCase().includes(filter.trim().toLowerCase()))
      : [];

  const open = (id: string) => navigate(`/w/${workspaceId}/d/${id}`);

  return (
    <section class="dx-page" aria-labelledby="dx-list-title">
      <header class="dx-list-head">
        <h1 id="dx-list-title">Documents</h1>
        <button
          ref={newButton}
          type="button"
          class="dx-btn dx-btn-primary"
          onClick={() => setCreating(true)}
        >
          New document
        </button>
      </header>

      {docs.state === 'ready' && docs.data.length > 0 && (
        <div class="dx-filter">
          <label for="dx-filter-input" class="dx-visually-hidden">
            Filter documents by title
          </label>
          <input
            id="dx-filter-input"
            type="search"
            placeholder="Filter by title"
            value={filter}
            onInput={(e) => setFilter(e.currentTarget.value)}
          />
        </div>
      )}

      {docs.state === 'loading' && (
        <p class="dx-muted" role="status">
          Loading documents…
        </p>
      )}
      {docs.state === 'error' && (
        <div class="dx-error" role="alert">
          <p>Could not load the documents: {docs.message}</p>
          <button type="button" class="dx-btn" onClick={() => setAttempt((n) => n + 1)}>
            Try again
          </button>
        </div>
      )}
      {docs.state === 'ready' && docs.data.length === 0 && (
        <div class="dx-empty">
          <p>No documents yet.</p>
          <p class="dx-muted">Write meeting notes, plans and specs together, live.</p>
          <button type="button" class="dx-btn dx-btn-primary" onClick={() => setCreating(true)}>
            Create the first document
          </button>
        </div>
      )}
      {docs.state === 'ready' && docs.data.length > 0 && (
        <>
          <ul class="dx-doc-list" aria-label="Documents">
            {shown.map((d) => (
              <li key={d.id}>
                <a
                  class="dx-doc-row"
                  href={`/w/${workspaceId}/d/${d.id}`}
                  onClick={(e) => {
                    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
                    e.preventDefault();
                    open(d.id);
                  }}
                >
                  <span class="dx-doc-icon" aria-hidden="true">
                    ▤
                  </span>
                  <span class="dx-doc-main">
                    <span class="dx-doc-title">{d.title}</span>
                    <span class="dx-doc-meta">
                      <time dateTime={d.updated_at} title={fullTime(d.updated_at)}>
                        Updated {ago(d.updated_at)}
                      </time>
                      <span aria-hidden="true"> · </span>
                      <span>{whoCanEdit(d, channelName)}</span>
                    </span>
                  </span>
                  <span class={`dx-badge dx-badge-${d.my_access}`}>{LEVEL_LABEL[d.my_access]}</span>
                </a>
              </li>
            ))}
          </ul>
          {shown.length === 0 && <p class="dx-muted">No document title matches “{filter}”.</p>}
        </>
      )}

      {creating && (
        <CreateDialog
          workspaceId={workspaceId}
          channels={channels}
          onClose={() => {
            setCreating(false);
            newButton.current?.focus();
          }}
          onCreated={(d) => open(d.id)}
        />
      )}
    </section>
  );
}

/** Who may change the document, in a few words. */
function whoCanEdit(d: DocumentInfo, channelName: Map<string, string>): string {
  const parts: string[] = [];
  if (d.general_access === 'edit') parts.push('Everyone in the workspace can edit');
  else {
    if (d.channel_id) {
      const name = channelName.get(d.channel_id);
      parts.push(name ? `Members of #${name} can edit` : 'Channel members can edit');
    }
    if (d.general_access === 'view' || d.general_access === 'comment')
      parts.push(`workspace can ${d.general_access}`);
    if (parts.length === 0) parts.push('Shared with specific people');
  }
  const text = parts.join('; ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function CreateDialog(props: {
  workspaceId: string;
  channels: Channel[];
  onClose: () => void;
  onCreated: (d: DocumentInfo) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [title, setTitle] = useState('');
  const [channel, setChannel] = useState('');
  const [access, setAccess] = useState<GeneralAccess>('none');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);

  const submit = async (e: Event) => {
    e.preventDefault();
    const t = title.trim();
    if (!t) {
      setError('Give the document a title.');
      return;
    }
    setBusy(true);
    setError('');
    try {
      const doc = await docsApi.create(props.workspaceId, {
        title: t,
        ...(channel ? { channel_id: channel } : {}),
        general_access: access,
      });
      props.onCreated(doc);
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  return (
    <dialog
      ref={ref}
      class="dx-dialog"
      aria-labelledby="dx-create-title"
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) props.onClose();
      }}
    >
      <form onSubmit={submit} noValidate>
        <h2 id="dx-create-title">New document</h2>
        <div class="dx-field">
          <label for="dx-new-title">Title</label>
          <input
            id="dx-new-title"
            type="text"
            required
            maxLength={200}
            autoFocus
            value={title}
            aria-invalid={error && !title.trim() ? 'true' : undefined}
            onInput={(e) => setTitle(e.currentTarget.value)}
          />
        </div>
        <div class="dx-field">
          <label for="dx-new-channel">Linked channel</label>
          <select
            id="dx-new-channel"
            value={channel}
            onChange={(e) => setChannel(e.currentTarget.value)}
            aria-describedby="dx-new-channel-help"
          >
            <option value="">None</option>
            {props.channels.map((c) => (
              <option key={c.id} value={c.id}>
                #{c.name}
              </option>
            ))}
          </select>
          <p id="dx-new-channel-help" class="dx-help">
            Members of the linked channel can edit.
          </p>
        </div>
        <div class="dx-field">
          <label for="dx-new-access">Everyone in the workspace</label>
          <select
            id="dx-new-access"
            value={access}
            onChange={(e) => setAccess(e.currentTarget.value as GeneralAccess)}
          >
            <option value="none">No access</option>
            <option value="view">Can view</option>
            <option value="comment">Can comment</option>
            <option value="edit">Can edit</option>
          </select>
          <p class="dx-help">{ACCESS_LABEL[access]}. You can always edit and share it.</p>
        </div>
        {error && (
          <p class="dx-error-text" role="alert">
            {error}
          </p>
        )}
        <div class="dx-dialog-actions">
          <button type="button" class="dx-btn" onClick={props.onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="dx-btn dx-btn-primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create document'}
          </button>
        </div>
      </form>
    </dialog>
  );
}
