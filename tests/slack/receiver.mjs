// A bot's request URL for Concord's events: an HTTP server that checks every request's
// signature with Slack's own Bolt (`verifySlackRequest`, what Bolt's receivers run on each
// request), answers `url_verification` challenges, and prints one JSON line per request.
//
// Usage: node receiver.mjs '<json config>'   config: { signingSecret }
// Prints {"listening": <port>} first, then for every request:
//   { verified, error?, tamperedRefused?, staleRefused?, headers: {timestamp, signature,
//     retryNum, retryReason}, raw, body, answered }
// Reads commands from stdin, one JSON object a line:
//   {"mode": "ok" | "fail" | "hang" | "wrong_challenge"}  how to answer from now on
//   {"secret": "..."}                                      the signing secret to check with
import http from 'node:http';
import readline from 'node:readline';
import { verifySlackRequest, isValidSlackRequest } from '@slack/bolt';

const cfg = JSON.parse(process.argv[2] || '{}');
let secret = cfg.signingSecret || '';
let mode = 'ok';

const print = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.mode) mode = cmd.mode;
  if (cmd.secret !== undefined) secret = cmd.secret;
  print({ ack: cmd });
});

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    const headers = {
      'x-slack-signature': req.headers['x-slack-signature'],
      'x-slack-request-timestamp': Number(req.headers['x-slack-request-timestamp']),
    };
    const seen = {
      method: req.method,
      headers: {
        timestamp: req.headers['x-slack-request-timestamp'] ?? null,
        signature: req.headers['x-slack-signature'] ?? null,
        retryNum: req.headers['x-slack-retry-num'] ?? null,
        retryReason: req.headers['x-slack-retry-reason'] ?? null,
        contentType: req.headers['content-type'] ?? null,
      },
      raw,
    };
    try {
      verifySlackRequest({ signingSecret: secret, body: raw, headers });
      seen.verified = true;
      // The same request tampered with, or replayed six minutes later, is refused.
      seen.tamperedRefused = !isValidSlackRequest({ signingSecret: secret, body: `${raw} `, headers });
      seen.staleRefused = !isValidSlackRequest({
        signingSecret: secret, body: raw, headers, nowMilliseconds: Date.now() + 6 * 60 * 1000,
      });
    } catch (e) {
      seen.verified = false;
      seen.error = e.message;
    }
    try {
      seen.body = JSON.parse(raw);
    } catch {
      seen.body = null;
    }
    const answer = (status, body) => {
      seen.answered = status;
      print(seen);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(body);
    };
    if (!seen.verified) return answer(401, '{"error":"invalid signature"}');
    if (mode === 'hang') {
      seen.answered = 0;
      print(seen);
      return undefined; // never answers
    }
    if (mode === 'fail') return answer(500, '{"error":"down"}');
    if (seen.body && seen.body.type === 'url_verification') {
      const challenge = mode === 'wrong_challenge' ? 'not-the-challenge' : seen.body.challenge;
      return answer(200, JSON.stringify({ challenge }));
    }
    return answer(200, '');
  });
});

server.listen(0, '127.0.0.1', () => print({ listening: server.address().port }));
