// Where the server sends the browser after a single sign-on. The URL fragment (never sent to
// any server) carries a one-time hand-off code, which is wiped from history and redeemed for the
// session's tokens; the server accepts it only from the browser that began the sign-in, so a
// planted link cannot sign anyone into another account. A refusal arrives as `error` and
// `message` in the query.
import { useEffect, useState } from 'preact/hooks';
import { describeError, redeemSsoHandoff } from '../api';
import { AuthLayout } from './Login';
import { navigate, safeNext } from './router';

export function SsoCallback() {
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const hash = new URLSearchParams(location.hash.slice(1));
    const query = new URLSearchParams(location.search);
    history.replaceState(null, '', '/sso/callback');
    const provider = hash.get('provider');
    const code = hash.get('handoff');
    if (!provider || !code) {
      const message = query.get('message') || hash.get('message');
      setError(message ? sentence(message) : 'Single sign-on did not complete. Try again.');
      return;
    }
    redeemSsoHandoff(provider, code).then(
      () => {
        let next = '/';
        try {
          next = safeNext(sessionStorage.getItem('concord.next'));
          sessionStorage.removeItem('concord.next');
        } catch {
          /* storage unavailable */
        }
        navigate(next, { replace: true });
      },
      (e) => setError(sentence(describeError(e))),
    );
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
