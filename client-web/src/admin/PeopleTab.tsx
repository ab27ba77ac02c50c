// People: every account with its status and system role (changeable), deactivating and
// reactivating an account (with a reason for the audit log), creating an account, signing
// someone out everywhere, and the members of a workspace with their workspace roles.
import { useEffect, useState } from 'preact/hooks';
import { api, type Me, type Schemas } from '../api';
import type { People, Person } from '../console/people';
import { day } from '../console/time';
import { Empty, failureText, NoWorkspaces, Notice, WorkspacePicker } from '../console/ui';
import type { Member, Workspace } from '../shell/types';
import { ErrorText, Loading } from '../shell/ui';

type Role = Schemas['RoleView'];

/** The system roles an account may hold (none: an ordinary account). */
export const SYSTEM_ROLES: { value: string; label: string }[] = [
  { value: '', label: 'None' },
  { value: 'compliance_officer', label: 'Compliance officer' },
  { value: 'system_admin', label: 'System administrator' },
];

export function PeopleTab({ me, people, workspaces }: { me: Me; people: People; workspaces: Workspace[] }) {
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState<string | null>(null);
  const [deactivating, setDeactivating] = useState<Person | null>(null);
  const [reason, setReason] = useState('');

  async function setStatus(p: Person, status: 'active' | 'disabled', why: string) {
    setBusy(p.id);
    setError(null);
    setNotice('');
    try {
      await api('put', '/api/v1/users/{user_id}/status', {
        params: { path: { user_id: p.id } },
        json: { status, reason: why.trim() || null },
      });
      setNotice(
        status === 'disabled'
          ? `${p.display_name}'s account was deactivated: every session of theirs has ended and they cannot sign in. Bot tokens and webhooks they created keep working until revoked.`
          : `${p.display_name}'s account was reactivated.`,
      );
      setDeactivating(null);
      setReason('');
      people.reload();
    } catch (e) {
      setError(failureText(e));
    } finally {
      setBusy(null);
    }
  }

  async function setRole(p: Person, role: string) {
    setBusy(p.id);
    setError(null);
    setNotice('');
    try {
      await api('put', '/api/v1/users/{user_id}/system-role', { params: { path: { user_id: p.id } }, json: { role: role || null } });
      setNotice(`${p.display_name}'s system role is now ${SYSTEM_ROLES.find((r) => r.value === role)?.label.toLowerCase() ?? role}.`);
      people.reload();
    } catch (e) {
      setError(failureText(e));
      people.reload();
    } finally {
      setBusy(null);
    }
  }

  async function signOutEverywhere(p: Person) {
    setBusy(p.id);
    setError(null);
    setNotice('');
    try {
      const r = await api('delete', '/api/v1/users/{user_id}/sessions', { params: { path: { user_id: p.id } } });
      setNotice(`${p.display_name} was signed out of ${r.revoked} ${r.revoked === 1 ? 'session' : 'sessions'}.`);
    } catch (e) {
      setError(failureText(e));
    } finally {
      setBusy(null);
    }
  }

  return (
    <>
      <section class="card" aria-labelledby="people-heading">
        <h2 id="people-heading">Accounts</h2>
        <ErrorText error={error} />
        <Notice text={notice} />
        {!people.list && !people.error && <Loading label="Loading people…" />}
        {people.list && people.list.length === 0 && <Empty>No accounts.</Empty>}
        {people.list && people.list.length > 0 && (
          <div class="table-wrap">
            <table class="data-table" aria-label="Accounts">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Email</th>
                  <th scope="col">Status</th>
                  <th scope="col">System role</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {people.list.map((p) => (
                  <tr key={p.id} data-user-id={p.id}>
                    <td>
                      {p.display_name}
                      {p.id === me.id && <span class="tag tag-accent"> you</span>}
                      <div class="hint">since {day(p.created_at)}</div>
                    </td>
                    <td>{p.email}</td>
                    <td>
                      <span class={p.status === 'active' ? 'tag tag-success' : 'tag'}>{p.status}</span>
                    </td>
                    <td>
                      <select
                        aria-label={`System role of ${p.display_name}`}
                        value={p.system_role ?? ''}
                        disabled={busy === p.id || p.status === 'erased'}
                        onChange={(e) => void setRole(p, e.currentTarget.value)}
                      >
                        {SYSTEM_ROLES.map((r) => (
                          <option key={r.value} value={r.value}>
                            {r.label}
                          </option>
                        ))}
                      </select>
                    </td>
                    <td>
                      <div class="button-row start">
                        {p.id !== me.id && p.status === 'active' && (
                          <button
                            type="button"
                            class="button small"
                            disabled={busy === p.id}
                            aria-label={`Sign ${p.display_name} out everywhere`}
                            onClick={() => void signOutEverywhere(p)}
                          >
                            Sign out everywhere
                          </button>
                        )}
                        {p.id !== me.id && p.status === 'active' && (
                          <button
                            type="button"
                            class="button small button-danger"
                            disabled={busy === p.id}
                            aria-label={`Deactivate ${p.display_name}`}
                            onClick={() => {
                              setDeactivating(p);
                              setReason('');
                            }}
                          >
                            Deactivate
                          </button>
                        )}
                        {p.status === 'disabled' && (
                          <button
                            type="button"
                            class="button small"
                            disabled={busy === p.id}
                            aria-label={`Reactivate ${p.display_name}`}
                            onClick={() => void setStatus(p, 'active', '')}
                          >
                            Reactivate
                          </button>
                        )}
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {deactivating && (
          <form
            class="form"
            style={{ marginTop: '12px' }}
            aria-label={`Deactivate ${deactivating.display_name}`}
            onSubmit={(e) => {
              e.preventDefault();
              void setStatus(deactivating, 'disabled', reason);
            }}
          >
            <p>
              Deactivate <strong>{deactivating.display_name}</strong> ({deactivating.email})? Every session of theirs ends at
              once and they cannot sign in, by password or single sign-on, until reactivated. Their messages, files and
              memberships stay.
            </p>
            <div class="field">
              <label for="deactivate-reason">Reason (kept in the audit log)</label>
              <input id="deactivate-reason" maxLength={500} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
            </div>
            <div class="button-row start">
              <button type="submit" class="button button-danger small" disabled={busy === deactivating.id}>
                Confirm: deactivate {deactivating.display_name}
              </button>
              <button type="button" class="button small" onClick={() => setDeactivating(null)}>
                Cancel
              </button>
            </div>
          </form>
        )}
        <p class="hint">A deactivated account keeps its content and can be reactivated. Erasure is a data-subject request.</p>
      </section>
      <section class="card" aria-labelledby="new-person-heading">
        <h2 id="new-person-heading">Create an account</h2>
        <NewPersonForm
          onCreated={(p) => {
            setNotice(`The account for ${p.display_name} was created.`);
            people.reload();
          }}
        />
      </section>
      <section class="card" aria-labelledby="members-heading">
        <h2 id="members-heading">Workspace roles</h2>
        {workspaces.length === 0 ? <NoWorkspaces /> : <MemberRoles workspaces={workspaces} />}
      </section>
    </>
  );
}

function NewPersonForm({ onCreated }: { onCreated: (p: Person) => void }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function create(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const p = await api('post', '/api/v1/users', {
        json: { email: email.trim(), display_name: name.trim(), password, system_role: role || null },
      });
      onCreated(p);
      setEmail('');
      setName('');
      setPassword('');
      setRole('');
    } catch (err) {
      setError(failureText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={create} aria-label="Create an account">
      <div class="field-row">
        <div class="field">
          <label for="new-person-email">Email</label>
          <input id="new-person-email" type="email" required autoComplete="off" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="new-person-name">Display name</label>
          <input id="new-person-name" required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
      </div>
      <div class="field-row">
        <div class="field">
          <label for="new-person-password">Initial password</label>
          <input
            id="new-person-password"
            type="password"
            required
            autoComplete="new-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
          <p class="hint">At least 12 characters; they change it after signing in.</p>
        </div>
        <div class="field">
          <label for="new-person-role">System role</label>
          <select id="new-person-role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            {SYSTEM_ROLES.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
      </div>
      <ErrorText error={error} />
      <div>
        <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
          {busy ? 'Creating…' : 'Create account'}
        </button>
      </div>
    </form>
  );
}

/** A workspace's members with a role picker each. */
function MemberRoles({ workspaces }: { workspaces: Workspace[] }) {
  const [ws, setWs] = useState(workspaces[0]?.id ?? '');
  const [members, setMembers] = useState<Member[] | null>(null);
  const [roles, setRoles] = useState<Role[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState<string | null>(null);

  useEffect(() => {
    if (!ws) return;
    setMembers(null);
    setError(null);
    const path = { params: { path: { workspace_id: ws } } };
    Promise.all([api('get', '/api/v1/workspaces/{workspace_id}/members', path), api('get', '/api/v1/workspaces/{workspace_id}/roles', path)])
      .then(([ms, rs]) => {
        setMembers(ms);
        setRoles(rs.filter((r) => r.name !== 'bot'));
      })
      .catch((e) => {
        setMembers([]);
        setError(failureText(e));
      });
  }, [ws]);

  async function assign(m: Member, role: string) {
    setBusy(m.user_id);
    setError(null);
    setNotice('');
    try {
      const updated = await api('put', '/api/v1/workspaces/{workspace_id}/members/{user_id}', {
        params: { path: { workspace_id: ws, user_id: m.user_id } },
        json: { role },
      });
      setMembers((ms) => (ms ?? []).map((x) => (x.user_id === updated.user_id ? updated : x)));
      setNotice(`${m.display_name} is now ${role}.`);
    } catch (e) {
      setError(failureText(e));
    } finally {
      setBusy(null);
    }
  }

  return (
    <>
      <WorkspacePicker id="members-workspace" workspaces={workspaces} value={ws} onChange={setWs} />
      <ErrorText error={error} />
      <Notice text={notice} />
      {!members && <Loading label="Loading members…" />}
      {members && members.length === 0 && !error && <Empty>No members.</Empty>}
      {members && members.length > 0 && (
        <div class="table-wrap">
          <table class="data-table" aria-label="Members and their roles">
            <thead>
              <tr>
                <th scope="col">Member</th>
                <th scope="col">Joined</th>
                <th scope="col">Role</th>
              </tr>
            </thead>
            <tbody>
              {members.map((m) => (
                <tr key={m.user_id}>
                  <td>
                    {m.display_name}
                    <div class="hint">{m.email}</div>
                  </td>
                  <td>{day(m.joined_at)}</td>
                  <td>
                    <select
                      aria-label={`Role of ${m.display_name}`}
                      value={m.role}
                      disabled={busy === m.user_id || m.role === 'bot'}
                      onChange={(e) => void assign(m, e.currentTarget.value)}
                    >
                      {!roles.some((r) => r.name === m.role) && <option value={m.role}>{m.role}</option>}
                      {roles.map((r) => (
                        <option key={r.id} value={r.name}>
                          {r.name}
                        </option>
                      ))}
                    </select>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
