// Browser test: slash commands (see lib.mjs and server/tests/e2e/web_client.rs).
//
// The admin gives a bot `/deploy`, answered by a small HTTP endpoint here that checks Slack's
// signature, answers at once with an ephemeral message and then posts in the channel through
// the command's response URL. alice types `/dep`: the composer offers the command; she picks
// it, adds arguments and sends: the answer only she sees appears ("Only visible to you"), then
// the bot's message in the channel, which bob sees too, while bob never sees her ephemeral
// answer. An unknown command gets an inline error and is not posted; `//` sends the text as a
// message. Screenshot: bots-command.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { apiAs, assert, assertNoErrors, fixture, newUserPage, run, shot, signIn } from './lib.mjs';

const ws = fixture.workspace_id;
const general = fixture.channel_id;
const channelPath = `/w/${ws}/c/${general}`;

/** The bot's command URL: checks the signature, answers, then follows up through response_url. */
function endpoint(secret, seen) {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const ts = req.headers['x-slack-request-timestamp'];
      const expected = `v0=${createHmac('sha256', secret).update(`v0:${ts}:${raw}`).digest('hex')}`;
      const given = String(req.headers['x-slack-signature'] ?? '');
      const ok = given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
      if (!ok) {
        res.writeHead(401).end('bad signature');
        return;
      }
      const form = Object.fromEntries(new URLSearchParams(raw));
      seen.push(form);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ response_type: 'ephemeral', text: `Deploying *${form.text}* now` }));
      setTimeout(() => {
        fetch(form.response_url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ response_type: 'in_channel', text: `Deployed ${form.text}` }),
        }).catch(() => {});
      }, 200);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const composer = (page) => page.getByRole('combobox', { name: 'Message #general' });
const row = (page, text) => page.locator('article.msg', { has: page.locator('.msg-body', { hasText: text }) });

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

  const A = await newUserPage(browser);
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

  assertNoErrors(A, B);
  server.close();
});
