// Shared helpers of the browser tests: Debian's Chromium through playwright-core, the fixture
// the Rust driver seeded, sign-in, screenshots at desktop and phone width, and small assertions.
//
// A spec is run as `node tests/browser/<name>.spec.mjs` with CONCORD_URL and CONCORD_FIXTURE set
// (see server/tests/e2e/web_client.rs). It exits non-zero on the first failure.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const fixture = JSON.parse(process.env.CONCORD_FIXTURE ?? '{}');
export const url = process.env.CONCORD_URL ?? fixture.url;
const shots = process.env.CONCORD_SCREENSHOTS ?? join(process.cwd(), '../../target/screenshots');

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Launches headless Chromium; `browser.close()` when done. */
export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/**
 * A fresh browser context (its own storage, like a separate person's browser) with a page that
 * fails the test on any page error or console error.
 */
export async function newUserPage(browser, { viewport = DESKTOP, allowConsoleErrors = [] } = {}) {
  const context = await browser.newContext({ viewport, baseURL: url });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    // Resource errors the test provokes on purpose (offline, wrong password) are allowed by pattern.
    if (allowConsoleErrors.some((re) => re.test(text))) return;
    page.errors.push(`console: ${text}`);
  });
  return { context, page };
}

/** Signs `who` (a fixture user name or object) in through the sign-in form. */
export async function signIn(page, who) {
  const user = typeof who === 'string' ? fixture.users[who] : who;
  await page.goto('/login');
  await page.getByLabel(/email/i).fill(user.email);
  await page.getByLabel(/password/i).fill(user.password);
  await page.getByRole('button', { name: /sign in/i }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 15000 });
  return user;
}

/** Saves `<name>-desktop.png` and `<name>-phone.png` of the current page. */
export async function shot(page, name) {
  mkdirSync(shots, { recursive: true });
  const original = page.viewportSize();
  for (const [label, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await page.waitForTimeout(150);
    await page.screenshot({ path: join(shots, `${name}-${label}.png`), fullPage: false });
  }
  if (original) await page.setViewportSize(original);
}

/** Calls the JSON API directly as `who` (for seeding), returning the parsed body. */
export async function apiAs(who, method, path, body) {
  const user = typeof who === 'string' ? fixture.users[who] : who;
  if (!user.token) {
    const r = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: user.email, password: user.password }),
    });
    if (!r.ok) throw new Error(`login ${user.email}: ${r.status} ${await r.text()}`);
    user.token = (await r.json()).access_token;
  }
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Polls `get` until `done` holds of its answer, for at most `timeout` ms. */
export async function until(get, done, what, timeout = 15000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await get();
    if (done(v)) return v;
    assert(Date.now() < deadline, `${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}

/** Fails if any page collected errors. */
export function assertNoErrors(...pages) {
  const errors = pages.flatMap((p) => p.errors ?? []);
  assert(errors.length === 0, `the page reported errors:\n${errors.join('\n')}`);
}

/**
 * Runs a spec body with a launched browser; prints `ok <name>` on success, or the error (and a
 * failure screenshot of every open page) and exits 1.
 */
export async function run(name, body) {
  const browser = await launch();
  let code = 0;
  try {
    await body(browser);
    console.log(`ok ${name}`);
  } catch (err) {
    code = 1;
    console.error(`FAILED ${name}: ${err?.stack ?? err}`);
    try {
      mkdirSync(shots, { recursive: true });
      let i = 0;
      for (const ctx of browser.contexts()) {
        for (const p of ctx.pages()) {
          await p.screenshot({ path: join(shots, `${name}-failure-${i++}.png`) }).catch(() => {});
        }
      }
    } catch {
      /* best effort */
    }
  } finally {
    await browser.close().catch(() => {});
  }
  process.exit(code);
}
