// Where the server sends the browser after a single sign-on: the token pair arrives in the
// URL fragment (never sent to any server), is stored, and the fragment is wiped from history.
import { useEffect, useState } from 'preact/hooks';
import { setTokens } from '../api';
import { AuthLayout } from './Login';
import { navigate, safeNext } from './router';

export function SsoCallback() {
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const hash = new URLSearchParams(location.hash.slice(1));
    const query = new URLSearchParams(location.search);
    history.replaceState(null, '', '/sso/callback');
    const access = hash.get('access_token');
    const refresh = hash.get('refresh_token');
    if (access && refresh) {
      setTokens({ access_token: access, refresh_token: refresh, expires_in: Number(hash.get('expires_in')) || 900 });
      let next = '/';
      try {
        next = safeNext(sessionStorage.getItem('concord.next'));
        sessionStorage.removeItem('concord.next');
      } catch {
        /* storage unavailable */
      }
      navigate(next, { replace: true });
    } else {
      const message = query.get('message') || hash.get('message');
      setError(message ? sentence(message) : 'Single sign-on did not complete. Try again.');
    }
  }, []);
  return (
    <AuthLayout title={error ? 'Single sign-on failed' : 'Signing you in…'}>
      {error ? (
        <>
          <p role="alert">{error}</p>
          <a class="button button-primary button-block" href="/login" onClick={(e) => (e.preventDefault(), navigate('/login'))}>
            Back to sign in
          </a>
        </>
      ) : (
        <p role="status">Finishing single sign-on…</p>
      )}
    </AuthLayout>
  );
}

/** The server's lowercase message as a sentence. */
function sentence(text: string): string {
  const t = text.trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}
