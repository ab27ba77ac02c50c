#!/usr/bin/env node
// The document benchmark: Concord, y-sweet and Hocuspocus side by side, each started here as a
// child process on a fresh data directory, driven by the same harness of stock Yjs clients.
//
//   node tests/yjs/bench.mjs [--server all|concord|y-sweet|hocuspocus] [--runs 3]
//        [--edits 20000] [--readers 10] [--rate 200] [--paced-edits 3000]
//        [--memory-docs 4] [--concord PATH] [--y-sweet PATH] [--json PATH]
//
// Per run, the servers take turns (one running at a time); each is started fresh and measured:
// - memory: VmRSS with --memory-docs empty documents open, then with each holding the whole
//   automerge-paper document (the trace applied in 26 transactions by one loader client per
//   document); the difference per document;
// - converge: one writer replays the first --edits patches of automerge-paper as fast as its
//   socket takes them (one transaction per patch), --readers readers; time from the first edit
//   until every reader holds every edit;
// - paced: the writer at --rate edits/s for --paced-edits edits; per-edit delivery latency
//   (receive time at a reader minus the writer's send time, same process) p50/p99 over every
//   reader and edit after the first second;
// - server CPU (utime + stime of the server process, /proc/PID/stat) per 1,000 deliveries
//   (edits x readers) in both runs.
// Prints one table of medians over runs (and writes every figure as JSON with --json).
//
// Clients: y-websocket's WebsocketProvider for Concord and y-sweet; @hocuspocus/provider for
// Hocuspocus, whose protocol differs (document name before every message, an auth message
// first, a sync-status acknowledgement from the server for every update).

import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, createWriteStream, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { Client, Failure, HocuspocusClient, UsageError, parseArgs, run, waitFor } from './client.mjs'
import { ReaderProgress, allDelivered, loadTrace, plan, write } from './trace.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))
const REPO = resolve(HERE, '../..')
const USAGE = `usage: node bench.mjs [--server all|concord|y-sweet|hocuspocus] [--runs 3] [--edits 20000]
  [--readers 10] [--rate 200] [--paced-edits 3000] [--memory-docs 4] [--concord PATH] [--y-sweet PATH] [--json PATH]`
const TEXT = 'content'
const SYNC_TIMEOUT_MS = 20000
const START_TIMEOUT_MS = 60000
const DELIVERY_TIMEOUT_MS = 300000
const PASSWORD = 'correct horse battery staple bench'
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
  } catch {
    return 100
  }
})()

// ---------------------------------------------------------------------------------------------
// Processes

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // proc(5): utime and stime are fields 14 and 15; fields[0] here is field 3 (state).
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

/** Resident memory (VmRSS) in KiB. */
function rssKiB (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  if (!m) throw new Failure(`no VmRSS for process ${pid}`)
  return Number(m[1])
}

/** Children still running, killed if the harness exits early. */
const children = new Set()
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

function freePort () {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/**
 * Starts `command` with its output in `dir/server.log`; resolves once a line of its output
 * contains `ready`, passing every line to `onLine` until then.
 */
async function startChild (name, command, args, { env = {}, ready, onLine = () => {}, dir }) {
  const logPath = join(dir, 'server.log')
  const log = createWriteStream(logPath)
  const child = spawn(command, args, {
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '262144', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  children.add(child)
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => {
    children.delete(child)
    resolve({ code, signal })
  }))
  let isReady = false
  const readyPromise = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Failure(`${name} did not start within ${START_TIMEOUT_MS} ms (log: ${logPath})`)), START_TIMEOUT_MS)
    child.once('error', (err) => { clearTimeout(timer); reject(new Failure(`starting ${name}: ${err.message}`)) })
    exited.then(({ code, signal }) => {
      clearTimeout(timer)
      if (!isReady) reject(new Failure(`${name} exited (${code ?? signal}) before listening; log: ${logPath}`))
    })
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        log.write(line + '\n')
        if (isReady) return
        onLine(line)
        if (line.includes(ready)) {
          isReady = true
          clearTimeout(timer)
          resolve()
        }
      })
    }
  })
  await readyPromise
  return {
    pid: child.pid,
    async stop () {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const killer = setTimeout(() => child.kill('SIGKILL'), 20000)
        await exited
        clearTimeout(killer)
      }
      log.end()
    }
  }
}

async function http (method, url, { token, body, expect }) {
  const res = await fetch(url, {
    method,
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {})
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(60000)
  })
  const text = await res.text()
  if (res.status !== expect) throw new Failure(`${method} ${url} answered ${res.status}: ${text.slice(0, 300)}`)
  return text ? JSON.parse(text) : null
}

// ---------------------------------------------------------------------------------------------
// The three servers: start(), then newDoc() -> { url, docId, token }, pid, stop().

const SERVERS = {
  async concord (opts) {
    const dir = mkdtempSync(join(tmpdir(), 'concord-docs-bench-'))
    const port = await freePort()
    let setupToken
    const child = await startChild('concord', opts.concord, ['serve', '--bind', `127.0.0.1:${port}`, '--data-dir', dir], {
      dir,
      env: {
        CONCORD_AUTH__LOCKOUT_THRESHOLD: '1000000',
        CONCORD_AUTH__IP_LOCKOUT_THRESHOLD: '1000000',
        CONCORD_AUTH__ACCESS_TOKEN_SECONDS: '3600'
      },
      ready: 'Concord is listening on http://',
      onLine (line) {
        const at = line.indexOf('/setup?token=')
        if (at >= 0) setupToken = line.slice(at + '/setup?token='.length).trim()
      }
    })
    const base = `http://127.0.0.1:${port}`
    if (!setupToken) throw new Failure('concord printed no setup token')
    await http('POST', `${base}/api/v1/setup`, {
      body: { token: setupToken, email: 'bench-admin@example.org', display_name: 'Bench Admin', password: PASSWORD },
      expect: 201
    })
    const login = await http('POST', `${base}/api/v1/auth/login`, {
      body: { email: 'bench-admin@example.org', password: PASSWORD },
      expect: 200
    })
    const token = login.access_token
    const workspace = await http('POST', `${base}/api/v1/workspaces`, { token, body: { name: 'Bench' }, expect: 201 })
    let n = 0
    return {
      pid: child.pid,
      client: Client,
      async newDoc () {
        const doc = await http('POST', `${base}/api/v1/workspaces/${workspace.id}/documents`, {
          token,
          body: { title: `bench ${++n}` },
          expect: 201
        })
        return { url: `ws://127.0.0.1:${port}/api/v1/yjs`, docId: doc.id, token }
      },
      async stop () {
        await child.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  },

  async 'y-sweet' (opts) {
    const dir = mkdtempSync(join(tmpdir(), 'y-sweet-bench-'))
    const port = await freePort()
    const child = await startChild('y-sweet', opts.ySweet, ['serve', join(dir, 'store'), '--host', '127.0.0.1', '--port', String(port)], {
      dir,
      env: { RUST_LOG: 'warn,y_sweet=info' },
      ready: 'Listening on'
    })
    const base = `http://127.0.0.1:${port}`
    let n = 0
    return {
      pid: child.pid,
      client: Client,
      async newDoc () {
        const { docId } = await http('POST', `${base}/doc/new`, { body: { docId: `bench-${++n}` }, expect: 200 })
        // y-sweet's y-websocket compatible path repeats the document id.
        return { url: `ws://127.0.0.1:${port}/d/${docId}/ws`, docId, token: undefined }
      },
      async stop () {
        await child.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  },

  async hocuspocus () {
    await HocuspocusClient.load()
    const dir = mkdtempSync(join(tmpdir(), 'hocuspocus-bench-'))
    const port = await freePort()
    const child = await startChild('hocuspocus', process.execPath,
      [join(HERE, 'hocuspocus-server.mjs'), '--port', String(port), '--database', join(dir, 'documents.sqlite')], {
        dir,
        ready: 'hocuspocus listening on'
      })
    let n = 0
    return {
      pid: child.pid,
      client: HocuspocusClient,
      async newDoc () {
        return { url: `ws://127.0.0.1:${port}`, docId: `bench-${++n}`, token: 'bench' }
      },
      async stop () {
        await child.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

/** `count` clients synced on `target` (a new document when not given). */
async function connect (server, count, names, target) {
  target ??= await server.newDoc()
  const clients = []
  for (let i = 0; i < count; i++) clients.push(new server.client(target.url, target.docId, target.token, { name: names(i) }))
  try {
    await Promise.all(clients.map((c) => c.synced(SYNC_TIMEOUT_MS)))
  } catch (err) {
    for (const c of clients) c.destroy()
    throw err
  }
  return { target, clients }
}

/** One writer and `readers` readers replay `patches` (at `rate`/s, 0 for as fast as possible). */
async function replayOnce (server, planned, patches, { readers, rate }) {
  const { clients } = await connect(server, readers + 1, (i) => (i === 0 ? 'writer' : `reader ${i}`))
  const [writer, ...rs] = clients
  try {
    const sentAt = new Float64Array(patches.length)
    const latencies = []
    const skip = rate > 0 ? rate : 0 // the first second is warm-up
    const progress = rs.map((r) => new ReaderProgress(r, writer.doc.clientID, planned, TEXT, (i, now) => {
      if (rate > 0 && i >= skip) latencies.push(now - sentAt[i])
    }))
    const cpu0 = cpuSeconds(server.pid)
    const harness0 = process.cpuUsage()
    const started = performance.now()
    await write(writer, patches, { textName: TEXT, rate, sentAt })
    await allDelivered(progress, DELIVERY_TIMEOUT_MS, rs.map((r) => [r.doc, 'update']))
    const seconds = (performance.now() - started) / 1000
    const cpu = cpuSeconds(server.pid) - cpu0
    const harness = process.cpuUsage(harness0)
    const harnessCpu = (harness.user + harness.system) / 1e6
    for (const r of rs) {
      if (r.doc.getText(TEXT).toString() !== planned.expected) throw new Failure(`${r.name} does not hold the expected text`)
    }
    const deliveries = patches.length * readers
    latencies.sort((a, b) => a - b)
    const pct = (p) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN
    return { seconds, cpu, cpuPer1000: (cpu * 1000) / deliveries, harnessCpu, p50: pct(0.5), p99: pct(0.99) }
  } finally {
    for (const c of clients) c.destroy()
  }
}

/** VmRSS with `docs` empty documents open, then with each holding the whole trace. */
async function memory (server, trace, docs) {
  const chunks = []
  const step = Math.ceil(trace.patches.length / 26)
  for (let i = 0; i < trace.patches.length; i += step) chunks.push(trace.patches.slice(i, i + step))
  const loaders = []
  const targets = []
  try {
    for (let d = 0; d < docs; d++) {
      const { target, clients } = await connect(server, 1, () => `loader ${d + 1}`)
      targets.push(target)
      loaders.push(...clients)
    }
    await settle()
    const before = rssKiB(server.pid)
    for (const loader of loaders) {
      const text = loader.doc.getText(TEXT)
      for (const chunk of chunks) {
        loader.doc.transact(() => {
          for (const [pos, del, ins] of chunk) {
            if (del > 0) text.delete(pos, del)
            if (ins.length > 0) text.insert(pos, ins)
          }
        })
      }
    }
    // The server holds a document once a client that connects afterwards receives all of it.
    for (const target of targets) {
      const { clients: [check] } = await connect(server, 1, () => 'checker', target)
      try {
        await waitFor('a fresh client to receive the whole document', DELIVERY_TIMEOUT_MS,
          () => check.doc.getText(TEXT).length === trace.endContent.length, [[check.doc, 'update']])
        if (check.doc.getText(TEXT).toString() !== trace.endContent) throw new Failure('the loaded document differs from the trace')
      } finally {
        check.destroy()
      }
    }
    await settle()
    const after = rssKiB(server.pid)
    return { idleKiB: before, loadedKiB: after, perDocKiB: (after - before) / docs }
  } finally {
    for (const c of loaders) c.destroy()
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 2000))

// ---------------------------------------------------------------------------------------------

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!v.length) return NaN
  const m = v.length >> 1
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}

async function main () {
  const { options } = parseArgs(process.argv.slice(2))
  const which = options.server ?? 'all'
  const names = which === 'all' ? ['concord', 'y-sweet', 'hocuspocus'] : which.split(',')
  for (const n of names) if (!SERVERS[n]) throw new UsageError(`unknown server ${n}`)
  const opts = {
    runs: Number(options.runs ?? 3),
    edits: Number(options.edits ?? 20000),
    readers: Number(options.readers ?? 10),
    rate: Number(options.rate ?? 200),
    pacedEdits: Number(options['paced-edits'] ?? 3000),
    memoryDocs: Number(options['memory-docs'] ?? 4),
    concord: options.concord ?? join(process.env.CARGO_TARGET_DIR ?? join(REPO, 'target'), 'release', 'concord'),
    ySweet: options['y-sweet'] ?? 'y-sweet'
  }
  const trace = loadTrace('automerge-paper')
  const converge = trace.patches.slice(0, opts.edits)
  const paced = trace.patches.slice(0, opts.pacedEdits)
  const convergePlan = plan(converge)
  const pacedPlan = plan(paced)

  const results = Object.fromEntries(names.map((n) => [n, []]))
  for (let run = 1; run <= opts.runs; run++) {
    for (const name of names) {
      const server = await SERVERS[name](opts)
      try {
        const mem = await memory(server, trace, opts.memoryDocs)
        const c = await replayOnce(server, convergePlan, converge, { readers: opts.readers, rate: 0 })
        const p = await replayOnce(server, pacedPlan, paced, { readers: opts.readers, rate: opts.rate })
        const r = { run, mem, converge: c, paced: p }
        results[name].push(r)
        process.stderr.write(`run ${run} ${name}: converge ${c.seconds.toFixed(2)} s, cpu ${c.cpuPer1000.toFixed(3)} s/1000 ` +
          `(server ${c.cpu.toFixed(1)} s, clients ${c.harnessCpu.toFixed(1)} s); ` +
          `paced p50 ${p.p50.toFixed(1)} ms p99 ${p.p99.toFixed(1)} ms, cpu ${p.cpuPer1000.toFixed(3)} s/1000; ` +
          `rss ${mem.idleKiB} -> ${mem.loadedKiB} KiB (${(mem.perDocKiB / 1024).toFixed(1)} MiB/doc)\n`)
      } finally {
        await server.stop()
      }
    }
  }
  if (options.json) writeFileSync(options.json, JSON.stringify({ opts, results }, null, 2))
  process.stdout.write(table(names, results, opts))
  return null
}

function table (names, results, opts) {
  const m = (name, f) => median(results[name].map(f))
  const base = (f) => names.includes('y-sweet') ? m('y-sweet', f) : NaN
  const ratio = (v, b) => Number.isFinite(b) && b > 0 ? (v / b).toFixed(2) : '–'
  const lines = [
    `Document benchmark: medians of ${opts.runs} runs; converge ${opts.edits} edits, paced ${opts.pacedEdits} edits at ${opts.rate}/s, ` +
      `${opts.readers} readers; memory: ${opts.memoryDocs} documents each holding all of automerge-paper.`,
    '',
    '| Server | Converge s | × y-sweet | CPU s/1000 deliveries (converge) | × y-sweet | Paced p50 ms | Paced p99 ms | × y-sweet (p99) | CPU s/1000 deliveries (paced) | × y-sweet | RSS idle MiB | RSS loaded MiB | MiB per document | × y-sweet |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|'
  ]
  for (const n of names) {
    const conv = m(n, (r) => r.converge.seconds)
    const ccpu = m(n, (r) => r.converge.cpuPer1000)
    const p50 = m(n, (r) => r.paced.p50)
    const p99 = m(n, (r) => r.paced.p99)
    const pcpu = m(n, (r) => r.paced.cpuPer1000)
    const idle = m(n, (r) => r.mem.idleKiB) / 1024
    const loaded = m(n, (r) => r.mem.loadedKiB) / 1024
    const perDoc = m(n, (r) => r.mem.perDocKiB) / 1024
    lines.push(`| ${n} | ${conv.toFixed(2)} | ${ratio(conv, base((r) => r.converge.seconds))} | ${ccpu.toFixed(3)} | ${ratio(ccpu, base((r) => r.converge.cpuPer1000))} | ` +
      `${p50.toFixed(1)} | ${p99.toFixed(1)} | ${ratio(p99, base((r) => r.paced.p99))} | ${pcpu.toFixed(3)} | ${ratio(pcpu, base((r) => r.paced.cpuPer1000))} | ` +
      `${idle.toFixed(1)} | ${loaded.toFixed(1)} | ${perDoc.toFixed(2)} | ${ratio(perDoc, base((r) => r.mem.perDocKiB / 1024))} |`)
  }
  return lines.join('\n') + '\n'
}

run(async () => {
  await main()
  process.exit(0)
}, { deadlineMs: 4 * 60 * 60 * 1000, usage: USAGE })
