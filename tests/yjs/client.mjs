// Stock Yjs clients for the interop scenarios, the trace replay and the document benchmark.
//
// Every client is the unmodified `WebsocketProvider` of the `y-websocket` package, run in Node
// with the `ws` package as its WebSocket and without the BroadcastChannel (otherwise clients in
// one process would sync with each other instead of through the server). Every wait here has a
// timeout: a script that uses these helpers fails with a reason instead of hanging.

import * as Y from 'yjs'
import { WebsocketProvider, messageAuth } from 'y-websocket'
import * as authProtocol from 'y-protocols/auth'
import WebSocket from 'ws'

export { Y }

// Each WebsocketProvider adds a process 'exit' listener; a replay runs a dozen of them.
process.setMaxListeners(0)

/** A failure the scripts report as their one-line reason. */
export class Failure extends Error {}

/**
 * Resolves when `check()` returns a truthy value, re-evaluated whenever one of `emitters` emits
 * one of its events; rejects with a `Failure` naming `what` after `timeoutMs`.
 *
 * @param {string} what
 * @param {number} timeoutMs
 * @param {() => any} check
 * @param {Array<[{on: Function, off: Function}, string]>} emitters
 */
export function waitFor (what, timeoutMs, check, emitters = []) {
  return new Promise((resolve, reject) => {
    let done = false
    const finish = (err, value) => {
      if (done) return
      done = true
      clearTimeout(timer)
      for (const [em, ev] of emitters) em.off(ev, onEvent)
      err ? reject(err) : resolve(value)
    }
    const onEvent = () => {
      let value
      try {
        value = check()
      } catch (err) {
        return finish(err)
      }
      if (value) finish(null, value)
    }
    const timer = setTimeout(
      () => finish(new Failure(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs
    )
    for (const [em, ev] of emitters) em.on(ev, onEvent)
    onEvent()
  })
}

/**
 * One stock y-websocket client on its own Y.Doc.
 *
 * Records what the scenarios assert on: every close code the server sent, the reasons of the
 * y-protocols auth "permission-denied" messages it received, and how many document updates came
 * from the server.
 */
export class Client {
  /**
   * @param {string} url e.g. ws://127.0.0.1:8080/api/v1/yjs
   * @param {string} docId appended to the url by the provider
   * @param {string | undefined} token sent as the `token` query parameter when given, or with
   *   `auth: 'protocol'` as the offered subprotocol `concord.bearer.<token>` (next to
   *   `concord.yjs.v1`, which the server must answer, as browsers require)
   * @param {{ connect?: boolean, name?: string, auth?: 'query' | 'protocol' }} [opts]
   */
  constructor (url, docId, token, { connect = true, name = 'client', auth = 'query' } = {}) {
    this.name = name
    this.doc = new Y.Doc()
    this.closeCodes = []
    this.permanentClose = null
    this.denied = []
    this.remoteUpdates = 0
    this.provider = new WebsocketProvider(url, docId, this.doc, {
      connect,
      params: token === undefined || auth === 'protocol' ? {} : { token },
      protocols: token === undefined || auth !== 'protocol' ? [] : ['concord.yjs.v1', `concord.bearer.${token}`],
      WebSocketPolyfill: WebSocket,
      disableBc: true
    })
    // The stock handler only logs the refusal; keep its reason for the scenarios instead.
    this.provider.messageHandlers[messageAuth] = (_encoder, decoder, provider) => {
      authProtocol.readAuthMessage(decoder, provider.doc, (_doc, reason) => {
        this.denied.push(reason)
        this.provider.emit('permission-denied', [reason])
      })
    }
    this.provider.on('connection-close', (event) => {
      // `event` is null when the client closed the socket itself.
      if (event) this.closeCodes.push(event.code)
    })
    this.provider.on('closed', (event) => {
      this.permanentClose = event
    })
    this.doc.on('update', (_update, origin) => {
      if (origin === this.provider) this.remoteUpdates++
    })
  }

  get awareness () {
    return this.provider.awareness
  }

  /** The current WebSocket, if any (for its `bufferedAmount`). */
  socket () {
    return this.provider.ws
  }

  /** Resolves once the server answered this connection's sync step 1. */
  synced (timeoutMs) {
    return waitFor(`${this.name} to sync`, timeoutMs, () => {
      if (this.permanentClose) {
        throw new Failure(
          `${this.name} was refused: close code ${this.permanentClose.code} ${this.permanentClose.reason}`.trim()
        )
      }
      return this.provider.synced
    }, [[this.provider, 'sync'], [this.provider, 'closed']])
  }

  /** Resolves once `check(this)` holds, re-checked on every document and awareness change. */
  until (what, timeoutMs, check) {
    return waitFor(`${this.name}: ${what}`, timeoutMs, () => check(this), [
      [this.doc, 'update'],
      [this.provider.awareness, 'change'],
      [this.provider, 'permission-denied'],
      [this.provider, 'status'],
      [this.provider, 'connection-close'],
      [this.provider, 'closed']
    ])
  }

  text (name = 'content') {
    return this.doc.getText(name)
  }

  destroy () {
    if (this.destroyed) return
    this.destroyed = true
    this.provider.destroy()
    this.doc.destroy()
  }
}

/**
 * A stock `@hocuspocus/provider` client, for the benchmark only: Hocuspocus speaks its own
 * variant of the protocol (every message starts with the document name, the token travels in a
 * first auth message, and the server acknowledges every update with a sync-status message), so
 * y-websocket's provider cannot talk to it.
 */
export class HocuspocusClient {
  static async load () {
    try {
      HocuspocusClient.Provider = (await import('@hocuspocus/provider')).HocuspocusProvider
    } catch (err) {
      throw new Failure(`@hocuspocus/provider is not installed (npm ci in tests/yjs installs it): ${err.message}`)
    }
  }

  constructor (url, docId, token, { name = 'client' } = {}) {
    if (!HocuspocusClient.Provider) throw new Failure('call HocuspocusClient.load() first')
    this.name = name
    this.doc = new Y.Doc()
    this.provider = new HocuspocusClient.Provider({
      url,
      name: docId,
      document: this.doc,
      token: token ?? null,
      WebSocketPolyfill: WebSocket
    })
  }

  socket () {
    return this.provider.configuration.websocketProvider.webSocket
  }

  synced (timeoutMs) {
    return waitFor(`${this.name} to sync`, timeoutMs, () => this.provider.synced, [[this.provider, 'synced']])
  }

  destroy () {
    if (this.destroyed) return
    this.destroyed = true
    this.provider.destroy()
    this.doc.destroy()
  }
}

/**
 * Parses `--name value` options and positional arguments.
 * Flags listed in `booleans` take no value.
 */
export function parseArgs (argv, booleans = []) {
  const positional = []
  const options = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('--')) {
      positional.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    if (eq > 0) {
      options[arg.slice(2, eq)] = arg.slice(eq + 1)
    } else if (booleans.includes(arg.slice(2))) {
      options[arg.slice(2)] = true
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`option ${arg} needs a value`)
      options[arg.slice(2)] = argv[++i]
    }
  }
  return { positional, options }
}

/**
 * Runs `main`, prints its result as one JSON line on stdout and exits 0; on failure prints one
 * line on stderr and exits 1 (2 for a usage error). A watchdog ends the process in any case
 * after `deadlineMs`.
 */
export function run (main, { deadlineMs, usage }) {
  const watchdog = setTimeout(() => {
    process.stderr.write(`failed: no result after ${deadlineMs} ms\n`)
    process.exit(1)
  }, deadlineMs)
  watchdog.unref()
  main().then(
    (result) => {
      process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
    },
    (err) => {
      if (err instanceof UsageError) {
        process.stderr.write(`usage error: ${err.message}\n${usage}\n`)
        process.exit(2)
      }
      const reason = err instanceof Failure ? err.message : (err && err.stack) || String(err)
      process.stderr.write(`failed: ${reason.split('\n').join(' | ')}\n`)
      process.exit(1)
    }
  )
}

/** A wrong command line. */
export class UsageError extends Error {}
