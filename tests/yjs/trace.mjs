// Replaying a recorded editing trace from one writer to many readers, shared by the replay check
// (replay.mjs) and the document benchmark (bench.mjs).
//
// Trace format (see tests/data/editing-traces/README.md): `{startContent, endContent,
// txns: [{patches: [[pos, delCount, insertText], ...]}]}`, positions in code points.
//
// How a reader knows which edits it holds, without comparing whole texts: the writer is the only
// client that changes the text, so a reader's clock for the writer counts every character the
// writer inserted that the reader has, and that clock minus the reader's text length counts the
// characters deleted. Both only grow, so edit i is delivered once both reach their values after
// edit i. At the end the readers' texts are compared with the expected text in full.

import { readFileSync, existsSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Failure, Y, waitFor } from './client.mjs'

const HERE = dirname(fileURLToPath(import.meta.url))

/** The traces the tests replay, shipped in the repository (`tests/data/editing-traces`). */
export const TRACES_DIR = resolve(HERE, '../data/editing-traces')

/**
 * Where other (larger) traces may be: `CONCORD_EXTRA_TRACES`, else `../shared/data/editing-traces`
 * beside the repository. Optional: nothing the test suite replays lives only there.
 */
export const EXTRA_TRACES_DIR = process.env.CONCORD_EXTRA_TRACES || resolve(HERE, '../../../shared/data/editing-traces')

/**
 * Loads a trace by name (`automerge-paper`) or path, as a flat list of patches. A name is looked
 * up in `dir` if given, else in the repository's traces and then in the optional extra directory.
 */
export function loadTrace (nameOrPath, dir) {
  let path = nameOrPath
  if (!existsSync(path)) {
    const dirs = dir ? [dir] : [TRACES_DIR, EXTRA_TRACES_DIR]
    const candidates = dirs.map((d) => join(d, `${nameOrPath}.json.gz`))
    path = candidates.find((c) => existsSync(c))
    if (!path) throw new Failure(`no trace at ${candidates.join(' or ')}`)
  }
  const trace = JSON.parse(gunzipSync(readFileSync(path)).toString('utf8'))
  if (!Array.isArray(trace.txns) || typeof trace.endContent !== 'string') {
    throw new Failure(`${path} is not a sequential editing trace (txns, endContent)`)
  }
  if (trace.startContent) throw new Failure(`${path} starts from non-empty content, which this replay does not support`)
  const patches = []
  for (const txn of trace.txns) {
    for (const patch of txn.patches) {
      // Positions count code points, Y.Text counts UTF-16 units: equal unless a character
      // outside the Basic Multilingual Plane appears.
      if (/[\u{10000}-\u{10FFFF}]/u.test(patch[2])) {
        throw new Failure(`${path} inserts characters outside the BMP; their positions would need converting`)
      }
      patches.push(patch)
    }
  }
  return { path, patches, endContent: trace.endContent }
}

/**
 * Cumulative characters inserted and deleted after each patch, and the text after the last one
 * (computed on a local Y.Doc, independent of any server).
 */
export function plan (patches) {
  const inserted = new Float64Array(patches.length)
  const deleted = new Float64Array(patches.length)
  const doc = new Y.Doc()
  const text = doc.getText('plan')
  let ins = 0
  let del = 0
  for (let i = 0; i < patches.length; i++) {
    const [pos, d, s] = patches[i]
    if (d > 0) text.delete(pos, d)
    if (s.length > 0) text.insert(pos, s)
    ins += s.length
    del += d
    inserted[i] = ins
    deleted[i] = del
  }
  const expected = text.toString()
  doc.destroy()
  return { inserted, deleted, expected }
}

/**
 * Follows one reader's progress through the writer's edits.
 * `onDelivered(i, now)` is called once per edit, in order.
 */
export class ReaderProgress {
  constructor (reader, writerClientId, planned, textName, onDelivered) {
    this.reader = reader
    this.next = 0
    this.planned = planned
    this.writerId = writerClientId
    this.text = reader.doc.getText(textName)
    this.onDelivered = onDelivered
    this.listener = () => this.check()
    reader.doc.on('update', this.listener)
  }

  check () {
    const { inserted, deleted } = this.planned
    const n = inserted.length
    if (this.next >= n) return
    const ins = Y.getState(this.reader.doc.store, this.writerId)
    const del = ins - this.text.length
    if (ins < inserted[this.next] || del < deleted[this.next]) return
    const now = performance.now()
    while (this.next < n && inserted[this.next] <= ins && deleted[this.next] <= del) {
      this.onDelivered?.(this.next, now)
      this.next++
    }
  }

  get done () {
    return this.next >= this.planned.inserted.length
  }

  stop () {
    this.reader.doc.off('update', this.listener)
  }
}

/**
 * Applies `patches` to the writer's Y.Text, one transaction per patch, as fast as the socket
 * takes them (`rate` 0) or at `rate` patches per second. Records each patch's send time in
 * `sentAt`. Yields to the event loop regularly so the readers sharing this process keep reading.
 */
export async function write (writer, patches, { textName, rate = 0, sentAt, bufferLimit = 4 << 20 }) {
  const text = writer.doc.getText(textName)
  const started = performance.now()
  const socket = () => writer.socket?.()
  for (let i = 0; i < patches.length; i++) {
    if (rate > 0) {
      const due = started + (i * 1000) / rate
      const wait = due - performance.now()
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait))
    } else if (i % 256 === 255) {
      await new Promise((resolve) => setImmediate(resolve))
      // Do not queue the whole trace in the socket's buffer at once.
      while ((socket()?.bufferedAmount ?? 0) > bufferLimit) await new Promise((resolve) => setTimeout(resolve, 1))
    }
    const [pos, del, ins] = patches[i]
    writer.doc.transact(() => {
      if (del > 0) text.delete(pos, del)
      if (ins.length > 0) text.insert(pos, ins)
    })
    if (sentAt) sentAt[i] = performance.now()
  }
}

/**
 * Waits until every reader holds every edit, or fails naming the slowest reader's progress.
 */
export function allDelivered (progress, timeoutMs, emitters) {
  return waitFor('every reader to hold every edit', timeoutMs, () => progress.every((p) => p.done), emitters)
    .catch((err) => {
      const n = progress[0]?.planned.inserted.length ?? 0
      const slowest = Math.min(...progress.map((p) => p.next))
      throw new Failure(`${err.message} (slowest reader at edit ${slowest} of ${n})`)
    })
}
