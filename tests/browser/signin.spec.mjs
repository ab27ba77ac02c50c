// Browser test: signing in and the application shell (see lib.mjs and server/tests/e2e/web_client.rs).
//
// The sign-in page and a wrong password; alice signs in and sees her workspace and #general; a
// reload keeps her signed in; Ctrl+K focuses search; she creates a channel; the phone-width
// drawer; the offline banner; the account page lists her sessions and revoking another one
// works; renaming herself changes the header, a password change with a wrong current password
// is refused; signing out returns to the sign-in page. Screenshots: signin, channel-shell, account.
import { apiAs, assert, assertNoErrors, fixture, newUserPage, PHONE, DESKTOP, run, shot, signIn, url } from './lib.mjs';

const alice = fixture.users.alice;
const ws = fixture.workspace_id;
const general = fixture.channel_id;

await run('signin', async (browser) => {
  const { context, page } = await newUserPage(browser, {
    // The wrong password (401), a taken channel name (409), a wrong current password (422) and going
    // offline fail requests on purpose: the browser logs them.
    allowConsoleErrors: [/status of 401/, /status of 409/, /status of 422/, /ERR_INTERNET_DISCONNECTED/, /WebSocket/],
  });

  // Signed out, any page leads to sign-in (and back there afterwards).
  await page.goto(`/w/${ws}/c/${general}`);
  await page.waitForURL((u) => u.pathname === '/login', { timeout: 15000 });
  await page.getByRole('heading', { name: 'Sign in to Concord' }).waitFor();
  await shot(page, 'signin');

  // A wrong password shows the error and keeps the form.
  await page.getByLabel('Email').fill(alice.email);
  await page.getByLabel('Password').fill('not the right password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  assert(/wrong email or password/i.test(await alert.innerText()), `error shown: ${await alert.innerText()}`);
  assert(new URL(page.url()).pathname === '/login', 'still on the sign-in page');

  // The right one signs in and returns to the page asked for: the workspace with #general.
  await page.getByLabel('Password').fill(alice.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/c/${general}`, { timeout: 15000 });
  const sidebar = page.getByRole('navigation', { name: 'Workspace' });
  await sidebar.getByRole('link', { name: /general/ }).waitFor();
  const wsName = await sidebar.locator('.switcher-name').innerText();
  assert(wsName.length > 0, 'the workspace switcher names the workspace');
  assert(
    (await sidebar.getByRole('link', { name: /general/ }).getAttribute('aria-current')) === 'page',
    '#general is the open channel',
  );

  // A reload keeps her signed in.
  await page.reload();
  await sidebar.getByRole('link', { name: /general/ }).waitFor();
  assert(new URL(page.url()).pathname === `/w/${ws}/c/${general}`, 'same channel after reload');
  await shot(page, 'channel-shell');

  // Ctrl+K focuses the search box; Enter searches.
  await page.keyboard.press('Control+K');
  assert(await page.evaluate(() => document.activeElement?.id === 'global-search'), 'Ctrl+K focuses search');
  await page.keyboard.type('hello');
  await page.keyboard.press('Enter');
  await page.waitForURL((u) => u.pathname === `/w/${ws}/search` && u.searchParams.get('q') === 'hello');
  await page.goBack();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/c/${general}`);

  // Create a channel: it opens and appears in the sidebar.
  await page.getByRole('button', { name: 'Create a channel' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create a channel' });
  await dialog.waitFor();
  const suffix = Date.now().toString(36);
  await dialog.getByLabel('Name').fill(`Release Planning ${suffix}`);
  await dialog.getByText(`#release-planning-${suffix}`).waitFor(); // the name as it will be created
  await dialog.getByRole('button', { name: 'Create channel' }).click();
  await sidebar.getByRole('link', { name: `release-planning-${suffix}` }).waitFor();
  await page.waitForURL((u) => /^\/w\/[^/]+\/c\/[^/]+$/.test(u.pathname) && !u.pathname.endsWith(general));
  assert(!(await dialog.isVisible()), 'the dialog closed');
  // A taken name is refused with the server's message.
  await page.getByRole('button', { name: 'Create a channel' }).click();
  await dialog.getByLabel('Name').fill('general');
  await dialog.getByRole('button', { name: 'Create channel' }).click();
  await dialog.getByRole('alert').waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });

  // Messages in a channel that is not open raise its badge live; opening it clears the badge.
  await apiAs('bob', 'POST', `/api/v1/channels/${general}/messages`, { text: 'Morning all', client_msg_id: `s-${suffix}-1` });
  await apiAs('bob', 'POST', `/api/v1/channels/${general}/messages`, { text: `@${alice.email} can you look?`, client_msg_id: `s-${suffix}-2` });
  const generalLink = sidebar.getByRole('link', { name: /general/ });
  await generalLink.locator('.badge').waitFor({ timeout: 10000 });
  await page.waitForFunction(() => document.querySelector('a.nav-item.unread .badge')?.textContent === '1');
  assert(/1 mention/.test(await generalLink.innerText()), `the badge reads as a mention: ${await generalLink.innerText()}`);
  assert((await page.title()).startsWith('(1) '), `the tab's title counts the mention: ${await page.title()}`);
  await generalLink.click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/c/${general}`);
  await generalLink.locator('.badge').waitFor({ state: 'detached' });

  // Browse and join a public channel someone else created.
  await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/channels`, { name: `announcements-${suffix}`, topic: 'News for everyone' });
  await page.getByRole('button', { name: 'Browse channels' }).click();
  const browse = page.getByRole('dialog', { name: 'Browse channels' });
  await browse.getByLabel('Filter channels').fill(`announcements-${suffix}`);
  await browse.getByText('News for everyone').waitFor();
  await browse.getByRole('button', { name: `Join #announcements-${suffix}` }).click();
  await sidebar.getByRole('link', { name: `announcements-${suffix}` }).waitFor();
  await browse.waitFor({ state: 'hidden' });

  // A direct conversation with bob, picked from the workspace's people.
  await page.getByRole('button', { name: 'New direct message' }).click();
  const dm = page.getByRole('dialog', { name: 'New message' });
  await dm.getByLabel('Find people').fill('bob');
  await dm.getByRole('checkbox', { name: /Bob Baker/ }).check();
  await dm.getByRole('button', { name: 'Start conversation' }).click();
  await sidebar.getByRole('link', { name: /Bob Baker/ }).waitFor();
  assert((await sidebar.getByRole('link', { name: /Bob Baker/ }).getAttribute('aria-current')) === 'page', 'the conversation is open');

  // Phone width: the sidebar is a drawer behind the menu button.
  await page.setViewportSize(PHONE);
  await sidebar.waitFor({ state: 'hidden' });
  const menu = page.getByRole('button', { name: 'Channels and workspaces' });
  await menu.click();
  await sidebar.waitFor({ state: 'visible' });
  assert((await menu.getAttribute('aria-expanded')) === 'true', 'the menu button says the drawer is open');
  await sidebar.getByRole('link', { name: /general/ }).click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/c/${general}`);
  await sidebar.waitFor({ state: 'hidden' });
  await page.setViewportSize(DESKTOP);

  // Offline: the banner says so, and goes away once back online.
  await context.setOffline(true);
  await page.getByText(/Reconnecting…/).waitFor({ timeout: 10000 });
  await context.setOffline(false);
  await page.getByText(/Reconnecting…/).waitFor({ state: 'hidden', timeout: 20000 });

  // Another session of alice's (another device), then the account page lists both.
  const other = await fetch(`${url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'Concord test device' },
    body: JSON.stringify({ email: alice.email, password: alice.password }),
  }).then((r) => r.json());
  assert(other.session_id, 'a second session');
  await page.getByRole('link', { name: /Your account/ }).click();
  await page.waitForURL((u) => u.pathname === '/account');
  await page.getByRole('heading', { name: 'Where you are signed in' }).waitFor();
  const row = page.locator(`li[data-session-id="${other.session_id}"]`);
  await row.waitFor();
  await page.getByText('This device', { exact: true }).waitFor();
  assert((await page.locator('li.session').count()) >= 2, 'both sessions listed');
  await shot(page, 'account');

  // Alice renames herself: the header follows. A wrong current password is refused.
  await page.getByLabel('Display name').fill('Alice Archer-Lee');
  await page.getByRole('button', { name: 'Save name' }).click();
  await page.getByRole('link', { name: /Your account \(Alice Archer-Lee\)/ }).waitFor();
  await page.getByLabel('Current password').fill('not her password at all');
  await page.getByLabel('New password', { exact: true }).fill('a new long passphrase');
  await page.getByLabel('New password again').fill('a new long passphrase');
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('the current password is not correct').waitFor();

  // Revoking the other session removes it, and its token stops working.
  await row.getByRole('button', { name: /^Sign out/ }).click();
  await row.waitFor({ state: 'detached' });
  const refused = await fetch(`${url}/api/v1/users/me`, { headers: { authorization: `Bearer ${other.access_token}` } });
  assert(refused.status === 401, `revoked session refused (got ${refused.status})`);

  // Signing out returns to the sign-in page, and the app stays signed out after a reload.
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await page.waitForURL((u) => u.pathname === '/login');
  await page.getByRole('heading', { name: 'Sign in to Concord' }).waitFor();
  await page.goto(`/w/${ws}`);
  await page.waitForURL((u) => u.pathname === '/login');
  assert(await page.evaluate(() => localStorage.getItem('concord.tokens') === null), 'tokens forgotten');

  // The admin invites by link; a newcomer opens it, creates an account and lands in the workspace.
  const admin = await newUserPage(browser);
  await signIn(admin.page, 'admin');
  await admin.page.getByRole('button', { name: 'Invite people' }).click();
  const invite = admin.page.getByRole('dialog', { name: /Invite people/ });
  await invite.getByRole('button', { name: 'Create invitation link' }).click();
  const link = await invite.getByLabel('Invitation link').inputValue();
  assert(/\/invite\/[^/]+$/.test(link), `an invitation link: ${link}`);
  await shot(admin.page, 'invite');
  const newcomer = await newUserPage(browser, { viewport: PHONE });
  await newcomer.page.goto(new URL(link).pathname);
  await newcomer.page.getByRole('heading', { name: /Join / }).waitFor();
  await newcomer.page.getByLabel('Your name').fill('Cara Cole');
  await newcomer.page.getByLabel('Email').fill(`cara-${suffix}@example.org`);
  await newcomer.page.getByLabel('Choose a password').fill('a long enough passphrase');
  await newcomer.page.getByRole('button', { name: 'Create account and join' }).click();
  await newcomer.page.waitForURL((u) => u.pathname.startsWith(`/w/${ws}`), { timeout: 15000 });
  await newcomer.page.getByRole('link', { name: /Your account \(Cara Cole\)/ }).waitFor();

  assertNoErrors(page, admin.page, newcomer.page);
});
