// The breach register: breaches with the supervisory authority's 72-hour deadline (overdue ones
// marked), recording a new one, updating one's status and notifications, and its report of who
// and what it affected (read from the audit log).
import { useEffect, useState } from 'preact/hooks';
import { api, type Schemas } from '../api';
import type { People } from '../console/people';
import { fromLocalInput, nowLocalInput, when } from '../console/time';
import { Empty, failureText, Notice } from '../console/ui';
import { ErrorText, Loading } from '../shell/ui';

type Breach = Schemas['BreachView'];
type Report = Schemas['BreachReport'];
type Status = Schemas['BreachStatus'];

/** "31 h left", "5 h overdue", "told 2 Mar" or "closed". */
export function deadlineText(b: Breach): string {
  if (b.authority_notified_at) return `authority told ${when(b.authority_notified_at)}${b.notified_late ? ' (late)' : ''}`;
  if (b.status === 'closed') return 'closed';
  const h = b.hours_left;
  if (h === null || h === undefined) return '—';
  if (b.overdue) return h < 0 ? `${-h} h overdue` : 'overdue';
  return `${h} h left`;
}

export function BreachesTab({ people }: { people: People }) {
  const [breaches, setBreaches] = useState<Breach[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [open, setOpen] = useState<string | null>(null);

  useEffect(() => {
    api('get', '/api/v1/breaches', { params: { query: { limit: 200 } } })
      .then((p) => setBreaches(p.breaches))
      .catch((e) => setError(failureText(e)));
  }, []);

  function changed(b: Breach) {
    setBreaches((bs) => (bs ?? []).map((x) => (x.id === b.id ? b : x)));
  }

  const selected = breaches?.find((b) => b.id === open) ?? null;
  return (
    <>
      <section class="card" aria-labelledby="breaches-heading">
        <h2 id="breaches-heading">Breach register</h2>
        <ErrorText error={error} />
        <Notice text={notice} />
        {!breaches && !error && <Loading label="Loading the register…" />}
        {breaches && breaches.length === 0 && <Empty>No breaches recorded.</Empty>}
        {breaches && breaches.length > 0 && (
          <div class="table-wrap">
            <table class="data-table" aria-label="Breaches">
              <thead>
                <tr>
                  <th scope="col">Breach</th>
                  <th scope="col">Discovered</th>
                  <th scope="col">Authority due</th>
                  <th scope="col">Notification</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {breaches.map((b) => (
                  <tr key={b.id} data-breach-id={b.id} class={b.overdue ? 'is-overdue' : b.id === open ? 'is-selected' : undefined}>
                    <td>
                      <strong>{b.title}</strong>
                    </td>
                    <td>{when(b.discovered_at)}</td>
                    <td>{when(b.authority_due_at)}</td>
                    <td>{b.overdue ? <span class="tag tag-danger">{deadlineText(b)}</span> : deadlineText(b)}</td>
                    <td>
                      <span class={b.status === 'closed' ? 'tag' : b.status === 'contained' ? 'tag tag-warning' : 'tag tag-danger'}>{b.status}</span>
                    </td>
                    <td>
                      <button
                        type="button"
                        class="button small"
                        aria-expanded={b.id === open}
                        aria-label={`${b.id === open ? 'Hide' : 'Open'} ${b.title}`}
                        onClick={() => setOpen(b.id === open ? null : b.id)}
                      >
                        {b.id === open ? 'Hide' : 'Open'}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {selected && <BreachDetail key={selected.id} breach={selected} people={people} onChanged={changed} />}
      </section>
      <section class="card" aria-labelledby="new-breach-heading">
        <h2 id="new-breach-heading">Record a breach</h2>
        <NewBreachForm
          people={people}
          onRecorded={(b) => {
            setBreaches((bs) => [...(bs ?? []), b]);
            setOpen(b.id);
            setNotice(`The breach was recorded; the supervisory authority is due by ${when(b.authority_due_at)}.`);
          }}
        />
      </section>
    </>
  );
}

function BreachDetail({ breach: b, people, onChanged }: { breach: Breach; people: People; onChanged: (b: Breach) => void }) {
  const [status, setStatus] = useState<Status>(b.status);
  const [told, setTold] = useState('');
  const [subjectsTold, setSubjectsTold] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [report, setReport] = useState<Report | null>(null);
  const [reportBusy, setReportBusy] = useState(false);
  const [reportError, setReportError] = useState<string | null>(null);
  const closed = b.status === 'closed';

  async function save(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setNotice('');
    try {
      const json: Schemas['BreachChange'] = {};
      if (status !== b.status) json.status = status;
      const a = fromLocalInput(told);
      if (a) json.authority_notified_at = a;
      const s = fromLocalInput(subjectsTold);
      if (s) json.subjects_notified_at = s;
      const updated = await api('patch', '/api/v1/breaches/{breach_id}', { params: { path: { breach_id: b.id } }, json });
      onChanged(updated);
      setTold('');
      setSubjectsTold('');
      setNotice('The breach was updated.');
    } catch (err) {
      setError(failureText(err));
    } finally {
      setBusy(false);
    }
  }

  async function loadReport() {
    setReportBusy(true);
    setReportError(null);
    try {
      setReport(await api('get', '/api/v1/breaches/{breach_id}/report', { params: { path: { breach_id: b.id } } }));
    } catch (err) {
      setReportError(failureText(err));
    } finally {
      setReportBusy(false);
    }
  }

  return (
    <div class="console-detail" role="region" aria-label={`Breach: ${b.title}`}>
      <h3>{b.title}</h3>
      {b.description && <p>{b.description}</p>}
      <dl class="facts">
        <div>
          <dt>Occurred</dt>
          <dd>
            {b.occurred_from ? when(b.occurred_from) : 'unknown'} to {b.occurred_to ? when(b.occurred_to) : 'unknown'}
          </dd>
        </div>
        <div>
          <dt>Accounts</dt>
          <dd>{b.accounts.length ? b.accounts.map(people.name).join(', ') : 'none named'}</dd>
        </div>
        <div>
          <dt>Authority told</dt>
          <dd>{b.authority_notified_at ? when(b.authority_notified_at) : 'not yet'}</dd>
        </div>
        <div>
          <dt>People told</dt>
          <dd>{b.subjects_notified_at ? when(b.subjects_notified_at) : 'not yet'}</dd>
        </div>
        <div>
          <dt>Recorded</dt>
          <dd>
            {when(b.created_at)} by {people.name(b.created_by)}
          </dd>
        </div>
      </dl>

      {!closed && (
        <form class="form" onSubmit={save} aria-label="Update the breach" style={{ marginTop: '12px' }}>
          <div class="field-row">
            <div class="field">
              <label for="breach-status">Status</label>
              <select id="breach-status" value={status} onChange={(e) => setStatus(e.currentTarget.value as Status)}>
                <option value="open">open</option>
                <option value="contained">contained</option>
                <option value="closed">closed (final)</option>
              </select>
            </div>
            <div class="field">
              <label for="breach-told">Authority told at</label>
              <input id="breach-told" type="datetime-local" max={nowLocalInput()} value={told} onInput={(e) => setTold(e.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="breach-subjects-told">People affected told at</label>
              <input id="breach-subjects-told" type="datetime-local" max={nowLocalInput()} value={subjectsTold} onInput={(e) => setSubjectsTold(e.currentTarget.value)} />
            </div>
          </div>
          <ErrorText error={error} />
          <Notice text={notice} />
          <div>
            <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
              {busy ? 'Saving…' : 'Save changes'}
            </button>
          </div>
        </form>
      )}

      <h3>Report</h3>
      <p class="hint">Who and what the involved accounts reached during the breach's window, from the audit log. Reading it is audited.</p>
      <ErrorText error={reportError} />
      <button type="button" class="button small" disabled={reportBusy} aria-busy={reportBusy} onClick={loadReport}>
        {reportBusy ? 'Building the report…' : report ? 'Build the report again' : 'Build the report'}
      </button>
      {report && <ReportView report={report} people={people} />}
    </div>
  );
}

function ReportView({ report: r, people }: { report: Report; people: People }) {
  return (
    <div role="region" aria-label="Breach report">
      <p>
        {r.entries} audit {r.entries === 1 ? 'entry' : 'entries'} read from {r.from ? when(r.from) : 'the beginning'} to {when(r.to)} for{' '}
        {r.accounts.length ? r.accounts.map(people.name).join(', ') : 'no account'}.
        {r.truncated && <strong> The window held too many entries; narrow it for a complete report.</strong>}
      </p>
      <h3>People affected</h3>
      {r.people.length === 0 ? (
        <Empty>No one else's data was reached.</Empty>
      ) : (
        <ul>
          {r.people.map((p) => (
            <li key={p.user_id}>
              {people.name(p.user_id)}: {p.categories.join(', ')} ({p.accesses.length} {p.accesses.length === 1 ? 'access' : 'accesses'})
            </li>
          ))}
        </ul>
      )}
      <h3>Categories of data</h3>
      {r.categories.length === 0 ? (
        <Empty>None.</Empty>
      ) : (
        <ul>
          {r.categories.map((c) => (
            <li key={c.category}>
              {c.category}: {c.objects} {c.objects === 1 ? 'object' : 'objects'} in {c.entries} {c.entries === 1 ? 'entry' : 'entries'}
            </li>
          ))}
        </ul>
      )}
      <h3>Actions</h3>
      {r.actions.length === 0 ? (
        <Empty>None.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="data-table" aria-label="Actions in the window">
            <thead>
              <tr>
                <th scope="col">Action</th>
                <th scope="col">Allowed</th>
                <th scope="col">Refused or failed</th>
              </tr>
            </thead>
            <tbody>
              {r.actions.map((a) => (
                <tr key={a.action}>
                  <td class="mono">{a.action}</td>
                  <td>{a.allowed}</td>
                  <td>{a.refused}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h3>Addresses</h3>
      {r.addresses.length === 0 ? (
        <Empty>None recorded.</Empty>
      ) : (
        <ul>
          {r.addresses.map((a, i) => (
            <li key={i}>
              {people.name(a.account)} from {a.ip ?? 'an unrecorded address'}: {a.entries} entries, {a.sign_ins} sign-ins, {when(a.first_seen)} to{' '}
              {when(a.last_seen)}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function NewBreachForm({ people, onRecorded }: { people: People; onRecorded: (b: Breach) => void }) {
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [discovered, setDiscovered] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [accounts, setAccounts] = useState<Set<string>>(new Set());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function record(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const b = await api('post', '/api/v1/breaches', {
        json: {
          title: title.trim(),
          description: description.trim() || null,
          discovered_at: fromLocalInput(discovered) ?? null,
          occurred_from: fromLocalInput(from) ?? null,
          occurred_to: fromLocalInput(to) ?? null,
          accounts: [...accounts],
        },
      });
      onRecorded(b);
      setTitle('');
      setDescription('');
      setDiscovered('');
      setFrom('');
      setTo('');
      setAccounts(new Set());
    } catch (err) {
      setError(failureText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={record} aria-label="Record a breach">
      <div class="field">
        <label for="breach-title">Title</label>
        <input id="breach-title" required maxLength={200} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
      </div>
      <div class="field">
        <label for="breach-description">What happened, its likely consequences and the measures taken</label>
        <textarea id="breach-description" rows={3} maxLength={20000} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
      </div>
      <div class="field-row">
        <div class="field">
          <label for="breach-discovered">Discovered (empty: now)</label>
          <input id="breach-discovered" type="datetime-local" value={discovered} onInput={(e) => setDiscovered(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="breach-from">Began (if known)</label>
          <input id="breach-from" type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="breach-to">Ended (if known)</label>
          <input id="breach-to" type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </div>
      </div>
      <fieldset class="field">
        <legend>Accounts involved</legend>
        <p class="hint">Those used or misused in the breach; the report reads what they did.</p>
        <div class="check-list">
          {(people.list ?? []).map((p) => (
            <label key={p.id}>
              <input
                type="checkbox"
                checked={accounts.has(p.id)}
                onChange={(e) => {
                  const next = new Set(accounts);
                  if (e.currentTarget.checked) next.add(p.id);
                  else next.delete(p.id);
                  setAccounts(next);
                }}
              />
              {p.display_name}
            </label>
          ))}
        </div>
      </fieldset>
      <ErrorText error={error} />
      <div>
        <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
          {busy ? 'Recording…' : 'Record breach'}
        </button>
      </div>
    </form>
  );
}
