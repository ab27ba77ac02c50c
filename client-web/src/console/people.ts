// The deployment's accounts, for names in lists and for pickers (custodians, subjects, accounts
// involved). `GET /api/v1/users` answers administrators and compliance officers.
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { api, describeError, type Schemas } from '../api';

export type Person = Schemas['UserView'];

export interface People {
  list: Person[] | null;
  error: string | null;
  /** "Alice Archer" for a known id, else a shortened id. */
  name: (id: string | null | undefined) => string;
  reload: () => void;
}

/** Every account (paged through, 500 at a time). */
export function usePeople(): People {
  const [list, setList] = useState<Person[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let live = true;
    (async () => {
      const all: Person[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await api('get', '/api/v1/users', { params: { query: { after, limit: 500 } } });
        all.push(...page);
        if (page.length < 500) break;
        after = page[page.length - 1].id;
      }
      return all;
    })()
      .then((all) => {
        if (!live) return;
        setList(all);
        setError(null);
      })
      .catch((e) => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [attempt]);

  const byId = useMemo(() => new Map((list ?? []).map((p) => [p.id, p])), [list]);
  const name = useCallback(
    (id: string | null | undefined) => {
      if (!id) return '—';
      const p = byId.get(id);
      if (p) return p.status === 'erased' ? 'Erased account' : p.display_name;
      return id === 'system' ? 'System' : `${id.slice(0, 8)}…`;
    },
    [byId],
  );
  const reload = useCallback(() => setAttempt((a) => a + 1), []);
  return { list, error, name, reload };
}
