// Posts through Concord's incoming webhooks with Slack's own client (@slack/webhook),
// unchanged. Usage: node webhook.mjs <webhook url> <revoked webhook url>; exits non-zero on
// the first failed check.
import assert from 'node:assert/strict';
import { IncomingWebhook, ErrorCode } from '@slack/webhook';

const [url, revokedUrl] = process.argv.slice(2);
const hook = new IncomingWebhook(url);

async function refused(promise, status, body) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.code, ErrorCode.HTTPError, `${e.code}: ${e.message}`);
    assert.equal(e.original.response.status, status, e.message);
    assert.equal(e.original.response.data, body);
    return;
  }
  assert.fail(`expected ${status} ${body}, the post succeeded`);
}

assert.deepEqual(await hook.send('Deploy <https://ci.example.org/deploys/9|#9> started'), { text: 'ok' });
assert.deepEqual(
  await hook.send({
    text: 'fallback only',
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: 'Ticket 42' } },
      { type: 'section', fields: [{ type: 'mrkdwn', text: '*Status* open' }] },
    ],
    attachments: [{ color: '#36a64f', title: 'Owner', text: 'Ann', fields: [{ title: 'Priority', value: 'high', short: true }] }],
  }),
  { text: 'ok' },
);
await refused(hook.send({}), 400, 'no_text');
await refused(hook.send({ blocks: 'not blocks' }), 400, 'invalid_payload');
await refused(hook.send({ blocks: [{ text: 'no type' }] }), 400, 'invalid_blocks');
await refused(hook.send({ text: 'x'.repeat(300 * 1024) }), 413, 'request_too_large');
await refused(new IncomingWebhook(revokedUrl).send('hello?'), 404, 'no_service');
await refused(new IncomingWebhook(`${url}x`).send('hello?'), 404, 'no_service');
console.log(JSON.stringify({ ok: true }));
