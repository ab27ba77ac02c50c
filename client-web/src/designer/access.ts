// Who is offered the designer: people whose workspace role holds `workflows.manage` (owners and
// admins, and custom roles given it). Like the console's access.ts, a choice of links, not a
// check: the server decides every request and the designer shows its refusal as given.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import type { Workspace } from '../shell/types';

const known = new Map<string, boolean>();

/** Whether the caller may design processes in `workspace` (`null` while finding out). */
export function useCanDesign(workspace: Workspace | null): boolean | null {
  const role = workspace?.role ?? null;
  const cacheKey = workspace ? `${workspace.id}:${role}` : '';
  const quick = role === 'owner' || role === 'admin' ? true : role === null ? false : known.get(cacheKey);
  const [answer, setAnswer] = useState<boolean | null>(quick ?? null);
  useEffect(() => {
    if (quick !== undefined) {
      setAnswer(quick);
      return;
    }
    let live = true;
    setAnswer(null);
    api('get', '/api/v1/workspaces/{workspace_id}/roles', { params: { path: { workspace_id: workspace!.id } } })
      .then((roles) => {
        const mine = roles.find((r) => r.name === role);
        const can = !!mine?.permissions.some((p) => String(p) === 'workflows.manage');
        known.set(cacheKey, can);
        if (live) setAnswer(can);
      })
      .catch(() => live && setAnswer(false));
    return () => {
      live = false;
    };
  }, [cacheKey]);
  return answer;
}
