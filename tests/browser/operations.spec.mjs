// Browser test: running and watching a process. The administrator deploys a three-step purchase
// approval (a task for a channel's queue, an approval for Alice, the order for whoever asked)
// that starts when someone writes "buy" in a channel, and a process calling a service. Alice
// writes in the channel: the instance starts. From her inbox she claims the first task from "My
// queues", comments on it and completes its form; she approves the second from the chat
// message's button; she hands the third on to Bob with a note, which he reads as a comment and
// completes. The operator opens the process's instances, the instance view (diagram with the
// path taken, completed), retries an incident of the other process, and sees the completed
// instance counted on the dashboard and its path among the mining variants and in the
// directly-follows graph. Desktop and phone screenshots along the way.
import { createServer } from 'node:http';
import { apiAs, assert, assertNoErrors, fixture, newUserPage, run, shot, signIn, until } from './lib.mjs';

const ws = fixture.workspace_id;
const bob = fixture.users.bob;
const T = 15000;
const RUN = Date.now().toString(36);
const PURCHASE = `purchase_${RUN}`;
const FETCH = `fetch_${RUN}`;
const CHANNEL = `buy-${RUN}`;

const FORM = {
  key: `purchase_check_${RUN}`,
  schema: {
    title: 'Decide',
    type: 'object',
    properties: {
      approved: { type: 'boolean', title: 'Approve' },
      comment: { type: 'string', format: 'multiline', title: 'Comment', maxLength: 500 },
    },
    required: ['approved'],
  },
};
// An approval asking only yes or no: its chat notice carries Approve and Reject.
const YES_NO = {
  key: `purchase_yes_no_${RUN}`,
  schema: { type: 'object', properties: { approved: { type: 'boolean', title: 'Approve' } }, required: ['approved'] },
};

const MODEL = `process: ${PURCHASE}
name: Purchase approval
steps:
  - start: asked
  - user_task: check
    name: Check the request
    channel: ${CHANNEL}
    form: ${FORM.key}
    due: P1D
  - user_task: approve
    name: Approve the purchase
    person: alice@example.org
    form: ${YES_NO.key}
  - user_task: order
    name: Place the order
    person: \${message.author_id}
  - end: ordered
`;

const fetchModel = (url) => `process: ${FETCH}
name: Fetch the price
steps:
  - start: s
  - service_task: price
    name: Ask the supplier
    method: POST
    url: ${url}/price
    body: {item: "desk"}
    retry: {attempts: 1, backoff: PT0.1S, multiplier: 1}
  - end: e
`;

/** A supplier that fails until told otherwise. */
async function supplier() {
  const state = { failing: true, calls: 0 };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.calls++;
      res.writeHead(state.failing ? 503 : 200, { 'content-type': 'application/json' });
      res.end(state.failing ? '{"error":"down"}' : '{"price":420}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { state, server, url: `http://127.0.0.1:${server.address().port}` };
}

const instance = (id) => apiAs('admin', 'GET', `/api/v1/workspaces/${ws}/workflow-instances/${id}`);

await run('operations', async (browser) => {
  const shop = await supplier();
  const channel = await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/channels`, { name: CHANNEL, visibility: 'public' });
  for (const who of ['alice', 'bob']) await apiAs(who, 'POST', `/api/v1/channels/${channel.id}/join`, {});
  for (const form of [FORM, YES_NO]) await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflow-forms`, form);
  await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflows`, { source: MODEL });
  await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflows`, { source: fetchModel(shop.url) });
  await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflows/${PURCHASE}/triggers`, {
    kind: 'message',
    channel_id: channel.id,
    pattern: 'buy',
  });

  // Alice asks in the channel: the process starts.
  const A = await newUserPage(browser);
  await signIn(A.page, 'alice');
  await A.page.goto(`/w/${ws}/c/${channel.id}`);
  const composer = A.page.getByRole('combobox', { name: `Message #${CHANNEL}` });
  await composer.waitFor({ timeout: T });
  await composer.click();
  await composer.fill('Please buy a standing desk for the front desk');
  await composer.press('Enter');
  const started = await until(
    () => apiAs('admin', 'GET', `/api/v1/workspaces/${ws}/workflow-instances?process_id=${PURCHASE}`),
    (p) => p.instances.length === 1,
    'the message started an instance',
  );
  const id = started.instances[0].id;

  // The first task waits in the channel's queue: Alice claims it from "My queues".
  const nav = A.page.getByRole('navigation', { name: 'Workspace' });
  await nav.getByRole('link', { name: /^Tasks/ }).filter({ hasText: '1' }).waitFor({ timeout: T });
  await nav.getByRole('link', { name: /^Tasks/ }).click();
  await A.page.getByRole('heading', { name: 'Tasks', level: 1 }).waitFor({ timeout: T });
  await A.page.getByText('Nothing is assigned to you.').waitFor({ timeout: T });
  await A.page.getByRole('tab', { name: /My queues/ }).click();
  const list = A.page.getByRole('list', { name: 'Open tasks' });
  await list.getByRole('link', { name: /Check the request/ }).click();
  await A.page.getByRole('heading', { name: 'Check the request', level: 2 }).waitFor({ timeout: T });
  const due = await A.page.locator('.tk-facts .tk-due').innerText();
  assert(due.length > 0 && !/Overdue|Due soon/.test(due), `the due date shows, on time: ${due}`);
  await shot(A.page, 'operations-queue');
  await A.page.getByRole('button', { name: 'Claim' }).click();
  await A.page.getByRole('status').filter({ hasText: 'Claimed: “Check the request” is yours now.' }).waitFor({ timeout: T });
  await A.page.getByRole('tab', { name: /My tasks/, selected: true }).waitFor({ timeout: T });
  // A comment, then the form.
  const commentBox = A.page.getByRole('textbox', { name: 'Add a comment' });
  await commentBox.fill('Budget checked: within the quarter’s limit.');
  await A.page.getByRole('button', { name: 'Add comment' }).click();
  await A.page.getByRole('list', { name: 'Comments' }).getByText('Budget checked').waitFor({ timeout: T });
  await A.page.getByRole('checkbox', { name: 'Approve' }).check();
  await A.page.getByRole('button', { name: 'Complete task' }).click();
  await A.page.getByRole('status').filter({ hasText: 'Done: “Check the request” is completed.' }).waitFor({ timeout: T });

  // The approval is answered from the chat message's button.
  const dm = await until(
    async () => (await apiAs('alice', 'GET', `/api/v1/workspaces/${ws}/channels`)).filter((c) => c.kind === 'direct'),
    (list) => list.length > 0,
    'the Workflows bot wrote to Alice',
  );
  await A.page.goto(`/w/${ws}/c/${dm[0].id}`);
  const notice = A.page.locator('article.msg', { hasText: 'Approve the purchase' });
  await notice.getByRole('button', { name: 'Approve' }).click();
  await A.page.locator('article.msg', { hasText: 'Approved by' }).waitFor({ timeout: T });
  assert((await notice.getByRole('button', { name: 'Approve' }).count()) === 0, 'the answered notice has no buttons left');
  await shot(A.page, 'operations-chat-approved');

  // The order is Alice's (she asked); she hands it on to Bob with a note.
  await A.page.goto(`/w/${ws}/tasks`);
  await list.getByRole('link', { name: /Place the order/ }).click();
  await A.page.getByRole('heading', { name: 'Place the order', level: 2 }).waitFor({ timeout: T });
  await A.page.getByRole('button', { name: 'Hand on…' }).click();
  await A.page.getByRole('combobox', { name: 'Hand it to' }).selectOption({ label: bob.display_name });
  await A.page.getByRole('textbox', { name: /Note/ }).fill('Bob has the supplier account.');
  await shot(A.page, 'operations-reassign');
  await A.page.getByRole('button', { name: 'Reassign' }).click();
  await A.page.getByRole('status').filter({ hasText: `Handed on: “Place the order” is ${bob.display_name}’s now.` }).waitFor({ timeout: T });
  const bobs = await until(
    async () => (await apiAs('bob', 'GET', '/api/v1/workflow-tasks?scope=mine')).tasks.filter((t) => t.instance_id === id),
    (t) => t.length === 1,
    'the order reached Bob',
  );
  const notes = await apiAs('bob', 'GET', `/api/v1/workflow-tasks/${encodeURIComponent(bobs[0].id)}/comments`);
  assert(notes.comments.some((c) => c.text === 'Bob has the supplier account.'), `Bob reads the note: ${JSON.stringify(notes)}`);
  await apiAs('bob', 'POST', `/api/v1/workflow-tasks/${encodeURIComponent(bobs[0].id)}/complete`, { variables: {} });
  await until(() => instance(id), (i) => i.status === 'completed', 'the purchase completed');

  // The operator finds it among the process's instances and sees the path it took.
  const O = await newUserPage(browser);
  await signIn(O.page, 'admin');
  await O.page.goto(`/w/${ws}/processes/${PURCHASE}/instances`);
  await O.page.getByRole('heading', { name: 'Purchase approval', level: 1 }).waitFor({ timeout: T });
  await O.page.getByRole('table', { name: /Instances/ }).getByRole('link').first().click();
  await O.page.waitForURL((u) => u.pathname === `/w/${ws}/instances/${id}`, { timeout: T });
  await O.page.getByRole('heading', { name: /Purchase approval/, level: 1 }).waitFor({ timeout: T });
  await O.page.locator('.op-top .op-badge', { hasText: 'Completed' }).waitFor({ timeout: T });
  const path = await O.page.getByLabel('Path taken').innerText();
  assert(/check → approve → order/.test(path), `the path names the three steps in order: ${path}`);
  await O.page.locator('.op-diagram-canvas[data-drawn]').waitFor({ timeout: T });
  await O.page.locator('.op-diagram-canvas .op-done').first().waitFor({ timeout: T });
  const done = await O.page.locator('.op-diagram-canvas .op-done').count();
  assert(done >= 3, `the diagram marks the completed steps (${done})`);
  assert((await O.page.locator('.op-diagram-canvas .op-taken').count()) >= 3, 'the diagram marks the flows taken');
  await O.page.getByRole('list', { name: 'History' }).getByText('Task completed').first().waitFor({ timeout: T });
  await shot(O.page, 'operations-instance');

  // Another process's service call fails: the operator retries the incident once it answers.
  const fetching = await apiAs('admin', 'POST', `/api/v1/workspaces/${ws}/workflows/${FETCH}/instances`, { variables: {} });
  await until(() => instance(fetching.id), (i) => i.incidents.some((x) => x.status === 'open'), 'an incident was raised');
  await O.page.goto(`/w/${ws}/instances/${fetching.id}`);
  const incidents = O.page.getByRole('list', { name: 'Open incidents' });
  await incidents.getByRole('button', { name: 'Retry' }).waitFor({ timeout: T });
  await O.page.locator('.op-diagram-canvas .op-failed').first().waitFor({ timeout: T });
  await shot(O.page, 'operations-incident');
  shop.state.failing = false;
  await incidents.getByRole('button', { name: 'Retry' }).click();
  await O.page.locator('.op-top .op-badge', { hasText: 'Completed' }).waitFor({ timeout: T });
  assert(shop.state.calls >= 2, `the call was made again (${shop.state.calls})`);

  // The dashboard counts the completed purchase.
  await O.page.goto(`/w/${ws}/processes/${PURCHASE}/dashboard`);
  const totals = O.page.getByLabel('Instances in the period');
  await totals.waitFor({ timeout: T });
  const completed = totals.locator('.op-total', { hasText: 'Completed' }).locator('dd');
  await completed.filter({ hasText: /^1$/ }).waitFor({ timeout: T });
  await O.page.locator('.op-chart-canvas canvas').first().waitFor({ timeout: T });
  await O.page.locator('.op-diagram-canvas[data-drawn]').waitFor({ timeout: T });
  await shot(O.page, 'operations-dashboard');

  // Mining: its one path, and the directly-follows graph through the three steps.
  await O.page.getByRole('link', { name: 'Mining' }).click();
  const variants = O.page.getByRole('list', { name: 'Variants' });
  await variants.waitFor({ timeout: T });
  const variant = await variants.locator('li').first().innerText();
  assert(/Check the request[\s\S]*Approve the purchase[\s\S]*Place the order/.test(variant), `the variant is the path taken: ${variant}`);
  const graph = O.page.getByRole('img', { name: /Directly-follows graph/ });
  await graph.waitFor({ timeout: T });
  assert((await graph.locator('.op-dfg-edge').count()) >= 4, 'the graph draws the transitions');
  await shot(O.page, 'operations-mining');

  shop.server.close();
  assertNoErrors(A.page, O.page);
});
