// Browser test: workflow tasks. The administrator deploys an expense form and a process whose
// review task goes to Alice. Alice opens Tasks from the sidebar, sees the task, tries to complete
// it with a required field empty, a number out of range and a comment too long, and sees each
// problem next to its field with nothing sent; she fills it in, completes it, and the task leaves
// her list; the instance finished with what she entered. With the screen open, a new task appears
// and one completed elsewhere disappears, without a reload; a task without a form is marked done;
// the server's own refusal shows next to its field; a task of Alice's own is under My tasks and a
// role's or a channel's under My queues. Screenshots at desktop and phone width.
import { apiAs, assert, assertNoErrors, fixture, newUserPage, PHONE, DESKTOP, run, shot, signIn } from './lib.mjs';

const ws = fixture.workspace_id;
const alice = fixture.users.alice;
const bob = fixture.users.bob;
const T = 15000;
// Unique per run, so the spec can run again against the same server.
const RUN = Date.now().toString(36);
const EXPENSE = `expense_${RUN}`;
const FILING = `filing_${RUN}`;

const FORM = {
  key: `expense_review_${RUN}`,
  schema: {
    title: 'Check the claim',
    description: 'Compare the amount with the receipt before approving.',
    type: 'object',
    properties: {
      approved: { type: 'boolean', title: 'Approve the expense' },
      amount: { type: 'integer', title: 'Approved amount', minimum: 1, maximum: 5000 },
      category: { type: 'string', title: 'Category', enum: ['travel', 'meals', 'equipment'] },
      paid_on: { type: 'string', format: 'date', title: 'Pay on' },
      comment: { type: 'string', format: 'multiline', title: 'Comment', maxLength: 200 },
      handover: { type: 'string', format: 'user', title: 'Hand over to' },
    },
    required: ['approved', 'amount', 'category'],
  },
};

const EXPENSE_MODEL = `process: ${EXPENSE}
steps:
  - start: s
  - user_task: review
    name: Review the expense
    person: \${who}
    form: ${FORM.key}
    due: P2D
  - end: e
`;

// Tasks for a role Alice holds, for a channel she is in, and one of hers already past due.
const ROTA = `rota_${RUN}`;
const TRIAGE = `triage_${RUN}`;
const REPORT = `report_${RUN}`;
const ROUTED_MODELS = [
  `process: ${ROTA}\nsteps:\n  - start: s\n  - user_task: rota\n    name: Check the rota\n    role: member\n  - end: e\n`,
  `process: ${TRIAGE}\nsteps:\n  - start: s\n  - user_task: triage\n    name: Triage the requests\n    channel: general\n  - end: e\n`,
  `process: ${REPORT}\nsteps:\n  - start: s\n  - user_task: report\n    name: Send the report\n    person: \${who}\n    due: PT1S\n  - end: e\n`,
];

const FILING_MODEL = `process: ${FILING}
steps:
  - start: s
  - user_task: file
    name: File the receipt
    person: \${who}
  - end: e
`;

async function start(process, variables) {
  return apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflows/${process}/instances`, { variables });
}

/** The instance once `done(instance)` holds (the engine runs after the request answers). */
async function instanceWhen(id, done, what) {
  const deadline = Date.now() + T;
  for (;;) {
    const i = await apiAs('admin', 'GET', `/api/v1/workspaces/${ws}/workflow-instances/${id}`);
    if (done(i)) return i;
    assert(Date.now() < deadline, `${what}: ${JSON.stringify(i)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Alice's open task of instance `id`, once it is open. */
async function taskOf(id) {
  const deadline = Date.now() + T;
  for (;;) {
    const { tasks } = await apiAs('alice', 'GET', '/api/v1/workflow-tasks');
    const task = tasks.find((t) => t.instance_id === id);
    if (task) return task;
    assert(Date.now() < deadline, `a task of instance ${id} opened for Alice`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

await run('tasks', async (browser) => {
  await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflow-forms`, FORM);
  await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflows`, { source: EXPENSE_MODEL });
  await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflows`, { source: FILING_MODEL });
  for (const source of ROUTED_MODELS) await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflows`, { source });
  const first = await start(EXPENSE, { who: alice.id, claimed: 120 });
  const firstTask = await taskOf(first.id);

  // The server's refusal of a completion (last step) answers 422; Chromium logs it as an error.
  const { page } = await newUserPage(browser, { allowConsoleErrors: [/status of 422/] });
  // Every completion the page sends, to prove an invalid form sends none.
  const completions = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && /\/api\/v1\/workflow-tasks\/[^/]+\/complete$/.test(new URL(r.url()).pathname)) {
      completions.push(r.postDataJSON());
    }
  });
  await signIn(page, 'alice');
  await page.goto(`/w/${ws}`);

  // The sidebar offers Tasks, with the open one counted.
  const nav = page.getByRole('navigation', { name: 'Workspace' });
  const tasksLink = nav.getByRole('link', { name: /^Tasks/ });
  await tasksLink.filter({ hasText: '1' }).waitFor({ timeout: T });
  await tasksLink.click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/tasks`, { timeout: T });
  await page.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor({ timeout: T });
  // (The Workflows bot's notice of the task is an unread message: the title may count it first.)
  assert(/^(\(\d+\) )?Tasks · /.test(await page.title()), `the title names the screen: ${await page.title()}`);

  const list = page.getByRole('list', { name: 'Open tasks' });
  const item = list.getByRole('link', { name: /Review the expense/ });
  await item.waitFor({ timeout: T });
  const itemText = await item.innerText();
  assert(itemText.includes(EXPENSE), `the task shows its process: ${itemText}`);
  assert(itemText.includes('You'), `the task says it is for Alice: ${itemText}`);
  assert(/Due in 2 days|Due in 48 hours/.test(itemText), `the task shows its due date: ${itemText}`);

  // Opening it shows its form.
  await item.click();
  await page.waitForURL((u) => u.pathname === `/w/${ws}/tasks/${encodeURIComponent(firstTask.id)}`, { timeout: T });
  await page.getByRole('heading', { name: 'Review the expense', level: 2 }).waitFor({ timeout: T });
  await page.getByText('Compare the amount with the receipt before approving.').waitFor({ timeout: T });
  const approve = page.getByRole('checkbox', { name: 'Approve the expense' });
  const amount = page.getByRole('spinbutton', { name: /Approved amount/ });
  const category = page.getByRole('combobox', { name: /Category/ });
  const paidOn = page.getByLabel('Pay on');
  const comment = page.getByRole('textbox', { name: 'Comment', exact: true });
  const handover = page.getByRole('combobox', { name: 'Hand over to' });
  for (const control of [approve, amount, category, paidOn, comment, handover]) await control.waitFor({ timeout: T });
  assert((await paidOn.getAttribute('type')) === 'date', 'the date field is a date input');
  assert((await amount.getAttribute('min')) === '1' && (await amount.getAttribute('max')) === '5000', 'the range is on the number input');
  assert((await amount.getAttribute('aria-required')) === 'true', 'a required field says so');
  assert(
    (await handover.locator('option').allTextContents()).some((o) => o.includes(bob.display_name)),
    'the user picker lists the workspace members',
  );

  // An invalid form: the category left empty, the amount out of range, the comment too long.
  await amount.fill('0');
  await comment.fill('x'.repeat(201));
  await page.getByRole('button', { name: 'Complete task' }).click();
  await page.getByText('3 fields need your attention.').waitFor({ timeout: T });
  const errorOf = async (control) => {
    const id = (await control.getAttribute('aria-describedby')) ?? '';
    const texts = await Promise.all(id.split(' ').filter(Boolean).map((i) => page.locator(`[id="${i}"]`).innerText()));
    return texts.join(' ');
  };
  assert((await category.getAttribute('aria-invalid')) === 'true', 'the empty category is marked invalid');
  assert((await errorOf(category)).includes('This field is required.'), `the category says it is required: ${await errorOf(category)}`);
  assert((await errorOf(amount)).includes('Enter a whole number from 1 to 5000.'), `the amount says its range: ${await errorOf(amount)}`);
  assert((await errorOf(comment)).includes('at most 200 characters'), `the comment says its limit: ${await errorOf(comment)}`);
  assert(
    await page.evaluate(() => document.activeElement?.id === 'tk-field-amount'),
    'focus moves to the first field with a problem',
  );
  assert(completions.length === 0, `an invalid form sends nothing, sent ${JSON.stringify(completions)}`);
  await shot(page, 'tasks-form-errors');

  // Filled in as it should be, it completes.
  await approve.check();
  await amount.fill('120');
  await category.selectOption({ label: 'travel' });
  await paidOn.fill('2027-01-15');
  await comment.fill('Receipt matches.');
  await handover.selectOption({ label: bob.display_name });
  assert(
    (await amount.getAttribute('aria-invalid')) === null && !(await errorOf(amount)).includes('Enter a'),
    'a corrected field loses its problem',
  );
  await page.getByRole('button', { name: 'Complete task' }).click();
  await page.getByRole('status').filter({ hasText: 'Done: “Review the expense” is completed.' }).waitFor({ timeout: T });
  await page.waitForURL((u) => u.pathname === `/w/${ws}/tasks`, { timeout: T });
  await page.getByText('You have no open tasks here.').waitFor({ timeout: T });
  assert((await list.count()) === 0, 'the completed task left the list');
  assert(completions.length === 1, `one completion was sent, got ${completions.length}`);
  await shot(page, 'tasks-done');

  const done = await instanceWhen(first.id, (i) => i.status === 'completed', 'the first instance completed');
  const expected = {
    approved: true,
    amount: 120,
    category: 'travel',
    paid_on: '2027-01-15',
    comment: 'Receipt matches.',
    handover: bob.id,
    claimed: 120,
  };
  for (const [name, value] of Object.entries(expected)) {
    assert(done.variables[name] === value, `the instance has ${name} = ${JSON.stringify(value)}: ${JSON.stringify(done.variables)}`);
  }
  assert(
    JSON.stringify(Object.keys(completions[0].variables).sort()) === JSON.stringify(['amount', 'approved', 'category', 'comment', 'handover', 'paid_on']),
    `only the form's fields were sent: ${JSON.stringify(completions[0])}`,
  );

  // Live: a task opened while the screen is open appears without a reload ...
  const marker = await page.evaluate(() => (window.__tasksSpecMarker = Math.random()));
  const second = await start(EXPENSE, { who: alice.id, claimed: 75 });
  await list.getByRole('link', { name: /Review the expense/ }).waitFor({ timeout: T });
  await tasksLink.filter({ hasText: '1' }).waitFor({ timeout: T });
  // ... and one completed elsewhere disappears.
  const secondTask = await taskOf(second.id);
  await apiAs('alice', 'POST', `/api/v1/workflow-tasks/${encodeURIComponent(secondTask.id)}/complete`, {
    variables: { approved: false, amount: 75, category: 'meals' },
  });
  await page.getByText('You have no open tasks here.').waitFor({ timeout: T });

  // A task without a form is marked done.
  const third = await start(FILING, { who: alice.id });
  const paperwork = list.getByRole('link', { name: /File the receipt/ });
  await paperwork.waitFor({ timeout: T });
  assert(
    (await page.evaluate(() => window.__tasksSpecMarker)) === marker,
    'the new tasks appeared without a page reload',
  );
  await paperwork.click();
  await page.getByRole('heading', { name: 'File the receipt', level: 2 }).waitFor({ timeout: T });
  await page.getByText('This task has no form to fill in.').waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Mark done' }).click();
  await page.getByRole('status').filter({ hasText: 'Done: “File the receipt” is completed.' }).waitFor({ timeout: T });
  await instanceWhen(third.id, (i) => i.status === 'completed', 'the filing instance completed');
  assert(JSON.stringify(completions[1]) === JSON.stringify({ variables: {} }), `a task without a form sends no values: ${JSON.stringify(completions[1])}`);

  // At phone width the list and the form take turns, and nothing is wider than the screen.
  const fourth = await start(EXPENSE, { who: alice.id, claimed: 30 });
  const fourthTask = await taskOf(fourth.id);
  await page.setViewportSize(PHONE);
  await list.getByRole('link', { name: /Review the expense/ }).click();
  await page.getByRole('heading', { name: 'Review the expense', level: 2 }).waitFor({ timeout: T });
  assert(!(await list.isVisible()), 'at phone width the form replaces the list');
  const overflow = await page.evaluate(() => {
    const main = document.querySelector('main');
    return main ? main.scrollWidth - main.clientWidth : 0;
  });
  assert(overflow <= 0, `the form fits the phone's width (overflow ${overflow}px)`);
  await page.getByRole('link', { name: '← All tasks' }).click();
  await list.waitFor({ timeout: T });
  await page.setViewportSize(DESKTOP);
  await page.goto(`/w/${ws}/tasks/${encodeURIComponent(fourthTask.id)}`);
  await page.getByRole('heading', { name: 'Review the expense', level: 2 }).waitFor({ timeout: T });
  await shot(page, 'tasks-form');

  // The server checks again: a person removed from the workspace since the page loaded is
  // refused, and the server's problem shows next to the field that named them.
  await amount.fill('30');
  await category.selectOption({ label: 'meals' });
  await handover.selectOption({ label: bob.display_name });
  await apiAs('admin', 'DELETE', `/api/v1/workspaces/${ws}/members/${bob.id}`);
  await page.getByRole('button', { name: 'Complete task' }).click();
  await page.getByText('That person is not a member of this workspace.').waitFor({ timeout: T });
  assert((await handover.getAttribute('aria-invalid')) === 'true', 'the refused person field is marked invalid');
  assert(completions.length === 3, `the refused completion was sent once, got ${completions.length} in all`);
  await handover.selectOption({ label: 'Nobody' });
  await page.getByRole('button', { name: 'Complete task' }).click();
  await page.getByRole('status').filter({ hasText: 'Done: “Review the expense” is completed.' }).waitFor({ timeout: T });
  const last = await instanceWhen(fourth.id, (i) => i.status === 'completed', 'the last instance completed');
  assert(last.variables.amount === 30 && !('handover' in last.variables), `the last instance: ${JSON.stringify(last.variables)}`);

  // Each task says who it is for; one past its due date is marked overdue, and listed first.
  const routed = [];
  for (const process of [ROTA, TRIAGE, REPORT]) routed.push(await start(process, { who: alice.id }));
  for (const i of routed) await taskOf(i.id);
  await new Promise((r) => setTimeout(r, 1500));
  await page.reload();
  // My tasks holds the overdue report; My queues the role's and the channel's tasks.
  const entries = list.getByRole('link');
  await list.getByRole('link', { name: /Send the report/ }).waitFor({ timeout: T });
  let texts = await entries.allInnerTexts();
  assert(texts.length === 1 && texts[0].includes('Overdue'), `the overdue task is Alice's, marked: ${JSON.stringify(texts)}`);
  await page.getByRole('tab', { name: /My queues/ }).click();
  await list.getByRole('link', { name: /Check the rota/ }).waitFor({ timeout: T });
  await list.getByRole('link', { name: /Triage the requests/ }).waitFor({ timeout: T });
  texts = await entries.allInnerTexts();
  assert(texts.length === 2, `two tasks wait in the queues: ${JSON.stringify(texts)}`);
  assert(texts.some((t) => t.includes('Check the rota') && /Role: member/i.test(t)), `a role's task names the role: ${JSON.stringify(texts)}`);
  assert(texts.some((t) => t.includes('Triage the requests') && t.includes('#general')), `a channel's task names the channel: ${JSON.stringify(texts)}`);
  await shot(page, 'tasks-inbox');

  assertNoErrors(page);
});
