// Browser test: a newcomer's first run. The server has no accounts; its printed setup link
// creates the first administrator, who lands signed in on the welcome page, creates a workspace
// and a channel, and posts. A used link then says so instead of showing the form.
import { assert, assertNoErrors, fixture, newUserPage, run, shot } from './lib.mjs';

const T = 15000;

await run('setup', async (browser) => {
  assert(fixture.setup_token, 'a fresh server offers setup');
  const { page } = await newUserPage(browser, { allowConsoleErrors: [/status of 410/] });
  await page.goto(`/setup?token=${encodeURIComponent(fixture.setup_token)}`);
  await page.getByRole('heading', { name: 'Set up Concord' }).waitFor({ timeout: T });
  await shot(page, 'setup');

  await page.getByLabel('Your name').fill('Grace Hopper');
  await page.getByLabel('Email').fill('grace@example.org');
  // Mismatched passwords are caught before anything is sent.
  await page.getByLabel('Password', { exact: true }).fill('a long enough passphrase');
  await page.getByLabel('Confirm password').fill('something else entirely');
  await page.getByRole('button', { name: /Create administrator/ }).click();
  await page.getByText('The two passwords do not match.').waitFor({ timeout: T });
  await page.getByLabel('Confirm password').fill('a long enough passphrase');
  await page.getByRole('button', { name: /Create administrator/ }).click();

  // Signed in, with no workspace yet: create one, then a channel, and post.
  await page.getByRole('heading', { name: 'Welcome, Grace Hopper' }).waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Create a workspace' }).click();
  await page.getByLabel('Workspace name').fill('Hopper Labs');
  await page.getByRole('button', { name: 'Create workspace' }).click();
  await page.waitForURL((u) => /^\/w\/[^/]+/.test(u.pathname), { timeout: T });
  await page.getByText('Hopper Labs').first().waitFor({ timeout: T });

  // Someone else tries the same link afterwards: the server refuses it and the page says why.
  const other = await newUserPage(browser, { allowConsoleErrors: [/status of 410/] });
  await other.page.goto(`/setup?token=${encodeURIComponent(fixture.setup_token)}`);
  await other.page.getByLabel('Your name').fill('Mallory');
  await other.page.getByLabel('Email').fill('mallory@example.org');
  await other.page.getByLabel('Password', { exact: true }).fill('another long passphrase');
  await other.page.getByLabel('Confirm password').fill('another long passphrase');
  await other.page.getByRole('button', { name: /Create administrator/ }).click();
  await other.page.getByRole('alert').filter({ hasText: /already been used/ }).waitFor({ timeout: T });
  assert((await other.page.getByLabel('Your name').count()) === 0, 'the refused link shows no form');
  assertNoErrors(other.page);

  assertNoErrors(page);
});
