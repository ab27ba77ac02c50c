// Sessions: pick a person, see where they are signed in, and sign one session or all out.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, type Me, type Schemas } from '../api';
import { describeAgent } from '../account/AccountView';
import type { People } from '../console/people';
import { when } from '../console/time';
import { Empty, failureText, Notice } from '../console/ui';
import { ErrorText, Loading } from '../shell/ui';

type Session = Schemas['SessionView'];

export function SessionsTab({ me, people }: { me: Me; people: People }) {
  const [who, setWho] = useState('');
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState<string | null>(null);

  function load(id: string) {
    setSessions(null);
    setError(null);
    api('get', '/api/v1/users/{user_id}/sessions', { params: { path: { user_id: id } } })
      .then((s) => setSessions(s.sort((a, b) => b.last_used_at.localeCompare(a.last_used_at))))
      .catch((e) => {
        setSessions([]);
        setError(failureText(e));
      });
  }

  useEffect(() => {
    if (who) load(who);
  }, [who]);

  async function revoke(s: Session) {
    setBusy(s.id);
    setError(null);
    setNotice('');
    try {
      await api('delete', '/api/v1/users/{user_id}/sessions/{session_id}', { params: { path: { user_id: who, session_id: s.id } } });
      setNotice('The session was signed out.');
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) setError(failureText(e));
    } finally {
      setBusy(null);
      load(who);
    }
  }

  async function revokeAll() {
    setBusy('all');
    setError(null);
    setNotice('');
    try {
      const r = await api('delete', '/api/v1/users/{user_id}/sessions', { params: { path: { user_id: who } } });
      setNotice(`${r.revoked} ${r.revoked === 1 ? 'session was' : 'sessions were'} signed out.`);
    } catch (e) {
      setError(failureText(e));
    } finally {
      setBusy(null);
      load(who);
    }
  }

  return (
    <section class="card" aria-labelledby="sessions-admin-heading">
      <h2 id="sessions-admin-heading">Sessions</h2>
      <div class="field console-picker">
        <label for="sessions-person">Person</label>
        <select id="sessions-person" value={who} onChange={(e) => setWho(e.currentTarget.value)}>
          <option value="">Choose…</option>
          {(people.list ?? []).map((p) => (
            <option key={p.id} value={p.id}>
              {p.display_name} ({p.email})
            </option>
          ))}
        </select>
      </div>
      <ErrorText error={error} />
      <Notice text={notice} />
      {!who && <Empty>Choose a person to see where they are signed in.</Empty>}
      {who && !sessions && <Loading label="Loading sessions…" />}
      {who && sessions && sessions.length === 0 && !error && <Empty>{people.name(who)} is not signed in anywhere.</Empty>}
      {who && sessions && sessions.length > 0 && (
        <>
          <div class="table-wrap">
            <table class="data-table" aria-label={`Sessions of ${people.name(who)}`}>
              <thead>
                <tr>
                  <th scope="col">Client</th>
                  <th scope="col">Address</th>
                  <th scope="col">Signed in</th>
                  <th scope="col">Last active</th>
                  <th scope="col">Ends</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {sessions.map((s) => (
                  <tr key={s.id}>
                    <td>
                      {describeAgent(s.user_agent)} {s.auth_method !== 'password' && <span class="tag">{s.auth_method}</span>}
                      {s.current && <span class="tag tag-accent">this session</span>}
                    </td>
                    <td>{s.ip ?? '—'}</td>
                    <td>{when(s.created_at)}</td>
                    <td>{when(s.last_used_at)}</td>
                    <td>{when(s.expires_at)}</td>
                    <td>
                      {!(who === me.id && s.current) && (
                        <button
                          type="button"
                          class="button small button-danger"
                          disabled={busy !== null}
                          aria-busy={busy === s.id}
                          aria-label={`Sign out ${describeAgent(s.user_agent)}, signed in ${when(s.created_at)}`}
                          onClick={() => void revoke(s)}
                        >
                          Sign out
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {who !== me.id && (
            <div class="button-row start" style={{ marginTop: '12px' }}>
              <button type="button" class="button small button-danger" disabled={busy !== null} aria-busy={busy === 'all'} onClick={revokeAll}>
                Sign {people.name(who)} out everywhere
              </button>
            </div>
          )}
        </>
      )}
    </section>
  );
}
