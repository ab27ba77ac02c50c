// Legal holds of a workspace: the list (released ones included), placing a hold on custodians,
// channels and a date range with its reason, and releasing one.
import { useEffect, useState } from 'preact/hooks';
import { api, type Schemas } from '../api';
import type { People } from '../console/people';
import { day, endOfDay, endText, startOfDay, when } from '../console/time';
import { Empty, failureText, NoWorkspaces, Notice, WorkspacePicker } from '../console/ui';
import type { Channel, Member, Workspace } from '../shell/types';
import { ErrorText, Loading } from '../shell/ui';

type Hold = Schemas['HoldView'];

export function HoldsTab({ people, workspaces }: { people: People; workspaces: Workspace[] }) {
  const [ws, setWs] = useState(workspaces[0]?.id ?? '');
  const [holds, setHolds] = useState<Hold[] | null>(null);
  const [members, setMembers] = useState<Member[] | null>(null);
  const [channels, setChannels] = useState<Channel[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [confirming, setConfirming] = useState<string | null>(null);
  const [releasing, setReleasing] = useState<string | null>(null);

  function load(id: string) {
    setHolds(null);
    setError(null);
    api('get', '/api/v1/workspaces/{workspace_id}/legal-holds', { params: { path: { workspace_id: id } } })
      .then((r) => setHolds(r.holds))
      .catch((e) => setError(failureText(e)));
  }

  useEffect(() => {
    if (!ws) return;
    load(ws);
    setMembers(null);
    setChannels([]);
    api('get', '/api/v1/workspaces/{workspace_id}/members', { params: { path: { workspace_id: ws } } })
      .then(setMembers)
      .catch(() => setMembers([]));
    // The caller's own channels and the public ones they have not joined.
    const path = { params: { path: { workspace_id: ws } } };
    Promise.all([
      api('get', '/api/v1/workspaces/{workspace_id}/channels', path).catch(() => []),
      api('get', '/api/v1/workspaces/{workspace_id}/channels/browse', path).catch(() => []),
    ]).then(([mine, open]) => {
      const byId = new Map([...open, ...mine].filter((c) => c.kind === 'public' || c.kind === 'private').map((c) => [c.id, c]));
      setChannels([...byId.values()].sort((a, b) => (a.name ?? '').localeCompare(b.name ?? '')));
    });
  }, [ws]);

  if (workspaces.length === 0) return <NoWorkspaces />;

  const channelName = (id: string) => {
    const c = channels.find((x) => x.id === id);
    return c ? `#${c.name ?? 'unnamed'}` : `${id.slice(0, 8)}…`;
  };

  async function release(hold: Hold) {
    setReleasing(hold.id);
    setError(null);
    setNotice('');
    try {
      const released = await api('delete', '/api/v1/workspaces/{workspace_id}/legal-holds/{hold_id}', {
        params: { path: { workspace_id: ws, hold_id: hold.id } },
      });
      setHolds((hs) => (hs ?? []).map((h) => (h.id === released.id ? released : h)));
      setNotice(`The hold “${hold.name}” was released.`);
    } catch (e) {
      setError(failureText(e));
    } finally {
      setReleasing(null);
      setConfirming(null);
    }
  }

  // Custodians come from the workspace's members, or every account when those cannot be read.
  const custodians = members && members.length > 0
    ? members.map((m) => ({ id: m.user_id, label: m.display_name }))
    : (people.list ?? []).map((p) => ({ id: p.id, label: p.display_name }));

  return (
    <>
      <WorkspacePicker id="holds-workspace" workspaces={workspaces} value={ws} onChange={setWs} />
      <section class="card" aria-labelledby="holds-heading">
        <h2 id="holds-heading">Legal holds</h2>
        <ErrorText error={error} />
        <Notice text={notice} />
        {!holds && !error && <Loading label="Loading legal holds…" />}
        {holds && holds.length === 0 && <Empty>No legal holds in this workspace.</Empty>}
        {holds && holds.length > 0 && (
          <div class="table-wrap">
            <table class="data-table" aria-label="Legal holds">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Holds</th>
                  <th scope="col">Placed</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {holds.map((h) => (
                  <tr key={h.id} data-hold-id={h.id}>
                    <td>
                      <strong>{h.name}</strong>
                      {h.reason && <div class="hint">{h.reason}</div>}
                    </td>
                    <td>
                      <div>Custodians: {h.custodians.length ? h.custodians.map(people.name).join(', ') : 'anyone'}</div>
                      <div>Channels: {h.channels.length ? h.channels.map(channelName).join(', ') : 'every channel'}</div>
                      <div>
                        Posted: {h.from ? `from ${day(h.from)}` : 'from the beginning'}
                        {h.to ? ` ${endText(h.to)}` : ' on'}
                      </div>
                    </td>
                    <td>
                      {when(h.created_at)}
                      <div class="hint">by {people.name(h.created_by)}</div>
                    </td>
                    <td>
                      {h.active ? (
                        <span class="tag tag-accent">Active</span>
                      ) : (
                        <>
                          <span class="tag">Released</span>
                          <div class="hint">
                            {when(h.released_at)} by {people.name(h.released_by)}
                          </div>
                        </>
                      )}
                    </td>
                    <td>
                      {h.active && (
                        <div class="cell-actions">
                          {confirming === h.id ? (
                            <>
                              <button
                                type="button"
                                class="button small button-danger"
                                disabled={releasing === h.id}
                                aria-busy={releasing === h.id}
                                onClick={() => void release(h)}
                              >
                                {releasing === h.id ? 'Releasing…' : `Confirm release of ${h.name}`}
                              </button>
                              <button type="button" class="button small" onClick={() => setConfirming(null)}>
                                Cancel
                              </button>
                            </>
                          ) : (
                            <button type="button" class="button small" aria-label={`Release ${h.name}`} onClick={() => setConfirming(h.id)}>
                              Release
                            </button>
                          )}
                        </div>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section class="card" aria-labelledby="new-hold-heading">
        <h2 id="new-hold-heading">Place a legal hold</h2>
        <NewHoldForm
          key={ws}
          workspaceId={ws}
          custodians={custodians}
          channels={channels.map((c) => ({ id: c.id, label: `#${c.name ?? 'unnamed'}` }))}
          onPlaced={(h) => {
            setHolds((hs) => [...(hs ?? []), h]);
            setNotice(`The hold “${h.name}” was placed.`);
          }}
        />
      </section>
    </>
  );
}

interface Choice {
  id: string;
  label: string;
}

function CheckList(props: { legend: string; hint: string; choices: Choice[]; chosen: Set<string>; onChange: (s: Set<string>) => void }) {
  return (
    <fieldset class="field">
      <legend>{props.legend}</legend>
      <p class="hint">{props.hint}</p>
      {props.choices.length === 0 ? (
        <p class="hint">None to choose from.</p>
      ) : (
        <div class="check-list">
          {props.choices.map((c) => (
            <label key={c.id}>
              <input
                type="checkbox"
                checked={props.chosen.has(c.id)}
                onChange={(e) => {
                  const next = new Set(props.chosen);
                  if (e.currentTarget.checked) next.add(c.id);
                  else next.delete(c.id);
                  props.onChange(next);
                }}
              />
              {c.label}
            </label>
          ))}
        </div>
      )}
    </fieldset>
  );
}

function NewHoldForm(props: { workspaceId: string; custodians: Choice[]; channels: Choice[]; onPlaced: (h: Hold) => void }) {
  const [name, setName] = useState('');
  const [reason, setReason] = useState('');
  const [custodians, setCustodians] = useState<Set<string>>(new Set());
  const [channels, setChannels] = useState<Set<string>>(new Set());
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function place(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const hold = await api('post', '/api/v1/workspaces/{workspace_id}/legal-holds', {
        params: { path: { workspace_id: props.workspaceId } },
        json: {
          name: name.trim(),
          reason: reason.trim(),
          custodians: [...custodians],
          channels: [...channels],
          from: startOfDay(from) ?? null,
          to: endOfDay(to) ?? null,
        },
      });
      props.onPlaced(hold);
      setName('');
      setReason('');
      setCustodians(new Set());
      setChannels(new Set());
      setFrom('');
      setTo('');
    } catch (err) {
      setError(failureText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={place} aria-label="Place a legal hold">
      <div class="field">
        <label for="hold-name">Hold name</label>
        <input id="hold-name" required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="hold-reason">Reason</label>
        <textarea id="hold-reason" rows={2} maxLength={4000} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
      </div>
      <CheckList legend="Custodians" hint="Whose messages it keeps; none chosen: everyone's." choices={props.custodians} chosen={custodians} onChange={setCustodians} />
      <CheckList legend="Channels" hint="Which channels it keeps; none chosen: every channel." choices={props.channels} chosen={channels} onChange={setChannels} />
      <div class="field-row">
        <div class="field">
          <label for="hold-from">Posted from (first day)</label>
          <input id="hold-from" type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="hold-to">Posted until (last day)</label>
          <input id="hold-to" type="date" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </div>
      </div>
      <ErrorText error={error} />
      <div>
        <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
          {busy ? 'Placing…' : 'Place hold'}
        </button>
      </div>
    </form>
  );
}
