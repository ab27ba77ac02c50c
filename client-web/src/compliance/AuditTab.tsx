// The audit log: entries filtered by action, actor, target, workspace, outcome and time, a page at
// a time; the export of a time range as a file (JSON Lines, verifiable offline, or CSV); the live
// chain's verification (its last result, and "Verify now").
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, type Schemas } from '../api';
import { downloadFrom } from '../console/download';
import type { People } from '../console/people';
import { fromLocalInput, when } from '../console/time';
import { Empty, failureText } from '../console/ui';
import type { Workspace } from '../shell/types';
import { ErrorText, Loading } from '../shell/ui';

/** An audit entry as the list shows it (`GET /api/v1/audit/events` answers untyped objects). */
export interface AuditEntry {
  seq: number;
  id: string;
  occurredAt: string;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  workspaceId: string | null;
  outcome: string;
  ip: string | null;
  details: unknown;
  hash: string;
}

function str(o: object, key: string): string | null {
  const v: unknown = Reflect.get(o, key);
  return typeof v === 'string' ? v : null;
}

/** Reads an entry defensively: a field of the wrong type is treated as absent. */
export function readEntry(o: object): AuditEntry {
  const seq: unknown = Reflect.get(o, 'seq');
  return {
    seq: typeof seq === 'number' ? seq : 0,
    id: str(o, 'id') ?? '',
    occurredAt: str(o, 'occurred_at') ?? '',
    actorType: str(o, 'actor_type') ?? '',
    actorId: str(o, 'actor_id'),
    action: str(o, 'action') ?? '',
    targetType: str(o, 'target_type'),
    targetId: str(o, 'target_id'),
    workspaceId: str(o, 'workspace_id'),
    outcome: str(o, 'outcome') ?? '',
    ip: str(o, 'ip'),
    details: Reflect.get(o, 'details') ?? null,
    hash: str(o, 'hash') ?? '',
  };
}

interface Filters {
  action: string;
  actor: string;
  target: string;
  workspace: string;
  outcome: string;
  from: string;
  to: string;
}

const EMPTY: Filters = { action: '', actor: '', target: '', workspace: '', outcome: '', from: '', to: '' };
const PAGE = 50;

function outcomeTag(outcome: string) {
  const cls = outcome === 'allowed' ? 'tag tag-success' : outcome === 'denied' || outcome === 'failed' ? 'tag tag-danger' : 'tag';
  return <span class={cls}>{outcome}</span>;
}

export function AuditTab({ people, workspaces }: { people: People; workspaces: Workspace[] }) {
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters | null>(null);
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [state, setState] = useState<'idle' | 'loading' | 'more' | 'ready'>('idle');
  const [error, setError] = useState<string | null>(null);
  const [format, setFormat] = useState<'jsonl' | 'csv'>('jsonl');
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<string | null>(null);
  const [exportNotice, setExportNotice] = useState('');
  const request = useRef(0);

  const set = (key: keyof Filters) => (e: { currentTarget: { value: string } }) => setDraft((d) => ({ ...d, [key]: e.currentTarget.value }));

  async function load(f: Filters, after: string | null) {
    const id = ++request.current;
    setState(after ? 'more' : 'loading');
    setError(null);
    const from = fromLocalInput(f.from);
    const to = fromLocalInput(f.to);
    try {
      const page = await api('get', '/api/v1/audit/events', {
        params: {
          query: {
            action: f.action.trim() || undefined,
            actor: f.actor || undefined,
            target: f.target.trim() || undefined,
            workspace: f.workspace || undefined,
            outcome: f.outcome || undefined,
            from,
            to,
            cursor: after ?? undefined,
            limit: PAGE,
          },
        },
      });
      if (id !== request.current) return;
      const got = page.events.map(readEntry);
      setEntries((prev) => (after ? [...prev, ...got] : got));
      setCursor(page.next_cursor ?? null);
      setState('ready');
    } catch (e) {
      if (id !== request.current) return;
      setError(failureText(e));
      setState(after ? 'ready' : 'idle');
    }
  }

  // The log from its beginning (entries come in sequence order), until the reader filters.
  useEffect(() => {
    setApplied(EMPTY);
    void load(EMPTY, null);
  }, []);

  function search(e: Event) {
    e.preventDefault();
    if (draft.from && draft.to && draft.to < draft.from) {
      setError('The end of the range cannot be before its start.');
      return;
    }
    setApplied(draft);
    void load(draft, null);
  }

  function clear() {
    setDraft(EMPTY);
    setApplied(EMPTY);
    void load(EMPTY, null);
  }

  async function exportLog() {
    setExporting(true);
    setExportError(null);
    setExportNotice('');
    const q = new URLSearchParams({ format });
    const from = fromLocalInput(draft.from);
    const to = fromLocalInput(draft.to);
    if (from) q.set('from', from);
    if (to) q.set('to', to);
    try {
      await downloadFrom(`/api/v1/audit/export?${q}`, `audit-export.${format}`);
      setExportNotice('The export was downloaded.');
    } catch (e) {
      setExportError(failureText(e));
    } finally {
      setExporting(false);
    }
  }

  const actions = useMemo(() => [...new Set(entries.map((e) => e.action))].sort(), [entries]);
  const wsName = (id: string | null) => (id ? workspaces.find((w) => w.id === id)?.name ?? `${id.slice(0, 8)}…` : '—');

  return (
    <>
      <section class="card" aria-labelledby="audit-search-heading">
        <h2 id="audit-search-heading">Search the audit log</h2>
        <form class="console-filters" onSubmit={search} aria-label="Audit filters">
          <div class="field">
            <label for="audit-action">Action</label>
            <input id="audit-action" list="audit-actions" placeholder="auth.sign_in" value={draft.action} onInput={set('action')} />
            <datalist id="audit-actions">
              {actions.map((a) => (
                <option key={a} value={a} />
              ))}
            </datalist>
          </div>
          <div class="field">
            <label for="audit-actor">Actor</label>
            <select id="audit-actor" value={draft.actor} onChange={set('actor')}>
              <option value="">Anyone</option>
              {(people.list ?? []).map((p) => (
                <option key={p.id} value={p.id}>
                  {p.display_name} ({p.email})
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="audit-target">Target id</label>
            <input id="audit-target" value={draft.target} onInput={set('target')} autoComplete="off" />
          </div>
          <div class="field">
            <label for="audit-workspace">In workspace</label>
            <select id="audit-workspace" value={draft.workspace} onChange={set('workspace')}>
              <option value="">Any</option>
              {workspaces.map((w) => (
                <option key={w.id} value={w.id}>
                  {w.name}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="audit-outcome">Outcome</label>
            <select id="audit-outcome" value={draft.outcome} onChange={set('outcome')}>
              <option value="">Any</option>
              <option value="allowed">Allowed</option>
              <option value="denied">Denied</option>
              <option value="failed">Failed</option>
            </select>
          </div>
          <div class="field">
            <label for="audit-from">From</label>
            <input id="audit-from" type="datetime-local" value={draft.from} onInput={set('from')} />
          </div>
          <div class="field">
            <label for="audit-to">Until</label>
            <input id="audit-to" type="datetime-local" value={draft.to} onInput={set('to')} />
          </div>
          <div class="button-row start">
            <button type="submit" class="button button-primary small" disabled={state === 'loading'} aria-busy={state === 'loading'}>
              {state === 'loading' ? 'Searching…' : 'Search'}
            </button>
            <button type="button" class="button small" onClick={clear}>
              Clear filters
            </button>
          </div>
        </form>
      </section>

      <section class="card" aria-labelledby="audit-results-heading">
        <h2 id="audit-results-heading">Entries</h2>
        <ErrorText error={error} />
        {state === 'loading' && <Loading label="Searching the audit log…" />}
        {(state === 'ready' || state === 'more') && entries.length === 0 && <Empty>No entries match these filters.</Empty>}
        {entries.length > 0 && state !== 'loading' && (
          <>
            <p class="hint" role="status">
              {entries.length} {entries.length === 1 ? 'entry' : 'entries'} shown
              {applied?.action ? ` for ${applied.action}` : ''}, oldest first{cursor ? '; more are available' : ''}.
            </p>
            <div class="table-wrap">
              <table class="data-table" aria-label="Audit entries">
                <thead>
                  <tr>
                    <th scope="col">Time</th>
                    <th scope="col">Action</th>
                    <th scope="col">Actor</th>
                    <th scope="col">Target</th>
                    <th scope="col">Workspace</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Details</th>
                  </tr>
                </thead>
                <tbody>
                  {entries.map((e) => (
                    <tr key={e.id || e.seq} data-seq={e.seq}>
                      <td>{when(e.occurredAt)}</td>
                      <td class="mono nowrap">{e.action}</td>
                      <td>{e.actorId ? people.name(e.actorId) : e.actorType}</td>
                      <td>
                        {e.targetType && <span class="tag">{e.targetType}</span>} <span class="mono">{e.targetId ?? ''}</span>
                      </td>
                      <td>{wsName(e.workspaceId)}</td>
                      <td>{outcomeTag(e.outcome)}</td>
                      <td>
                        <details>
                          <summary>#{e.seq}</summary>
                          <dl class="facts">
                            {e.ip && (
                              <div>
                                <dt>Address</dt>
                                <dd>{e.ip}</dd>
                              </div>
                            )}
                            <div>
                              <dt>Hash</dt>
                              <dd class="mono">{e.hash}</dd>
                            </div>
                            {e.details !== null && (
                              <div>
                                <dt>Details</dt>
                                <dd>
                                  <pre class="mono">{JSON.stringify(e.details, null, 2)}</pre>
                                </dd>
                              </div>
                            )}
                          </dl>
                        </details>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            {cursor && applied && (
              <div class="button-row" style={{ marginTop: '12px' }}>
                <button type="button" class="button small" disabled={state === 'more'} aria-busy={state === 'more'} onClick={() => void load(applied, cursor)}>
                  {state === 'more' ? 'Loading…' : 'Load more entries'}
                </button>
              </div>
            )}
          </>
        )}
      </section>

      <ChainStatus people={people} />

      <section class="card" aria-labelledby="audit-export-heading">
        <h2 id="audit-export-heading">Export and integrity</h2>
        <p>
          Exports cover the time range above (all of the log when it is empty), with the signed checkpoints the range
          spans. Verify an export offline with{' '}
          <code>concord audit verify --file audit-export.jsonl --public-key KEY</code> and the key history from{' '}
          <code>concord audit public-key</code>.
        </p>
        <div class="field-row">
          <div class="field">
            <label for="audit-format">Export format</label>
            <select id="audit-format" value={format} onChange={(e) => setFormat(e.currentTarget.value === 'csv' ? 'csv' : 'jsonl')}>
              <option value="jsonl">JSON Lines (verifiable)</option>
              <option value="csv">CSV</option>
            </select>
          </div>
        </div>
        <ErrorText error={exportError} />
        <p class="hint" role="status">
          {exportNotice}
        </p>
        <div class="button-row start">
          <button type="button" class="button small" disabled={exporting} aria-busy={exporting} onClick={exportLog}>
            {exporting ? 'Exporting…' : 'Download export'}
          </button>
        </div>
      </section>
    </>
  );
}

type Verification = Schemas['VerificationResult'];

/** The live log's last verification, and a button to run one now. */
function ChainStatus({ people }: { people: People }) {
  const [last, setLast] = useState<Verification | null>(null);
  const [state, setState] = useState<'loading' | 'idle' | 'running'>('loading');
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const poll = useRef<number | null>(null);

  async function refresh() {
    try {
      const s = await api('get', '/api/v1/audit/verification');
      setLast(s.last ?? null);
      setState(s.running ? 'running' : 'idle');
      if (s.running) poll.current = window.setTimeout(() => void refresh(), 2000);
    } catch (e) {
      setError(failureText(e));
      setState('idle');
    }
  }

  useEffect(() => {
    void refresh();
    return () => {
      if (poll.current !== null) window.clearTimeout(poll.current);
    };
  }, []);

  async function verifyNow() {
    setState('running');
    setError(null);
    setNotice('');
    try {
      const result = await api('post', '/api/v1/audit/verify');
      setLast(result);
      setState('idle');
      setNotice(result.ok ? 'The audit log verified.' : 'The audit log did not verify.');
    } catch (e) {
      if (e instanceof ApiError && e.code === 'verification_running') {
        setNotice('A verification is already running; its result appears here when it finishes.');
        void refresh();
        return;
      }
      // The request can end before a very long verification does: it keeps running.
      setError(failureText(e));
      void refresh();
    }
  }

  const by = (id: string | null | undefined) => (!id ? '—' : id === 'system' ? 'the command line' : people.name(id));

  return (
    <section class="card" aria-labelledby="audit-chain-heading">
      <h2 id="audit-chain-heading">Chain integrity</h2>
      <p>
        The log is a hash chain with signed checkpoints. A verification checks every entry and checkpoint of the live log,
        as <code>concord audit verify</code> does, and is itself recorded as <code>audit.verify</code>.
      </p>
      {state === 'loading' && <Loading label="Reading the last verification…" />}
      {state !== 'loading' && (
        <div aria-label="Chain status" role="group">
          {!last && state !== 'running' && <p class="hint">Not verified since the server started.</p>}
          {last && (
            <dl class="facts">
              <div>
                <dt>Status</dt>
                <dd>
                  {last.ok ? (
                    <span class="tag tag-success">Verified</span>
                  ) : (
                    <span class="tag tag-danger">Broken at entry #{last.problem?.seq ?? '?'}</span>
                  )}
                </dd>
              </div>
              <div>
                <dt>Last verified</dt>
                <dd>
                  {when(last.verified_at)} by {by(last.verified_by)}
                </dd>
              </div>
              {last.ok && (
                <div>
                  <dt>Checked</dt>
                  <dd>
                    {last.checked_entries ?? 0} entries up to #{last.head_seq ?? 0}, {last.checkpoints ?? 0} signed checkpoint
                    {last.checkpoints === 1 ? '' : 's'}
                  </dd>
                </div>
              )}
              {!last.ok && last.problem && (
                <div>
                  <dt>Problem</dt>
                  <dd class="mono">{last.problem.message}</dd>
                </div>
              )}
            </dl>
          )}
        </div>
      )}
      <ErrorText error={error} />
      <p class="hint" role="status">
        {state === 'running' ? 'Verifying the audit log…' : notice}
      </p>
      <div class="button-row start">
        <button type="button" class="button small" disabled={state !== 'idle'} aria-busy={state === 'running'} onClick={() => void verifyNow()}>
          {state === 'running' ? 'Verifying…' : 'Verify now'}
        </button>
      </div>
    </section>
  );
}
