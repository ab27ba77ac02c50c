// Browser test: the compliance area. A compliance officer (created and invited here) sees the
// Compliance link; searches the audit log for alice's sign-ins and downloads an export; places a
// legal hold (after the server refuses a range that ends before it starts) and releases it; sees an
// overdue data-subject request highlighted with its deadline, records a new one and completes it;
// records a breach (after the server refuses a discovery in the future) and builds its report.
// A plain member sees no Compliance link and is turned away from the page.
// Screenshots: compliance-audit, compliance-holds, compliance-requests, compliance-breaches.
import { apiAs, assert, assertNoErrors, fixture, newUserPage, run, shot, signIn } from './lib.mjs';

const ws = fixture.workspace_id;
const T = 15000;
const alice = fixture.users.alice;
const bob = fixture.users.bob;

/** A compliance officer who is a member of the team's workspace. */
async function officer() {
  const user = {
    email: 'cora@example.org',
    password: 'correct horse battery staple',
    display_name: 'Cora Compliance',
  };
  const created = await apiAs('admin', 'POST', '/api/v1/users', { ...user, system_role: 'compliance_officer' });
  user.id = created.id;
  const invitation = await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/invitations`, { role: 'member' });
  await apiAs(user, 'POST', `/api/v1/invitations/${invitation.token}/accept`, {});
  return user;
}

await run('compliance', async (browser) => {
  const cora = await officer();
  // A request received 40 days ago: past the default 30-day deadline.
  const old = new Date(Date.now() - 40 * 86400_000).toISOString();
  await apiAs(cora, 'POST', '/api/v1/data-subject-requests', {
    subject_id: alice.id,
    kind: 'access',
    note: 'asked by letter for a copy of everything',
    received_at: old,
  });

  const { page } = await newUserPage(browser, { allowConsoleErrors: [/status of 422/] });
  page.on('response', (r) => {
    if (r.status() >= 400 && r.status() !== 422) console.log(`note: ${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  await signIn(page, cora);

  // The header offers the compliance area, not the admin one.
  const areas = page.getByRole('navigation', { name: 'Administration' });
  await areas.getByRole('link', { name: 'Compliance' }).waitFor({ timeout: T });
  assert((await areas.getByRole('link', { name: 'Admin' }).count()) === 0, 'no Admin link for a compliance officer');
  await areas.getByRole('link', { name: 'Compliance' }).click();
  await page.waitForURL((u) => u.pathname === '/compliance/audit', { timeout: T });
  await page.getByRole('heading', { name: 'Compliance', level: 1 }).waitFor({ timeout: T });

  // ── Audit: alice's sign-ins ───────────────────────────────────────────────────────────────
  const sections = page.getByRole('navigation', { name: 'Compliance sections' });
  assert(
    (await sections.getByRole('link', { name: 'Audit' }).getAttribute('aria-current')) === 'page',
    'the Audit section is current',
  );
  await page.getByLabel('Action', { exact: true }).fill('auth.sign_in');
  // The people load in the background: wait until alice can be picked.
  await page.locator('#audit-actor option', { hasText: 'Alice Archer' }).waitFor({ state: 'attached', timeout: T });
  await page.getByLabel('Actor').selectOption({ label: `Alice Archer (${alice.email})` });
  const table = page.getByRole('table', { name: 'Audit entries' });
  let rows = 0;
  for (let i = 0; i < 10 && rows === 0; i++) {
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    rows = await table
      .locator('tbody tr')
      .first()
      .waitFor({ timeout: 2000 })
      .then(() => table.locator('tbody tr').count())
      .catch(() => 0);
  }
  assert(rows > 0, 'alice’s sign-ins are listed');
  const actions = await table.locator('tbody tr td:nth-child(2)').allTextContents();
  assert(actions.every((a) => a === 'auth.sign_in'), `only sign-ins are listed: ${actions.join(', ')}`);
  const actors = await table.locator('tbody tr td:nth-child(3)').allTextContents();
  assert(actors.every((a) => a === 'Alice Archer'), `only alice's entries: ${actors.join(', ')}`);
  await page.getByRole('status').filter({ hasText: /entr(y|ies) shown for auth\.sign_in/ }).waitFor({ timeout: T });
  await shot(page, 'compliance-audit');

  // The export downloads as a file named by the server.
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: T }),
    page.getByRole('button', { name: 'Download export' }).click(),
  ]);
  assert(download.suggestedFilename() === 'audit-export.jsonl', `export file name: ${download.suggestedFilename()}`);
  await page.getByRole('status').filter({ hasText: 'The export was downloaded.' }).waitFor({ timeout: T });

  // The live chain: not verified yet since the server started; "Verify now" checks it.
  const chain = page.getByRole('group', { name: 'Chain status' });
  await chain.getByText('Not verified since the server started.').waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Verify now' }).click();
  await page.getByRole('status').filter({ hasText: 'The audit log verified.' }).waitFor({ timeout: T });
  await chain.getByText('Verified', { exact: true }).waitFor({ timeout: T });
  const checked = (await chain.textContent()) ?? '';
  assert(/\d+ entries up to #\d+/.test(checked), `the counts are shown: ${checked}`);
  assert(checked.includes('Cora'), `who verified is shown: ${checked}`);

  // ── Holds ─────────────────────────────────────────────────────────────────────────────────
  await sections.getByRole('link', { name: 'Holds' }).click();
  await page.waitForURL((u) => u.pathname === '/compliance/holds', { timeout: T });
  await page.getByText('No legal holds in this workspace.').waitFor({ timeout: T });
  const form = page.getByRole('form', { name: 'Place a legal hold' });
  await form.getByLabel('Hold name').fill('Smith v. Acme');
  await form.getByLabel('Reason').fill('litigation expected; keep the messages of spring');
  await form.getByRole('group', { name: 'Custodians' }).getByLabel('Alice Archer').check();
  await form.getByRole('group', { name: 'Channels' }).getByLabel('#general').check();
  // A range that ends before it starts: the server's message is shown.
  await form.getByLabel('Posted from (first day)').fill('2026-05-10');
  await form.getByLabel('Posted until (last day)').fill('2026-05-01');
  await form.getByRole('button', { name: 'Place hold' }).click();
  const holdError = form.getByRole('alert');
  await holdError.waitFor({ timeout: T });
  const holdMessage = (await holdError.textContent()) ?? '';
  assert(/before|after|end|start|range/i.test(holdMessage), `the server explains the range: ${holdMessage}`);

  await form.getByLabel('Posted until (last day)').fill('2026-06-30');
  await form.getByRole('button', { name: 'Place hold' }).click();
  const holds = page.getByRole('table', { name: 'Legal holds' });
  const holdRow = holds.getByRole('row').filter({ hasText: 'Smith v. Acme' });
  await holdRow.waitFor({ timeout: T });
  await holdRow.getByText('Active').waitFor({ timeout: T });
  const holdText = (await holdRow.textContent()) ?? '';
  assert(holdText.includes('Alice Archer') && holdText.includes('#general'), `the hold names its custodian and channel: ${holdText}`);
  await shot(page, 'compliance-holds');

  await holdRow.getByRole('button', { name: 'Release Smith v. Acme' }).click();
  await holdRow.getByRole('button', { name: 'Confirm release of Smith v. Acme' }).click();
  await holdRow.getByText('Released').waitFor({ timeout: T });
  await page.getByRole('status').filter({ hasText: 'was released' }).waitFor({ timeout: T });
  const apiHolds = await apiAs(cora, 'GET', `/api/v1/workspaces/${ws}/legal-holds`);
  assert(apiHolds.holds.length === 1 && apiHolds.holds[0].active === false, 'the server has the hold released');

  // ── Data-subject requests ─────────────────────────────────────────────────────────────────
  await sections.getByRole('link', { name: 'Data-subject requests' }).click();
  await page.waitForURL((u) => u.pathname === '/compliance/requests', { timeout: T });
  const requests = page.getByRole('table', { name: 'Data-subject requests' });
  const overdue = requests.getByRole('row').filter({ hasText: 'Alice Archer' });
  await overdue.waitFor({ timeout: T });
  await overdue.getByText(/\d+ days? overdue/).waitFor({ timeout: T });
  assert((await overdue.getAttribute('class'))?.includes('is-overdue'), 'the overdue request is highlighted');

  const record = page.getByRole('form', { name: 'Record a request' });
  await page.locator('#dsr-subject option', { hasText: 'Bob Baker' }).waitFor({ state: 'attached', timeout: T });
  await record.getByLabel('Person').selectOption({ label: `Bob Baker (${bob.email})` });
  await record.getByLabel('Kind').selectOption('erasure');
  await record.getByLabel('What was asked').fill('asked by email to be forgotten');
  await record.getByRole('button', { name: 'Record request' }).click();
  await page.getByRole('status').filter({ hasText: /recorded; it is due/ }).waitFor({ timeout: T });
  const fresh = requests.getByRole('row').filter({ hasText: 'Bob Baker' });
  await fresh.getByText(/^(30|29) days left$/).waitFor({ timeout: T });
  assert(!((await fresh.getAttribute('class')) ?? '').includes('is-overdue'), 'a new request is not overdue');
  await shot(page, 'compliance-requests');

  await fresh.getByRole('button', { name: "Complete Bob Baker's erasure request" }).click();
  const answer = page.getByRole('form', { name: /Complete the request: Bob Baker/ });
  await answer.getByLabel('What was done (optional)').fill('account erased on request');
  await answer.getByRole('button', { name: 'Complete request' }).click();
  await fresh.getByText('completed').waitFor({ timeout: T });

  // ── Breaches ──────────────────────────────────────────────────────────────────────────────
  await sections.getByRole('link', { name: 'Breaches' }).click();
  await page.waitForURL((u) => u.pathname === '/compliance/breaches', { timeout: T });
  await page.getByText('No breaches recorded.').waitFor({ timeout: T });
  const breach = page.getByRole('form', { name: 'Record a breach' });
  await breach.getByLabel('Title').fill('Stolen laptop with a signed-in session');
  await breach.getByLabel(/What happened/).fill('A laptop was stolen from a car; the browser was signed in.');
  await breach.getByRole('group', { name: 'Accounts involved' }).getByLabel('Alice Archer').check();
  // Discovered in the future: refused by the server, its message shown.
  await breach.getByLabel('Discovered (empty: now)').fill('2099-01-01T10:00');
  await breach.getByRole('button', { name: 'Record breach' }).click();
  const breachError = breach.getByRole('alert');
  await breachError.waitFor({ timeout: T });
  assert(/future/i.test((await breachError.textContent()) ?? ''), `the server explains the time: ${await breachError.textContent()}`);
  await breach.getByLabel('Discovered (empty: now)').fill('');
  await breach.getByRole('button', { name: 'Record breach' }).click();
  const register = page.getByRole('table', { name: 'Breaches' });
  const breachRow = register.getByRole('row').filter({ hasText: 'Stolen laptop' });
  await breachRow.getByText(/^(72|71) h left$/).waitFor({ timeout: T });
  await page.getByRole('status').filter({ hasText: /supervisory authority is due/ }).waitFor({ timeout: T });

  const detail = page.getByRole('region', { name: 'Breach: Stolen laptop with a signed-in session' });
  await detail.waitFor({ timeout: T });
  await detail.getByRole('button', { name: 'Build the report' }).click();
  const report = detail.getByRole('region', { name: 'Breach report' });
  await report.waitFor({ timeout: T });
  assert(/audit entr(y|ies) read/.test((await report.textContent()) ?? ''), 'the report says what it read');
  await detail.getByLabel('Status').selectOption('contained');
  await detail.getByRole('button', { name: 'Save changes' }).click();
  await breachRow.getByText('contained').waitFor({ timeout: T });
  await shot(page, 'compliance-breaches');

  assertNoErrors(page);

  // ── A member sees none of it ──────────────────────────────────────────────────────────────
  const member = await newUserPage(browser);
  await signIn(member.page, 'alice');
  await member.page.getByRole('banner').waitFor({ timeout: T });
  await member.page.getByRole('link', { name: /Your account/ }).waitFor({ timeout: T });
  assert((await member.page.getByRole('link', { name: 'Compliance' }).count()) === 0, 'no Compliance link for a member');
  await member.page.goto('/compliance/audit');
  await member.page.getByText('This area is for compliance officers and system administrators.').waitFor({ timeout: T });
  assertNoErrors(member.page);
});
