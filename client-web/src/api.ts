// The session and the JSON API: every request of the client goes through `api`.
//
// Access tokens last minutes; the refresh token (single use) renews them. Both are kept in
// localStorage so a reload keeps the user signed in.
//
// `api` is typed by the OpenAPI document the server serves: `generated/api.d.ts` is generated
// from its snapshot `openapi.json` (`npm run api:update`), so each call's path, parameters,
// body and answer are checked against what the server declares, and the server's end-to-end
// tests fail when the snapshot no longer matches it.

import type { components, paths } from './generated/api';

/** The API's named shapes (the OpenAPI document's `components.schemas`). */
export type Schemas = components['schemas'];

/** The signed-in user, as far as the views need it. */
export type Me = Pick<Schemas['UserView'], 'id' | 'email' | 'display_name' | 'system_role'>;

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    /** Each problem the server named, for refusals that list them (`invalid_completion`, `invalid_model`). */
    public problems: string[] = [],
    /** The same problems as the server sent them (with `element` and `line` for a model's). */
    public details: unknown[] = [],
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

export type Method = 'get' | 'put' | 'post' | 'patch' | 'delete';

/** The paths that answer `method`. */
export type PathWith<M extends Method> = {
  [P in keyof paths]: paths[P] extends { [K in M]: object } ? P : never;
}[keyof paths];

/** The operation behind `method` on `path`. */
type Operation<M extends Method, P extends PathWith<M>> = paths[P][M];

type ParamsOption<O> = O extends { parameters: infer Ps }
  ? {} extends Ps
    ? { params?: Ps }
    : { params: Ps }
  : {};
type JsonBody<O> = O extends { requestBody?: infer RB }
  ? [NonNullable<RB>] extends [{ content: { 'application/json': infer B } }]
    ? B
    : never
  : never;
type BodyOption<O> = [JsonBody<O>] extends [never]
  ? { json?: never }
  : O extends { requestBody: object }
    ? { json: JsonBody<O> }
    : { json?: JsonBody<O> };

/** What a call takes besides its method and path: path and query parameters, a JSON body. */
export type Init<M extends Method, P extends PathWith<M>> = ParamsOption<Operation<M, P>> &
  BodyOption<Operation<M, P>>;

type Body<R> = R extends { content: { 'application/json': infer J } }
  ? J
  : R extends { content: { [type: string]: infer T } }
    ? T
    : unknown;

/** What a successful call answers: the body of its 200, 201 or 202 (`undefined` for a 204). */
export type Answer<M extends Method, P extends PathWith<M>> =
  Operation<M, P> extends { responses: infer R }
    ? R extends { 200: infer S }
      ? Body<S>
      : R extends { 201: infer S }
        ? Body<S>
        : R extends { 202: infer S }
          ? Body<S>
          : undefined
    : never;

type InitArgs<M extends Method, P extends PathWith<M>> =
  {} extends Init<M, P> ? [init?: Init<M, P>] : [init: Init<M, P>];

/** The URL of `path` with its `{parameters}` filled in and the query appended. */
function url(path: string, init: {}): string {
  const params = 'params' in init && typeof init.params === 'object' && init.params !== null ? init.params : {};
  const values = 'path' in params && typeof params.path === 'object' && params.path !== null ? params.path : {};
  const filled = path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value: unknown = Reflect.get(values, name);
    if (value === undefined || value === null) throw new ApiError(400, 'missing_parameter', `${name} is missing`);
    return encodeURIComponent(String(value));
  });
  const query = new URLSearchParams();
  if ('query' in params && typeof params.query === 'object' && params.query !== null) {
    for (const [name, value] of Object.entries(params.query)) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (v !== undefined && v !== null) query.append(name, String(v));
      }
    }
  }
  const search = query.toString();
  return search ? `${filled}?${search}` : filled;
}

/**
 * Calls the JSON API; throws `ApiError` with the server's `code` and `message` on failure.
 * `api('get', '/api/v1/channels/{channel_id}', { params: { path: { channel_id } } })` answers a
 * `ChannelView`: path, parameters, body and answer all come from the OpenAPI document.
 */
export function api<M extends Method, P extends PathWith<M>>(
  method: M,
  path: P,
  ...init: InitArgs<M, P>
): Promise<Answer<M, P>>;
// The implementation sees the arguments untyped: the overload above is what callers get.
export async function api(method: Method, path: string, ...[init = {}]: [init?: {}]): Promise<unknown> {
  const target = url(path, init);
  const headers = new Headers();
  let body: string | undefined;
  if ('json' in init && init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const res = await send(method, target, headers, body);
  if (res.status === 204) return undefined;
  const type = res.headers.get('content-type') ?? '';
  return type.includes('json') ? await res.json() : await res.text();
}

/**
 * Sends a request whose body is not JSON (a TOML document) or whose answer is a file (an
 * export), with the same token, refresh and errors as `api`. `path` is a filled-in API path;
 * the answer is the successful `Response`, unread.
 */
export function request(
  method: Method,
  path: `/api/v1/${string}`,
  opts: { body?: string; contentType?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers = new Headers(opts.headers);
  if (opts.contentType) headers.set('content-type', opts.contentType);
  return send(method, path, headers, opts.body);
}

/** Fetches with the bearer token (refreshed once on a 401); throws `ApiError` unless it succeeded. */
async function send(method: Method, target: string, headers: Headers, body: string | undefined): Promise<Response> {
  if (tokens) headers.set('authorization', `Bearer ${await accessToken()}`);
  const request = { method: method.toUpperCase(), headers, body };
  let res = await fetch(target, request);
  if (res.status === 401 && tokens) {
    await refresh();
    if (tokens) {
      headers.set('authorization', `Bearer ${tokens.access_token}`);
      res = await fetch(target, request);
    }
  }
  if (!res.ok) {
    let code = 'http_error';
    let message = res.statusText;
    let problems: string[] = [];
    let details: unknown[] = [];
    try {
      // `{error: {code, message}}` (older servers answered `{code, message}`).
      const body = await res.json();
      const err = body && typeof body.error === 'object' && body.error !== null ? body.error : body;
      code = typeof err?.code === 'string' ? err.code : code;
      message = typeof err?.message === 'string' ? err.message : message;
      problems = problemTexts(err?.problems);
      details = Array.isArray(err?.problems) ? err.problems : [];
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, code, message, problems, details);
  }
  return res;
}

/** The texts of an error's `problems`: each a string, or an object with its `message`. */
function problemTexts(problems: unknown): string[] {
  if (!Array.isArray(problems)) return [];
  return problems.flatMap((p: unknown) => {
    if (typeof p === 'string') return [p];
    const text = typeof p === 'object' && p !== null ? Reflect.get(p, 'message') : undefined;
    return typeof text === 'string' ? [text] : [];
  });
}

/** A fetch failure (offline, server down) as an ApiError the UI can show. */
export function describeError(e: unknown): string {
  if (e instanceof ApiError) return e.message || `Request failed (${e.status})`;
  if (e instanceof TypeError) return 'Cannot reach the server. Check your connection and try again.';
  if (e instanceof Error) return e.message;
  return 'Something went wrong.';
}
