// An invitation link (/invite/:token): see what it offers, then join signed in or with a new account.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, describeError, signedIn, type Schemas } from '../api';
import { AuthLayout, passwordSignIn } from './Login';
import { navigate } from './router';
import { ErrorText, Loading } from './ui';

type Preview = Schemas['InvitationPreview'];

export function Invite({ token }: { token: string }) {
  const [preview, setPreview] = useState<Preview | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const authed = signedIn();

  useEffect(() => {
    api('get', '/api/v1/invitations/{token}', { params: { path: { token } } })
      .then((p) => {
        setPreview(p);
        if (p.email) setEmail(p.email);
      })
      .catch((err) => {
        if (err instanceof ApiError && (err.status === 404 || err.status === 410))
          setLoadError('This invitation is no longer valid: it was used, revoked or has expired. Ask for a new link.');
        else setLoadError(describeError(err));
      });
  }, [token]);

  async function accept(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(null);
    if (!authed && password.length < 12) return setError('Choose a password of at least 12 characters.');
    setBusy(true);
    try {
      const body = authed ? {} : { email: email.trim(), display_name: name.trim(), password };
      const res = await api('post', '/api/v1/invitations/{token}/accept', { params: { path: { token } }, json: body });
      if (!authed) await passwordSignIn(email.trim(), password);
      navigate(`/w/${res.workspace.id}`, { replace: true });
    } catch (err) {
      setBusy(false);
      setError(describeError(err));
    }
  }

  if (loadError) {
    return (
      <AuthLayout title="Invitation">
        <p role="alert">{loadError}</p>
        <a class="button button-primary button-block" href="/" onClick={(e) => (e.preventDefault(), navigate('/'))}>
          Go to Concord
        </a>
      </AuthLayout>
    );
  }
  if (!preview) {
    return (
      <AuthLayout title="Invitation">
        <Loading label="Loading the invitation…" />
      </AuthLayout>
    );
  }
  const next = `/login?next=${encodeURIComponent(`/invite/${token}`)}`;
  return (
    <AuthLayout
      title={`Join ${preview.workspace_name}`}
      subtitle={`You are invited as ${preview.role}. The link works until ${new Date(preview.expires_at).toLocaleString()}.`}
    >
      <form class="form" onSubmit={accept}>
        {!authed && (
          <>
            <div class="field">
              <label for="inv-name">Your name</label>
              <input id="inv-name" required autoComplete="name" maxLength={80} value={name} onInput={(e) => setName(e.currentTarget.value)} autoFocus />
            </div>
            <div class="field">
              <label for="inv-email">Email</label>
              <input
                id="inv-email"
                type="email"
                required
                autoComplete="username"
                readOnly={!!preview.email}
                value={email}
                onInput={(e) => setEmail(e.currentTarget.value)}
              />
            </div>
            <div class="field">
              <label for="inv-password">Choose a password</label>
              <input
                id="inv-password"
                type="password"
                required
                minLength={12}
                autoComplete="new-password"
                aria-describedby="inv-password-hint"
                value={password}
                onInput={(e) => setPassword(e.currentTarget.value)}
              />
              <p class="hint" id="inv-password-hint">At least 12 characters.</p>
            </div>
          </>
        )}
        <ErrorText error={error} />
        <button type="submit" class="button button-primary button-block" disabled={busy} aria-busy={busy}>
          {busy && <span class="spinner-dot" aria-hidden="true" />}
          {busy ? 'Joining…' : authed ? `Join ${preview.workspace_name}` : 'Create account and join'}
        </button>
        {!authed && (
          <p class="muted center">
            Already have an account?{' '}
            <a href={next} onClick={(e) => (e.preventDefault(), navigate(next))}>
              Sign in first
            </a>
          </p>
        )}
      </form>
    </AuthLayout>
  );
}
