// Policies: a workspace's effective policy, every key with its value and where it comes from (a
// module or the workspace's override), and the override itself, edited as TOML. The server
// checks it and names the line and key of a mistake; that message is shown as given. A save
// names the version it was made against, so a change made meanwhile is not overwritten.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, request, type Schemas } from '../api';
import type { People } from '../console/people';
import { when } from '../console/time';
import { failureText, NoWorkspaces, Notice, WorkspacePicker } from '../console/ui';
import type { Workspace } from '../shell/types';
import { ErrorText, Loading } from '../shell/ui';

type PolicyView = Schemas['WorkspacePolicyView'];

/** Every leaf of the effective policy as `[dotted key, value]`, in document order. */
export function leaves(value: unknown, prefix = ''): [string, string][] {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, typeof value === 'string' ? value : JSON.stringify(value)]];
}

export function PoliciesTab({ people, workspaces }: { people: People; workspaces: Workspace[] }) {
  const [ws, setWs] = useState(workspaces[0]?.id ?? '');
  const [view, setView] = useState<PolicyView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reloading, setReloading] = useState(false);
  const [reloadNotice, setReloadNotice] = useState('');
  const [reloadError, setReloadError] = useState<string | null>(null);
  const [saved, setSaved] = useState('');

  function load(id: string) {
    setView(null);
    setSaved('');
    setError(null);
    api('get', '/api/v1/workspaces/{workspace_id}/policy', { params: { path: { workspace_id: id } } })
      .then(setView)
      .catch((e) => setError(failureText(e)));
  }

  useEffect(() => {
    if (ws) load(ws);
  }, [ws]);

  async function reloadModules() {
    setReloading(true);
    setReloadError(null);
    setReloadNotice('');
    try {
      const r = await api('post', '/api/v1/admin/policies/reload');
      setReloadNotice(
        r.changed ? `The modules changed; the deployment's policy is now version ${r.version}.` : `The modules are unchanged (version ${r.version}).`,
      );
      load(ws);
    } catch (e) {
      setReloadError(failureText(e));
    } finally {
      setReloading(false);
    }
  }

  if (workspaces.length === 0) return <NoWorkspaces />;

  return (
    <>
      <WorkspacePicker id="policy-workspace" workspaces={workspaces} value={ws} onChange={setWs} />
      <section class="card" aria-labelledby="policy-heading">
        <div class="card-head">
          <h2 id="policy-heading">Effective policy</h2>
          {view && <span class="tag">version {view.version}</span>}
        </div>
        <ErrorText error={error} />
        {!view && !error && <Loading label="Loading the policy…" />}
        {view && (
          <>
            <p class="hint">Modules, in the order they are layered: {view.modules.length ? view.modules.join(', ') : 'none'}; the workspace's override comes last.</p>
            <div class="table-wrap">
              <table class="data-table" aria-label="Effective policy">
                <thead>
                  <tr>
                    <th scope="col">Key</th>
                    <th scope="col">Value</th>
                    <th scope="col">Source</th>
                  </tr>
                </thead>
                <tbody>
                  {leaves(view.policy).map(([key, value]) => (
                    <tr key={key}>
                      <td class="mono">{key}</td>
                      <td class="mono">{value}</td>
                      <td>{view.sources[key] === 'workspace' ? <span class="tag tag-accent">workspace override</span> : view.sources[key] ?? 'default'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
        <div class="button-row start" style={{ marginTop: '12px' }}>
          <button type="button" class="button small" disabled={reloading} aria-busy={reloading} onClick={reloadModules}>
            {reloading ? 'Reloading…' : 'Reload policy modules'}
          </button>
        </div>
        <ErrorText error={reloadError} />
        <Notice text={reloadNotice} />
      </section>
      {view && (
        <section class="card" aria-labelledby="override-heading">
          <h2 id="override-heading">Workspace override</h2>
          <OverrideForm
            key={`${ws}-${view.version}`}
            workspaceId={ws}
            view={view}
            setBy={view.workspace_override ? people.name(view.workspace_override.created_by) : null}
            onSaved={(v) => {
              setView(v);
              setSaved(`The override was saved; the policy is now version ${v.version}.`);
            }}
          />
          <Notice text={saved} />
        </section>
      )}
    </>
  );
}

function OverrideForm(props: { workspaceId: string; view: PolicyView; setBy: string | null; onSaved: (v: PolicyView) => void }) {
  const current = props.view.workspace_override;
  const [text, setText] = useState(current?.document ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function save(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const res = await request('put', `/api/v1/workspaces/${encodeURIComponent(props.workspaceId)}/policy`, {
        body: text,
        contentType: 'application/toml',
        headers: { 'if-match': `"${props.view.version}"` },
      });
      props.onSaved((await res.json()) as PolicyView);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 412
          ? `Someone changed the policy meanwhile (${err.message}). Reload it, then make your change again.`
          : failureText(err),
      );
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={save} aria-label="Workspace override">
      {current ? (
        <p class="hint">
          Stored as version {current.version}, {when(current.created_at)}
          {props.setBy ? ` by ${props.setBy}` : ''}.
        </p>
      ) : (
        <p class="hint">This workspace has no override: the modules decide every key.</p>
      )}
      <div class="field">
        <label for="policy-override">Override (TOML)</label>
        <textarea
          id="policy-override"
          class="policy-editor"
          spellcheck={false}
          rows={12}
          placeholder={'[retention]\nmessages_days = 365'}
          aria-describedby="policy-override-hint"
          aria-invalid={error ? true : undefined}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        <p class="hint" id="policy-override-hint">
          Keys not given keep the modules' values. Sections: [retention], [phi], [data_subject], {'[channels."<channel id>"]'}.
        </p>
      </div>
      <ErrorText error={error} />
      <div>
        <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
          {busy ? 'Saving…' : 'Save override'}
        </button>
      </div>
    </form>
  );
}
