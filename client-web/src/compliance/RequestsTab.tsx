// Data-subject requests: the register with each request's deadline and the days left (overdue
// ones marked), recording a request received, and extending, completing or refusing an open one.
import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, type Schemas } from '../api';
import type { People } from '../console/people';
import { day, fromLocalInput, when } from '../console/time';
import { Empty, failureText, Notice } from '../console/ui';
import { ErrorText, Loading } from '../shell/ui';

type Request = Schemas['RequestView'];
type Status = Schemas['RequestStatus'];
type Kind = Schemas['RequestKind'];

const KINDS: Kind[] = ['access', 'portability', 'rectification', 'erasure', 'restriction', 'objection'];
const STATUSES: Status[] = ['open', 'extended', 'completed', 'refused'];

/** The deadline in force: the extended one, else the first. */
export function deadline(r: Request): string {
  return r.extended_until ?? r.due_at;
}

/** "3 days left", "due today", "2 days overdue", or how it was answered. */
export function daysLeftText(r: Request): string {
  if (r.days_left === null || r.days_left === undefined) return r.status === 'refused' ? 'refused' : 'answered';
  const d = r.days_left;
  if (r.overdue) return d < 0 ? `${-d} ${-d === 1 ? 'day' : 'days'} overdue` : 'overdue';
  if (d <= 0) return 'due today';
  return `${d} ${d === 1 ? 'day' : 'days'} left`;
}

function statusTag(s: Status) {
  const cls = s === 'completed' ? 'tag tag-success' : s === 'refused' ? 'tag' : s === 'extended' ? 'tag tag-warning' : 'tag tag-accent';
  return <span class={cls}>{s}</span>;
}

type Action = { id: string; kind: 'extend' | 'complete' | 'refuse' };

export function RequestsTab({ people }: { people: People }) {
  const [status, setStatus] = useState<Status | ''>('');
  const [overdueOnly, setOverdueOnly] = useState(false);
  const [requests, setRequests] = useState<Request[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [action, setAction] = useState<Action | null>(null);
  const [more, setMore] = useState(false);

  async function load(after: string | null) {
    if (!after) setRequests(null);
    setError(null);
    setMore(!!after);
    try {
      const page = await api('get', '/api/v1/data-subject-requests', {
        params: { query: { status: status || undefined, overdue: overdueOnly || undefined, cursor: after ?? undefined, limit: 100 } },
      });
      setRequests((prev) => (after ? [...(prev ?? []), ...page.requests] : page.requests));
      setCursor(page.next_cursor ?? null);
    } catch (e) {
      setError(failureText(e));
      if (!after) setRequests([]);
    } finally {
      setMore(false);
    }
  }

  useEffect(() => {
    void load(null);
  }, [status, overdueOnly]);

  function replaced(r: Request, what: string) {
    setRequests((rs) => (rs ?? []).map((x) => (x.id === r.id ? r : x)));
    setAction(null);
    setNotice(what);
  }

  const overdueCount = (requests ?? []).filter((r) => r.overdue).length;

  return (
    <>
      <section class="card" aria-labelledby="dsr-heading">
        <div class="card-head">
          <h2 id="dsr-heading">Data-subject requests</h2>
          {overdueCount > 0 && <span class="tag tag-danger">{overdueCount} overdue</span>}
        </div>
        <div class="field-row">
          <div class="field">
            <label for="dsr-status">Status</label>
            <select id="dsr-status" value={status} onChange={(e) => setStatus(e.currentTarget.value as Status | '')}>
              <option value="">Any</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </div>
          <div class="field" style={{ justifyContent: 'flex-end' }}>
            <label class="check">
              <input type="checkbox" checked={overdueOnly} onChange={(e) => setOverdueOnly(e.currentTarget.checked)} /> Overdue only
            </label>
          </div>
        </div>
        <ErrorText error={error} />
        <Notice text={notice} />
        {!requests && <Loading label="Loading requests…" />}
        {requests && requests.length === 0 && !error && <Empty>No data-subject requests match.</Empty>}
        {requests && requests.length > 0 && (
          <div class="table-wrap">
            <table class="data-table" aria-label="Data-subject requests">
              <thead>
                <tr>
                  <th scope="col">Person</th>
                  <th scope="col">Request</th>
                  <th scope="col">Received</th>
                  <th scope="col">Deadline</th>
                  <th scope="col">Days left</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {requests.map((r) => {
                  const who = people.name(r.subject_id);
                  const open = r.status === 'open' || r.status === 'extended';
                  return (
                    <Fragment key={r.id}>
                      <tr data-request-id={r.id} class={r.overdue ? 'is-overdue' : undefined}>
                        <td>{who}</td>
                        <td>
                          {r.kind}
                          {r.note && <div class="hint">{r.note}</div>}
                        </td>
                        <td>{day(r.received_at)}</td>
                        <td>
                          {day(deadline(r))}
                          {r.extended_until && <div class="hint">extended: {r.extension_reason}</div>}
                        </td>
                        <td>
                          {r.overdue ? <span class="tag tag-danger">{daysLeftText(r)}</span> : daysLeftText(r)}
                        </td>
                        <td>
                          {statusTag(r.status)}
                          {r.outcome && <div class="hint">{r.outcome}</div>}
                          {r.completed_at && <div class="hint">{when(r.completed_at)}</div>}
                        </td>
                        <td>
                          {open && (
                            <div class="cell-actions">
                              <button type="button" class="button small" aria-label={`Extend ${who}'s ${r.kind} request`} onClick={() => setAction({ id: r.id, kind: 'extend' })}>
                                Extend
                              </button>
                              <button type="button" class="button small" aria-label={`Complete ${who}'s ${r.kind} request`} onClick={() => setAction({ id: r.id, kind: 'complete' })}>
                                Complete
                              </button>
                              <button type="button" class="button small" aria-label={`Refuse ${who}'s ${r.kind} request`} onClick={() => setAction({ id: r.id, kind: 'refuse' })}>
                                Refuse
                              </button>
                            </div>
                          )}
                        </td>
                      </tr>
                      {action && action.id === r.id && (
                        <tr>
                          <td colSpan={7}>
                            <AnswerForm request={r} who={who} kind={action.kind} onCancel={() => setAction(null)} onDone={replaced} />
                          </td>
                        </tr>
                      )}
                    </Fragment>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {cursor && (
          <div class="button-row" style={{ marginTop: '12px' }}>
            <button type="button" class="button small" disabled={more} aria-busy={more} onClick={() => void load(cursor)}>
              {more ? 'Loading…' : 'Load more requests'}
            </button>
          </div>
        )}
      </section>
      <section class="card" aria-labelledby="new-dsr-heading">
        <h2 id="new-dsr-heading">Record a request</h2>
        <NewRequestForm
          people={people}
          onRecorded={(r) => {
            setRequests((rs) => [...(rs ?? []), r]);
            setNotice(`The request was recorded; it is due ${day(r.due_at)}.`);
          }}
        />
      </section>
    </>
  );
}

/** Extends, completes or refuses one request. */
function AnswerForm(props: {
  request: Request;
  who: string;
  kind: Action['kind'];
  onCancel: () => void;
  onDone: (r: Request, what: string) => void;
}) {
  const { request: r, kind } = props;
  const [text, setText] = useState('');
  const [days, setDays] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const id = `dsr-${kind}-${r.id}`;

  async function submit(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const path = { params: { path: { request_id: r.id } } };
    try {
      if (kind === 'extend') {
        const n = days.trim() ? Number(days) : null;
        const done = await api('post', '/api/v1/data-subject-requests/{request_id}/extend', { ...path, json: { reason: text, days: n } });
        props.onDone(done, `The request was extended to ${day(deadline(done))}.`);
      } else if (kind === 'complete') {
        const done = await api('post', '/api/v1/data-subject-requests/{request_id}/complete', { ...path, json: { outcome: text.trim() || null } });
        props.onDone(done, 'The request was completed.');
      } else {
        const done = await api('post', '/api/v1/data-subject-requests/{request_id}/refuse', { ...path, json: { reason: text } });
        props.onDone(done, 'The request was refused.');
      }
    } catch (err) {
      setError(failureText(err));
    } finally {
      setBusy(false);
    }
  }

  const title = kind === 'extend' ? 'Extend the deadline' : kind === 'complete' ? 'Complete the request' : 'Refuse the request';
  const label = kind === 'complete' ? 'What was done (optional)' : kind === 'extend' ? 'Reason for the extension' : 'Reason for refusing (the person is told)';
  return (
    <form class="form" onSubmit={submit} aria-label={`${title}: ${props.who}`}>
      <strong>{title}</strong>
      {kind === 'extend' && (
        <div class="field">
          <label for={`${id}-days`}>Days to add (empty: all the policy allows)</label>
          <input id={`${id}-days`} type="number" min={1} value={days} onInput={(e) => setDays(e.currentTarget.value)} />
        </div>
      )}
      <div class="field">
        <label for={`${id}-text`}>{label}</label>
        <textarea id={`${id}-text`} rows={2} maxLength={4000} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      </div>
      <ErrorText error={error} />
      <div class="button-row start">
        <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
          {busy ? 'Saving…' : kind === 'extend' ? 'Extend deadline' : kind === 'complete' ? 'Complete request' : 'Refuse request'}
        </button>
        <button type="button" class="button small" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function NewRequestForm({ people, onRecorded }: { people: People; onRecorded: (r: Request) => void }) {
  const [subject, setSubject] = useState('');
  const [kind, setKind] = useState<Kind>('access');
  const [note, setNote] = useState('');
  const [received, setReceived] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function record(e: Event) {
    e.preventDefault();
    if (!subject) {
      setError('Choose the person the request is about.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const r = await api('post', '/api/v1/data-subject-requests', {
        json: { subject_id: subject, kind, note: note.trim() || null, received_at: fromLocalInput(received) ?? null },
      });
      onRecorded(r);
      setNote('');
      setReceived('');
    } catch (err) {
      setError(failureText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={record} aria-label="Record a request">
      <div class="field-row">
        <div class="field">
          <label for="dsr-subject">Person</label>
          <select id="dsr-subject" value={subject} onChange={(e) => setSubject(e.currentTarget.value)}>
            <option value="">Choose…</option>
            {(people.list ?? [])
              .filter((p) => p.status !== 'erased')
              .map((p) => (
                <option key={p.id} value={p.id}>
                  {p.display_name} ({p.email})
                </option>
              ))}
          </select>
        </div>
        <div class="field">
          <label for="dsr-kind">Kind</label>
          <select id="dsr-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as Kind)}>
            {KINDS.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="dsr-received">Received (empty: now)</label>
          <input id="dsr-received" type="datetime-local" value={received} onInput={(e) => setReceived(e.currentTarget.value)} />
        </div>
      </div>
      <div class="field">
        <label for="dsr-note">What was asked</label>
        <textarea id="dsr-note" rows={2} maxLength={4000} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
      </div>
      <ErrorText error={error} />
      <div>
        <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
          {busy ? 'Recording…' : 'Record request'}
        </button>
      </div>
    </form>
  );
}
