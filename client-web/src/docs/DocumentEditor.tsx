// The co-editing editor: TipTap (StarterKit without its own history: Yjs provides undo) bound
// to the document's `prosemirror` XML fragment, synced through Concord's Yjs endpoint with the
// stock y-websocket provider. Remote carets carry each person's name and colour.
//
// This module and everything it imports (TipTap, ProseMirror, Yjs) form a chunk of their own.
import { Editor } from '@tiptap/core';
import Collaboration from '@tiptap/extension-collaboration';
import CollaborationCaret from '@tiptap/extension-collaboration-caret';
import StarterKit from '@tiptap/starter-kit';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { accessToken, api, type Me } from '../api';
import { ShareDialog } from './ShareDialog';
import { Toolbar } from './Toolbar';
import { VersionsPanel } from './VersionsPanel';
import {
  accessLabel,
  canEdit,
  colourFor,
  docsApi,
  type DocumentInfo,
  download,
  errorText,
  type ExportFormat,
  LEVEL_LABEL,
  wsUrl,
} from './model';

interface Props {
  workspaceId: string;
  documentId: string;
  me: Me;
  navigate: (path: string) => void;
}

type Conn = 'connecting' | 'connected' | 'disconnected';

interface Person {
  clientId: number;
  id: string;
  name: string;
  color: string;
}

/** Why the live connection ended for good (a 44xx close from the server). */
interface Fatal {
  code: number;
  message: string;
}

export default function DocumentEditor({ workspaceId, documentId, me, navigate }: Props) {
  const [info, setInfo] = useState<DocumentInfo | null>(null);
  const [loadError, setLoadError] = useState('');
  const [self, setSelf] = useState<Me | null>(me.display_name ? me : null);
  const [editor, setEditor] = useState<Editor | null>(null);
  const [conn, setConn] = useState<Conn>('connecting');
  const [synced, setSynced] = useState(false);
  /** Whether the current connection has exchanged state with the server. */
  const [inSync, setInSync] = useState(false);
  /** Changes made while the connection was down, not yet sent. */
  const [unsent, setUnsent] = useState(false);
  const [fatal, setFatal] = useState<Fatal | null>(null);
  const [readOnlyByServer, setReadOnlyByServer] = useState(false);
  const [people, setPeople] = useState<Person[]>([]);
  const [showVersions, setShowVersions] = useState(false);
  const [showShare, setShowShare] = useState(false);
  const [channelName, setChannelName] = useState('');
  const shareButton = useRef<HTMLButtonElement>(null);
  const [notice, setNotice] = useState('');
  const mount = useRef<HTMLDivElement>(null);
  const listHref = `/w/${workspaceId}/d`;

  // The document's details and who I am.
  useEffect(() => {
    let live = true;
    docsApi
      .get(documentId)
      .then((d) => {
        if (!live) return;
        setInfo(d);
        document.title = `${d.title} · Concord`;
      })
      .catch((e) => live && setLoadError(errorText(e)));
    if (!me.display_name) {
      api('get', '/api/v1/users/me')
        .then((m) => live && setSelf(m))
        .catch(() => live && setSelf({ id: me.id || 'me', email: me.email, display_name: 'Me' }));
    }
    return () => {
      live = false;
    };
  }, [documentId]);

  // The linked channel's name, for the access summary.
  useEffect(() => {
    if (!info?.channel_id) {
      setChannelName('');
      return;
    }
    let live = true;
    const id = info.channel_id;
    api('get', '/api/v1/channels/{channel_id}', { params: { path: { channel_id: id } } })
      .then((c) => live && setChannelName(c.name ?? ''))
      .catch(() => live && setChannelName(''));
    return () => {
      live = false;
    };
  }, [info?.channel_id]);

  const editable = !!info && canEdit(info.my_access) && !readOnlyByServer;

  // The live session: a Yjs document, the provider, and the editor bound to them.
  useEffect(() => {
    if (!info || !self || !mount.current) return;
    let disposed = false;
    let provider: WebsocketProvider | null = null;
    let ed: Editor | null = null;
    let refreshTimer = 0;
    const ydoc = new Y.Doc();
    const element = mount.current;

    // The token travels in the WebSocket subprotocol header, never in the URL (which proxies
    // log); the server answers with the first one.
    const protocolsFor = (token: string) => ['concord.yjs.v1', `concord.bearer.${token}`];
    const freshToken = async () => {
      const token = await accessToken();
      if (provider) provider.protocols = protocolsFor(token);
      return token;
    };

    (async () => {
      let token: string;
      try {
        token = await accessToken();
      } catch (e) {
        if (!disposed) setFatal({ code: 4401, message: errorText(e) });
        return;
      }
      if (disposed) return;
      const p = new WebsocketProvider(wsUrl('/api/v1/yjs'), documentId, ydoc, {
        protocols: protocolsFor(token),
        maxBackoffTime: 10_000,
        // The provider drops a socket that received nothing for 30 s; the server's keep-alive
        // pings are invisible to browsers, so ask for the server's state now and then instead.
        resyncInterval: 20_000,
      });
      provider = p;
      p.on('status', ({ status }) => {
        if (disposed) return;
        setConn(status);
        if (status !== 'connected') setInSync(false);
      });
      let authRetries = 0;
      p.on('sync', (s: boolean) => {
        if (disposed) return;
        setInSync(s);
        if (!s) return;
        authRetries = 0;
        setSynced(true);
        setUnsent(false);
      });
      // Access tokens expire: every new connection carries a current one.
      p.on('connection-close', () => {
        freshToken().catch(() => undefined);
      });
      p.on('closed', ({ code, reason }) => {
        if (disposed) return;
        if (code === 4401 && authRetries < 3) {
          authRetries++;
          freshToken()
            .then(() => !disposed && p.connect())
            .catch((e) => !disposed && setFatal({ code, message: errorText(e) }));
          return;
        }
        setFatal({ code, message: closeMessage(code, reason) });
      });
      // Edits made offline stay in memory until the connection is back: remember that they
      // exist so the page can warn before they are lost.
      ydoc.on('update', (_update: Uint8Array, origin: unknown) => {
        if (!disposed && origin !== p && !p.wsconnected) setUnsent(true);
      });
      refreshTimer = window.setInterval(() => {
        freshToken().catch(() => undefined);
      }, 60_000);

      const color = colourFor(self.id || self.email || self.display_name);
      ed = new Editor({
        element,
        editable: canEdit(info.my_access),
        extensions: [
          StarterKit.configure({ undoRedo: false, link: { openOnClick: false } }),
          Collaboration.configure({ document: ydoc, field: 'prosemirror' }),
          CollaborationCaret.configure({
            provider: p,
            user: { id: self.id, name: self.display_name, color },
            render: renderCaret,
          }),
        ],
        editorProps: {
          attributes: {
            id: 'dx-editor-content',
            class: 'dx-prose',
            role: 'textbox',
            'aria-multiline': 'true',
            'aria-label': `${info.title}: document content`,
            'aria-description': 'Press Alt+F10 for the formatting toolbar',
          },
        },
      });
      setEditor(ed);

      const updatePeople = () => {
        if (disposed) return;
        const seen = new Map<string, Person>();
        p.awareness.getStates().forEach((state, clientId) => {
          if (clientId === ydoc.clientID) return;
          const u = state.user as { id?: string; name?: string; color?: string } | undefined;
          if (!u?.name) return;
          const id = u.id || String(clientId);
          if (id === self.id) return;
          if (!seen.has(id)) seen.set(id, { clientId, id, name: u.name, color: u.color ?? '#777' });
        });
        setPeople([...seen.values()]);
      };
      p.awareness.on('change', updatePeople);
      updatePeople();
    })();

    return () => {
      disposed = true;
      window.clearInterval(refreshTimer);
      setEditor(null);
      ed?.destroy();
      provider?.destroy();
      ydoc.destroy();
    };
  }, [info?.id, self?.id]);

  useEffect(() => {
    if (!unsent) return;
    const warn = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = '';
    };
    addEventListener('beforeunload', warn);
    return () => removeEventListener('beforeunload', warn);
  }, [unsent]);

  // View-only access (or a server that refused our changes) makes the editor read-only.
  useEffect(() => {
    if (!editor) return;
    const allowed = editable && !fatal;
    if (editor.isEditable !== allowed) editor.setEditable(allowed);
    editor.view.dom.setAttribute('aria-readonly', String(!allowed));
  }, [editor, editable, fatal]);

  // The server says "read-only" when it drops an update: re-read my access.
  useEffect(() => {
    if (!fatal || fatal.code !== 4403) return;
    docsApi
      .get(documentId)
      .then((d) => {
        setInfo((old) => (old ? { ...old, my_access: d.my_access } : d));
        setReadOnlyByServer(true);
      })
      .catch(() => undefined);
  }, [fatal]);

  const exportAs = async (format: ExportFormat) => {
    setNotice('');
    try {
      const ext = format === 'markdown' ? 'md' : format === 'json' ? 'json' : 'txt';
      await download(
        `/api/v1/documents/${documentId}/export?format=${format}`,
        `${info?.title ?? 'document'}.${ext}`,
      );
    } catch (e) {
      setNotice(`Export failed: ${errorText(e)}`);
    }
  };

  if (loadError) {
    return (
      <section class="dx-page" aria-labelledby="dx-doc-error">
        <BackLink href={listHref} navigate={navigate} />
        <div class="dx-error" role="alert">
          <h1 id="dx-doc-error">This document could not be opened</h1>
          <p>{loadError}</p>
        </div>
      </section>
    );
  }

  const status = useSteadyStatus(statusOf(conn, synced, inSync, fatal, editable, info, unsent));

  return (
    <section class="dx-editor-page" aria-labelledby="dx-doc-title">
      <header class="dx-editor-head">
        <div class="dx-editor-head-row">
          <BackLink href={listHref} navigate={navigate} />
          <div class="dx-editor-actions">
            <Presence people={people} />
            <span class={`dx-status dx-status-${status.tone}`} role="status" aria-live="polite">
              <span class="dx-status-dot" aria-hidden="true" />
              {status.text}
            </span>
            <button
              type="button"
              class="dx-btn"
              aria-expanded={showVersions}
              aria-controls="dx-versions"
              onClick={() => setShowVersions((v) => !v)}
              disabled={!info}
            >
              Versions
            </button>
            <ExportMenu onExport={exportAs} disabled={!info} />
            {info?.my_access === 'manage' && (
              <button
                ref={shareButton}
                type="button"
                class="dx-btn dx-btn-primary"
                aria-haspopup="dialog"
                onClick={() => setShowShare(true)}
              >
                Share
              </button>
            )}
          </div>
        </div>
        <TitleLine info={info} channelName={channelName} onRenamed={(d) => setInfo(d)} />
        {notice && (
          <p class="dx-error-text" role="alert">
            {notice}
          </p>
        )}
      </header>
      <div class="dx-editor-body">
        <div
          class="dx-editor-column"
          onKeyDown={(e) => {
            // Alt+F10 moves to the toolbar, as in other editors; Escape there comes back.
            if (e.altKey && e.key === 'F10') {
              const tool = e.currentTarget.querySelector<HTMLElement>('.dx-toolbar [tabindex="0"]');
              if (tool) {
                e.preventDefault();
                tool.focus();
              }
            }
          }}
        >
          {editable && editor && !fatal && <Toolbar editor={editor} />}
          {fatal && (
            <div class="dx-banner" role="alert">
              {fatal.message}
              {fatal.code !== 4403 && (
                <button type="button" class="dx-btn" onClick={() => location.reload()}>
                  Reload
                </button>
              )}
            </div>
          )}
          {!synced && !fatal && (
            <p class="dx-muted dx-loading-inline" role="status">
              Loading the latest content…
            </p>
          )}
          <div ref={mount} class="dx-editor-mount" data-synced={synced ? 'true' : 'false'} />
        </div>
        {showVersions && info && (
          <VersionsPanel
            workspaceId={workspaceId}
            documentId={documentId}
            canEdit={editable && !fatal}
            onClose={() => setShowVersions(false)}
          />
        )}
      </div>
      {showShare && info && (
        <ShareDialog
          info={info}
          onChanged={(d) => setInfo(d)}
          onClose={() => {
            setShowShare(false);
            shareButton.current?.focus();
          }}
        />
      )}
    </section>
  );
}

type Status = { text: string; tone: 'ok' | 'wait' | 'bad' | 'info' };

/**
 * The status to show: good news at once, a drop after it has lasted a moment. The provider
 * reconnects an idle socket now and then, which should not flash "offline".
 */
function useSteadyStatus(next: Status): Status {
  const [shown, setShown] = useState(next);
  const firstLoad = next.text === 'Connecting…' && shown.text === 'Connecting…';
  useEffect(() => {
    if (next.text === shown.text) return;
    if (next.tone === 'ok' || next.tone === 'info' || firstLoad || next.text === 'No access' || next.text === 'Disconnected') {
      setShown(next);
      return;
    }
    const t = setTimeout(() => setShown(next), 1500);
    return () => clearTimeout(t);
  }, [next.text, next.tone]);
  return shown;
}

function closeMessage(code: number, reason: string): string {
  switch (code) {
    case 4401:
      return 'Your session ended. Sign in again to keep editing.';
    case 4440:
      return 'You were signed out after a period of inactivity. Sign in again to keep editing.';
    case 4403:
      return reason
        ? `You no longer have access to this document (${reason}).`
        : 'You no longer have access to this document.';
    case 4413:
      return 'This document has reached its size limit; new changes are not saved.';
    case 4400:
      return 'The server could not read a change from this editor. Reload to continue.';
    default:
      return reason || `The connection closed (${code}).`;
  }
}

function statusOf(
  conn: Conn,
  synced: boolean,
  inSync: boolean,
  fatal: Fatal | null,
  editable: boolean,
  info: DocumentInfo | null,
  unsent: boolean,
): Status {
  if (fatal) return { text: fatal.code === 4403 ? 'No access' : 'Disconnected', tone: 'bad' };
  if (conn !== 'connected' && unsent)
    return { text: 'Offline · changes will sync', tone: 'bad' };
  // Once loaded, any loss of the connection is "offline" (the provider keeps retrying).
  if (conn === 'disconnected' || (conn === 'connecting' && synced))
    return { text: 'Offline, reconnecting…', tone: 'bad' };
  if (conn === 'connecting' || !synced) return { text: 'Connecting…', tone: 'wait' };
  if (!inSync) return { text: 'Syncing…', tone: 'wait' };
  if (info && !editable) return { text: `Live · ${LEVEL_LABEL[info.my_access].replace('Can ', '')} only`, tone: 'info' };
  return { text: 'Live', tone: 'ok' };
}

/** A remote caret: a coloured bar and the person's name (built as DOM text, never HTML). */
function renderCaret(user: Record<string, unknown>): HTMLElement {
  const caret = document.createElement('span');
  caret.className = 'collaboration-carets__caret';
  const color = typeof user.color === 'string' ? user.color : '#777777';
  caret.style.borderColor = color;
  const name = typeof user.name === 'string' ? user.name : 'Someone';
  caret.setAttribute('data-user', name);
  const label = document.createElement('span');
  label.className = 'collaboration-carets__label';
  label.style.backgroundColor = color;
  label.textContent = name;
  caret.appendChild(label);
  return caret;
}

function BackLink({ href, navigate }: { href: string; navigate: (p: string) => void }) {
  return (
    <a
      class="dx-back"
      href={href}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      <span aria-hidden="true">←</span> All documents
    </a>
  );
}

function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return ((parts[0]?.[0] ?? '?') + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
}

function Presence({ people }: { people: Person[] }) {
  if (people.length === 0) return null;
  const names = people.map((p) => p.name).join(', ');
  return (
    <ul class="dx-presence" aria-label={`Also here: ${names}`}>
      {people.slice(0, 5).map((p) => (
        <li key={p.id} class="dx-avatar" style={{ backgroundColor: p.color }} title={p.name}>
          <span aria-hidden="true">{initials(p.name)}</span>
          <span class="dx-visually-hidden">{p.name}</span>
        </li>
      ))}
      {people.length > 5 && (
        <li class="dx-avatar dx-avatar-more" title={names}>
          +{people.length - 5}
        </li>
      )}
    </ul>
  );
}

function TitleLine({
  info,
  channelName,
  onRenamed,
}: {
  info: DocumentInfo | null;
  channelName: string;
  onRenamed: (d: DocumentInfo) => void;
}) {
  const [editing, setEditing] = useState(false);
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const input = useRef<HTMLInputElement>(null);
  const button = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (editing) input.current?.select();
  }, [editing]);

  const access = useMemo(() => {
    if (!info) return '';
    const linked = info.channel_id ? (channelName ? ` · #${channelName} can edit` : ' · linked to a channel') : '';
    return `You: ${LEVEL_LABEL[info.my_access].toLowerCase()} · ${accessLabel(info.general_access)}${linked}`;
  }, [info, channelName]);

  if (!info) {
    return (
      <h1 id="dx-doc-title" class="dx-doc-heading">
        <span class="dx-muted">Loading…</span>
      </h1>
    );
  }

  const save = async (e: Event) => {
    e.preventDefault();
    const t = value.trim();
    if (!t || t === info.title) {
      setEditing(false);
      return;
    }
    setBusy(true);
    setError('');
    try {
      const d = await docsApi.rename(info.id, t);
      onRenamed(d);
      document.title = `${d.title} · Concord`;
      setEditing(false);
      setTimeout(() => button.current?.focus());
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="dx-title-line">
      {editing ? (
        <form class="dx-rename" onSubmit={save}>
          <label for="dx-rename-input" class="dx-visually-hidden">
            Document title
          </label>
          <input
            id="dx-rename-input"
            ref={input}
            value={value}
            maxLength={200}
            disabled={busy}
            onInput={(e) => setValue(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === 'Escape') {
                setEditing(false);
                setTimeout(() => button.current?.focus());
              }
            }}
          />
          <button type="submit" class="dx-btn dx-btn-primary" disabled={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
          {error && (
            <span class="dx-error-text" role="alert">
              {error}
            </span>
          )}
        </form>
      ) : (
        <h1 id="dx-doc-title" class="dx-doc-heading">
          {info.title}
          {info.my_access === 'manage' && (
            <button
              ref={button}
              type="button"
              class="dx-icon-btn"
              aria-label="Rename document"
              title="Rename"
              onClick={() => {
                setValue(info.title);
                setEditing(true);
              }}
            >
              ✎
            </button>
          )}
        </h1>
      )}
      <p class="dx-doc-access">{access}</p>
    </div>
  );
}

function ExportMenu({ onExport, disabled }: { onExport: (f: ExportFormat) => Promise<void>; disabled: boolean }) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState<ExportFormat | null>(null);
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (!root.current?.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener('mousedown', onDown);
    root.current?.querySelector<HTMLButtonElement>('[role=menuitem]')?.focus();
    return () => document.removeEventListener('mousedown', onDown);
  }, [open]);

  const choose = async (f: ExportFormat) => {
    setBusy(f);
    try {
      await onExport(f);
    } finally {
      setBusy(null);
      setOpen(false);
      button.current?.focus();
    }
  };

  const items: [ExportFormat, string][] = [
    ['markdown', 'Markdown (.md)'],
    ['text', 'Plain text (.txt)'],
    ['json', 'JSON (.json)'],
  ];

  return (
    <div
      class="dx-menu-root"
      ref={root}
      onKeyDown={(e) => {
        if (e.key === 'Escape' && open) {
          e.stopPropagation();
          setOpen(false);
          button.current?.focus();
        }
        if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && open) {
          e.preventDefault();
          const all = [...(root.current?.querySelectorAll<HTMLButtonElement>('[role=menuitem]') ?? [])];
          const i = all.indexOf(document.activeElement as HTMLButtonElement);
          const next = all[(i + (e.key === 'ArrowDown' ? 1 : all.length - 1)) % all.length];
          next?.focus();
        }
      }}
    >
      <button
        ref={button}
        type="button"
        class="dx-btn"
        aria-haspopup="menu"
        aria-expanded={open}
        disabled={disabled}
        onClick={() => setOpen((o) => !o)}
      >
        {busy ? 'Exporting…' : 'Export'}
      </button>
      {open && (
        <div class="dx-menu" role="menu" aria-label="Export as">
          {items.map(([f, label]) => (
            <button
              key={f}
              type="button"
              role="menuitem"
              class="dx-menu-item"
              disabled={busy !== null}
              onClick={() => choose(f)}
            >
              {label}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}
