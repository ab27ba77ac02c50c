// Version history: name the current content, preview a version read-only, restore one (the
// server applies it as a new change, live for everyone in the document).
import { Editor, type JSONContent } from '@tiptap/core';
import StarterKit from '@tiptap/starter-kit';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ago, docsApi, errorText, fullTime, type Member, type Version } from './model';

interface Props {
  workspaceId: string;
  documentId: string;
  canEdit: boolean;
  onClose: () => void;
}

export function VersionsPanel({ workspaceId, documentId, canEdit, onClose }: Props) {
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [error, setError] = useState('');
  const [members, setMembers] = useState<Map<string, string>>(new Map());
  const [name, setName] = useState('');
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState('');
  const [preview, setPreview] = useState<Version | null>(null);
  const [confirm, setConfirm] = useState<Version | null>(null);
  const [message, setMessage] = useState('');
  const panel = useRef<HTMLElement>(null);
  const opener = useRef<Element | null>(null);

  const load = () => {
    setError('');
    docsApi
      .versions(documentId)
      .then(setVersions)
      .catch((e) => setError(errorText(e)));
  };

  useEffect(() => {
    opener.current = document.activeElement;
    load();
    docsApi
      .members(workspaceId)
      .then((ms: Member[]) => setMembers(new Map(ms.map((m) => [m.user_id, m.display_name]))))
      .catch(() => undefined);
    panel.current?.querySelector<HTMLElement>('h2')?.focus();
    return () => (opener.current as HTMLElement | null)?.focus?.();
  }, [documentId]);

  const save = async (e: Event) => {
    e.preventDefault();
    const n = name.trim();
    if (!n) {
      setSaveError('Give the version a name.');
      return;
    }
    setSaving(true);
    setSaveError('');
    try {
      const v = await docsApi.nameVersion(documentId, n);
      setVersions((old) => [v, ...(old ?? [])]);
      setName('');
      setMessage(`Saved version “${v.name}”.`);
    } catch (err) {
      setSaveError(errorText(err));
    } finally {
      setSaving(false);
    }
  };

  const who = (id: string) => members.get(id) ?? 'Someone';

  return (
    <aside
      id="dx-versions"
      class="dx-versions"
      aria-labelledby="dx-versions-title"
      ref={panel}
      onKeyDown={(e) => {
        if (e.key === 'Escape' && !preview && !confirm) {
          e.stopPropagation();
          onClose();
        }
      }}
    >
      <div class="dx-versions-head">
        <h2 id="dx-versions-title" tabIndex={-1}>
          Version history
        </h2>
        <button type="button" class="dx-icon-btn" aria-label="Close version history" onClick={onClose}>
          ×
        </button>
      </div>
      {canEdit && (
        <form class="dx-version-form" onSubmit={save}>
          <label for="dx-version-name">Name the current version</label>
          <div class="dx-inline">
            <input
              id="dx-version-name"
              value={name}
              maxLength={200}
              placeholder="e.g. Sent for review"
              onInput={(e) => setName(e.currentTarget.value)}
              disabled={saving}
            />
            <button type="submit" class="dx-btn dx-btn-primary" disabled={saving}>
              {saving ? 'Saving…' : 'Save'}
            </button>
          </div>
          {saveError && (
            <p class="dx-error-text" role="alert">
              {saveError}
            </p>
          )}
        </form>
      )}
      <p class="dx-visually-hidden" role="status" aria-live="polite">
        {message}
      </p>
      {error && (
        <div class="dx-error" role="alert">
          <p>Could not load the versions: {error}</p>
          <button type="button" class="dx-btn" onClick={load}>
            Try again
          </button>
        </div>
      )}
      {!versions && !error && <p class="dx-muted">Loading versions…</p>}
      {versions && versions.length === 0 && (
        <p class="dx-muted">No named versions yet.{canEdit ? ' Name one to keep a snapshot you can return to.' : ''}</p>
      )}
      {versions && versions.length > 0 && (
        <ol class="dx-version-list" aria-label="Named versions">
          {versions.map((v) => (
            <li key={v.id} class="dx-version">
              <div class="dx-version-name">{v.name}</div>
              <div class="dx-version-meta">
                {who(v.created_by)} ·{' '}
                <time dateTime={v.created_at} title={fullTime(v.created_at)}>
                  {ago(v.created_at)}
                </time>
              </div>
              <div class="dx-version-actions">
                <button
                  type="button"
                  class="dx-btn dx-btn-small"
                  aria-label={`Preview “${v.name}”`}
                  onClick={() => setPreview(v)}
                >
                  Preview
                </button>
                {canEdit && (
                  <button
                    type="button"
                    class="dx-btn dx-btn-small"
                    aria-label={`Restore “${v.name}”`}
                    onClick={() => setConfirm(v)}
                  >
                    Restore
                  </button>
                )}
              </div>
            </li>
          ))}
        </ol>
      )}
      {preview && (
        <PreviewDialog
          documentId={documentId}
          version={preview}
          canEdit={canEdit}
          onClose={() => setPreview(null)}
          onRestore={() => {
            setConfirm(preview);
            setPreview(null);
          }}
        />
      )}
      {confirm && (
        <RestoreDialog
          documentId={documentId}
          version={confirm}
          onClose={(done) => {
            setConfirm(null);
            if (done) setMessage(`Restored “${confirm.name}”.`);
          }}
        />
      )}
    </aside>
  );
}

function useModal(onCancel: () => void) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  const onCancelEvent = (e: Event) => {
    e.preventDefault();
    onCancel();
  };
  return { ref, onCancelEvent };
}

function PreviewDialog(props: {
  documentId: string;
  version: Version;
  canEdit: boolean;
  onClose: () => void;
  onRestore: () => void;
}) {
  const { ref, onCancelEvent } = useModal(props.onClose);
  const mount = useRef<HTMLDivElement>(null);
  const [state, setState] = useState<'loading' | 'ready' | 'empty' | string>('loading');

  useEffect(() => {
    let editor: Editor | null = null;
    let live = true;
    docsApi
      .versionJson(props.documentId, props.version.id)
      .then((raw) => {
        if (!live || !mount.current) return;
        const body = (typeof raw === 'string' ? JSON.parse(raw) : raw) as {
          prosemirror?: JSONContent;
          content?: string;
        };
        let content: JSONContent | null = body.prosemirror ?? null;
        if (!content && body.content) {
          content = {
            type: 'doc',
            content: body.content.split('\n').map((line) => ({
              type: 'paragraph',
              content: line ? [{ type: 'text', text: line }] : [],
            })),
          };
        }
        if (!content) {
          setState('empty');
          return;
        }
        editor = new Editor({
          element: mount.current,
          editable: false,
          extensions: [StarterKit.configure({ link: { openOnClick: false } })],
          content,
          editorProps: {
            attributes: {
              class: 'dx-prose dx-prose-preview',
              'aria-label': `Content of version “${props.version.name}”`,
              'aria-readonly': 'true',
              role: 'document',
            },
          },
        });
        setState('ready');
      })
      .catch((e) => live && setState(errorText(e)));
    return () => {
      live = false;
      editor?.destroy();
    };
  }, [props.version.id]);

  return (
    <dialog ref={ref} class="dx-dialog dx-dialog-wide" aria-labelledby="dx-preview-title" onCancel={onCancelEvent}>
      <h2 id="dx-preview-title">{props.version.name}</h2>
      <p class="dx-muted">Saved {fullTime(props.version.created_at)} · read-only preview</p>
      {state === 'loading' && <p role="status">Loading the version…</p>}
      {state === 'empty' && <p class="dx-muted">This version is empty.</p>}
      {state !== 'loading' && state !== 'ready' && state !== 'empty' && (
        <p class="dx-error-text" role="alert">
          Could not load the version: {state}
        </p>
      )}
      <div ref={mount} class="dx-preview" />
      <div class="dx-dialog-actions">
        <button type="button" class="dx-btn" onClick={props.onClose}>
          Close
        </button>
        {props.canEdit && (
          <button type="button" class="dx-btn dx-btn-primary" onClick={props.onRestore}>
            Restore this version
          </button>
        )}
      </div>
    </dialog>
  );
}

function RestoreDialog(props: { documentId: string; version: Version; onClose: (done: boolean) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const { ref, onCancelEvent } = useModal(() => !busy && props.onClose(false));

  const restore = async () => {
    setBusy(true);
    setError('');
    try {
      await docsApi.restore(props.documentId, props.version.id);
      props.onClose(true);
    } catch (e) {
      setError(errorText(e));
      setBusy(false);
    }
  };

  return (
    <dialog
      ref={ref}
      class="dx-dialog"
      role="alertdialog"
      aria-labelledby="dx-restore-title"
      aria-describedby="dx-restore-desc"
      onCancel={onCancelEvent}
    >
      <h2 id="dx-restore-title">Restore “{props.version.name}”?</h2>
      <p id="dx-restore-desc">
        The document’s content is replaced with this version for everyone editing it. Name the current
        version first if you may want it back.
      </p>
      {error && (
        <p class="dx-error-text" role="alert">
          {error}
        </p>
      )}
      <div class="dx-dialog-actions">
        <button type="button" class="dx-btn" onClick={() => props.onClose(false)} disabled={busy} autoFocus>
          Cancel
        </button>
        <button type="button" class="dx-btn dx-btn-primary" onClick={restore} disabled={busy}>
          {busy ? 'Restoring…' : 'Restore'}
        </button>
      </div>
    </dialog>
  );
}
