// Work in progress kept in the browser until it is deployed: a process's or a decision table's
// XML, per workspace. A reload or a wrong click loses nothing; a deploy clears the draft, since
// the server holds that version from then on. A table's test cases are kept here too, beyond
// the deploy: a DMN file has no place for them, and the server keeps them only to check.

const PREFIX = 'concord.designer.';

export interface Draft {
  /** The XML being edited. */
  xml: string;
  /** When it was last saved, ms since epoch. */
  saved: number;
}

export interface DraftTest {
  name: string;
  /** The input variables, as JSON text. */
  input: string;
  /** The expected result, as JSON text. */
  expect: string;
}

function key(kind: 'process' | 'decision', workspaceId: string, id: string): string {
  return `${PREFIX}${kind}.${workspaceId}.${id}`;
}

export function loadDraft(kind: 'process' | 'decision', workspaceId: string, id: string): Draft | null {
  try {
    const raw = localStorage.getItem(key(kind, workspaceId, id));
    if (!raw) return null;
    const d = JSON.parse(raw) as Partial<Draft>;
    return typeof d.xml === 'string' ? { xml: d.xml, saved: Number(d.saved) || 0 } : null;
  } catch {
    return null;
  }
}

export function saveDraft(kind: 'process' | 'decision', workspaceId: string, id: string, draft: Omit<Draft, 'saved'>) {
  try {
    localStorage.setItem(key(kind, workspaceId, id), JSON.stringify({ ...draft, saved: Date.now() }));
  } catch {
    /* storage full or unavailable: the editor still holds it */
  }
}

export function dropDraft(kind: 'process' | 'decision', workspaceId: string, id: string) {
  try {
    localStorage.removeItem(key(kind, workspaceId, id));
  } catch {
    /* unavailable */
  }
}

/** The ids of a workspace's drafts of one kind (processes or tables not deployed yet included). */
export function draftIds(kind: 'process' | 'decision', workspaceId: string): string[] {
  const prefix = key(kind, workspaceId, '');
  const out: string[] = [];
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (k?.startsWith(prefix)) out.push(k.slice(prefix.length));
    }
  } catch {
    /* unavailable */
  }
  return out;
}

/** A decision table's test cases as written in its editor. */
export function loadTests(workspaceId: string, key: string): DraftTest[] {
  try {
    const raw = localStorage.getItem(`${PREFIX}tests.${workspaceId}.${key}`);
    const list: unknown = raw ? JSON.parse(raw) : [];
    return Array.isArray(list)
      ? list.filter((t): t is DraftTest => typeof t?.name === 'string' && typeof t?.input === 'string' && typeof t?.expect === 'string')
      : [];
  } catch {
    return [];
  }
}

export function saveTests(workspaceId: string, key: string, tests: DraftTest[]) {
  try {
    localStorage.setItem(`${PREFIX}tests.${workspaceId}.${key}`, JSON.stringify(tests));
  } catch {
    /* unavailable */
  }
}
