// Browser test: slash commands and Block Kit messages (see lib.mjs and
// server/tests/e2e/web_client.rs).
//
// The admin gives a bot `/deploy`, answered by a small HTTP endpoint here that checks Slack's
// signature, answers at once with an ephemeral message and then posts in the channel through
// the command's response URL. alice types `/dep`: the composer offers the command; she picks
// it, adds arguments and sends: the answer only she sees appears ("Only visible to you", laid
// out as its blocks, whose button is disabled), then the bot's message in the channel, which
// bob sees too, while bob never sees her ephemeral answer. An unknown command gets an inline
// error and is not posted; `//` sends the text as a message. Screenshot: bots-command.
//
// Then the bot posts a Block Kit message through the Web API (chat.postMessage with its bot
// token): a header, a section with fields, a context line, a divider, and a primary button, a
// danger button and a select. alice sees the layout instead of the text fallback; choosing in
// the select and clicking the buttons reach the bot's interactivity URL (a second small
// endpoint here) as Slack's `block_actions`. The bot's endpoint fails for "Reject": the
// server's refusal is shown next to the buttons; "Approve" clears it, and the bot replaces the
// message through the response URL with "Approved", which alice and bob see. A block this
// client does not know shows its text; a message none of whose blocks can be shown shows its
// text. Screenshot: bots-blocks.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { apiAs, assert, assertNoErrors, fixture, newUserPage, run, shot, signIn, url } from './lib.mjs';

const ws = fixture.workspace_id;
const general = fixture.channel_id;
const channelPath = `/w/${ws}/c/${general}`;

/** Whether a request to the bot carries Slack's signature of `raw` under `secret`. */
function signed(req, raw, secret) {
  const ts = req.headers['x-slack-request-timestamp'];
  const expected = `v0=${createHmac('sha256', secret).update(`v0:${ts}:${raw}`).digest('hex')}`;
  const given = String(req.headers['x-slack-signature'] ?? '');
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

/** An HTTP server on 127.0.0.1 handing each request's body to `handle`. */
function listen(handle) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** The bot's command URL: checks the signature, answers, then follows up through response_url. */
function endpoint(secret, seen) {
  return listen((req, res, raw) => {
    if (!signed(req, raw, secret)) {
      res.writeHead(401).end('bad signature');
      return;
    }
    const form = Object.fromEntries(new URLSearchParams(raw));
    seen.push(form);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        response_type: 'ephemeral',
        text: `Deploying *${form.text}* now`,
        blocks: [
          { type: 'section', text: { type: 'mrkdwn', text: `Deploying *${form.text}* now` } },
          { type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Cancel deploy' }, value: form.text }] },
        ],
      }),
    );
    setTimeout(() => {
      fetch(form.response_url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ response_type: 'in_channel', text: `Deployed ${form.text}` }),
      }).catch(() => {});
    }, 200);
  });
}

/**
 * The bot's interactivity URL: records each signed `block_actions` payload; fails "reject";
 * answers "approve" by replacing the message through its response URL.
 */
function interactivity(secret, seen) {
  return listen((req, res, raw) => {
    if (!signed(req, raw, secret)) {
      res.writeHead(401).end('bad signature');
      return;
    }
    const payload = JSON.parse(new URLSearchParams(raw).get('payload') ?? 'null');
    seen.push(payload);
    const action = payload?.actions?.[0];
    if (action?.action_id === 'reject') {
      res.writeHead(500).end('the bot broke');
      return;
    }
    res.writeHead(200).end();
    if (action?.action_id === 'approve') {
      setTimeout(() => {
        fetch(payload.response_url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ replace_original: true, text: 'Approved' }),
        }).catch(() => {});
      }, 100);
    }
  });
}

/** Posts as the bot through Slack's Web API; answers Slack's body (`ok` checked). */
async function postAsBot(token, body) {
  const r = await fetch(`${url}/api/slack/chat.postMessage`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
    body: JSON.stringify(body),
  });
  const answer = await r.json();
  assert(answer.ok === true, `chat.postMessage: ${JSON.stringify(answer)}`);
  return answer;
}

const RELEASE = [
  { type: 'header', text: { type: 'plain_text', text: 'Release 2.4 is ready' } },
  {
    type: 'section',
    text: { type: 'mrkdwn', text: 'Ship *billing* to production?' },
    fields: [
      { type: 'mrkdwn', text: '*Version*\nv2.4.0' },
      { type: 'mrkdwn', text: '*Requested by*\nCI' },
    ],
  },
  { type: 'context', elements: [{ type: 'mrkdwn', text: 'Built in 4 minutes from `main`' }] },
  { type: 'divider' },
  {
    type: 'actions',
    block_id: 'decide',
    elements: [
      { type: 'button', action_id: 'approve', style: 'primary', value: 'v2.4.0', text: { type: 'plain_text', text: 'Approve' } },
      { type: 'button', action_id: 'reject', style: 'danger', value: 'v2.4.0', text: { type: 'plain_text', text: 'Reject' } },
      {
        type: 'static_select',
        action_id: 'target',
        placeholder: { type: 'plain_text', text: 'Choose an environment' },
        options: [
          { text: { type: 'plain_text', text: 'Staging' }, value: 'staging' },
          { text: { type: 'plain_text', text: 'Production' }, value: 'production' },
        ],
      },
    ],
  },
];

const composer = (page) => page.getByRole('combobox', { name: 'Message #general' });
const row = (page, text) => page.locator('article.msg', { has: page.locator('.msg-body', { hasText: text }) });
/** A message showing `text` anywhere (blocks show plain text outside a Markdown body). */
const anyRow = (page, text) => page.locator('article.msg', { hasText: text });

async function openChannel(page) {
  await page.goto(channelPath);
  await composer(page).waitFor({ timeout: 15000 });
  await page.locator('.channel-loading').waitFor({ state: 'detached', timeout: 15000 });
}

await run('bots', async (browser) => {
  const bot = await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/bots`, { name: 'Deploy Bot' });
  await apiAs('admin', 'POST', `/api/v1/channels/${general}/members`, { user_id: bot.id });
  const { signing_secret: secret } = await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/bots/${bot.id}/signing-secret`, {});
  const seen = [];
  const server = await endpoint(secret, seen);
  const commandUrl = `http://127.0.0.1:${server.address().port}/commands`;
  await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/bots/${bot.id}/commands`, {
    command: '/deploy',
    url: commandUrl,
    description: 'Deploy a service',
    usage_hint: '[service]',
  });

  // The bot's failure to answer "Reject" is a 502 of the actions call.
  const A = await newUserPage(browser, { allowConsoleErrors: [/status of 502/] });
  const B = await newUserPage(browser);
  await signIn(A.page, 'alice');
  await signIn(B.page, 'bob');
  await openChannel(A.page);
  await openChannel(B.page);

  // Typing `/dep` offers the command; Tab picks it.
  const box = composer(A.page);
  await box.click();
  await box.pressSequentially('/dep');
  const offer = A.page.getByRole('listbox', { name: 'Commands' });
  await offer.getByRole('option', { name: /\/deploy/ }).waitFor({ timeout: 10000 });
  await box.press('Tab');
  assert((await box.inputValue()) === '/deploy ', `picked: ${await box.inputValue()}`);
  await box.pressSequentially('billing');
  await box.press('Enter');

  // The answer only alice sees, then the bot's post that everyone sees.
  const mine = A.page.locator('.ephemeral', { hasText: 'Deploying' });
  await mine.waitFor({ timeout: 10000 });
  assert((await mine.innerText()).includes('Only visible to you'), 'the ephemeral answer is labelled');
  assert((await mine.locator('strong', { hasText: 'billing' }).count()) === 1, 'mrkdwn bold is rendered');
  // Its blocks are laid out, and their buttons can be pressed.
  const cancel = mine.getByRole('button', { name: 'Cancel deploy' });
  assert(!(await cancel.isDisabled()), 'a private answer’s button can be pressed');
  assert((await mine.innerText()).split('Deploying').length === 2, 'the text is not shown besides the blocks');
  await row(A.page, 'Deployed billing').waitFor({ timeout: 10000 });
  await row(B.page, 'Deployed billing').waitFor({ timeout: 10000 });
  assert((await B.page.locator('.ephemeral').count()) === 0, 'bob does not see alice’s ephemeral answer');
  assert(seen.length === 1 && seen[0].command === '/deploy' && seen[0].text === 'billing', JSON.stringify(seen));
  assert(seen[0].user_id === fixture.users.alice.id, 'the command names who typed it');
  assert((await box.inputValue()) === '', 'the composer is cleared');
  await shot(A.page, 'bots-command');

  // Dismissing the answer removes it.
  await mine.getByRole('button', { name: 'Dismiss' }).click();
  await mine.waitFor({ state: 'detached', timeout: 5000 });

  // An unknown command is not posted; `//` posts the text with one slash.
  await box.fill('/nope now');
  await box.press('Enter');
  await A.page.getByRole('alert').filter({ hasText: '/nope is not a command here' }).waitFor({ timeout: 5000 });
  assert((await row(B.page, 'nope now').count()) === 0, 'an unknown command is not posted');
  await box.fill('//etc/hosts is a file');
  await box.press('Enter');
  await row(B.page, '/etc/hosts is a file').waitFor({ timeout: 10000 });

  // Block Kit: the bot posts a layout with buttons and a select.
  const { token } = await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/bots/${bot.id}/tokens`, { scopes: ['chat:write'] });
  const actions = [];
  const actionServer = await interactivity(secret, actions);
  await apiAs('admin', 'PUT', `/api/v1/workspaces/${ws}/bots/${bot.id}/interactivity`, {
    url: `http://127.0.0.1:${actionServer.address().port}/slack/actions`,
  });
  await postAsBot(token, { channel: general, text: 'Release fallback', blocks: RELEASE });
  const release = A.page.locator('article.msg', { has: A.page.locator('.blocks', { hasText: 'Release 2.4 is ready' }) });
  await release.getByRole('heading', { name: 'Release 2.4 is ready' }).waitFor({ timeout: 10000 });
  const shown = await release.innerText();
  assert(shown.split('Release 2.4 is ready').length === 2, `the header is shown once, not again as text: ${shown}`);
  assert(!shown.includes('Release fallback'), 'the text fallback is not shown');
  assert((await release.locator('.msg-main > .msg-body').count()) === 0, 'the blocks replace the message body');
  assert((await release.locator('.blk-section strong', { hasText: 'billing' }).count()) === 1, 'mrkdwn in a section is rendered');
  assert((await release.locator('.blk-fields strong', { hasText: 'Version' }).count()) === 1, 'fields are rendered');
  assert(shown.includes('v2.4.0') && shown.includes('Requested by'), 'both fields are shown');
  assert((await release.locator('.blk-context code', { hasText: 'main' }).count()) === 1, 'the context line is rendered');
  assert((await release.locator('.blk-divider hr').count()) === 1, 'the divider is rendered');
  const approve = release.getByRole('button', { name: 'Approve' });
  const reject = release.getByRole('button', { name: 'Reject' });
  await approve.waitFor();
  assert(/\bprimary\b/.test((await approve.getAttribute('class')) ?? ''), 'Approve is the primary button');
  assert(/\bdanger\b/.test((await reject.getAttribute('class')) ?? ''), 'Reject is the danger button');
  const select = release.getByRole('combobox', { name: 'Choose an environment' });
  const options = await select.locator('option').allInnerTexts();
  assert(JSON.stringify(options) === JSON.stringify(['Choose an environment', 'Staging', 'Production']), `options: ${options}`);
  await row(B.page, 'v2.4.0').waitFor({ timeout: 10000 });
  await shot(A.page, 'bots-blocks');

  // A choice in the select reaches the bot.
  await select.selectOption('staging');
  for (let i = 0; i < 100 && actions.length < 1; i++) await A.page.waitForTimeout(100);
  assert(actions.length === 1, 'the choice reached the bot');
  const choice = actions[0];
  assert(choice.type === 'block_actions', `payload: ${JSON.stringify(choice)}`);
  assert(choice.user?.id === fixture.users.alice.id, 'the payload names who chose');
  assert(choice.actions[0].block_id === 'decide' && choice.actions[0].action_id === 'target', JSON.stringify(choice.actions));
  assert(choice.actions[0].selected_option?.value === 'staging', JSON.stringify(choice.actions));
  await release.locator('.blk-select[aria-disabled="false"]').waitFor({ timeout: 5000 });

  // The bot fails "Reject": the server's message is shown next to the buttons, and the
  // controls work again.
  await reject.click();
  const refusal = release.locator('.blk-error');
  await refusal.waitFor({ timeout: 10000 });
  assert((await refusal.getAttribute('role')) === 'alert', 'the refusal is announced');
  assert((await refusal.innerText()).trim().length > 0, 'the refusal says why');
  assert(actions.length === 2 && actions[1].actions[0].value === 'v2.4.0', JSON.stringify(actions[1]));
  await release.locator('.blk-button[aria-disabled="false"]', { hasText: 'Approve' }).waitFor({ timeout: 5000 });

  // "Approve": the refusal goes, and the bot replaces the message for everyone.
  await approve.focus();
  await A.page.keyboard.press('Enter');
  await row(A.page, 'Approved').waitFor({ timeout: 10000 });
  await row(B.page, 'Approved').waitFor({ timeout: 10000 });
  assert(actions.length === 3 && actions[2].actions[0].action_id === 'approve', JSON.stringify(actions[2]));
  assert((await A.page.getByRole('button', { name: 'Approve' }).count()) === 0, 'the buttons went with the blocks');
  assert((await A.page.locator('.blk-error').count()) === 0, 'the refusal is gone');

  // A block this client does not know shows its text; with nothing to show, the text is shown.
  await postAsBot(token, {
    channel: general,
    text: 'Widget fallback',
    blocks: [{ type: 'future_widget', title: { type: 'plain_text', text: 'Widget says hi' } }],
  });
  const widget = anyRow(A.page, 'Widget says hi');
  await widget.waitFor({ timeout: 10000 });
  assert(!(await widget.innerText()).includes('Widget fallback'), 'the unknown block’s text replaces the fallback');
  await postAsBot(token, { channel: general, text: 'Nothing to draw here', blocks: [{ type: 'mystery', size: 3 }] });
  await row(A.page, 'Nothing to draw here').waitFor({ timeout: 10000 });

  assertNoErrors(A, B);
  server.close();
  actionServer.close();
});
