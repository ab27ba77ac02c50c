// Benchmark: a channel with 10,000 messages in the web client, against the same messages as a
// plain (not virtualised) page, in one run of Debian's Chromium.
//
//   node tests/browser/scroll.bench.mjs [--concord PATH] [--messages 10000] [--runs 3]
//
// Starts `concord serve` on a fresh data directory serving client-web/dist, seeds one channel,
// then for each run measures, in a fresh browser context: time from navigation to the latest
// messages on screen, elements in the page, JS heap, and frame intervals (p50/p99) and long
// tasks while scrolling up through history at 40 px a frame for 4 seconds. Prints medians.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launch } from './lib.mjs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const repo = resolve(import.meta.dirname, '../..');
const target = process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
const concord = args.concord ?? join(target, 'release/concord');
const MESSAGES = Number(args.messages ?? 10000);
const RUNS = Number(args.runs ?? 3);
const PASSWORD = 'correct horse battery staple';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'concord-scroll-'));
  const child = spawn(concord, ['serve', '--bind', '127.0.0.1:0', '--data-dir', join(dir, 'data')], {
    env: { ...process.env, CONCORD_HTTP__WEB_ROOT: join(repo, 'client-web/dist'), CONCORD_LOG__FILTER: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise((ok, fail) => {
    child.on('exit', (code) => fail(new Error(`concord exited with ${code}: ${out}`)));
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) ok(m[1]);
    });
  });
  const token = out.match(/setup\?token=(\S+)/)[1];
  return { child, dir, url, token };
}

async function call(url, method, path, token, body) {
  const r = await fetch(`${url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const WORDS = 'the plan ship review patient chart update deploy shift note lab result meeting follow up today please check ok thanks'.split(' ');
function sentence(i) {
  const n = 4 + ((i * 7919) % 30);
  return Array.from({ length: n }, (_, k) => WORDS[(i * 31 + k * 17) % WORDS.length]).join(' ') + ` #${i}`;
}

async function seed(url, setup) {
  await call(url, 'POST', '/api/v1/setup', null, { token: setup, email: 'admin@example.org', display_name: 'Ada Admin', password: PASSWORD });
  const { access_token: t } = await call(url, 'POST', '/api/v1/auth/login', null, { email: 'admin@example.org', password: PASSWORD });
  const ws = await call(url, 'POST', '/api/v1/workspaces', t, { name: 'Bench' });
  const ch = await call(url, 'POST', `/api/v1/workspaces/${ws.id}/channels`, t, { name: 'history', visibility: 'public' });
  let next = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < MESSAGES) {
        const i = next++;
        await call(url, 'POST', `/api/v1/channels/${ch.id}/messages`, t, { text: sentence(i), client_msg_id: `seed-${i}` });
      }
    }),
  );
  console.error(`seeded ${MESSAGES} messages in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { ws: ws.id, ch: ch.id };
}

/** A fresh context: sign in, open the channel, measure. */
async function measureClient(browser, url, where) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: url });
  const page = await context.newPage();
  await page.goto('/login');
  await page.getByLabel(/email/i).fill('admin@example.org');
  await page.getByLabel(/password/i).fill(PASSWORD);
  await page.getByRole('button', { name: /sign in/i }).click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
  const t0 = Date.now();
  await page.goto(`/w/${where.ws}/c/${where.ch}`);
  await page.getByText(`#${MESSAGES - 1}`, { exact: false }).first().waitFor({ timeout: 30000 });
  const open = Date.now() - t0;
  const scroll = await scrollFor(page, '.msg-scroller');
  const size = await page.evaluate(() => ({ elements: document.getElementsByTagName('*').length, heap: performance.memory?.usedJSHeapSize ?? 0 }));
  await context.close();
  return { open, ...scroll, ...size };
}

/** The same messages as one plain page (every row in the DOM), as a browser would show a naive list. */
async function measurePlain(browser, url, where) {
  const { access_token: t } = await call(url, 'POST', '/api/v1/auth/login', null, { email: 'admin@example.org', password: PASSWORD });
  const texts = [];
  let before = '';
  for (;;) {
    const page = await call(url, 'GET', `/api/v1/channels/${where.ch}/messages?limit=200${before}`, t);
    const items = Array.isArray(page) ? page : page.messages ?? page.items ?? [];
    if (!items.length) break;
    texts.push(...items.map((m) => m.text));
    const oldest = items.reduce((a, m) => (m.seq < a.seq ? m : a));
    before = `&before=${oldest.seq}`;
    if (items.length < 200) break;
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const t0 = Date.now();
  await page.setContent(
    `<style>body{margin:0;font:15px system-ui}#s{height:100vh;overflow:auto}.m{display:flex;gap:8px;padding:6px 16px}.a{width:36px;height:36px;border-radius:6px;background:#46c}</style><div id="s"></div>`,
  );
  await page.evaluate((texts) => {
    const s = document.getElementById('s');
    for (const text of texts) {
      const row = document.createElement('div');
      row.className = 'm';
      row.innerHTML = '<div class="a"></div><div><b>Ada Admin</b> <time>7:00 PM</time><p></p></div>';
      row.querySelector('p').textContent = text;
      s.appendChild(row);
    }
    s.scrollTop = s.scrollHeight;
  }, texts.reverse());
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const open = Date.now() - t0;
  const scroll = await scrollFor(page, '#s');
  const size = await page.evaluate(() => ({ elements: document.getElementsByTagName('*').length, heap: performance.memory?.usedJSHeapSize ?? 0 }));
  await context.close();
  return { open, ...scroll, ...size, rows: texts.length };
}

/** Scrolls `selector` up 40 px per frame for 4 s; frame intervals and long tasks. */
async function scrollFor(page, selector) {
  return page.evaluate(
    (selector) =>
      new Promise((done) => {
        const el = document.querySelector(selector);
        const frames = [];
        let long = 0;
        const obs = new PerformanceObserver((list) => (long += list.getEntries().length));
        try {
          obs.observe({ type: 'longtask', buffered: false });
        } catch {
          /* not supported */
        }
        const start = performance.now();
        let last = start;
        const step = (now) => {
          frames.push(now - last);
          last = now;
          el.scrollTop = Math.max(0, el.scrollTop - 40);
          if (now - start < 4000) requestAnimationFrame(step);
          else {
            obs.disconnect();
            done({ frames: frames.slice(1), long });
          }
        };
        requestAnimationFrame(step);
      }),
    selector,
  );
}

const server = await startServer();
let code = 0;
try {
  const where = await seed(server.url, server.token);
  const browser = await launch();
  const results = { client: [], plain: [] };
  for (let run = 0; run < RUNS; run++) {
    results.client.push(await measureClient(browser, server.url, where));
    results.plain.push(await measurePlain(browser, server.url, where));
  }
  await browser.close();
  const summary = {};
  for (const [name, runs] of Object.entries(results)) {
    summary[name] = {
      open_ms: median(runs.map((r) => r.open)),
      frame_p50_ms: +median(runs.map((r) => pct(r.frames, 50))).toFixed(1),
      frame_p99_ms: +median(runs.map((r) => pct(r.frames, 99))).toFixed(1),
      long_tasks: median(runs.map((r) => r.long)),
      elements: median(runs.map((r) => r.elements)),
      heap_mb: +(median(runs.map((r) => r.heap)) / 1048576).toFixed(1),
    };
  }
  const ratio = (k) => +(summary.client[k] / summary.plain[k]).toFixed(2);
  console.log(JSON.stringify({ messages: MESSAGES, runs: RUNS, ...summary, ratio: { open_ms: ratio('open_ms'), frame_p99_ms: ratio('frame_p99_ms'), elements: ratio('elements'), heap_mb: ratio('heap_mb') } }, null, 2));
} catch (err) {
  console.error(`scroll benchmark failed: ${err?.stack ?? err}`);
  code = 1;
} finally {
  server.child.kill('SIGTERM');
  rmSync(server.dir, { recursive: true, force: true });
}
process.exit(code);
