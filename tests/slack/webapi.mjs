// Drives Concord's Slack-compatible Web API with Slack's own WebClient (@slack/web-api),
// unchanged except for `slackApiUrl`. Every method round-trips, and each refusal comes back
// with Slack's error code. Usage: node webapi.mjs '<json config>'; prints one JSON line with
// what the Rust test checks on Concord's side.
//
// config: { api, token, narrowToken, revokedToken, rateToken, channel, otherChannel,
//           privateChannel, human, bot }
import assert from 'node:assert/strict';
import { WebClient, ErrorCode } from '@slack/web-api';

const cfg = JSON.parse(process.argv[2]);
const options = { slackApiUrl: cfg.api, retryConfig: { retries: 0 }, logLevel: 'error' };
const web = new WebClient(cfg.token, options);

async function refused(promise, code) {
  try {
    await promise;
  } catch (e) {
    assert.equal(e.code, ErrorCode.PlatformError, `expected a platform error, got ${e.code}: ${e.message}`);
    assert.equal(e.data.ok, false);
    assert.equal(e.data.error, code, `expected ${code}, got ${JSON.stringify(e.data)}`);
    return e.data;
  }
  assert.fail(`expected ${code}, the call succeeded`);
}

// auth.test
const me = await web.auth.test();
assert.equal(me.ok, true);
assert.equal(me.user_id, cfg.bot);
assert.equal(me.user, 'CI Bot');
assert.equal(me.team, 'Clinic');
assert.deepEqual(me.response_metadata.scopes, [
  'chat:write', 'channels:read', 'channels:history', 'channels:join', 'reactions:write', 'users:read',
]);

// chat.postMessage: mrkdwn text, blocks, a thread reply.
const first = await web.chat.postMessage({ channel: cfg.channel, text: 'Build <https://ci.example.org/7|#7> passed' });
assert.equal(first.channel, cfg.channel);
assert.match(first.ts, /^\d+\.\d{6,}$/);
assert.equal(first.message.text, 'Build [#7](https://ci.example.org/7) passed');
const withBlocks = await web.chat.postMessage({
  channel: cfg.channel,
  text: 'Deploy finished',
  blocks: [
    { type: 'header', text: { type: 'plain_text', text: 'Deploy' } },
    { type: 'section', text: { type: 'mrkdwn', text: 'v1.2 is live' } },
  ],
});
assert.equal(withBlocks.message.text, '**Deploy**\nv1.2 is live');
const reply = await web.chat.postMessage({ channel: cfg.channel, text: 'details in thread', thread_ts: first.ts });
assert.equal(reply.message.thread_ts, first.ts);

// conversations.history: newest first, paged by cursor one message at a time.
const seen = [];
for await (const page of web.paginate('conversations.history', { channel: cfg.channel, limit: 1 })) {
  assert.ok(page.messages.length <= 1);
  seen.push(...page.messages);
}
const tss = seen.map((m) => m.ts);
assert.deepEqual(tss.slice(0, 2), [withBlocks.ts, first.ts], `history order: ${JSON.stringify(tss)}`);
assert.ok(!tss.includes(reply.ts), 'replies stay out of history');
const root = seen.find((m) => m.ts === first.ts);
assert.equal(root.reply_count, 1);
assert.equal(root.bot_id, cfg.bot);
const bounded = await web.conversations.history({ channel: cfg.channel, latest: first.ts, inclusive: true, limit: 1 });
assert.deepEqual(bounded.messages.map((m) => m.ts), [first.ts]);

// conversations.replies
const thread = await web.conversations.replies({ channel: cfg.channel, ts: first.ts });
assert.deepEqual(thread.messages.map((m) => m.ts), [first.ts, reply.ts]);

// conversations.info / list / members
const info = await web.conversations.info({ channel: cfg.channel });
assert.equal(info.channel.id, cfg.channel);
assert.equal(info.channel.name, 'deploys');
assert.equal(info.channel.is_member, true);
await refused(web.conversations.info({ channel: cfg.privateChannel }), 'channel_not_found');
const listed = [];
for await (const page of web.paginate('conversations.list', { limit: 1 })) {
  listed.push(...page.channels.map((c) => c.id));
}
assert.ok(listed.includes(cfg.channel) && listed.includes(cfg.otherChannel), JSON.stringify(listed));
assert.ok(!listed.includes(cfg.privateChannel), 'a private channel the bot is not in stays hidden');
const members = await web.conversations.members({ channel: cfg.channel });
assert.ok(members.members.includes(cfg.bot) && members.members.includes(cfg.human));

// chat.update / reactions.add|remove / chat.delete
const updated = await web.chat.update({ channel: cfg.channel, ts: first.ts, text: 'Build #7 passed (edited)' });
assert.equal(updated.text, 'Build #7 passed (edited)');
await web.reactions.add({ channel: cfg.channel, timestamp: first.ts, name: 'thumbsup' });
await refused(web.reactions.add({ channel: cfg.channel, timestamp: first.ts, name: 'thumbsup' }), 'already_reacted');
const reacted = await web.conversations.history({ channel: cfg.channel, latest: first.ts, inclusive: true, limit: 1 });
assert.deepEqual(reacted.messages[0].reactions, [{ name: 'thumbsup', users: [cfg.bot], count: 1 }]);
assert.equal(reacted.messages[0].text, 'Build #7 passed (edited)');
await web.reactions.remove({ channel: cfg.channel, timestamp: first.ts, name: 'thumbsup' });
await refused(web.reactions.remove({ channel: cfg.channel, timestamp: first.ts, name: 'thumbsup' }), 'no_reaction');
await web.chat.delete({ channel: cfg.channel, ts: withBlocks.ts });
await refused(web.chat.update({ channel: cfg.channel, ts: '1.000999', text: 'x' }), 'message_not_found');

// users.info / users.list
const human = await web.users.info({ user: cfg.human });
assert.equal(human.user.real_name, 'Ann');
assert.equal(human.user.is_bot, false);
const people = [];
for await (const page of web.paginate('users.list', { limit: 2 })) {
  people.push(...page.members);
}
assert.ok(people.some((u) => u.id === cfg.bot && u.is_bot), JSON.stringify(people));
await refused(web.users.info({ user: '00000000-0000-7000-8000-00000000ffff' }), 'user_not_found');

// A channel the bot was not added to.
await refused(web.chat.postMessage({ channel: cfg.otherChannel, text: 'hi' }), 'not_in_channel');
await refused(web.conversations.history({ channel: cfg.otherChannel }), 'not_in_channel');
await web.conversations.join({ channel: cfg.otherChannel });
const joined = await web.chat.postMessage({ channel: cfg.otherChannel, text: 'joined and posting' });
await refused(web.conversations.join({ channel: cfg.privateChannel }), 'channel_not_found');
await refused(web.chat.postMessage({ channel: cfg.privateChannel, text: 'hi' }), 'channel_not_found');

// Bad arguments and payloads.
await refused(web.chat.postMessage({ channel: cfg.channel }), 'no_text');
await refused(web.chat.postMessage({ text: 'where to?' }), 'invalid_arguments');
await refused(web.chat.postMessage({ channel: cfg.channel, blocks: '[{"type": 1' }), 'invalid_arguments');
await refused(web.chat.postMessage({ channel: cfg.channel, blocks: [{ text: 'no type' }] }), 'invalid_blocks');
await refused(web.chat.postMessage({ channel: 'not-a-channel', text: 'x' }), 'channel_not_found');
await refused(web.apiCall('chat.unknownMethod', {}), 'unknown_method');
try {
  await web.chat.postMessage({ channel: cfg.channel, text: 'x'.repeat(300 * 1024) });
  assert.fail('an oversized body was accepted');
} catch (e) {
  assert.equal(e.code, ErrorCode.HTTPError, e.message);
  assert.equal(e.statusCode, 413);
  assert.equal(e.body.error, 'request_too_large');
}

// Scopes, revoked tokens, no token.
const narrow = new WebClient(cfg.narrowToken, options);
const missing = await refused(narrow.conversations.list(), 'missing_scope');
assert.equal(missing.needed, 'channels:read');
assert.equal(missing.provided, 'chat:write');
assert.deepEqual(missing.response_metadata.acceptedScopes, ['channels:read']);
assert.deepEqual(missing.response_metadata.scopes, ['chat:write']);
await narrow.chat.postMessage({ channel: cfg.channel, text: 'narrow but allowed' });
await refused(new WebClient(cfg.revokedToken, options).auth.test(), 'token_revoked');
await refused(new WebClient('xoxb-not-a-token', options).auth.test(), 'invalid_auth');
await refused(new WebClient(undefined, options).auth.test(), 'not_authed');

// Rate limits: 429 with Retry-After, which the client reports as its rate-limited error.
const hasty = new WebClient(cfg.rateToken, { ...options, rejectRateLimitedCalls: true });
let limited = null;
for (let i = 0; i < 150 && !limited; i++) {
  try {
    await hasty.auth.test();
  } catch (e) {
    limited = e;
  }
}
assert.ok(limited, 'never rate limited');
assert.equal(limited.code, ErrorCode.RateLimitedError, limited.message);
assert.ok(limited.retryAfter >= 1);

console.log(JSON.stringify({ first: first.ts, reply: reply.ts, deleted: withBlocks.ts, joined: joined.ts }));
