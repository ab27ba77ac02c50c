// Sharing, for the document's managers: what everyone in the workspace gets, the linked
// channel (its members may edit), and people granted access by name.
import { useEffect, useRef, useState } from 'preact/hooks';
import {
  type Channel,
  docsApi,
  type DocumentInfo,
  errorText,
  type GeneralAccess,
  type Grant,
  type Level,
  LEVEL_LABEL,
  type Member,
  sharingApi,
} from './model';

interface Props {
  info: DocumentInfo;
  onChanged: (d: DocumentInfo) => void;
  onClose: () => void;
}

export function ShareDialog({ info, onChanged, onClose }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const [channels, setChannels] = useState<Channel[]>([]);
  const [members, setMembers] = useState<Member[]>([]);
  const [grants, setGrants] = useState<Grant[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [person, setPerson] = useState('');
  const [level, setLevel] = useState<Level>('edit');
  const [message, setMessage] = useState('');

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    docsApi.channels(info.workspace_id).then((c) => setChannels(c.filter((x) => x.name))).catch(() => undefined);
    docsApi.members(info.workspace_id).then(setMembers).catch(() => undefined);
    sharingApi
      .grants(info.id)
      .then(setGrants)
      .catch((e) => setError(errorText(e)));
  }, [info.id]);

  const run = async (what: () => Promise<void>, done: string) => {
    setBusy(true);
    setError('');
    setMessage('');
    try {
      await what();
      setMessage(done);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };

  const name = (id: string) => members.find((m) => m.user_id === id)?.display_name ?? 'Someone';
  const people = (grants ?? []).filter((g) => g.principal_kind === 'user');
  const candidates = members.filter(
    (m) => m.user_id !== info.created_by && !people.some((g) => g.principal_id === m.user_id),
  );

  return (
    <dialog
      ref={ref}
      class="dx-dialog dx-dialog-wide"
      aria-labelledby="dx-share-title"
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onClose();
      }}
    >
      <h2 id="dx-share-title">Share “{info.title}”</h2>
      <div class="dx-share-grid">
        <div class="dx-field">
          <label for="dx-share-general">Everyone in the workspace</label>
          <select
            id="dx-share-general"
            value={info.general_access}
            disabled={busy}
            onChange={(e) => {
              const general_access = e.currentTarget.value as GeneralAccess;
              run(async () => onChanged(await sharingApi.update(info.id, { general_access })), 'Workspace access changed.');
            }}
          >
            <option value="none">No access</option>
            <option value="view">Can view</option>
            <option value="comment">Can comment</option>
            <option value="edit">Can edit</option>
          </select>
        </div>
        <div class="dx-field">
          <label for="dx-share-channel">Linked channel (its members can edit)</label>
          <select
            id="dx-share-channel"
            value={info.channel_id ?? ''}
            disabled={busy}
            onChange={(e) => {
              const v = e.currentTarget.value;
              run(
                async () => onChanged(await sharingApi.update(info.id, { channel_id: v || null })),
                v ? 'Linked to the channel.' : 'Unlinked from the channel.',
              );
            }}
          >
            <option value="">None</option>
            {channels.map((c) => (
              <option key={c.id} value={c.id}>
                #{c.name}
              </option>
            ))}
          </select>
        </div>
      </div>

      <h3 class="dx-share-sub">People with access</h3>
      {!grants && !error && <p class="dx-muted">Loading…</p>}
      {grants && people.length === 0 && <p class="dx-muted">Nobody has been added by name.</p>}
      {people.length > 0 && (
        <ul class="dx-share-people" aria-label="People with access">
          {people.map((g) => (
            <li key={g.principal_id}>
              <span class="dx-share-name">{name(g.principal_id)}</span>
              <span class="dx-muted">{LEVEL_LABEL[g.level]}</span>
              <button
                type="button"
                class="dx-btn dx-btn-small"
                disabled={busy}
                aria-label={`Remove ${name(g.principal_id)}`}
                onClick={() =>
                  run(async () => {
                    await sharingApi.revoke(info.id, g.principal_id);
                    setGrants((old) => (old ?? []).filter((x) => x.principal_id !== g.principal_id));
                  }, `Removed ${name(g.principal_id)}.`)
                }
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <form
        class="dx-share-add"
        onSubmit={(e) => {
          e.preventDefault();
          if (!person) return;
          run(async () => {
            setGrants(await sharingApi.grant(info.id, person, level));
            setPerson('');
          }, `Added ${name(person)}.`);
        }}
      >
        <div class="dx-field">
          <label for="dx-share-person">Add a person</label>
          <select id="dx-share-person" value={person} disabled={busy} onChange={(e) => setPerson(e.currentTarget.value)}>
            <option value="">Choose someone…</option>
            {candidates.map((m) => (
              <option key={m.user_id} value={m.user_id}>
                {m.display_name} ({m.email})
              </option>
            ))}
          </select>
        </div>
        <div class="dx-field">
          <label for="dx-share-level">Access</label>
          <select id="dx-share-level" value={level} disabled={busy} onChange={(e) => setLevel(e.currentTarget.value as Level)}>
            <option value="view">Can view</option>
            <option value="comment">Can comment</option>
            <option value="edit">Can edit</option>
            <option value="manage">Can manage</option>
          </select>
        </div>
        <button type="submit" class="dx-btn dx-btn-primary" disabled={busy || !person}>
          Add
        </button>
      </form>
      <p class="dx-visually-hidden" role="status" aria-live="polite">
        {message}
      </p>
      {error && (
        <p class="dx-error-text" role="alert">
          {error}
        </p>
      )}
      <div class="dx-dialog-actions">
        <button type="button" class="dx-btn" onClick={onClose} disabled={busy}>
          Done
        </button>
      </div>
    </dialog>
  );
}
