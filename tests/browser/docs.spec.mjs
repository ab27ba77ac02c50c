// Browser test: co-editing a document. Alice creates a document the channel can edit, Bob opens
// it in a browser of his own; each sees the other's text and named caret. Alice names a version,
// Bob rewrites the text, Alice restores the version and both see it; a reload keeps the text; the
// markdown export holds it. Screenshots of the list and the editor at desktop and phone width.
import { readFile } from 'node:fs/promises';
import { apiAs, assert, assertNoErrors, fixture, newUserPage, run, shot, signIn } from './lib.mjs';

const ws = fixture.workspace_id;
const alice = fixture.users.alice;
const bob = fixture.users.bob;
const T = 15000;
// Unique per run, so the spec can run again against the same server.
const TITLE = `Launch plan ${Date.now().toString(36)}`;

/** The editable content area of the document page. */
const editorOf = (page) => page.locator('#dx-editor-content');

async function waitLive(page) {
  await page.getByRole('status').filter({ hasText: /^Live/ }).first().waitFor({ timeout: T });
  await page.locator('.dx-editor-mount[data-synced="true"]').waitFor({ timeout: T });
}

async function waitText(page, text) {
  await editorOf(page).getByText(text, { exact: false }).first().waitFor({ timeout: T });
}

async function waitNoText(page, text) {
  await page.waitForFunction(
    (t) => !document.querySelector('#dx-editor-content')?.textContent?.includes(t),
    text,
    { timeout: T },
  );
}

await run('docs', async (browser) => {
  // The channel's name for the "linked channel" choice.
  const channel = await apiAs('alice', 'GET', `/api/v1/channels/${fixture.channel_id}`);

  const a = await newUserPage(browser);
  // Opening a document Bob may not see answers 403/404 on purpose; Chromium logs that as an error.
  const b = await newUserPage(browser, { allowConsoleErrors: [/status of 40[34]/] });
  await signIn(a.page, 'alice');
  await signIn(b.page, 'bob');

  // Alice creates the document from the list.
  await a.page.goto(`/w/${ws}/d`);
  await a.page.getByRole('heading', { name: 'Documents', level: 1 }).waitFor({ timeout: T });
  await a.page.getByRole('button', { name: /new document|create the first document/i }).first().click();
  const dialog = a.page.getByRole('dialog', { name: 'New document' });
  await dialog.getByLabel('Title').fill(TITLE);
  await dialog.getByLabel('Linked channel').selectOption({ label: `#${channel.name}` });
  await dialog.getByLabel('Everyone in the workspace').selectOption('edit');
  await dialog.getByRole('button', { name: 'Create document' }).click();
  await a.page.waitForURL(new RegExp(`/w/${ws}/d/[0-9a-f-]{36}$`), { timeout: T });
  const docUrl = new URL(a.page.url()).pathname;
  const docId = docUrl.split('/').pop();
  await waitLive(a.page);
  await a.page.getByRole('heading', { name: TITLE }).waitFor({ timeout: T });

  // Bob finds it in his list and opens it.
  await b.page.goto(`/w/${ws}/d`);
  await b.page.getByRole('link', { name: new RegExp(TITLE) }).click();
  await b.page.waitForURL((u) => u.pathname === docUrl, { timeout: T });
  await waitLive(b.page);

  // Both type; each sees the other's text.
  await editorOf(a.page).click();
  await a.page.keyboard.type('Alice drafts the launch plan.');
  await waitText(b.page, 'Alice drafts the launch plan.');

  await editorOf(b.page).click();
  await b.page.keyboard.press('ControlOrMeta+End');
  await b.page.keyboard.press('Enter');
  await b.page.keyboard.type('Bob adds the rollout dates.');
  await waitText(a.page, 'Bob adds the rollout dates.');

  // Named carets: Alice sees Bob's, Bob sees Alice's.
  await editorOf(a.page).click();
  await a.page.keyboard.press('ControlOrMeta+End');
  await a.page
    .locator(`.collaboration-carets__caret[data-user="${bob.display_name}"]`)
    .waitFor({ timeout: T });
  await b.page
    .locator(`.collaboration-carets__caret[data-user="${alice.display_name}"]`)
    .waitFor({ timeout: T });
  const label = await a.page
    .locator(`.collaboration-carets__caret[data-user="${bob.display_name}"] .collaboration-carets__label`)
    .textContent();
  assert(label === bob.display_name, `Bob's caret is labelled with his name, got ${label}`);
  // Presence shows the other person too.
  await a.page.getByRole('list', { name: new RegExp(`Also here: .*${bob.display_name}`) }).waitFor({ timeout: T });

  // Formatting through the toolbar reaches the other side.
  await a.page.keyboard.press('Enter');
  await a.page.getByRole('button', { name: 'Heading 2' }).click();
  await a.page.keyboard.type('Risks');
  await b.page.locator('#dx-editor-content h2', { hasText: 'Risks' }).waitFor({ timeout: T });

  await shot(a.page, 'docs-editor');

  // Alice names a version.
  await a.page.getByRole('button', { name: 'Versions' }).click();
  const panel = a.page.getByRole('complementary', { name: 'Version history' });
  await panel.getByLabel('Name the current version').fill('First draft');
  await panel.getByRole('button', { name: 'Save' }).click();
  await panel.getByRole('list', { name: 'Named versions' }).getByText('First draft').waitFor({ timeout: T });

  // Bob rewrites everything.
  await editorOf(b.page).click();
  await b.page.keyboard.press('ControlOrMeta+A');
  await b.page.keyboard.type('Bob replaced the whole plan.');
  await waitText(a.page, 'Bob replaced the whole plan.');
  await waitNoText(a.page, 'Alice drafts the launch plan.');

  // Alice previews, then restores the version: both see the restored text, live.
  await panel.getByRole('button', { name: 'Preview “First draft”' }).click();
  const preview = a.page.getByRole('dialog', { name: 'First draft' });
  await preview.getByText('Alice drafts the launch plan.').waitFor({ timeout: T });
  await preview.getByRole('button', { name: 'Restore this version' }).click();
  const confirm = a.page.getByRole('alertdialog', { name: 'Restore “First draft”?' });
  await confirm.getByRole('button', { name: 'Restore', exact: true }).click();
  await confirm.waitFor({ state: 'detached', timeout: T });
  for (const p of [a.page, b.page]) {
    await waitText(p, 'Alice drafts the launch plan.');
    await waitText(p, 'Bob adds the rollout dates.');
    await waitNoText(p, 'Bob replaced the whole plan.');
  }

  // A reload keeps the text.
  await b.page.reload();
  await waitLive(b.page);
  await waitText(b.page, 'Alice drafts the launch plan.');
  await waitText(b.page, 'Bob adds the rollout dates.');

  // Export as markdown: the download holds the text and the heading.
  await a.page.keyboard.press('Escape');
  const [download] = await Promise.all([
    a.page.waitForEvent('download', { timeout: T }),
    (async () => {
      await a.page.getByRole('button', { name: 'Export' }).click();
      await a.page.getByRole('menuitem', { name: /Markdown/ }).click();
    })(),
  ]);
  const md = await readFile(await download.path(), 'utf8');
  assert(md.includes('Alice drafts the launch plan.'), `markdown export holds the text:\n${md}`);
  assert(/^## Risks$/m.test(md), `markdown export holds the heading:\n${md}`);
  assert(download.suggestedFilename().endsWith('.md'), `export file name ${download.suggestedFilename()}`);

  // The server agrees with what the editors show.
  const exported = await apiAs('bob', 'GET', `/api/v1/documents/${docId}/export?format=json`);
  assert(JSON.stringify(exported).includes('Bob adds the rollout dates.'), 'server copy holds the text');

  // View-only access: Bob reads live but cannot type, and has no toolbar.
  const memo = await apiAs('alice', 'POST', `/api/v1/workspaces/${ws}/documents`, {
    title: 'Board memo',
    general_access: 'view',
  });
  await b.page.goto(`/w/${ws}/d/${memo.id}`);
  await b.page.getByRole('status').filter({ hasText: /view only/i }).waitFor({ timeout: T });
  assert(
    (await editorOf(b.page).getAttribute('contenteditable')) === 'false',
    'a viewer cannot edit',
  );
  assert((await b.page.getByRole('toolbar', { name: 'Formatting' }).count()) === 0, 'no toolbar for a viewer');
  await b.page.getByRole('button', { name: 'Versions' }).click();
  assert(
    (await b.page.getByLabel('Name the current version').count()) === 0,
    'a viewer cannot name versions',
  );

  // Alice shares the memo with Bob for editing; after a reload he can type.
  await a.page.goto(`/w/${ws}/d/${memo.id}`);
  await waitLive(a.page);
  await a.page.getByRole('button', { name: 'Share' }).click();
  const share = a.page.getByRole('dialog', { name: /Share/ });
  await share.getByLabel('Add a person').selectOption({ label: `${bob.display_name} (${bob.email})` });
  await share.getByLabel('Access', { exact: true }).selectOption('edit');
  await share.getByRole('button', { name: 'Add', exact: true }).click();
  await share.getByRole('list', { name: 'People with access' }).getByText(bob.display_name).waitFor({ timeout: T });
  await share.getByRole('button', { name: 'Done' }).click();
  await b.page.reload();
  await waitLive(b.page);
  await b.page.getByRole('toolbar', { name: 'Formatting' }).waitFor({ timeout: T });
  await editorOf(b.page).click();
  await b.page.keyboard.type('Bob may edit the memo now.');
  await waitText(a.page, 'Bob may edit the memo now.');

  // No access: a clear message instead of an editor.
  const secret = await apiAs('alice', 'POST', `/api/v1/workspaces/${ws}/documents`, { title: 'Private notes' });
  await b.page.goto(`/w/${ws}/d/${secret.id}`);
  await b.page.getByRole('alert').filter({ hasText: /could not be opened/ }).waitFor({ timeout: T });

  // The documents list, with the new document.
  await a.page.getByRole('link', { name: /All documents/ }).click();
  await a.page.getByRole('link', { name: new RegExp(TITLE) }).waitFor({ timeout: T });
  await shot(a.page, 'docs-list');

  assertNoErrors(a.page, b.page);
});
