// A shipped decision table's test cases, read from its YAML twin (the DMN file has no place for
// them), as the editor's test-case rows.
import { parse } from 'yaml';
import type { DraftTest } from '../drafts';

export function testsOf(twin: string): DraftTest[] {
  const doc: unknown = parse(twin);
  const tests = typeof doc === 'object' && doc !== null ? Reflect.get(doc, 'tests') : undefined;
  if (!Array.isArray(tests)) return [];
  return tests.map((t: unknown, i: number) => {
    const get = (k: string) => (typeof t === 'object' && t !== null ? Reflect.get(t, k) : undefined);
    const name = get('name');
    return {
      name: typeof name === 'string' ? name : `test case ${i + 1}`,
      input: JSON.stringify(get('input') ?? {}),
      expect: JSON.stringify(get('expect') ?? null),
    };
  });
}
