// Browser test: the designer. The administrator opens Processes from the sidebar, starts a blank
// process and draws a three-step approval through the modeler's own palette and context pad
// (append, connect, place), names the steps and sets who does each in the properties panel, with
// a flow's condition checked as it is typed; deploys it with a version note and sees version 1.
// A condition with a CEL syntax error is refused by the server and the problem lands on that
// flow (an overlay attached to its element id, and a list entry that selects it). A fixed
// version 2 is compared with version 1. Version 2 starts from a message in #general: Alice
// fills in the manager's step (the form designed first, with its live preview) in her inbox, the
// administrator claims and completes finance's step from the role's queue, and Alice answers
// the director's step from the chat message's button in #general; the process's dashboard then
// counts the instance completed. The decision-table editor runs a table's test cases (all pass,
// then one made to fail). A member sees no designer link. Screenshots at desktop and phone width.
import { apiAs, assert, assertNoErrors, fixture, newUserPage, run, shot, signIn, until } from './lib.mjs';

const ws = fixture.workspace_id;
const alice = fixture.users.alice;
const T = 15000;
const RUN = Date.now().toString(36);
const NAME = `Leave approval ${RUN}`;
const PROCESS = `leave_approval_${RUN}`;
const FORM = `leave_form_${RUN}`;

/** The canvas element's id of whatever `fn` picks from the modeler's registry (ids are generated). */
async function idOf(page, fn) {
  return page.evaluate(`(${fn})(window.__concordModeler.get('elementRegistry'))`);
}

/**
 * Clicks the shape or connection drawn for `id` (its bounding box's centre). The diagram is fitted
 * first, and an empty corner of the canvas clicked: that closes the context pad of whatever is
 * selected, which may lie over the target (a gateway's pad sits on the flow leaving it).
 */
async function clickElement(page, id) {
  await page.getByRole('button', { name: 'Fit', exact: true }).click();
  const canvas = await page.locator('.ds-canvas').boundingBox();
  await page.mouse.click(canvas.x + canvas.width - 12, canvas.y + 12);
  await page.locator('.djs-context-pad.open').waitFor({ state: 'detached', timeout: T }).catch(() => {});
  const target = page.locator(`.djs-element[data-element-id="${id}"]`).first();
  // A click that lands while the previous tool (connect, create) is still finishing is eaten by
  // that tool; the modeler's selection says whether it took, so click until it does.
  const selected = (timeout) =>
    page.waitForFunction((want) => window.__concordModeler.get('selection').get()[0]?.id === want, id, { timeout });
  for (let attempt = 0; attempt < 3; attempt++) {
    await target.click({ force: true });
    try {
      await selected(3000);
      return;
    } catch {
      await page.mouse.click(canvas.x + canvas.width - 12, canvas.y + 12);
    }
  }
  await selected(T);
}

/** Clicks an entry of the open context pad. */
async function pad(page, action) {
  const entry = page.locator(`.djs-context-pad .entry[data-action="${action}"]`);
  await entry.waitFor({ timeout: T });
  await entry.click();
}

/** Sets a one-line property: typed, then Enter. */
async function prop(page, id, value) {
  const input = page.locator(`#${id}`);
  await input.waitFor({ timeout: T });
  await input.fill(value);
  await input.press('Enter');
}

/** The selected element's id, as the properties panel shows it. */
async function selectedId(page) {
  return page.locator('.ds-props').getAttribute('data-element-id');
}

/** Appends a user task to the selected element through the context pad, names it and assigns it. */
async function appendTask(page, id, name, kind, who) {
  await pad(page, 'append.user-task');
  await page.locator('.ds-props-type', { hasText: 'User task' }).waitFor({ timeout: T });
  await prop(page, 'ds-prop-id', id);
  await page.locator(`.ds-props[data-element-id="${id}"]`).waitFor({ timeout: T });
  await prop(page, 'ds-prop-name', name);
  await page.getByRole('radio', { name: kind }).check();
  await prop(page, 'ds-prop-assignee', who);
}

async function deploy(page, note) {
  await page.getByRole('button', { name: 'Deploy…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('What changed (optional)').fill(note);
  await dialog.getByRole('button', { name: 'Deploy', exact: true }).click();
}

await run('designer', async (browser) => {
  const started = Date.now();
  // The refused deploy (422) is logged by Chromium as a failed resource.
  const { page } = await newUserPage(browser, { allowConsoleErrors: [/status of 422/] });
  await signIn(page, 'admin');
  await page.goto(`/w/${ws}`);

  // Processes, from the sidebar.
  const nav = page.getByRole('navigation', { name: 'Workspace' });
  await nav.getByRole('link', { name: 'Processes' }).click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/processes`, { timeout: T });
  await page.getByRole('heading', { name: 'Processes', level: 1 }).waitFor({ timeout: T });
  await page.getByText('No processes yet.').waitFor({ timeout: T });

  // The form the manager fills in, designed first: fields with their types, previewed as the
  // task shows them, then saved.
  await page.getByRole('button', { name: 'New form' }).click();
  await page.getByRole('dialog').getByLabel('Form key').fill(FORM);
  await page.getByRole('dialog').getByRole('button', { name: 'Create' }).click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/forms/${FORM}`, { timeout: T });
  await page.getByLabel('Title', { exact: true }).fill('Review the leave');
  await page.getByRole('button', { name: 'Add a field' }).click();
  await page.locator('#ds-f-name-1').fill('days');
  await page.locator('#ds-f-label-1').fill('Days off');
  await page.locator('#ds-f-type-1').selectOption('integer');
  await page.locator('#ds-f-min-1').fill('1');
  await page.locator('#ds-f-max-1').fill('30');
  await page.locator('.ds-field').nth(1).getByLabel('Required').check();
  await page.getByRole('button', { name: 'Add a field' }).click();
  await page.locator('#ds-f-name-2').fill('category');
  await page.locator('#ds-f-label-2').fill('Kind of leave');
  await page.locator('#ds-f-type-2').selectOption('choice');
  await page.locator('#ds-f-choices-2').fill('holiday\nsick\nparental');
  const preview = page.locator('[data-testid="ds-form-preview"]');
  await preview.getByRole('heading', { name: 'Review the leave' }).waitFor({ timeout: T });
  await preview.getByRole('spinbutton', { name: /Days off/ }).waitFor({ timeout: T });
  await preview.getByRole('checkbox', { name: 'Approve' }).waitFor({ timeout: T });
  const kinds = await preview.getByRole('combobox', { name: /Kind of leave/ }).locator('option').allTextContents();
  assert(['holiday', 'sick', 'parental'].every((k) => kinds.includes(k)), `the choices are offered: ${kinds}`);
  await preview.getByRole('button', { name: 'Check the form' }).click();
  await preview.getByText(/need your attention|needs your attention/).waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText(`Saved: version 1 of the form ${FORM}.`).waitFor({ timeout: T });
  const { forms } = await apiAs('admin', 'GET', `/api/v1/workspaces/${ws}/workflow-forms`);
  const saved = forms.find((f) => f.key === FORM);
  assert(saved?.schema?.properties?.days?.maximum === 30 && saved.schema.required.includes('days'), `the form was saved: ${JSON.stringify(saved)}`);
  await shot(page, 'designer-form');

  await page.goto(`/w/${ws}/processes`);
  await page.getByText('No processes yet.').waitFor({ timeout: T });

  // A new blank process: the modeler opens on its start event.
  await page.getByRole('button', { name: 'New process' }).click();
  await page.getByRole('dialog').getByLabel('Name').fill(NAME);
  await page.getByRole('button', { name: /Blank process/ }).click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/processes/${PROCESS}`, { timeout: T });
  await page.locator('.djs-element[data-element-id="start"]').waitFor({ timeout: T });
  // The palette offers what the engine runs, and not what it refuses.
  for (const action of ['create.user-task', 'create.service-task', 'create.send-task', 'create.business-rule-task', 'create.exclusive-gateway']) {
    assert((await page.locator(`.djs-palette .entry[data-action="${action}"]`).count()) === 1, `the palette offers ${action}`);
  }
  for (const action of ['create.task', 'create.data-object', 'create.participant-expanded']) {
    assert((await page.locator(`.djs-palette .entry[data-action="${action}"]`).count()) === 0, `the palette leaves out ${action}`);
  }
  const dashboard = page.getByRole('link', { name: 'Dashboard' });
  assert((await dashboard.getAttribute('href')) === `/w/${ws}/processes/${PROCESS}/dashboard`, 'the dashboard link points at its route');

  // Draw: start → manager → gateway → finance → director → end, and a rejection end.
  await clickElement(page, 'start');
  await prop(page, 'ds-prop-name', 'Leave requested');
  assert((await page.locator('.djs-context-pad .entry[data-action="append.append-task"]').count()) === 0, 'the context pad offers no plain task');
  await appendTask(page, 'manager_approval', 'Manager approves', 'A person', alice.email);
  await page.locator('#ds-prop-form').selectOption(FORM);
  await pad(page, 'append.gateway');
  await prop(page, 'ds-prop-id', 'approved_gateway');
  await prop(page, 'ds-prop-name', 'Approved?');
  await appendTask(page, 'finance_approval', 'Finance approves', 'A role', 'owner');
  await appendTask(page, 'director_approval', 'Director signs off', 'A channel', 'general');
  await pad(page, 'append.end-event');
  await prop(page, 'ds-prop-id', 'approved');
  // The rejection end: placed from the palette, connected from the gateway with the connect tool.
  const gatewayBox = await page.locator('.djs-element[data-element-id="approved_gateway"]').first().boundingBox();
  await page.locator('.djs-palette .entry[data-action="create.end-event"]').click();
  await page.mouse.move(gatewayBox.x + 120, gatewayBox.y + 170);
  await page.mouse.click(gatewayBox.x + 120, gatewayBox.y + 170);
  await page.locator('.ds-props-type', { hasText: 'End event' }).waitFor({ timeout: T });
  await prop(page, 'ds-prop-id', 'rejected');
  await prop(page, 'ds-prop-name', 'Rejected');
  await clickElement(page, 'approved_gateway');
  await pad(page, 'connect');
  const rejectedBox = await page.locator('.djs-element[data-element-id="rejected"]').first().boundingBox();
  await page.mouse.move(rejectedBox.x + rejectedBox.width / 2, rejectedBox.y + rejectedBox.height / 2, { steps: 4 });
  await page.mouse.click(rejectedBox.x + rejectedBox.width / 2, rejectedBox.y + rejectedBox.height / 2);
  const rejectFlow = await idOf(page, (r) => r.get('approved_gateway').outgoing.find((f) => f.target.id === 'rejected')?.id);
  assert(rejectFlow, 'the connect tool drew a flow from the gateway to the rejection');
  // The gateway's default flow is the rejection; the flow to finance has a condition, checked as typed.
  await clickElement(page, 'approved_gateway');
  await page.locator('#ds-prop-default').selectOption(rejectFlow);
  const approveFlow = await idOf(page, (r) => r.get('approved_gateway').outgoing.find((f) => f.target.id === 'finance_approval').id);
  await clickElement(page, approveFlow);
  await page.locator(`.ds-props[data-element-id="${approveFlow}"]`).waitFor({ timeout: T });
  const condition = page.locator('#ds-prop-condition');
  await condition.fill('approved ==');
  await page.locator('#ds-prop-condition-problem .error-text').waitFor({ timeout: T });
  assert((await condition.getAttribute('aria-invalid')) === 'true', 'a condition that does not parse is marked as typed');
  await condition.fill('approved == true');
  await page.locator('#ds-prop-condition-problem .error-text').waitFor({ state: 'detached', timeout: T });
  await condition.press('Enter');
  await shot(page, 'designer-drawn');

  // Deploy with a note: version 1.
  await deploy(page, 'First version: three approvals');
  await page.getByText(`Version 1 of ${PROCESS} is deployed.`).waitFor({ timeout: T });
  await page.locator('[data-testid="ds-state"]', { hasText: 'Version 1' }).waitFor({ timeout: T });
  const listed = await apiAs('admin', 'GET', `/api/v1/workspaces/${ws}/workflows`);
  const v1 = listed.deployments.find((d) => d.process_id === PROCESS);
  assert(v1?.version === 1 && v1.note === 'First version: three approvals', `version 1 with its note: ${JSON.stringify(v1)}`);

  // A condition that does not parse: the server refuses it and the problem lands on that flow.
  await clickElement(page, approveFlow);
  await condition.waitFor({ timeout: T });
  await condition.fill('approved = = true');
  await condition.press('Enter');
  await clickElement(page, 'director_approval');
  await prop(page, 'ds-prop-name', 'Director signs the leave off');
  await deploy(page, 'Broken on purpose');
  await page.getByRole('alert').filter({ hasText: 'Not deployed' }).waitFor({ timeout: T });
  const overlay = page.locator(`.djs-overlays[data-container-id="${approveFlow}"] .ds-problem-badge`);
  await overlay.waitFor({ timeout: T });
  assert((await page.locator('.ds-problem-badge').count()) === 1, 'one element is marked');
  assert(await page.locator(`.djs-element[data-element-id="${approveFlow}"]`).first().evaluate((e) => e.classList.contains('ds-problem-marker')), 'the flow is drawn as faulty');
  const item = page.locator(`.ds-problem-item[data-element="${approveFlow}"]`);
  assert((await item.innerText()).includes('approved = = true'), `the problem names the condition: ${await item.innerText()}`);
  await clickElement(page, 'start');
  await item.click();
  assert((await page.evaluate(() => window.__concordModeler.get('selection').get()[0]?.id)) === approveFlow, 'the problem selects its element');
  await shot(page, 'designer-problem');

  // Fixed, it deploys as version 2; compared with version 1, the changes are listed and marked.
  await page.getByRole('tab', { name: 'Properties' }).click();
  await condition.fill('approved == true && days <= 20');
  await condition.press('Enter');
  await deploy(page, 'Long leave goes to the director only');
  await page.getByText(`Version 2 of ${PROCESS} is deployed.`).waitFor({ timeout: T });
  assert((await page.locator('.ds-problem-badge').count()) === 0, 'a deploy clears the problems');
  await page.getByRole('tab', { name: 'Versions' }).click();
  await page.locator('.ds-version[data-version="2"]', { hasText: 'Long leave goes to the director only' }).waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Compare with version 1' }).click();
  const changes = page.locator('[data-testid="ds-compare"]');
  await changes.waitFor({ timeout: T });
  const renamed = changes.locator('[data-change="changed"][data-element="director_approval"]');
  await renamed.waitFor({ timeout: T });
  assert((await renamed.innerText()).includes('Director signs the leave off'), `the rename is listed: ${await renamed.innerText()}`);
  assert((await changes.locator(`[data-change="changed"][data-element="${approveFlow}"]`).count()) === 1, 'the changed condition is listed');
  assert(await page.locator('.djs-element[data-element-id="director_approval"]').first().evaluate((e) => e.classList.contains('ds-diff-changed')), 'the change is marked on the diagram');
  await shot(page, 'designer-compare');
  await page.getByRole('button', { name: 'Back to editing' }).click();

  // Started from a channel: a message in #general mentioning leave starts version 2.
  await page.getByRole('button', { name: 'Start from a channel…' }).click();
  const triggerDialog = page.getByRole('dialog', { name: 'Start from a channel' });
  await triggerDialog.getByLabel('Channel').selectOption({ label: '#general' });
  await triggerDialog.getByLabel('Messages containing').fill('leave');
  await triggerDialog.getByRole('button', { name: 'Add the trigger' }).click();
  await triggerDialog.getByText('#general: “leave”').waitFor({ timeout: T });
  await shot(page, 'designer-trigger');
  await triggerDialog.locator('.dialog-actions').getByRole('button', { name: 'Close' }).click();

  const A = await newUserPage(browser);
  await signIn(A.page, 'alice');
  await A.page.goto(`/w/${ws}/c/${fixture.channel_id}`);
  const composer = A.page.getByRole('combobox', { name: 'Message #general' });
  await composer.waitFor({ timeout: T });
  await composer.click();
  await composer.fill('Could I take leave from the 3rd to the 7th of March?');
  await composer.press('Enter');
  const startedList = await until(
    () => apiAs('admin', 'GET', `/api/v1/workspaces/${ws}/workflow-instances?process_id=${PROCESS}`),
    (p) => p.instances.length === 1,
    'the message started an instance',
  );
  const instanceId = startedList.instances[0].id;

  // The manager's step reaches Alice's inbox, with the designed form: she fills it in there.
  const aNav = A.page.getByRole('navigation', { name: 'Workspace' });
  await aNav.getByRole('link', { name: /^Tasks/ }).filter({ hasText: '1' }).waitFor({ timeout: T });
  await aNav.getByRole('link', { name: /^Tasks/ }).click();
  await A.page.getByRole('list', { name: 'Open tasks' }).getByRole('link', { name: /Manager approves/ }).click();
  await A.page.getByRole('heading', { name: 'Manager approves', level: 2 }).waitFor({ timeout: T });
  // The fields come in the order they were designed, not by name.
  const shown = await A.page.locator('.tk-form .tk-field').evaluateAll((els) => els.map((e) => e.querySelector('input, select, textarea')?.id));
  assert(shown.join() === 'tk-field-approved,tk-field-days,tk-field-category', `the designed order: ${shown}`);
  await A.page.getByRole('spinbutton', { name: /Days off/ }).fill('5');
  await A.page.getByRole('combobox', { name: /Kind of leave/ }).selectOption('holiday');
  await A.page.getByRole('checkbox', { name: 'Approve' }).check();
  await shot(A.page, 'designer-run-inbox');
  await A.page.getByRole('button', { name: 'Complete task' }).click();
  await A.page.getByRole('status').filter({ hasText: 'Done: “Manager approves” is completed.' }).waitFor({ timeout: T });

  // Five days pass the condition: finance's step waits in the owners' queue.
  await until(
    () => apiAs('admin', 'GET', `/api/v1/workspaces/${ws}/workflow-instances/${instanceId}`),
    (i) => i.tasks.some((t) => t.element === 'finance_approval' && t.status === 'open'),
    'the approval went on to finance',
  );
  await page.goto(`/w/${ws}/tasks`);
  await page.getByRole('tab', { name: /My queues/ }).click();
  await page.getByRole('list', { name: 'Open tasks' }).getByRole('link', { name: /Finance approves/ }).click();
  await page.getByRole('heading', { name: 'Finance approves', level: 2 }).waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Claim' }).click();
  await page.getByRole('status').filter({ hasText: 'Claimed: “Finance approves” is yours now.' }).waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Mark done' }).click();
  await page.getByRole('status').filter({ hasText: 'Done: “Finance approves” is completed.' }).waitFor({ timeout: T });

  // The director's step goes to #general: Alice answers it from the chat message's button.
  await A.page.goto(`/w/${ws}/c/${fixture.channel_id}`);
  const notice = A.page.locator('article.msg', { hasText: 'Director signs the leave off' });
  await notice.getByRole('button', { name: 'Mark done' }).click();
  await A.page.locator('article.msg', { hasText: 'Marked done by' }).waitFor({ timeout: T });
  assert((await notice.getByRole('button', { name: 'Mark done' }).count()) === 0, 'the answered notice has no buttons left');
  await shot(A.page, 'designer-run-chat');
  const finished = await until(
    () => apiAs('admin', 'GET', `/api/v1/workspaces/${ws}/workflow-instances/${instanceId}`),
    (i) => i.status === 'completed',
    'the leave request completed',
  );
  assert(finished.version === 2, `the latest version ran: ${finished.version}`);
  const steps = finished.tasks.map((t) => t.element).join(' → ');
  assert(steps === 'manager_approval → finance_approval → director_approval', `the three steps ran in order: ${steps}`);

  // The designer's Dashboard shows it completed.
  await page.goto(`/w/${ws}/processes/${PROCESS}`);
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/processes/${PROCESS}/dashboard`, { timeout: T });
  const totals = page.getByLabel('Instances in the period');
  await totals.waitFor({ timeout: T });
  await totals.locator('.op-total', { hasText: 'Completed' }).locator('dd').filter({ hasText: /^1$/ }).waitFor({ timeout: T });
  // The notice in #general names the process and holds "leave": it started nothing.
  assert((await totals.locator('.op-total', { hasText: 'Started' }).locator('dd').innerText()) === '1', 'one instance started');
  await shot(page, 'designer-run-dashboard');
  assertNoErrors(A.page);

  // The decision-table editor: the shipped expense table's test cases run from the editor.
  await page.goto(`/w/${ws}/processes`);
  await page.getByRole('button', { name: 'New decision table' }).click();
  await page.getByRole('button', { name: /Expense approval/ }).click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/decisions/expense_approval`, { timeout: T });
  await page.locator('.tjs-table, .dmn-decision-table-container').first().waitFor({ timeout: T });
  await page.locator('#ds-test-name-4').waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Run tests' }).click();
  const report = page.locator('[data-testid="ds-test-report"]');
  await report.getByRole('heading', { name: 'All tests pass' }).waitFor({ timeout: T });
  assert((await report.locator('.ds-result[data-passed="true"]').count()) === 5, 'the five cases pass');
  await page.locator('#ds-test-expect-0').fill('{"approver": "cfo", "auto_approve": true}');
  await page.getByRole('button', { name: 'Run tests' }).click();
  await report.getByRole('heading', { name: '1 of 5 tests fail' }).waitFor({ timeout: T });
  const failed = report.locator('.ds-result[data-passed="false"]');
  assert((await failed.innerText()).includes('small expenses need nobody'), `the failing case is named: ${await failed.innerText()}`);
  await shot(page, 'designer-decision');

  // The list shows the process with its versions and latest note.
  await page.goto(`/w/${ws}/processes`);
  const row = page.locator('.ds-row', { hasText: PROCESS });
  await row.waitFor({ timeout: T });
  assert((await row.innerText()).includes('Version 2 · 2 versions'), `the process row: ${await row.innerText()}`);
  assert((await row.innerText()).includes('Long leave goes to the director only'), 'the latest note shows');
  assertNoErrors(page);

  // A member is offered no designer.
  const member = await newUserPage(browser);
  await signIn(member.page, 'alice');
  await member.page.goto(`/w/${ws}`);
  await member.page.getByRole('navigation', { name: 'Workspace' }).getByRole('link', { name: /^Tasks/ }).waitFor({ timeout: T });
  assert((await member.page.getByRole('navigation', { name: 'Workspace' }).getByRole('link', { name: 'Processes' }).count()) === 0, 'a member sees no Processes link');
  assertNoErrors(member.page);
  console.log(`designer spec took ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
