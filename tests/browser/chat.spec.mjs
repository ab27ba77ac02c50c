// Browser test: the channel view (see lib.mjs and server/tests/e2e/web_client.rs).
//
// alice and bob, each in a browser of their own, open #general: a post arrives live; bob edits
// his message and alice sees the edit; alice reacts and bob sees it; bob replies in a thread
// and alice sees the count and the reply; mentions autocomplete; typing is shown; alice shares
// an image and bob sees its preview; files dropped on the channel or pasted are shared, and a
// deleted one leaves the other's view live; a reload keeps everything; bob goes offline and
// writes while alice writes twice: back online, both see every message once, in order; hostile
// Markdown renders inert; pins and deletes reach the other side; a permalink scrolls to and
// highlights its message; a long history stays virtualised, pages back to its beginning, and a
// permalink deep in it returns to the latest. Screenshots: chat-channel, chat-thread.
import { deflateSync } from 'node:zlib';
import { apiAs, assert, assertNoErrors, fixture, newUserPage, run, shot, signIn } from './lib.mjs';

const ws = fixture.workspace_id;
const general = fixture.channel_id;
const channelPath = `/w/${ws}/c/${general}`;
const stamp = Date.now().toString(36);

/** A small real PNG (a colour gradient), so the server can make a thumbnail. */
function png(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    for (let x = 0; x < width; x++) {
      raw[row + 1 + x * 3] = (x * 255) / width;
      raw[row + 2 + x * 3] = (y * 255) / height;
      raw[row + 3 + x * 3] = 160;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

async function openChannel(page) {
  await page.goto(channelPath);
  await composer(page).waitFor({ timeout: 15000 });
  await page.locator('.channel-loading').waitFor({ state: 'detached', timeout: 15000 });
}

const composer = (page) => page.getByRole('combobox', { name: 'Message #general' });

async function say(page, text) {
  const box = composer(page);
  await box.click();
  await box.fill(text);
  await box.press('Enter');
}

/** The message row (article) whose body contains `text`. */
const row = (page, text) => page.locator('article.msg', { has: page.locator('.msg-body', { hasText: text }) });

async function action(page, text, name) {
  const r = row(page, text).first();
  await r.hover();
  // From the keyboard, as a keyboard user does: a row drawn over the toolbar while the list
  // settles cannot swallow it.
  const button = r.getByRole('button', { name });
  await button.focus();
  await button.press('Enter');
}

async function bodies(page) {
  return page.locator('.msg-scroller .msg-body').allInnerTexts();
}

function countOf(list, text) {
  return list.filter((t) => t.includes(text)).length;
}

await run('chat', async (browser) => {
  const allow = [/ERR_INTERNET_DISCONNECTED/, /WebSocket/, /net::ERR_/];
  const A = await newUserPage(browser, { allowConsoleErrors: allow });
  const B = await newUserPage(browser, { allowConsoleErrors: allow });
  const alice = await signIn(A.page, 'alice');
  const bob = await signIn(B.page, 'bob');
  await openChannel(A.page);
  await openChannel(B.page);

  // alice posts; bob sees it live.
  const hello = `Hello from alice ${stamp}`;
  await say(A.page, hello);
  await row(B.page, hello).waitFor({ timeout: 10000 });
  // bob connected after alice: the server's greeting already told him she is online.
  await row(B.page, hello).locator('.presence-dot.online').first().waitFor({ timeout: 10000 });
  await row(A.page, hello).locator('.pending-state').waitFor({ state: 'detached', timeout: 10000 });

  // bob posts and edits his message; alice sees the edit and the marker; the history lists the first text.
  const draft = `Bob's first draft ${stamp}`;
  const edited = `Bob's edited text ${stamp}`;
  await say(B.page, draft);
  await row(A.page, draft).waitFor({ timeout: 10000 });
  await row(B.page, draft).locator('.pending-state').waitFor({ state: 'detached', timeout: 10000 });
  await action(B.page, draft, 'Edit message');
  const editBox = B.page.getByRole('textbox', { name: 'Edit message' });
  await editBox.fill(edited);
  await editBox.press('Enter');
  await row(A.page, edited).waitFor({ timeout: 10000 });
  await row(A.page, edited).getByRole('button', { name: '(edited)' }).click();
  const history = A.page.getByRole('dialog', { name: 'Edit history' });
  await history.getByText(draft).waitFor({ timeout: 10000 });
  await history.getByRole('button', { name: 'Close' }).click();
  assert((await row(A.page, draft).count()) === 0, 'the old text is gone from the channel');

  // alice reacts; bob sees the reaction.
  await action(A.page, edited, 'Add reaction');
  await A.page.getByRole('button', { name: 'React with 👍' }).click();
  await row(B.page, edited).getByRole('button', { name: /^👍 1/ }).waitFor({ timeout: 10000 });
  assert(
    (await row(A.page, edited).getByRole('button', { name: /^👍 1/ }).getAttribute('aria-pressed')) === 'true',
    'alice sees her own reaction pressed',
  );

  // bob replies in a thread on alice's message; alice sees the count, then the reply in the panel.
  const reply = `A reply in the thread ${stamp}`;
  await action(B.page, hello, 'Reply in thread');
  const bobThread = B.page.getByRole('complementary', { name: 'Thread' });
  await bobThread.getByRole('combobox', { name: 'Reply in thread' }).fill(reply);
  await bobThread.getByRole('combobox', { name: 'Reply in thread' }).press('Enter');
  await bobThread.locator('.msg-body', { hasText: reply }).waitFor({ timeout: 10000 });
  await row(A.page, hello).getByRole('button', { name: /1 reply/ }).click();
  const aliceThread = A.page.getByRole('complementary', { name: 'Thread' });
  await aliceThread.locator('.msg-body', { hasText: reply }).waitFor({ timeout: 10000 });
  await aliceThread.locator('article.msg', { hasText: reply }).locator('.pending-state').waitFor({ state: 'detached' });
  await shot(A.page, 'chat-thread');
  await aliceThread.getByRole('button', { name: 'Close thread' }).click();
  assert((await countOf(await bodies(A.page), reply)) === 0, 'replies stay out of the channel list');

  // Mentions: "@" then a few letters offers bob; the post shows a pill that is highlighted for bob.
  const box = composer(A.page);
  await box.click();
  await box.fill('');
  await box.pressSequentially(`Ping @${bob.display_name.slice(0, 2)}`);
  const option = A.page.getByRole('option', { name: new RegExp(bob.display_name) });
  await option.waitFor({ timeout: 5000 });
  await box.press('Enter');
  assert((await box.inputValue()).includes(`@${bob.display_name} `), 'the mention is inserted by name');
  await box.pressSequentially(`about ${stamp}`);
  await box.press('Enter');
  await row(B.page, `about ${stamp}`).locator('.mention.mention-me', { hasText: `@${bob.display_name}` }).waitFor({ timeout: 10000 });

  // Up arrow in the empty composer edits her last message, mentions written by name; Esc cancels.
  await box.press('ArrowUp');
  const aliceEdit = A.page.getByRole('textbox', { name: 'Edit message' });
  await aliceEdit.waitFor({ timeout: 5000 });
  assert((await aliceEdit.inputValue()) === `Ping @${bob.display_name} about ${stamp}`, `edit text: ${await aliceEdit.inputValue()}`);
  await aliceEdit.press('Escape');
  await aliceEdit.waitFor({ state: 'detached' });

  // Typing: bob types, alice sees it (the server passes one notice per person and channel every 2 s).
  await B.page.waitForTimeout(2100);
  await composer(B.page).click();
  await composer(B.page).pressSequentially('typing');
  await A.page.getByText(`${bob.display_name} is typing…`).waitFor({ timeout: 10000 });
  await composer(B.page).fill('');

  // alice shares an image with the attach button; bob sees its preview.
  await A.page.locator('.channel-main input[type=file]').setInputFiles({
    name: `gradient-${stamp}.png`,
    mimeType: 'image/png',
    buffer: png(96, 64),
  });
  const preview = B.page.getByRole('img', { name: `Preview of gradient-${stamp}.png` });
  await preview.waitFor({ timeout: 20000 });
  await B.page.waitForFunction(
    (alt) => [...document.querySelectorAll('img')].some((i) => i.alt === alt && i.complete && i.naturalWidth > 0),
    `Preview of gradient-${stamp}.png`,
  );
  await A.page.getByRole('img', { name: `Preview of gradient-${stamp}.png` }).waitFor({ timeout: 20000 });
  await shot(A.page, 'chat-channel');

  // bob drops a file onto the channel; alice pastes one into her composer: both arrive as cards.
  await B.page.evaluate((name) => {
    const dt = new DataTransfer();
    dt.items.add(new File(['notes for the team'], name, { type: 'text/plain' }));
    const target = document.querySelector('.channel-view');
    target.dispatchEvent(new DragEvent('dragenter', { bubbles: true, cancelable: true, dataTransfer: dt }));
    target.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: dt }));
  }, `notes-${stamp}.txt`);
  await A.page.locator('.file-card', { hasText: `notes-${stamp}.txt` }).getByRole('button', { name: 'Download' }).waitFor({ timeout: 20000 });
  await A.page.evaluate((name) => {
    const dt = new DataTransfer();
    dt.items.add(new File(['pasted words'], name, { type: 'text/plain' }));
    const box = document.querySelector('.channel-main .composer textarea');
    box.dispatchEvent(new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: dt }));
  }, `pasted-${stamp}.txt`);
  await B.page.locator('.file-card', { hasText: `pasted-${stamp}.txt` }).waitFor({ timeout: 20000 });

  // alice deletes the pasted file: its card leaves bob's channel at once, without a reload.
  const shared = await apiAs('alice', 'GET', `/api/v1/channels/${general}/files`);
  const pasted = shared.find((f) => f.name === `pasted-${stamp}.txt`);
  assert(pasted, 'the pasted file is listed');
  await apiAs('alice', 'DELETE', `/api/v1/files/${pasted.id}`);
  await B.page
    .locator('.file-card', { hasText: `pasted-${stamp}.txt` })
    .waitFor({ state: 'detached', timeout: 10000 });

  // A reload keeps everything.
  await B.page.reload();
  await openChannel(B.page);
  await row(B.page, hello).getByRole('button', { name: /1 reply/ }).waitFor({ timeout: 10000 });
  await row(B.page, edited).getByRole('button', { name: /^👍 1/ }).waitFor();
  await row(B.page, edited).getByRole('button', { name: '(edited)' }).waitFor();
  await B.page.getByRole('img', { name: `Preview of gradient-${stamp}.png` }).waitFor({ timeout: 20000 });

  // bob goes offline and writes; alice writes twice meanwhile; back online nothing is lost or doubled.
  const a1 = `alice while bob is away one ${stamp}`;
  const a2 = `alice while bob is away two ${stamp}`;
  const b1 = `bob wrote this offline ${stamp}`;
  await B.context.setOffline(true);
  await B.page.waitForFunction(() => navigator.onLine === false);
  await say(A.page, a1);
  await say(A.page, a2);
  await row(A.page, a2).locator('.pending-state').waitFor({ state: 'detached', timeout: 10000 });
  await say(B.page, b1);
  await row(B.page, b1).getByText('Waiting for connection…').waitFor({ timeout: 5000 });
  const queued = await B.page.evaluate(() => localStorage.getItem('concord.outbox') ?? '');
  assert(queued.includes('bob wrote this offline'), 'the offline post is kept in localStorage');
  await B.context.setOffline(false);
  await row(B.page, a2).waitFor({ timeout: 20000 });
  await row(A.page, b1).waitFor({ timeout: 20000 });
  await row(B.page, b1).locator('.pending-state').waitFor({ state: 'detached', timeout: 10000 });
  await A.page.waitForTimeout(500);
  for (const [who, page] of [['alice', A.page], ['bob', B.page]]) {
    const list = await bodies(page);
    for (const t of [a1, a2, b1]) assert(countOf(list, t) === 1, `${who} sees "${t}" exactly once`);
    const order = [a1, a2, b1].map((t) => list.findIndex((x) => x.includes(t)));
    assert(order[0] < order[1] && order[1] < order[2], `${who} sees them in order: ${order}`);
  }
  // And once more after a reload, from the server's history.
  await B.page.reload();
  await openChannel(B.page);
  await row(B.page, b1).waitFor({ timeout: 10000 });
  assert(countOf(await bodies(B.page), b1) === 1, 'once after a reload too');

  // Hostile Markdown renders inert.
  const evil =
    `xss ${stamp} <script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2"> ` +
    `[click me](javascript:window.__pwned=3) <a href="javascript:window.__pwned=4">raw link</a> ` +
    `<iframe src="javascript:window.__pwned=5"></iframe> [fine](https://example.org/)`;
  await say(A.page, evil);
  for (const page of [A.page, B.page]) {
    const r = row(page, `xss ${stamp}`);
    await r.waitFor({ timeout: 10000 });
    const body = r.locator('.msg-body');
    assert((await body.locator('script, img, iframe, [onerror]').count()) === 0, 'no script, image, frame or handler');
    assert((await body.locator('a[href^="javascript" i]').count()) === 0, 'no javascript: link');
    const links = await body.locator('a[href]').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.target, a.rel]));
    assert(links.length === 1 && links[0][0] === 'https://example.org/', `only the safe link is a link: ${JSON.stringify(links)}`);
    assert(links[0][1] === '_blank' && /noopener/.test(links[0][2]) && /noreferrer/.test(links[0][2]), 'safe links open apart');
    assert((await body.innerText()).includes('<script>'), 'raw HTML shows as text');
    await body.getByText('click me').click();
    await body.getByText('raw link').click();
    assert((await page.evaluate(() => window.__pwned)) === undefined, 'no script ran');
  }

  // alice pins a message: bob sees the mark, and the pinned list holds it.
  await action(A.page, hello, 'Pin message');
  await row(B.page, hello).locator('.pin-flag').waitFor({ timeout: 10000 });
  await B.page.getByRole('button', { name: 'Pinned', exact: true }).click();
  const pinned = B.page.getByRole('complementary', { name: 'Pinned messages' });
  await pinned.getByText(hello).waitFor({ timeout: 10000 });
  await pinned.getByRole('button', { name: 'Close pinned messages' }).click();

  // bob deletes his offline message (after confirming); alice sees the tombstone.
  const b1Id = await row(B.page, b1).getAttribute('data-message-id');
  await action(B.page, b1, 'Delete message');
  await B.page.getByRole('dialog', { name: 'Delete message' }).getByRole('button', { name: 'Delete' }).click();
  await A.page
    .locator(`article.msg[data-message-id="${b1Id}"]`, { hasText: 'This message was deleted.' })
    .waitFor({ timeout: 10000 });

  // A permalink opens the channel around the message and highlights it.
  const helloId = await row(A.page, hello).getAttribute('data-message-id');
  assert(helloId, 'the message has an id');
  await B.page.goto(`${channelPath}/m/${helloId}`);
  await B.page.locator(`article.msg.highlight[data-message-id="${helloId}"]`).waitFor({ timeout: 15000 });
  assert(await B.page.locator(`article.msg.highlight[data-message-id="${helloId}"]`).isVisible(), 'visible and highlighted');

  // A long history: only the rows near the viewport are in the page, and scrolling up pages
  // back through the history to its first message.
  const N = 600;
  const long = await apiAs('alice', 'POST', `/api/v1/workspaces/${ws}/channels`, { name: `long-${stamp}` });
  let next = 0;
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      while (next < N) {
        const i = next++;
        await apiAs('alice', 'POST', `/api/v1/channels/${long.id}/messages`, {
          text: `Long history ${i + 1}${i % 5 === 0 ? '\n\nwith a second paragraph' : ''}`,
          client_msg_id: `long-${stamp}-${i}`,
        });
      }
    }),
  );
  await A.page.goto(`/w/${ws}/c/${long.id}`);
  await A.page.locator('.msg-body', { hasText: /^\s*Long history 600\s*$/ }).waitFor({ timeout: 15000 });
  const rendered = await A.page.locator('article.msg').count();
  assert(rendered > 5 && rendered < 80, `virtualised: ${rendered} rows in the page`);
  const scroller = A.page.locator('.msg-scroller');
  const first = A.page.locator('.msg-body', { hasText: /^\s*Long history 1\b/ });
  for (let i = 0; i < 120 && !(await first.isVisible()); i++) {
    await scroller.hover();
    await A.page.mouse.wheel(0, -2500);
    await A.page.waitForTimeout(100);
  }
  await first.waitFor({ timeout: 10000 });
  await A.page.getByText(/This is the very beginning of/).waitFor();
  assert((await A.page.locator('article.msg').count()) < 80, 'still virtualised at the top');

  // A permalink deep in that history, then "Jump to latest" returns to the newest message.
  const early = (await apiAs('alice', 'GET', `/api/v1/channels/${long.id}/messages?after=0&limit=200`)).find(
    (m) => m.text === 'Long history 100',
  );
  assert(early, 'message 100 is in the first page');
  await A.page.goto(`/w/${ws}/c/${long.id}/m/${early.id}`);
  await A.page.locator(`article.msg.highlight[data-message-id="${early.id}"]`).waitFor({ timeout: 15000 });
  await A.page.getByRole('button', { name: /Jump to latest/ }).click();
  await A.page.waitForURL((u) => u.pathname === `/w/${ws}/c/${long.id}`);
  await A.page.locator('.msg-body', { hasText: /^\s*Long history 600\s*$/ }).waitFor({ timeout: 15000 });

  assert((await A.page.evaluate(() => window.__pwned)) === undefined, 'no script ran for alice');
  assertNoErrors(A.page, B.page);
  void alice;
});
