// The session and the JSON API: every request of the client goes through `api`.
//
// Access tokens last minutes; the refresh token (single use) renews them. Both are kept in
// localStorage so a reload keeps the user signed in.

export interface Me {
  id: string;
  email: string;
  display_name: string;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_at: number; // ms since epoch
}

const KEY = 'concord.tokens';
let tokens: Tokens | null = load();
let refreshing: Promise<void> | null = null;
const signedOutListeners = new Set<() => void>();

/** Called when the session ends: sign-out here, in another tab, or a refused refresh. */
export function onSignedOut(fn: () => void): () => void {
  signedOutListeners.add(fn);
  return () => signedOutListeners.delete(fn);
}

// Another tab signing in or out changes the stored tokens: follow it.
if (typeof window !== 'undefined') {
  addEventListener('storage', (e) => {
    if (e.key !== KEY) return;
    const had = tokens !== null;
    tokens = load();
    if (had && !tokens) signedOutListeners.forEach((fn) => fn());
  });
}

function load(): Tokens | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Tokens) : null;
  } catch {
    return null;
  }
}

export function setTokens(t: { access_token: string; refresh_token: string; expires_in?: number } | null) {
  if (!t) {
    const had = tokens !== null;
    tokens = null;
    try {
      localStorage.removeItem(KEY);
    } catch {
      /* storage unavailable */
    }
    if (had) signedOutListeners.forEach((fn) => fn());
    return;
  }
  tokens = {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    expires_at: Date.now() + (t.expires_in ?? 900) * 1000,
  };
  try {
    localStorage.setItem(KEY, JSON.stringify(tokens));
  } catch {
    /* storage unavailable: the session lasts as long as the tab */
  }
}

export function signedIn(): boolean {
  return tokens !== null;
}

/** A currently valid access token, refreshed first if it is about to expire. */
export async function accessToken(): Promise<string> {
  if (!tokens) throw new ApiError(401, 'unauthenticated', 'Not signed in');
  if (tokens.expires_at - Date.now() < 60_000) {
    // Another tab may have refreshed already (the refresh token is single use).
    const stored = load();
    if (stored && stored.refresh_token !== tokens.refresh_token) tokens = stored;
    if (tokens.expires_at - Date.now() < 60_000) await refresh();
  }
  if (!tokens) throw new ApiError(401, 'unauthenticated', 'Not signed in');
  return tokens.access_token;
}

async function refresh(): Promise<void> {
  if (!refreshing) {
    refreshing = (async () => {
      const current = tokens;
      if (!current) return;
      let res: Response;
      try {
        res = await fetch('/api/v1/auth/refresh', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refresh_token: current.refresh_token }),
        });
      } catch {
        // Offline: keep the session and let the request fail on its own.
        return;
      }
      if (tokens !== current) return; // another tab or a sign-out changed it meanwhile
      if (res.status === 401 || res.status === 400) {
        setTokens(null);
        return;
      }
      if (!res.ok) return;
      setTokens(await res.json());
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/**
 * Finishes a single sign-on: redeems the one-time hand-off code the server put in the
 * `/sso/callback` fragment. The browser's cookie for the provider's path goes along; the
 * server accepts the code only from the browser that began the sign-in.
 */
export async function redeemSsoHandoff(provider: string, code: string): Promise<void> {
  if (!/^[a-z0-9-]{1,40}$/.test(provider)) throw new ApiError(400, 'sso_handoff_invalid', 'Unknown identity provider');
  const res = await fetch(`/auth/oidc/${provider}/handoff`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code }),
  });
  let body: any = null;
  try {
    body = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok || typeof body?.access_token !== 'string' || typeof body?.refresh_token !== 'string') {
    const err = body && typeof body.error === 'object' && body.error !== null ? body.error : {};
    throw new ApiError(
      res.status,
      typeof err.code === 'string' ? err.code : 'http_error',
      typeof err.message === 'string' ? err.message : res.statusText,
    );
  }
  setTokens(body);
}

export type ApiInit = Omit<RequestInit, 'body'> & { json?: unknown; body?: BodyInit };

/** Calls the JSON API; throws `ApiError` with the server's `code` and `message` on failure. */
export async function api<T>(path: string, init: ApiInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (tokens) headers.set('authorization', `Bearer ${await accessToken()}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  let res = await fetch(path, { ...init, headers, body });
  if (res.status === 401 && tokens) {
    await refresh();
    if (tokens) {
      headers.set('authorization', `Bearer ${tokens.access_token}`);
      res = await fetch(path, { ...init, headers, body });
    }
  }
  if (!res.ok) {
    let code = 'http_error';
    let message = res.statusText;
    try {
      // `{error: {code, message}}` (older servers answered `{code, message}`).
      const body = await res.json();
      const err = body && typeof body.error === 'object' && body.error !== null ? body.error : body;
      code = typeof err?.code === 'string' ? err.code : code;
      message = typeof err?.message === 'string' ? err.message : message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message);
  }
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

/** A fetch failure (offline, server down) as an ApiError the UI can show. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) return e.message || `Request failed (${e.status})`;
  if (e instanceof TypeError) return 'Cannot reach the server. Check your connection and try again.';
  if (e instanceof Error) return e.message;
  return 'Something went wrong.';
}
