// Sign-in: email and password, and a button per configured single sign-on provider.
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, describeError, setTokens, type Schemas } from '../api';
import { navigate, safeNext } from './router';
import { ErrorText, useTitle } from './ui';

type Provider = Schemas['ProviderView'];
export type TokenPair = Schemas['TokenPair'];

/** Signs in with a password and stores the session. */
export async function passwordSignIn(email: string, password: string): Promise<TokenPair> {
  const pair = await api('post', '/api/v1/auth/login', { json: { email, password } });
  setTokens(pair);
  return pair;
}

export function AuthLayout(props: { title: string; children: preact.ComponentChildren; subtitle?: string }) {
  useTitle(props.title);
  return (
    <div class="auth-page">
      <main class="auth-card" id="main">
        <div class="brand" aria-hidden="true">
          <span class="brand-mark">C</span> Concord
        </div>
        <h1>{props.title}</h1>
        {props.subtitle && <p class="muted">{props.subtitle}</p>}
        {props.children}
      </main>
    </div>
  );
}

export function Login(props: { next: string | null; ssoError: string | null; ssoMessage: string | null }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(
    props.ssoError ? props.ssoMessage || `Single sign-on failed (${props.ssoError}).` : null,
  );
  const [providers, setProviders] = useState<Provider[] | null>(null);

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/auth/providers')
      .then((p) => live && setProviders(p))
      .catch(() => live && setProviders([]));
    return () => {
      live = false;
    };
  }, []);

  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(null);
    setBusy(true);
    try {
      await passwordSignIn(email.trim(), password);
      navigate(safeNext(props.next), { replace: true });
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && err.status === 401) setError('Wrong email or password.');
      else if (err instanceof ApiError && err.status === 429) setError(err.message || 'Too many attempts. Wait a moment and try again.');
      else setError(describeError(err));
    }
  }

  return (
    <AuthLayout title="Sign in to Concord">
      {providers && providers.length > 0 && (
        <>
          <div class="sso-list">
            {providers.map((p) => (
              <a
                key={p.id}
                class="button button-secondary button-block"
                href={p.login_url}
                onClick={() => {
                  try {
                    sessionStorage.setItem('concord.next', safeNext(props.next));
                  } catch {
                    /* storage unavailable */
                  }
                }}
              >
                Continue with {p.display_name}
              </a>
            ))}
          </div>
          <div class="divider" role="separator">
            <span>or with your password</span>
          </div>
        </>
      )}
      <form onSubmit={submit} class="form" aria-describedby={error ? 'login-error' : undefined} noValidate={false}>
        <div class="field">
          <label for="login-email">Email</label>
          <input
            id="login-email"
            type="email"
            autoComplete="username"
            required
            value={email}
            onInput={(e) => setEmail(e.currentTarget.value)}
            autoFocus
          />
        </div>
        <div class="field">
          <label for="login-password">Password</label>
          <input
            id="login-password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </div>
        <ErrorText error={error} id="login-error" />
        <button type="submit" class="button button-primary button-block" disabled={busy} aria-busy={busy}>
          {busy && <span class="spinner-dot" aria-hidden="true" />}
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </AuthLayout>
  );
}
