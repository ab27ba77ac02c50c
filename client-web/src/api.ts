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
    tokens = null;
    localStorage.removeItem(KEY);
    return;
  }
  tokens = {
    access_token: t.access_token,
    refresh_token: t.refresh_token,
    expires_at: Date.now() + (t.expires_in ?? 900) * 1000,
  };
  localStorage.setItem(KEY, JSON.stringify(tokens));
}

export function signedIn(): boolean {
  return tokens !== null;
}

/** A currently valid access token, refreshed first if it is about to expire. */
export async function accessToken(): Promise<string> {
  if (!tokens) throw new ApiError(401, 'unauthenticated', 'Not signed in');
  if (tokens.expires_at - Date.now() < 60_000) await refresh();
  if (!tokens) throw new ApiError(401, 'unauthenticated', 'Not signed in');
  return tokens.access_token;
}

async function refresh(): Promise<void> {
  if (!refreshing) {
    refreshing = (async () => {
      const current = tokens;
      if (!current) return;
      const res = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
      if (!res.ok) {
        setTokens(null);
        return;
      }
      setTokens(await res.json());
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
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
      const err = await res.json();
      code = err.code ?? code;
      message = err.message ?? message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message);
  }
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}
