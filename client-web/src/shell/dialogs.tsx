// The shell's dialogs: create a workspace or a channel, browse and join channels, start a
// conversation, invite people.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, describeError, type Me, type Schemas } from '../api';
import { navigate } from './router';
import type { Channel, Member, Workspace } from './types';
import type { WorkspaceData } from './workspaceData';
import { Avatar, Dialog, ErrorText, Icon, Loading } from './ui';

function BusyLabel({ busy, idle, working }: { busy: boolean; idle: string; working: string }) {
  return (
    <>
      {busy && <span class="spinner-dot" aria-hidden="true" />}
      {busy ? working : idle}
    </>
  );
}

export function CreateWorkspaceDialog(props: { onClose: () => void; onCreated: (w: Workspace) => void | Promise<void> }) {
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      const w = await api('post', '/api/v1/workspaces', { json: { name: name.trim() } });
      await props.onCreated(w);
      props.onClose();
    } catch (err) {
      setBusy(false);
      setError(describeError(err));
    }
  }
  return (
    <Dialog title="Create a workspace" onClose={props.onClose} description="A workspace holds your team's channels, conversations and documents.">
      <form class="form" onSubmit={submit}>
        <div class="field">
          <label for="ws-name">Workspace name</label>
          <input id="ws-name" required maxLength={80} value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="Acme Health" />
        </div>
        <ErrorText error={error} />
        <div class="dialog-actions">
          <button type="button" class="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="button button-primary" disabled={busy || !name.trim()} aria-busy={busy}>
            <BusyLabel busy={busy} idle="Create workspace" working="Creating…" />
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** Lowercase, dashes for spaces, only the characters channel names allow. */
function channelName(raw: string): string {
  return raw
    .toLowerCase()
    .replace(/^#/, '')
    .replace(/\s+/g, '-')
    .replace(/[^\p{L}\p{N}_-]/gu, '');
}

export function CreateChannelDialog(props: { workspaceId: string; data: WorkspaceData; onClose: () => void }) {
  const [name, setName] = useState('');
  const [visibility, setVisibility] = useState<'public' | 'private'>('public');
  const [topic, setTopic] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const clean = channelName(name);
  async function submit(e: Event) {
    e.preventDefault();
    if (busy || !clean) return;
    setBusy(true);
    setError(null);
    try {
      const c = await api('post', '/api/v1/workspaces/{workspace_id}/channels', {
        params: { path: { workspace_id: props.workspaceId } },
        json: { name: clean, visibility, topic: topic.trim() },
      });
      props.data.upsert(c);
      props.onClose();
      navigate(`/w/${props.workspaceId}/c/${c.id}`);
    } catch (err) {
      setBusy(false);
      setError(describeError(err));
    }
  }
  return (
    <Dialog title="Create a channel" onClose={props.onClose}>
      <form class="form" onSubmit={submit}>
        <div class="field">
          <label for="ch-name">Name</label>
          <div class="input-prefix">
            <span aria-hidden="true">#</span>
            <input
              id="ch-name"
              required
              maxLength={80}
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
              placeholder="e.g. release-planning"
              aria-describedby="ch-name-hint"
              autoComplete="off"
            />
          </div>
          <p class="hint" id="ch-name-hint">
            {name && clean !== name ? `Will be created as #${clean || '…'}. ` : ''}Lowercase letters, digits, dashes and underscores.
          </p>
        </div>
        <fieldset class="field">
          <legend>Who can find it</legend>
          <label class="choice">
            <input type="radio" name="visibility" value="public" checked={visibility === 'public'} onChange={() => setVisibility('public')} />
            <span>
              <strong>Public</strong>
              <span class="hint">Anyone in the workspace can find and join it.</span>
            </span>
          </label>
          <label class="choice">
            <input type="radio" name="visibility" value="private" checked={visibility === 'private'} onChange={() => setVisibility('private')} />
            <span>
              <strong>Private</strong>
              <span class="hint">Only people added to it can see it.</span>
            </span>
          </label>
        </fieldset>
        <div class="field">
          <label for="ch-topic">
            Topic <span class="muted">(optional)</span>
          </label>
          <input id="ch-topic" maxLength={250} value={topic} onInput={(e) => setTopic(e.currentTarget.value)} />
        </div>
        <ErrorText error={error} />
        <div class="dialog-actions">
          <button type="button" class="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="button button-primary" disabled={busy || !clean} aria-busy={busy}>
            <BusyLabel busy={busy} idle="Create channel" working="Creating…" />
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function BrowseChannelsDialog(props: { workspaceId: string; data: WorkspaceData; onClose: () => void }) {
  const [list, setList] = useState<Channel[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const [joining, setJoining] = useState<string | null>(null);
  const [joinError, setJoinError] = useState<string | null>(null);
  const mine = new Set((props.data.channels ?? []).map((c) => c.id));

  useEffect(() => {
    api('get', '/api/v1/workspaces/{workspace_id}/channels/browse', {
      params: { path: { workspace_id: props.workspaceId } },
    })
      .then((l) => setList(l.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''))))
      .catch((e) => setError(describeError(e)));
  }, [props.workspaceId]);

  const shown = (list ?? []).filter((c) => !filter || (c.name ?? '').includes(filter.toLowerCase()) || c.topic.toLowerCase().includes(filter.toLowerCase()));

  async function join(c: Channel) {
    setJoining(c.id);
    setJoinError(null);
    try {
      const joined = await api('post', '/api/v1/channels/{channel_id}/join', {
        params: { path: { channel_id: c.id } },
      });
      props.data.upsert(joined);
      props.onClose();
      navigate(`/w/${props.workspaceId}/c/${c.id}`);
    } catch (e) {
      setJoining(null);
      setJoinError(`Could not join #${c.name}: ${describeError(e)}`);
    }
  }

  return (
    <Dialog title="Browse channels" onClose={props.onClose} wide>
      <div class="field">
        <label for="browse-filter" class="sr-only">
          Filter channels
        </label>
        <input id="browse-filter" type="search" placeholder="Filter channels" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      </div>
      <ErrorText error={error ?? joinError} />
      {!list && !error && <Loading label="Loading channels…" />}
      {list && shown.length === 0 && <p class="muted">{list.length === 0 ? 'There are no public channels yet.' : 'No channel matches.'}</p>}
      <ul class="pick-list" aria-label="Public channels">
        {shown.map((c) => {
          const member = mine.has(c.id) || c.my_role !== null;
          return (
            <li key={c.id} class="pick-row">
              <div class="pick-main">
                <div class="pick-title">
                  <Icon name="hash" size={14} />
                  {c.name}
                  {c.archived && <span class="tag">archived</span>}
                </div>
                {c.topic && <div class="pick-sub">{c.topic}</div>}
              </div>
              {member ? (
                <button
                  type="button"
                  class="button small"
                  onClick={() => {
                    props.onClose();
                    navigate(`/w/${props.workspaceId}/c/${c.id}`);
                  }}
                  aria-label={`Open #${c.name}`}
                >
                  Open
                </button>
              ) : (
                <button
                  type="button"
                  class="button button-primary small"
                  disabled={joining !== null || c.archived}
                  aria-busy={joining === c.id}
                  onClick={() => join(c)}
                  aria-label={`Join #${c.name}`}
                >
                  <BusyLabel busy={joining === c.id} idle="Join" working="Joining…" />
                </button>
              )}
            </li>
          );
        })}
      </ul>
    </Dialog>
  );
}

export function NewMessageDialog(props: { workspaceId: string; me: Me; data: WorkspaceData; onClose: () => void }) {
  const [filter, setFilter] = useState('');
  const [picked, setPicked] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const people = useMemo(
    () => [...props.data.members.values()].filter((m) => m.user_id !== props.me.id).sort((a, b) => a.display_name.localeCompare(b.display_name)),
    [props.data.members, props.me.id],
  );
  // People may have joined since the list was loaded.
  useEffect(() => props.data.reloadMembers(), []);
  const f = filter.trim().toLowerCase();
  const shown = people.filter((m) => !f || m.display_name.toLowerCase().includes(f) || m.email.toLowerCase().includes(f));

  function toggle(id: string) {
    setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : p.length >= 8 ? p : [...p, id]));
  }

  async function open(e: Event) {
    e.preventDefault();
    if (busy || picked.length === 0) return;
    setBusy(true);
    setError(null);
    try {
      const c = await api('post', '/api/v1/workspaces/{workspace_id}/conversations', {
        params: { path: { workspace_id: props.workspaceId } },
        json: { user_ids: picked },
      });
      props.data.upsert(c);
      props.onClose();
      navigate(`/w/${props.workspaceId}/c/${c.id}`);
    } catch (err) {
      setBusy(false);
      setError(describeError(err));
    }
  }

  return (
    <Dialog title="New message" onClose={props.onClose} wide description="Pick one person for a direct conversation, or up to eight for a group.">
      <form class="form" onSubmit={open}>
        <div class="field">
          <label for="dm-filter">Find people</label>
          <input id="dm-filter" type="search" placeholder="Name or email" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} autoComplete="off" />
        </div>
        {people.length === 0 && <p class="muted">{props.data.members.size === 0 ? 'Loading people…' : 'Nobody else is in this workspace yet. Invite people first.'}</p>}
        <fieldset class="pick-fieldset">
          <legend class="sr-only">People</legend>
          <ul class="pick-list">
            {shown.map((m: Member) => (
              <li key={m.user_id}>
                <label class="pick-row pick-check">
                  <input
                    type="checkbox"
                    checked={picked.includes(m.user_id)}
                    disabled={!picked.includes(m.user_id) && picked.length >= 8}
                    onChange={() => toggle(m.user_id)}
                  />
                  <Avatar id={m.user_id} name={m.display_name} size={28} />
                  <span class="pick-main">
                    <span class="pick-title">{m.display_name}</span>
                    <span class="pick-sub">{m.email}</span>
                  </span>
                </label>
              </li>
            ))}
          </ul>
        </fieldset>
        <ErrorText error={error} />
        <div class="dialog-actions">
          <span class="muted" aria-live="polite">
            {picked.length === 0 ? '' : `${picked.length} selected`}
          </span>
          <button type="button" class="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="button button-primary" disabled={busy || picked.length === 0} aria-busy={busy}>
            <BusyLabel busy={busy} idle={picked.length > 1 ? 'Start group conversation' : 'Start conversation'} working="Opening…" />
          </button>
        </div>
      </form>
    </Dialog>
  );
}

type CreatedInvitation = Schemas['CreatedInvitation'];

export function InviteDialog(props: { workspace: Workspace; onClose: () => void }) {
  const [email, setEmail] = useState('');
  const [role, setRole] = useState('member');
  const [uses, setUses] = useState(1);
  const [hours, setHours] = useState(168);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<CreatedInvitation | null>(null);
  const [copied, setCopied] = useState(false);
  const [roles, setRoles] = useState<string[]>(['member']);

  useEffect(() => {
    api('get', '/api/v1/workspaces/{workspace_id}/roles', { params: { path: { workspace_id: props.workspace.id } } })
      .then((r) => setRoles(r.map((x) => x.name).filter((n) => n !== 'owner')))
      .catch(() => {
        /* only the default role is offered */
      });
  }, [props.workspace.id]);

  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      const res = await api('post', '/api/v1/workspaces/{workspace_id}/invitations', {
        params: { path: { workspace_id: props.workspace.id } },
        json: {
          email: email.trim() || undefined,
          role,
          max_uses: email.trim() ? 1 : uses,
          expires_in_hours: hours,
        },
      });
      // The link opens this client's invitation page, whatever base the server was told.
      setCreated(res);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  async function copy() {
    if (!created) return;
    try {
      await navigator.clipboard.writeText(created.url);
      setCopied(true);
    } catch {
      const input = document.getElementById('invite-url') as HTMLInputElement | null;
      input?.select();
      setError('Copying is not allowed here: the link is selected, copy it with Ctrl+C.');
    }
  }

  if (created) {
    return (
      <Dialog title={`Invite people to ${props.workspace.name}`} onClose={props.onClose}>
        <div class="form">
          <p>
            {created.delivery === 'shown'
              ? 'Send this link to the people you invite. It is shown only now.'
              : 'The invitation was sent. You can also share this link; it is shown only now.'}
          </p>
          <div class="field">
            <label for="invite-url">Invitation link</label>
            <div class="copy-row">
              <input id="invite-url" readOnly value={created.url} onFocus={(e) => e.currentTarget.select()} />
              <button type="button" class="button button-primary" onClick={copy}>
                {copied ? 'Copied' : 'Copy link'}
              </button>
            </div>
            <p class="sr-only" role="status">
              {copied ? 'Link copied to the clipboard' : ''}
            </p>
          </div>
          <ErrorText error={error} />
          <div class="dialog-actions">
            <button
              type="button"
              class="button"
              onClick={() => {
                setCreated(null);
                setCopied(false);
                setEmail('');
              }}
            >
              Create another
            </button>
            <button type="button" class="button button-primary" onClick={props.onClose}>
              Done
            </button>
          </div>
        </div>
      </Dialog>
    );
  }

  return (
    <Dialog title={`Invite people to ${props.workspace.name}`} onClose={props.onClose}>
      <form class="form" onSubmit={submit}>
        <div class="field">
          <label for="invite-email">
            Email <span class="muted">(optional)</span>
          </label>
          <input
            id="invite-email"
            type="email"
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
            aria-describedby="invite-email-hint"
            autoComplete="off"
          />
          <p class="hint" id="invite-email-hint">
            With an email, only that person can use the link. Without, anyone holding the link can join.
          </p>
        </div>
        <div class="field-row">
          <div class="field">
            <label for="invite-role">Role</label>
            <select id="invite-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
              {roles.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </div>
          {!email.trim() && (
            <div class="field">
              <label for="invite-uses">Uses</label>
              <input id="invite-uses" type="number" min={1} max={1000} value={uses} onInput={(e) => setUses(Math.max(1, Number(e.currentTarget.value) || 1))} />
            </div>
          )}
          <div class="field">
            <label for="invite-expiry">Expires after</label>
            <select id="invite-expiry" value={hours} onChange={(e) => setHours(Number(e.currentTarget.value))}>
              <option value={24}>1 day</option>
              <option value={168}>7 days</option>
              <option value={720}>30 days</option>
            </select>
          </div>
        </div>
        <ErrorText error={error} />
        <div class="dialog-actions">
          <button type="button" class="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="button button-primary" disabled={busy} aria-busy={busy}>
            <BusyLabel busy={busy} idle="Create invitation link" working="Creating…" />
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** The main pane of a workspace without any channel of yours. */
export function NoChannels({ workspaceId, data }: { workspaceId: string; data: WorkspaceData }) {
  const [dialog, setDialog] = useState<'create' | 'browse' | null>(null);
  return (
    <div class="empty-state">
      <h1>No channels yet</h1>
      <p>Channels are where your team talks about a topic. Create one or join an existing public channel.</p>
      <div class="button-row">
        <button type="button" class="button button-primary" onClick={() => setDialog('create')}>
          Create a channel
        </button>
        <button type="button" class="button" onClick={() => setDialog('browse')}>
          Browse channels
        </button>
      </div>
      {dialog === 'create' && <CreateChannelDialog workspaceId={workspaceId} data={data} onClose={() => setDialog(null)} />}
      {dialog === 'browse' && <BrowseChannelsDialog workspaceId={workspaceId} data={data} onClose={() => setDialog(null)} />}
    </div>
  );
}
