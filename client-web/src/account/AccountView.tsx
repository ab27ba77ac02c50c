// The account page: profile (name, out-of-office dates and password editable), the sessions
// signed in to this account (revocable), sign-out.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, describeError, setTokens, type Me, type Schemas } from '../api';
import { disconnect } from '../live';
import { navigate } from '../shell/router';
import { Avatar, ErrorText, Loading, useTitle } from '../shell/ui';
import { NameForm, OutOfOfficeForm, PasswordForm } from './ProfileForms';

type Profile = Schemas['UserView'];
type Session = Schemas['SessionView'];

/** "Chrome on Linux" from a user agent string; the raw string when unrecognised. */
export function describeAgent(ua?: string | null): string {
  if (!ua) return 'Unknown client';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(ua)
        ? /HeadlessChrome/.test(ua)
          ? 'Headless Chrome'
          : 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : /curl\//.test(ua)
            ? 'curl'
            : null;
  const os = /Windows/.test(ua)
    ? 'Windows'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Mac OS X/.test(ua)
        ? 'macOS'
        : /Android/.test(ua)
          ? 'Android'
          : /Linux/.test(ua)
            ? 'Linux'
            : null;
  if (!browser) return ua.length > 60 ? `${ua.slice(0, 60)}…` : ua;
  return os ? `${browser} on ${os}` : browser;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
function when(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

/** Ends the session on the server (best effort), forgets the tokens and goes to sign-in. */
export async function signOut(): Promise<void> {
  let endSession: string | null = null;
  try {
    const res = await api('post', '/api/v1/auth/logout');
    endSession = res?.end_session_url ?? null;
  } catch (e) {
    // Already revoked or offline: the local sign-out below still happens.
    if (!(e instanceof ApiError) && !(e instanceof TypeError)) throw e;
  }
  disconnect();
  setTokens(null);
  try {
    localStorage.removeItem('concord.workspace');
  } catch {
    /* storage unavailable */
  }
  if (endSession && /^https?:\/\//.test(endSession)) location.assign(endSession);
  else navigate('/login', { replace: true });
}

export default function AccountView({ me, onMe }: { me: Me; onMe?: (m: Me) => void }) {
  useTitle('Your account');
  const [profile, setProfile] = useState<Profile | null>(null);
  const [sessions, setSessions] = useState<Session[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [sessionError, setSessionError] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<Set<string>>(new Set());
  const [signingOut, setSigningOut] = useState(false);
  const [notice, setNotice] = useState('');

  function loadSessions() {
    return api('get', '/api/v1/users/me/sessions')
      .then((s) => {
        s.sort((a, b) => Number(b.current) - Number(a.current) || b.last_used_at.localeCompare(a.last_used_at));
        setSessions(s);
        setSessionError(null);
      })
      .catch((e) => setSessionError(describeError(e)));
  }

  useEffect(() => {
    api('get', '/api/v1/users/me')
      .then(setProfile)
      .catch((e) => setError(describeError(e)));
    loadSessions();
  }, []);

  async function revoke(ids: string[]) {
    setRevoking((r) => new Set([...r, ...ids]));
    setSessionError(null);
    const failed: string[] = [];
    for (const id of ids) {
      try {
        await api('delete', '/api/v1/users/{user_id}/sessions/{session_id}', {
          params: { path: { user_id: me.id, session_id: id } },
        });
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) failed.push(describeError(e));
      }
    }
    setRevoking((r) => {
      const n = new Set(r);
      ids.forEach((id) => n.delete(id));
      return n;
    });
    if (failed.length) setSessionError(`Could not sign out ${failed.length === 1 ? 'that session' : `${failed.length} sessions`}: ${failed[0]}`);
    else setNotice(ids.length === 1 ? 'The session was signed out.' : `${ids.length} sessions were signed out.`);
    await loadSessions();
  }

  async function doSignOut() {
    setSigningOut(true);
    try {
      await signOut();
    } catch (e) {
      setSigningOut(false);
      setError(describeError(e));
    }
  }

  function saved(p: Profile) {
    setProfile(p);
    onMe?.({ id: p.id, email: p.email, display_name: p.display_name });
  }

  const others = (sessions ?? []).filter((s) => !s.current);
  const p = profile ?? { ...me, system_role: null, status: 'active', created_at: '', out_of_office: null };
  const away = p.out_of_office;

  return (
    <div class="page">
      <h1>Your account</h1>
      <ErrorText error={error} />

      <section class="card" aria-labelledby="profile-heading">
        <h2 id="profile-heading">Profile</h2>
        <div class="profile">
          <Avatar id={p.id} name={p.display_name} size={56} />
          <dl class="facts">
            <div>
              <dt>Name</dt>
              <dd>{p.display_name}</dd>
            </div>
            <div>
              <dt>Email</dt>
              <dd>{p.email}</dd>
            </div>
            {p.system_role && (
              <div>
                <dt>System role</dt>
                <dd>{p.system_role.replace(/_/g, ' ')}</dd>
              </div>
            )}
            {p.created_at && (
              <div>
                <dt>Member since</dt>
                <dd>{when(p.created_at)}</dd>
              </div>
            )}
            {away && (
              <div>
                <dt>Out of office</dt>
                <dd>
                  {away.from} to {away.until}
                  {away.message ? ` · ${away.message}` : ''}
                </dd>
              </div>
            )}
          </dl>
        </div>
        {profile && <NameForm profile={profile} onSaved={saved} />}
        <p class="hint">Your email is managed by your administrator or your identity provider.</p>
      </section>

      {profile && (
        <section class="card" aria-labelledby="away-heading">
          <h2 id="away-heading">Out of office</h2>
          <OutOfOfficeForm profile={profile} onSaved={saved} />
        </section>
      )}

      <section class="card" aria-labelledby="password-heading">
        <h2 id="password-heading">Password</h2>
        <PasswordForm onChanged={() => void loadSessions()} />
      </section>

      <section class="card" aria-labelledby="sessions-heading">
        <div class="card-head">
          <h2 id="sessions-heading">Where you are signed in</h2>
          {others.length > 1 && (
            <button type="button" class="button small" disabled={revoking.size > 0} onClick={() => revoke(others.map((s) => s.id))}>
              Sign out all other sessions
            </button>
          )}
        </div>
        <p class="sr-only" role="status">
          {notice}
        </p>
        <ErrorText error={sessionError} />
        {!sessions && !sessionError && <Loading label="Loading sessions…" />}
        {sessions && (
          <ul class="session-list" aria-label="Sessions">
            {sessions.map((s) => (
              <li key={s.id} class="session" data-session-id={s.id}>
                <div class="session-main">
                  <div class="session-title">
                    {describeAgent(s.user_agent)}
                    {s.current && <span class="tag tag-accent">This device</span>}
                    {s.auth_method !== 'password' && <span class="tag">{s.auth_method === 'sso' ? 'single sign-on' : s.auth_method}</span>}
                  </div>
                  <div class="session-meta">
                    {s.ip ? `${s.ip} · ` : ''}Signed in {when(s.created_at)} · Last active {when(s.last_used_at)}
                  </div>
                </div>
                {!s.current && (
                  <button
                    type="button"
                    class="button small button-danger"
                    disabled={revoking.has(s.id)}
                    aria-busy={revoking.has(s.id)}
                    aria-label={`Sign out ${describeAgent(s.user_agent)}, signed in ${when(s.created_at)}`}
                    onClick={() => revoke([s.id])}
                  >
                    {revoking.has(s.id) && <span class="spinner-dot" aria-hidden="true" />}
                    {revoking.has(s.id) ? 'Signing out…' : 'Sign out'}
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
      </section>

      <section class="card" aria-labelledby="signout-heading">
        <h2 id="signout-heading">Sign out</h2>
        <p>Sign out of Concord on this device.</p>
        <button type="button" class="button button-danger" onClick={doSignOut} disabled={signingOut} aria-busy={signingOut}>
          {signingOut && <span class="spinner-dot" aria-hidden="true" />}
          {signingOut ? 'Signing out…' : 'Sign out'}
        </button>
      </section>
    </div>
  );
}
