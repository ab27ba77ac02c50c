#!/usr/bin/env node
// The stock @hocuspocus/server with its SQLite store, as the document benchmark runs it.
//
//   node tests/yjs/hocuspocus-server.mjs --port PORT --database PATH
//
// Prints "hocuspocus listening on PORT" once it accepts connections; stops on SIGTERM.
// Hocuspocus stores the whole document state (debounced: 2 s after the last change, at most
// every 10 s), not every update.

import { Server } from '@hocuspocus/server'
import { SQLite } from '@hocuspocus/extension-sqlite'

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : undefined
}
const port = Number(arg('port'))
const database = arg('database')
if (!Number.isInteger(port) || port <= 0 || !database) {
  process.stderr.write('usage: node hocuspocus-server.mjs --port PORT --database PATH\n')
  process.exit(2)
}

const server = new Server({
  port,
  address: '127.0.0.1',
  quiet: true,
  extensions: [new SQLite({ database })]
})
await server.listen()
process.stdout.write(`hocuspocus listening on ${port}\n`)
