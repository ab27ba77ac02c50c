#!/usr/bin/env node
// Replays a recorded editing trace through a y-websocket server from one writer to N readers,
// one Yjs transaction per trace patch, and checks that every reader ends with exactly the
// trace's final text.
//
//   node tests/yjs/replay.mjs TRACE --url ws://127.0.0.1:PORT/api/v1/yjs --doc ID --token T
//        [--readers 10] [--limit N] [--name content] [--traces DIR] [--timeout MS]
//        [--provider y-websocket|hocuspocus]
//
// TRACE is a name in tests/data/editing-traces (automerge-paper, seph-blog1; other names are
// looked up in --traces DIR, or else in CONCORD_EXTRA_TRACES or ../shared/data/editing-traces
// beside the repository) or a path to a .json.gz trace. --limit replays only the first N patches (the expected text is then the
// writer's own). The document must start empty. Every client uses --token. The clients are
// y-websocket's WebsocketProvider; --provider hocuspocus uses @hocuspocus/provider instead (to
// time the same replay against a Hocuspocus server).
//
// Prints one JSON line ({"trace","edits","readers","length","write_seconds","seconds"}) and
// exits 0 when every reader holds the expected text; exits 1 with a one-line reason on stderr
// otherwise (connect/sync timeout 10 s each; delivery timeout --timeout, default 300000 ms),
// 2 on a wrong command line.

import { Client, Failure, HocuspocusClient, UsageError, parseArgs, run } from './client.mjs'
import { ReaderProgress, allDelivered, loadTrace, plan, write } from './trace.mjs'

const USAGE = `usage: node replay.mjs TRACE --url WS_URL --doc ID --token T [--readers 10] [--limit N]
  [--name content] [--traces DIR] [--timeout MS] [--provider y-websocket|hocuspocus]`

const SYNC_TIMEOUT_MS = 10000

async function main () {
  const { positional, options } = parseArgs(process.argv.slice(2))
  if (positional.length !== 1) throw new UsageError('give exactly one trace')
  if (!options.url || !options.doc) throw new UsageError('--url and --doc are required')
  const readerCount = Number(options.readers ?? 10)
  const limit = options.limit === undefined ? Infinity : Number(options.limit)
  const timeout = Number(options.timeout ?? 300000)
  const textName = options.name ?? 'content'
  if (!Number.isInteger(readerCount) || readerCount < 1) throw new UsageError('--readers must be a positive integer')
  if (!(limit > 0)) throw new UsageError('--limit must be a positive integer')
  if (!(timeout > 0)) throw new UsageError('--timeout must be a positive number of milliseconds')
  const provider = options.provider ?? 'y-websocket'
  if (provider !== 'y-websocket' && provider !== 'hocuspocus') throw new UsageError('--provider is y-websocket or hocuspocus')
  const ClientKind = provider === 'hocuspocus' ? HocuspocusClient : Client
  if (provider === 'hocuspocus') await HocuspocusClient.load()

  const trace = loadTrace(positional[0], options.traces)
  const patches = Number.isFinite(limit) ? trace.patches.slice(0, limit) : trace.patches
  const planned = plan(patches)
  if (patches.length === trace.patches.length && planned.expected !== trace.endContent) {
    throw new Failure('applying the trace locally does not give its endContent: the trace is not what this replay expects')
  }

  const clients = []
  try {
    const writer = new ClientKind(options.url, options.doc, options.token, { name: 'writer' })
    clients.push(writer)
    const readers = []
    for (let i = 0; i < readerCount; i++) {
      const r = new ClientKind(options.url, options.doc, options.token, { name: `reader ${i + 1}` })
      readers.push(r)
      clients.push(r)
    }
    await Promise.all(clients.map((c) => c.synced(SYNC_TIMEOUT_MS)))
    for (const c of clients) {
      const length = c.doc.getText(textName).length
      if (length !== 0) throw new Failure(`document ${options.doc} is not empty (${c.name} sees ${length} characters)`)
    }

    const progress = readers.map((r) => new ReaderProgress(r, writer.doc.clientID, planned, textName))
    const started = performance.now()
    await write(writer, patches, { textName })
    const written = performance.now()
    await allDelivered(progress, timeout, readers.map((r) => [r.doc, 'update']))
    const finished = performance.now()

    for (const r of readers) {
      const got = r.doc.getText(textName).toString()
      if (got !== planned.expected) {
        let at = 0
        while (at < got.length && got[at] === planned.expected[at]) at++
        throw new Failure(`${r.name} ended with ${got.length} characters instead of ${planned.expected.length}, differing from character ${at}`)
      }
    }
    return {
      trace: positional[0],
      edits: patches.length,
      readers: readerCount,
      length: planned.expected.length,
      write_seconds: round((written - started) / 1000),
      seconds: round((finished - started) / 1000)
    }
  } finally {
    for (const c of clients) c.destroy()
  }
}

const round = (x) => Math.round(x * 1000) / 1000

const timeoutArg = Number(process.argv.find((_, i, a) => a[i - 1] === "--timeout") ?? 300000)
run(main, { deadlineMs: (Number.isFinite(timeoutArg) ? timeoutArg : 300000) + 120000, usage: USAGE })
