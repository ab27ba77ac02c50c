#!/usr/bin/env node
// Interoperability scenarios: stock Yjs clients (`yjs` + `y-websocket`'s WebsocketProvider, `ws`
// as the WebSocket) against a server that speaks the y-websocket protocol.
//
//   node tests/yjs/interop.mjs SCENARIO --url ws://127.0.0.1:PORT/api/v1/yjs --doc ID --token T
//        [--token2 T2] [--text TEXT] [--name content] [--expect TEXT] [--timeout MS]
//        [--auth query|protocol]
//
// Prints one JSON line with the result on stdout and exits 0 on success; exits 1 with a one-line
// reason on stderr when the server does not behave as the scenario expects (every wait has a
// timeout, --timeout, default 10000 ms), 2 on a wrong command line. See SCENARIOS below.

import { Client, Failure, UsageError, Y, parseArgs, run } from './client.mjs'

const USAGE = `usage: node interop.mjs SCENARIO --url WS_URL --doc ID [--token T] [--token2 T2]
  [--text TEXT] [--name TEXT_NAME] [--expect TEXT] [--expect-code CODE] [--timeout MS]
  [--seconds S] (keepalive) [--auth query|protocol] (how tokens are sent, default query)
scenarios: ${'converge offline write read denied viewonly awareness prosemirror keepalive'}`

/** The Y.Text name used for plain text, unless --name says otherwise. */
const TEXT = 'content'
/** The Y.XmlFragment name a ProseMirror binding (y-prosemirror) edits. */
const FRAGMENT = 'prosemirror'

const tag = () => Math.random().toString(36).slice(2, 8)

const SCENARIOS = {
  /**
   * Two clients (--token, and --token2 or --token) edit the same Y.Text at the same time; both
   * end identical with both edits, and a fresh client sees the same text from the server.
   */
  async converge (o) {
    const a = o.client(o.token, 'client A')
    const b = o.client(o.token2 ?? o.token, 'client B')
    await Promise.all([a.synced(o.timeout), b.synced(o.timeout)])
    const editA = `[A ${o.text ?? tag()}]`
    const editB = `[B ${o.text ?? tag()}]`
    // Both inserts at the same place in the same tick: neither client has seen the other's.
    a.text(o.name).insert(0, editA)
    b.text(o.name).insert(0, editB)
    const both = (c) => {
      const t = c.text(o.name).toString()
      return t.includes(editA) && t.includes(editB)
    }
    await Promise.all([
      a.until('both edits', o.timeout, both),
      b.until('both edits', o.timeout, both)
    ])
    const textA = a.text(o.name).toString()
    const textB = b.text(o.name).toString()
    if (textA !== textB) throw new Failure(`clients diverged: ${JSON.stringify(textA)} != ${JSON.stringify(textB)}`)
    const fresh = await o.fresh(o.token, (c) => c.text(o.name).toString() === textA, 'the converged text')
    return { text: fresh.text(o.name).toString() }
  },

  /**
   * Client A syncs, goes offline and edits while B edits; A reconnects and both converge with
   * both edits. A's offline edit only reaches the server if the server sends A its sync step 1
   * (the client answers it with everything the server lacks).
   */
  async offline (o) {
    const a = o.client(o.token, 'client A')
    const b = o.client(o.token2 ?? o.token, 'client B')
    await Promise.all([a.synced(o.timeout), b.synced(o.timeout)])
    a.provider.disconnect()
    const editA = `[offline A ${o.text ?? tag()}]`
    const editB = `[online B ${o.text ?? tag()}]`
    a.text(o.name).insert(0, editA)
    b.text(o.name).insert(b.text(o.name).length, editB)
    // B's edit reaches the server while A is away.
    await o.fresh(o.token2 ?? o.token, (c) => c.text(o.name).toString().includes(editB), "B's edit")
    a.provider.connect()
    await a.synced(o.timeout)
    const both = (c) => {
      const t = c.text(o.name).toString()
      return t.includes(editA) && t.includes(editB)
    }
    await Promise.all([
      a.until('both edits after reconnecting', o.timeout, both),
      b.until("A's offline edit", o.timeout, both)
    ])
    const textA = a.text(o.name).toString()
    if (textA !== b.text(o.name).toString()) {
      throw new Failure(`clients diverged: ${JSON.stringify(textA)} != ${JSON.stringify(b.text(o.name).toString())}`)
    }
    await o.fresh(o.token, (c) => c.text(o.name).toString() === textA, 'the merged text')
    return { text: textA }
  },

  /**
   * Appends --text (default "hello from yjs") to the Y.Text and returns once a second, fresh
   * client has received it from the server.
   */
  async write (o) {
    const text = o.text ?? 'hello from yjs'
    const w = o.client(o.token, 'writer')
    await w.synced(o.timeout)
    const t = w.text(o.name)
    t.insert(t.length, text)
    const expected = t.toString()
    const fresh = await o.fresh(o.token2 ?? o.token, (c) => c.text(o.name).toString() === expected, 'the written text')
    return { text: fresh.text(o.name).toString() }
  },

  /**
   * Syncs and prints the Y.Text and whether the document holds the ProseMirror fragment
   * (with its XML). With --expect, waits until the text equals it.
   */
  async read (o) {
    const r = o.client(o.token, 'reader')
    await r.synced(o.timeout)
    if (o.expect !== undefined) {
      await r.until(`text ${JSON.stringify(o.expect)}`, o.timeout, (c) => c.text(o.name).toString() === o.expect)
        .catch((err) => {
          throw new Failure(`${err.message}; it holds ${JSON.stringify(r.text(o.name).toString())}`)
        })
    }
    // Only a root that some update created is listed in `share`; look before `get` creates it.
    const hasFragment = r.doc.share.has(FRAGMENT)
    const fragment = hasFragment ? r.doc.getXmlFragment(FRAGMENT) : null
    return {
      text: r.text(o.name).toString(),
      prosemirror: hasFragment ? { exists: true, length: fragment.length, xml: fragment.toString() } : { exists: false }
    }
  },

  /**
   * Expects the server to refuse the connection with a close code (4401 without a valid token,
   * 4403 without access; --expect-code narrows it) before sending any of the document.
   */
  async denied (o) {
    const c = o.client(o.token, 'client')
    let everSynced = false
    c.provider.on('sync', (s) => { if (s) everSynced = true })
    const errors = []
    c.provider.on('connection-error', (e) => errors.push(e && (e.message || e.error?.message)))
    await c.until('the server to close the connection', o.timeout, (x) => {
      if (everSynced || x.remoteUpdates > 0) throw new Failure('the server sent the document instead of refusing the connection')
      return x.closeCodes.length > 0
    })
    const code = c.closeCodes[0]
    const allowed = o.expectCode !== undefined ? [o.expectCode] : [4401, 4403]
    if (!allowed.includes(code)) {
      const hint = code === 1006 && errors.length ? ` (${errors.filter(Boolean).join('; ')})` : ''
      throw new Failure(`closed with ${code}${hint}, expected ${allowed.join(' or ')}`)
    }
    if (everSynced || c.remoteUpdates > 0 || c.doc.store.clients.size > 0) {
      throw new Failure(`received the document before being refused (synced: ${everSynced}, updates: ${c.remoteUpdates})`)
    }
    // A 4400-4499 close is permanent for the stock client: it must not try again.
    if (!c.permanentClose || c.provider.shouldConnect) {
      throw new Failure(`the client treats close code ${code} as transient and would reconnect`)
    }
    return { code, reason: c.permanentClose.reason }
  },

  /**
   * A view-only user (--token2) edits: the server refuses it and tells the viewer with a
   * y-protocols auth "permission-denied" message (at connection or at the refusal); neither an editor (--token) nor a fresh client ever sees it, and the
   * viewer still receives the editor's edits and awareness; the viewer's awareness reaches the
   * editor.
   */
  async viewonly (o) {
    if (!o.token2) throw new UsageError('viewonly needs --token2 (the view-only user)')
    const editor = o.client(o.token, 'editor')
    const viewer = o.client(o.token2, 'viewer')
    await Promise.all([editor.synced(o.timeout), viewer.synced(o.timeout)])
    editor.awareness.setLocalStateField('user', { name: 'editor' })
    viewer.awareness.setLocalStateField('user', { name: 'viewer' })
    const stateOf = (c, other) => c.awareness.getStates().get(other.doc.clientID)
    await viewer.until("the editor's awareness", o.timeout, (c) => stateOf(c, editor)?.user?.name === 'editor')

    const viewerEdit = `[viewer ${o.text ?? tag()}]`
    viewer.text(o.name).insert(0, viewerEdit)
    // The server may say it once per connection: when the viewer connects or at its first
    // refused update.
    await viewer.until('a permission-denied message', o.timeout, (c) => c.denied.length > 0)
    // Sent after the edit on the same socket: once the editor sees it, the server has handled the
    // edit, so the editor would already have it had it been broadcast.
    viewer.awareness.setLocalStateField('phase', 'after-edit')
    await editor.until("the viewer's awareness after its edit", o.timeout, (c) => stateOf(c, viewer)?.phase === 'after-edit')
    if (editor.text(o.name).toString().includes(viewerEdit)) throw new Failure("the editor received the viewer's edit")

    const editorEdit = `[editor ${o.text ?? tag()}]`
    editor.text(o.name).insert(editor.text(o.name).length, editorEdit)
    await viewer.until("the editor's edit", o.timeout, (c) => c.text(o.name).toString().includes(editorEdit))
    const fresh = await o.fresh(o.token, (c) => c.text(o.name).toString().includes(editorEdit), "the editor's edit")
    if (fresh.text(o.name).toString().includes(viewerEdit)) throw new Failure("the server kept the viewer's edit")
    if (editor.text(o.name).toString().includes(viewerEdit)) throw new Failure("the editor received the viewer's edit")
    return { denied: viewer.denied[viewer.denied.length - 1], text: fresh.text(o.name).toString() }
  },

  /**
   * Awareness between two connections of the same user (--token on both): each sees the
   * other's state and its changes, and a connection that leaves is removed from the other's.
   */
  async awareness (o) {
    const a = o.client(o.token, 'connection A')
    const b = o.client(o.token2 ?? o.token, 'connection B')
    await Promise.all([a.synced(o.timeout), b.synced(o.timeout)])
    const stateOf = (c, other) => c.awareness.getStates().get(other.doc.clientID)
    a.awareness.setLocalState({ user: { name: 'same user', tab: 'A' }, cursor: { anchor: 0, head: 0 } })
    b.awareness.setLocalState({ user: { name: 'same user', tab: 'B' }, cursor: null })
    await Promise.all([
      b.until("A's awareness", o.timeout, (c) => stateOf(c, a)?.user?.tab === 'A'),
      a.until("B's awareness", o.timeout, (c) => stateOf(c, b)?.user?.tab === 'B')
    ])
    a.awareness.setLocalStateField('cursor', { anchor: 3, head: 5 })
    await b.until("A's cursor move", o.timeout, (c) => stateOf(c, a)?.cursor?.head === 5)
    const aId = a.doc.clientID
    a.destroy()
    await b.until('A to leave the awareness states', o.timeout, (c) => !c.awareness.getStates().has(aId))
    return { states: b.awareness.getStates().size }
  },

  /**
   * One client alone on the document stays connected for --seconds (default 35): the stock
   * client drops a connection that received no message for 30 s (WebSocket pings do not count),
   * so the server must send it something, e.g. the echo of its own awareness renewals.
   */
  async keepalive (o) {
    const seconds = Number(o.seconds ?? 35)
    if (!(seconds > 0)) throw new UsageError('--seconds must be a positive number')
    const c = o.client(o.token, 'lone client')
    await c.synced(o.timeout)
    c.awareness.setLocalStateField('user', { name: 'alone' })
    let received = 0
    c.socket().addEventListener('message', () => received++)
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
    const dropped = c.closeCodes.length > 0 || c.socket() === null || !c.provider.wsconnected
    if (dropped) throw new Failure(`the connection was dropped within ${seconds} s (messages received: ${received})`)
    return { seconds, messages: received }
  },

  /**
   * Writes a Y.XmlFragment named "prosemirror" the way y-prosemirror stores a ProseMirror
   * document (one Y.XmlElement per node named after its type, node attributes as element
   * attributes, text in Y.XmlText with each mark as a formatting attribute whose value is the
   * mark's attributes), waits until a fresh client reads the same XML, and prints the XML and
   * the markdown it renders as.
   */
  async prosemirror (o) {
    const w = o.client(o.token, 'writer')
    await w.synced(o.timeout)
    const fragment = w.doc.getXmlFragment(FRAGMENT)
    w.doc.transact(() => {
      fragment.delete(0, fragment.length)
      fragment.insert(0, proseMirrorDocument())
    })
    const xml = fragment.toString()
    const fresh = await o.fresh(o.token2 ?? o.token, (c) => c.doc.getXmlFragment(FRAGMENT).toString() === xml, 'the fragment')
    return { xml: fresh.doc.getXmlFragment(FRAGMENT).toString(), markdown: PROSEMIRROR_MARKDOWN }
  }
}

/** The markdown of `proseMirrorDocument()`. */
const PROSEMIRROR_MARKDOWN = `# Release notes

Plain, **bold**, *italic*, \`code\` and a [link](https://example.com/docs).

## Steps

- first item
- second item

1. one
2. two

> quoted words

\`\`\`
let x = 1;
\`\`\`
`

function proseMirrorDocument () {
  const el = (name, attrs, children) => {
    const e = new Y.XmlElement(name)
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
    e.insert(0, children)
    return e
  }
  /** @param {Array<[string, object?]>} runs text runs with their marks */
  const text = (...runs) => {
    const t = new Y.XmlText()
    let at = 0
    for (const [s, marks] of runs) {
      t.insert(at, s, marks ?? {})
      at += s.length
    }
    return t
  }
  const para = (...runs) => el('paragraph', {}, [text(...runs)])
  return [
    el('heading', { level: 1 }, [text(['Release notes'])]),
    para(
      ['Plain, '], ['bold', { bold: {} }], [', '], ['italic', { italic: {} }], [', '], ['code', { code: {} }],
      [' and a '], ['link', { link: { href: 'https://example.com/docs', title: null } }], ['.']
    ),
    el('heading', { level: 2 }, [text(['Steps'])]),
    el('bullet_list', {}, [
      el('list_item', {}, [para(['first item'])]),
      el('list_item', {}, [para(['second item'])])
    ]),
    el('ordered_list', { order: 1 }, [
      el('list_item', {}, [para(['one'])]),
      el('list_item', {}, [para(['two'])])
    ]),
    el('blockquote', {}, [para(['quoted words'])]),
    el('code_block', {}, [text(['let x = 1;'])])
  ]
}

async function main () {
  let parsed
  try {
    parsed = parseArgs(process.argv.slice(2))
  } catch (err) {
    throw new UsageError(err.message)
  }
  const { positional, options } = parsed
  const scenario = SCENARIOS[positional[0]]
  if (positional.length !== 1 || !scenario) throw new UsageError(`unknown scenario ${JSON.stringify(positional[0] ?? '')}`)
  if (!options.url || !options.doc) throw new UsageError('--url and --doc are required')
  const clients = []
  const o = {
    url: options.url,
    docId: options.doc,
    token: options.token,
    token2: options.token2,
    text: options.text,
    expect: options.expect,
    seconds: options.seconds,
    expectCode: options['expect-code'] !== undefined ? Number(options['expect-code']) : undefined,
    name: options.name ?? TEXT,
    timeout: Number(options.timeout ?? 10000),
    auth: options.auth ?? 'query',
    client (token, name) {
      const c = new Client(o.url, o.docId, token, { name, auth: o.auth })
      clients.push(c)
      return c
    },
    /** A new client that syncs and then waits for `check`: what the server holds. */
    async fresh (token, check, what) {
      const c = o.client(token, `fresh client (${what})`)
      await c.synced(o.timeout)
      await c.until(what, o.timeout, check)
      return c
    }
  }
  if (!Number.isFinite(o.timeout) || o.timeout <= 0) throw new UsageError('--timeout must be a positive number of milliseconds')
  if (!['query', 'protocol'].includes(o.auth)) throw new UsageError('--auth must be query or protocol')
  try {
    const result = await scenario(o)
    return { scenario: positional[0], ok: true, ...result }
  } finally {
    for (const c of clients) c.destroy()
  }
}

const argValue = (name, fallback) => {
  const v = Number(process.argv.find((_, i, a) => a[i - 1] === name) ?? fallback)
  return Number.isFinite(v) ? v : fallback
}
run(main, { deadlineMs: 8 * argValue('--timeout', 10000) + 1000 * argValue('--seconds', 35) + 5000, usage: USAGE })
