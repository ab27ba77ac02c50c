// The signed-in person's open workflow tasks in one workspace (`GET /api/v1/workflow-tasks`,
// which answers every workspace's), kept current from the live connection: the hub tells each
// person a task names when it opens or closes (`workflow_task_changed`), and the list is loaded
// again. The shell holds one inbox per workspace, for the sidebar's count and the Tasks screen.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, describeError, type Schemas } from '../api';
import { on, onStatus } from '../live';

export type Task = Schemas['TaskView'];

/** The most tasks asked for at once (the server's largest page). */
const LIMIT = 500;

export interface TaskInbox {
  /** The workspace's open tasks, in the server's order (oldest first); `null` until loaded. */
  tasks: Task[] | null;
  error: string | null;
  reload: () => void;
  /** Takes a task off the list at once (after completing it here), ahead of the reload. */
  remove: (taskId: string) => void;
}

export function useTaskInbox(workspaceId: string | null): TaskInbox {
  const [tasks, setTasks] = useState<Task[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const timer = useRef<number | undefined>(undefined);
  const removed = useRef(new Set<string>());

  useEffect(() => {
    setTasks(null);
    setError(null);
    removed.current.clear();
  }, [workspaceId]);

  useEffect(() => {
    if (!workspaceId) return;
    let live = true;
    api('get', '/api/v1/workflow-tasks', { params: { query: { limit: LIMIT } } })
      .then((page) => {
        if (!live) return;
        // A task completed here may still be listed by a read that began before it closed.
        const gone = removed.current;
        setTasks(page.tasks.filter((t) => t.workspace_id === workspaceId && t.status === 'open' && !gone.has(t.id)));
        setError(null);
      })
      .catch((e) => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [workspaceId, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);

  // A burst of changes (a process opening several tasks) loads the list once.
  const reloadSoon = useCallback(() => {
    clearTimeout(timer.current);
    timer.current = window.setTimeout(reload, 250);
  }, [reload]);
  useEffect(() => () => clearTimeout(timer.current), []);

  useEffect(() => {
    if (!workspaceId) return;
    const offTasks = on('workflow_task_changed', (ev) => {
      if (ev.workspace_id === workspaceId) reloadSoon();
    });
    // Changes made while the connection was down, or missed for good, are only in a reload.
    let wasOffline = false;
    const offStatus = onStatus((s) => {
      if (s === 'offline') wasOffline = true;
      if (s === 'online' && wasOffline) {
        wasOffline = false;
        reloadSoon();
      }
    });
    const offResync = on('resync', reloadSoon);
    return () => {
      offTasks();
      offStatus();
      offResync();
    };
  }, [workspaceId, reloadSoon]);

  const remove = useCallback((taskId: string) => {
    removed.current.add(taskId);
    setTasks((list) => list && list.filter((t) => t.id !== taskId));
  }, []);

  return useMemo(() => ({ tasks, error, reload, remove }), [tasks, error, reload, remove]);
}
