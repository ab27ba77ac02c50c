// Browser test: the admin area. The system administrator sees the Admin link; lists the accounts,
// is refused a too-short password (the server's message shown) and creates an account, then
// deactivates it with a reason and reactivates it; sees the workspace's roles with their
// permissions, defines a custom role (after the server refuses a malformed name) and edits it; reads the effective policy with its sources, has a bad TOML override refused
// with its line and key shown, then saves a good one; starts a data-key rotation; lists alice's
// sessions and signs one out. Screenshots: admin-people, admin-roles, admin-policy, admin-keys.
import { apiAs, assert, assertNoErrors, fixture, newUserPage, run, shot, signIn } from './lib.mjs';

const T = 15000;
const alice = fixture.users.alice;

await run('admin', async (browser) => {
  const { page } = await newUserPage(browser, { allowConsoleErrors: [/status of 422/] });
  page.on('response', (r) => {
    if (r.status() >= 400 && r.status() !== 422) console.log(`note: ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  await signIn(page, 'admin');

  const areas = page.getByRole('navigation', { name: 'Administration' });
  await areas.getByRole('link', { name: 'Admin' }).click();
  await page.waitForURL((u) => u.pathname === '/admin/people', { timeout: T });
  await page.getByRole('heading', { name: 'Administration', level: 1 }).waitFor({ timeout: T });
  const sections = page.getByRole('navigation', { name: 'Administration sections' });

  // ── People ───────────────────────────────────────────────────────────────────────────────
  const accounts = page.getByRole('table', { name: 'Accounts' });
  await accounts.getByRole('row').filter({ hasText: alice.email }).waitFor({ timeout: T });
  const create = page.getByRole('form', { name: 'Create an account' });
  await create.getByLabel('Email').fill('dana@example.org');
  await create.getByLabel('Display name').fill('Dana Delgado');
  await create.getByLabel('Initial password').fill('short');
  await create.getByRole('button', { name: 'Create account' }).click();
  const tooShort = create.getByRole('alert');
  await tooShort.waitFor({ timeout: T });
  assert(/12 characters/.test((await tooShort.textContent()) ?? ''), `the server's password rule is shown: ${await tooShort.textContent()}`);
  await create.getByLabel('Initial password').fill('a long enough password');
  await create.getByLabel('System role').selectOption('compliance_officer');
  await create.getByRole('button', { name: 'Create account' }).click();
  const dana = accounts.getByRole('row').filter({ hasText: 'dana@example.org' });
  await dana.waitFor({ timeout: T });
  assert(
    (await dana.getByLabel('System role of Dana Delgado').inputValue()) === 'compliance_officer',
    'the new account holds the role it was given',
  );
  // Dana is deactivated, with a reason, then reactivated.
  await dana.getByRole('button', { name: 'Deactivate Dana Delgado' }).click();
  const confirm = page.getByRole('form', { name: 'Deactivate Dana Delgado' });
  await confirm.getByLabel(/Reason/).fill('contract ended');
  await confirm.getByRole('button', { name: 'Confirm: deactivate Dana Delgado' }).click();
  await page.getByRole('status').filter({ hasText: /Dana Delgado's account was deactivated/ }).waitFor({ timeout: T });
  await dana.getByText('disabled', { exact: true }).waitFor({ timeout: T });
  const audited = await apiAs('admin', 'GET', '/api/v1/audit/events?action=user.deactivated');
  assert(audited.events.some((e) => e.details?.reason === 'contract ended'), 'the deactivation is audited with its reason');
  await dana.getByRole('button', { name: 'Reactivate Dana Delgado' }).click();
  await dana.getByText('active', { exact: true }).waitFor({ timeout: T });
  // Workspace roles: bob becomes an admin of the workspace.
  const members = page.getByRole('table', { name: 'Members and their roles' });
  await members.getByLabel('Role of Bob Baker').selectOption('admin');
  await page.getByRole('status').filter({ hasText: 'Bob Baker is now admin.' }).waitFor({ timeout: T });
  await shot(page, 'admin-people');

  // ── Roles ────────────────────────────────────────────────────────────────────────────────
  await sections.getByRole('link', { name: 'Roles' }).click();
  await page.waitForURL((u) => u.pathname === '/admin/roles', { timeout: T });
  const roles = page.getByRole('table', { name: 'Workspace roles' });
  const member = roles.getByRole('row').filter({ has: page.getByText('member', { exact: true }) });
  await member.waitFor({ timeout: T });
  const perms = await member.getByRole('list', { name: 'Permissions of member' }).getByRole('listitem').allTextContents();
  assert(perms.includes('messages.post') || perms.length > 3, `the member role lists its permissions: ${perms.join(', ')}`);
  await page.getByRole('table', { name: 'System roles' }).getByText('compliance_officer').waitFor({ timeout: T });

  const define = page.getByRole('form', { name: 'Define a custom role' });
  await define.getByLabel('Role name').fill('Case Reviewer');
  await define.getByRole('group', { name: 'Permissions' }).getByLabel(perms[0], { exact: true }).check();
  await define.getByRole('button', { name: 'Define role' }).click();
  const badName = define.getByRole('alert');
  await badName.waitFor({ timeout: T });
  assert(/a-z/.test((await badName.textContent()) ?? ''), `the server's naming rule is shown: ${await badName.textContent()}`);
  await define.getByLabel('Role name').fill('case_reviewer');
  await define.getByLabel('Description').fill('Reads the workspace for case reviews');
  await define.getByRole('button', { name: 'Define role' }).click();
  const custom = roles.getByRole('row').filter({ hasText: 'case_reviewer' });
  await custom.getByText('custom').waitFor({ timeout: T });
  // The custom role is edited: one more permission, a new description.
  await custom.getByRole('button', { name: 'Edit case_reviewer' }).click();
  const edit = page.getByRole('form', { name: 'Edit the role case_reviewer' });
  await edit.getByLabel('Description').fill('Reviews cases and reads members');
  await edit.getByRole('group', { name: 'Permissions' }).getByLabel(perms[1], { exact: true }).check();
  await edit.getByRole('button', { name: 'Save role' }).click();
  await page.getByRole('status').filter({ hasText: 'The role case_reviewer was changed.' }).waitFor({ timeout: T });
  const granted = await custom.getByRole('list', { name: 'Permissions of case_reviewer' }).getByRole('listitem').allTextContents();
  assert(granted.includes(perms[0]) && granted.includes(perms[1]), `the edited role grants both: ${granted.join(', ')}`);
  await custom.getByText('Reviews cases and reads members').waitFor({ timeout: T });
  await shot(page, 'admin-roles');

  // ── Policies ─────────────────────────────────────────────────────────────────────────────
  await sections.getByRole('link', { name: 'Policies' }).click();
  await page.waitForURL((u) => u.pathname === '/admin/policies', { timeout: T });
  const effective = page.getByRole('table', { name: 'Effective policy' });
  const messagesDays = effective.getByRole('row').filter({ has: page.getByText('retention.messages_days', { exact: true }) });
  await messagesDays.waitFor({ timeout: T });
  assert(!((await messagesDays.textContent()) ?? '').includes('workspace override'), 'the modules decide at first');

  const override = page.getByLabel('Override (TOML)');
  await override.fill('[retention]\n\nmessages_days = -30\n');
  await page.getByRole('button', { name: 'Save override' }).click();
  const invalid = page.getByRole('form', { name: 'Workspace override' }).getByRole('alert');
  await invalid.waitFor({ timeout: T });
  const why = (await invalid.textContent()) ?? '';
  assert(why.includes('override:3') && why.includes('retention.messages_days'), `the line and key are shown: ${why}`);
  assert((await override.getAttribute('aria-invalid')) === 'true', 'the editor is marked invalid');

  await override.fill('[retention]\nmessages_days = 365\n');
  await page.getByRole('button', { name: 'Save override' }).click();
  await messagesDays.getByText('workspace override').waitFor({ timeout: T });
  await messagesDays.getByText('365', { exact: true }).waitFor({ timeout: T });
  await page.getByRole('status').filter({ hasText: /override was saved/ }).waitFor({ timeout: T });
  await shot(page, 'admin-policy');

  // ── Keys ─────────────────────────────────────────────────────────────────────────────────
  await sections.getByRole('link', { name: 'Keys' }).click();
  await page.waitForURL((u) => u.pathname === '/admin/keys', { timeout: T });
  await page.getByText('Key-encryption key', { exact: true }).waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Start a data-key rotation' }).click();
  await page.getByRole('button', { name: 'Confirm: rotate the data keys' }).click();
  await page.getByRole('status').filter({ hasText: /rotation was started/ }).waitFor({ timeout: T });
  await page.getByRole('table', { name: 'Rotations' }).getByRole('row').nth(1).waitFor({ timeout: T });
  await shot(page, 'admin-keys');

  // ── Sessions ─────────────────────────────────────────────────────────────────────────────
  await apiAs('alice', 'GET', '/api/v1/users/me'); // a session of alice's own
  await sections.getByRole('link', { name: 'Sessions' }).click();
  await page.waitForURL((u) => u.pathname === '/admin/sessions', { timeout: T });
  await page.locator('#sessions-person option', { hasText: 'Alice Archer' }).waitFor({ state: 'attached', timeout: T });
  await page.getByLabel('Person').selectOption({ label: `Alice Archer (${alice.email})` });
  const sessions = page.getByRole('table', { name: 'Sessions of Alice Archer' });
  await sessions.getByRole('row').nth(1).waitFor({ timeout: T });
  const before = await sessions.getByRole('row').count();
  await sessions.getByRole('button', { name: /^Sign out/ }).first().click();
  await page.getByRole('status').filter({ hasText: 'The session was signed out.' }).waitFor({ timeout: T });
  const left = await apiAs('admin', 'GET', `/api/v1/users/${alice.id}/sessions`);
  assert(left.length === before - 2, `one of alice's sessions was revoked (${before - 1} before, ${left.length} after)`);

  assertNoErrors(page);
});
