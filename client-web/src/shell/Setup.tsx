// First run: create the first administrator with the one-time link the server printed.
import { useState } from 'preact/hooks';
import { ApiError, api, describeError } from '../api';
import { AuthLayout, passwordSignIn } from './Login';
import { navigate } from './router';
import { ErrorText } from './ui';

export function Setup({ token }: { token: string }) {
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [gone, setGone] = useState(false);

  if (!token || gone) {
    return (
      <AuthLayout title="Set up Concord">
        <p role={gone ? 'alert' : undefined}>
          {gone
            ? 'This setup link has already been used or has expired. If Concord is already set up, sign in; otherwise restart the server for a new link.'
            : 'Open the setup link printed by the server when it first started; it carries a one-time token.'}
        </p>
        <a class="button button-primary button-block" href="/login" onClick={(e) => (e.preventDefault(), navigate('/login'))}>
          Go to sign in
        </a>
      </AuthLayout>
    );
  }

  async function submit(e: Event) {
    e.preventDefault();
    if (busy) return;
    setError(null);
    if (password.length < 12) return setError('Choose a password of at least 12 characters.');
    if (password !== confirm) return setError('The two passwords do not match.');
    setBusy(true);
    try {
      await api('post', '/api/v1/setup', { json: { token, email: email.trim(), display_name: name.trim(), password } });
    } catch (err) {
      setBusy(false);
      if (err instanceof ApiError && err.status === 410) setGone(true);
      else setError(describeError(err));
      return;
    }
    try {
      await passwordSignIn(email.trim(), password);
      navigate('/', { replace: true });
    } catch (err) {
      // The account exists; let them sign in by hand.
      navigate('/login', { replace: true });
    }
  }

  return (
    <AuthLayout title="Set up Concord" subtitle="Create the first administrator account. You can invite everyone else afterwards.">
      <form class="form" onSubmit={submit}>
        <div class="field">
          <label for="setup-name">Your name</label>
          <input id="setup-name" required autoComplete="name" maxLength={80} value={name} onInput={(e) => setName(e.currentTarget.value)} autoFocus />
        </div>
        <div class="field">
          <label for="setup-email">Email</label>
          <input id="setup-email" type="email" required autoComplete="username" value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="setup-password">Password</label>
          <input
            id="setup-password"
            type="password"
            required
            minLength={12}
            autoComplete="new-password"
            aria-describedby="setup-password-hint"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
          <p class="hint" id="setup-password-hint">
            At least 12 characters. A few unrelated words make a strong passphrase.
          </p>
        </div>
        <div class="field">
          <label for="setup-confirm">Confirm password</label>
          <input id="setup-confirm" type="password" required autoComplete="new-password" value={confirm} onInput={(e) => setConfirm(e.currentTarget.value)} />
        </div>
        <ErrorText error={error} />
        <button type="submit" class="button button-primary button-block" disabled={busy} aria-busy={busy}>
          {busy && <span class="spinner-dot" aria-hidden="true" />}
          {busy ? 'Creating the administrator…' : 'Create administrator and sign in'}
        </button>
      </form>
    </AuthLayout>
  );
}
