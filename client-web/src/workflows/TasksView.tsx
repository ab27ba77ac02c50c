// Tasks: the signed-in person's open workflow tasks in the workspace, in two tabs: My tasks
// (assigned to them) and My queues (held by nobody, shared with a role they hold or a channel they
// are in, to claim); the one chosen with its due date and SLA state, its form, handing it on,
// its comments, and completing it. The list is the shell's inbox (inbox.ts), kept live by the
// hub; at phone width the list and the chosen task take turns on the screen.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, describeError, type Me } from '../api';
import { ago, fullTime } from '../docs/model';
import { linkClick } from '../shell/router';
import type { WorkspaceData } from '../shell/workspaceData';
import { readForm } from './form';
import type { Task, TaskInbox } from './inbox';
import { TaskForm } from './TaskForm';
import { Comments, Reassign } from './TaskWork';
import './tasks.css';

type Tab = 'mine' | 'queues';

export interface TasksViewProps {
  workspaceId: string;
  /** The chosen task, or undefined for the list alone. */
  taskId?: string;
  me: Me;
  inbox: TaskInbox;
  /** The workspace's members (the user picker, names) and channels (a channel's task). */
  data: WorkspaceData;
  navigate: (path: string) => void;
}

type Notice = { kind: 'done' | 'problem'; text: string };

export default function TasksView(props: TasksViewProps) {
  const { workspaceId, taskId, me, inbox, data } = props;
  const base = `/w/${workspaceId}/tasks`;
  const [notice, setNotice] = useState<Notice | null>(null);
  const [roles, setRoles] = useState<Map<string, string>>(new Map());
  const [, setMinute] = useState(0);
  // The task being completed stays on screen until the answer, even if the list drops it first.
  const [busy, setBusy] = useState<Task | null>(null);
  const [tab, setTab] = useState<Tab>('mine');
  const [handingOn, setHandingOn] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const taskHeading = useRef<HTMLHeadingElement>(null);

  // Due dates pass while the screen is open: it is drawn again every minute.
  useEffect(() => {
    const t = setInterval(() => setMinute((m) => m + 1), 60_000);
    return () => clearInterval(t);
  }, []);
  const now = Date.now();

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/workspaces/{workspace_id}/roles', { params: { path: { workspace_id: workspaceId } } })
      .then((list) => live && setRoles(new Map(list.map((r) => [r.id, r.name]))))
      .catch(() => {
        /* a role's task then says "A role you hold" */
      });
    return () => {
      live = false;
    };
  }, [workspaceId]);

  const tasks = useMemo(() => sortTasks(inbox.tasks ?? []), [inbox.tasks]);
  const mine = useMemo(() => tasks.filter((t) => t.assignee === me.id), [tasks, me.id]);
  const queued = useMemo(() => tasks.filter((t) => !t.assignee), [tasks]);
  const shown = tab === 'mine' ? mine : queued;
  const listed = taskId ? tasks.find((t) => t.id === taskId) : undefined;
  const selected = listed ?? (busy && busy.id === taskId ? busy : undefined);
  const form = useMemo(() => readForm(selected?.form), [selected?.id, selected?.form]);
  const members = useMemo(() => [...data.members.values()], [data.members]);

  // A notice is about the task it followed: choosing another one clears it.
  useEffect(() => {
    if (taskId) setNotice(null);
    setHandingOn(false);
  }, [taskId]);

  // The chosen task's tab is shown (a link to a queued task, a task just claimed).
  useEffect(() => {
    if (!listed) return;
    if (listed.assignee === me.id) setTab('mine');
    else if (!listed.assignee) setTab('queues');
  }, [listed?.id, listed?.assignee]);

  // Choosing a task moves focus to it, so the form is what is read next.
  useEffect(() => {
    if (taskId) taskHeading.current?.focus();
  }, [taskId, !!selected]);

  const forWhom = (t: Task): string => {
    if (t.assignee === me.id) return 'You';
    if (t.assignee) return data.members.get(t.assignee)?.display_name ?? 'Someone else';
    if (t.candidate_role) {
      const role = roles.get(t.candidate_role);
      return role ? `Role: ${role}` : 'A role you hold';
    }
    if (t.candidate_channel) {
      const channel = data.channels?.find((c) => c.id === t.candidate_channel);
      return channel?.name ? `#${channel.name}` : 'A channel you are in';
    }
    return 'Unassigned';
  };

  const completed = (done: Task) => {
    inbox.remove(done.id);
    setNotice({ kind: 'done', text: `Done: “${title(done)}” is completed.` });
    props.navigate(base);
    heading.current?.focus();
  };

  // A task shared with a group (nobody holds it yet) is taken by claiming it; an assignee
  // accepts theirs the same way, which stops its "not claimed" escalation.
  const claim = async (t: Task) => {
    try {
      await api('post', '/api/v1/workflow-tasks/{task_id}/claim', { params: { path: { task_id: t.id } } });
      setNotice({ kind: 'done', text: `Claimed: “${title(t)}” is yours now.` });
      setTab('mine');
    } catch (e) {
      setNotice({ kind: 'problem', text: describeError(e) });
    }
    inbox.reload();
  };

  const handedOn = (to: string, t: Task) => {
    inbox.remove(t.id);
    const who = data.members.get(to)?.display_name ?? 'them';
    setNotice({ kind: 'done', text: `Handed on: “${title(t)}” is ${who}’s now.` });
    props.navigate(base);
    heading.current?.focus();
  };

  const gone = (message: string) => {
    setNotice({ kind: 'problem', text: `${message} The list has been refreshed.` });
    inbox.reload();
  };

  const columns = ['tk-columns', taskId ? 'tk-has-task' : ''].filter(Boolean).join(' ');

  return (
    <section class="tk-page" aria-labelledby="tk-title">
      <div class="tk-top">
        <h1 id="tk-title" ref={heading} tabIndex={-1}>
          Tasks
        </h1>
        {inbox.tasks && (
          <p class="tk-count">
            {tasks.length === 0 ? 'Nothing open' : `${tasks.length} open`}
          </p>
        )}
      </div>
      <div class="tk-notice-slot" role="status" aria-live="polite">
        {notice?.kind === 'done' && (
          <p class="tk-notice tk-notice-done">
            <span>{notice.text}</span>
            <button type="button" class="link-button" onClick={() => setNotice(null)}>
              Dismiss
            </button>
          </p>
        )}
      </div>
      {notice?.kind === 'problem' && (
        <div class="tk-notice tk-notice-problem" role="alert">
          <span>{notice.text}</span>
          <button type="button" class="link-button" onClick={() => setNotice(null)}>
            Dismiss
          </button>
        </div>
      )}

      <div class={columns}>
        <div class="tk-list-pane">
          {inbox.error && (
            <div class="error-text" role="alert">
              Could not load your tasks: {inbox.error}{' '}
              <button type="button" class="link-button" onClick={inbox.reload}>
                Try again
              </button>
            </div>
          )}
          {inbox.tasks === null && !inbox.error && <p class="tk-muted">Loading your tasks…</p>}
          <div class="tk-tabs" role="tablist" aria-label="Which tasks">
            {(['mine', 'queues'] as const).map((id) => (
              <button
                key={id}
                type="button"
                role="tab"
                id={`tk-tab-${id}`}
                aria-selected={tab === id}
                aria-controls="tk-tab-panel"
                class="tk-tab"
                onClick={() => setTab(id)}
              >
                {id === 'mine' ? 'My tasks' : 'My queues'}
                {inbox.tasks !== null && <span class="tk-tab-count">{id === 'mine' ? mine.length : queued.length}</span>}
              </button>
            ))}
          </div>
          <div id="tk-tab-panel" role="tabpanel" aria-labelledby={`tk-tab-${tab}`}>
            {inbox.tasks !== null && tasks.length === 0 && (
              <div class="tk-empty">
                <p>You have no open tasks here.</p>
                <p class="tk-muted">Tasks assigned to you, to a role you hold or to a channel you are in show up here as processes reach them.</p>
              </div>
            )}
            {inbox.tasks !== null && tasks.length > 0 && shown.length === 0 && (
              <div class="tk-empty">
                <p>{tab === 'mine' ? 'Nothing is assigned to you.' : 'Your queues are empty.'}</p>
                <p class="tk-muted">
                  {tab === 'mine'
                    ? `${queued.length} waiting in your queues: claim one to work on it.`
                    : 'Tasks shared with a role you hold or a channel you are in wait here until someone claims them.'}
                </p>
              </div>
            )}
            {shown.length > 0 && (
              <ul class="tk-list" aria-label="Open tasks">
                {shown.map((t) => (
                  <li key={t.id}>
                    <TaskItem task={t} href={`${base}/${encodeURIComponent(t.id)}`} current={t.id === taskId} forWhom={forWhom(t)} now={now} />
                  </li>
                ))}
              </ul>
            )}
          </div>
        </div>

        <div class="tk-detail-pane">
          {taskId && (
            <a class="tk-back" href={base} onClick={linkClick}>
              ← All tasks
            </a>
          )}
          {!taskId && tasks.length > 0 && <p class="tk-muted tk-pick">Choose a task to see its form.</p>}
          {taskId && !selected && inbox.tasks !== null && (
            <div class="tk-empty">
              <h2 ref={taskHeading} tabIndex={-1}>
                This task is not open
              </h2>
              <p class="tk-muted">It was completed or cancelled, or it is no longer yours.</p>
            </div>
          )}
          {selected && (
            <article class="tk-detail" aria-labelledby="tk-task-title">
              <h2 id="tk-task-title" ref={taskHeading} tabIndex={-1}>
                {title(selected)}
              </h2>
              <dl class="tk-facts">
                <div>
                  <dt>Process</dt>
                  <dd>{selected.process_id}</dd>
                </div>
                <div>
                  <dt>For</dt>
                  <dd>
                    {forWhom(selected)}
                    {(!selected.assignee || (selected.routing && !selected.routing.claimed_at && selected.assignee === me.id)) && (
                      <>
                        {' '}
                        <button type="button" class="button tk-claim" onClick={() => claim(selected)}>
                          {selected.assignee ? 'Accept' : 'Claim'}
                        </button>
                      </>
                    )}
                  </dd>
                </div>
                {selected.routing && (
                  <div>
                    <dt>Why</dt>
                    <dd class="tk-why">{selected.routing.explanation}</dd>
                  </div>
                )}
                {selected.due_at && (
                  <div>
                    <dt>Due</dt>
                    <dd>
                      <Due task={selected} now={now} />
                    </dd>
                  </div>
                )}
                <div>
                  <dt>Opened</dt>
                  <dd>
                    <time dateTime={selected.created_at} title={fullTime(selected.created_at)}>
                      {ago(selected.created_at, now)}
                    </time>
                  </dd>
                </div>
              </dl>
              <div class="tk-links">
                <a href={`/w/${workspaceId}/instances/${selected.instance_id}`} onClick={linkClick}>
                  Open its process instance
                </a>
                {selected.assignee === me.id && !handingOn && (
                  <button type="button" class="button" onClick={() => setHandingOn(true)}>
                    Hand on…
                  </button>
                )}
              </div>
              {handingOn && (
                <Reassign task={selected} members={data.members} meId={me.id} onDone={handedOn} onCancel={() => setHandingOn(false)} />
              )}
              <TaskForm
                key={selected.id}
                task={selected}
                form={form}
                members={members}
                meId={me.id}
                onBusy={(b) => setBusy(b ? selected : null)}
                onCompleted={completed}
                onGone={gone}
              />
              <Comments key={`comments-${selected.id}`} task={selected} members={data.members} meId={me.id} />
            </article>
          )}
        </div>
      </div>
    </section>
  );
}

function TaskItem(props: { task: Task; href: string; current: boolean; forWhom: string; now: number }) {
  const { task: t } = props;
  return (
    <a class="tk-item" href={props.href} aria-current={props.current ? 'page' : undefined} onClick={linkClick}>
      <span class="tk-item-head">
        <span class="tk-item-name">{title(t)}</span>
        {t.due_at && <Due task={t} now={props.now} short />}
      </span>
      <span class="tk-item-meta">
        <span>{t.process_id}</span>
        <span aria-hidden="true"> · </span>
        <span class="sr-only">, for </span>
        <span>{props.forWhom}</span>
      </span>
    </a>
  );
}

/** Where a task stands against its due date, now: as the server reckons it (a quarter of the
 * time it was given, at most a day, before the due date is "due soon"). */
export function slaOf(t: Task, now: number): 'on_time' | 'due_soon' | 'overdue' | null {
  if (!t.due_at) return null;
  const due = new Date(t.due_at).getTime();
  const opened = new Date(t.created_at).getTime();
  if (isNaN(due)) return t.sla ?? null;
  if (now > due) return 'overdue';
  const lead = Math.min((due - opened) / 4, 86_400_000);
  return now >= due - lead ? 'due_soon' : 'on_time';
}

/** A due date with its SLA state, in words too (not by colour alone). */
function Due({ task, now, short }: { task: Task; now: number; short?: boolean }) {
  const at = task.due_at!;
  const state = slaOf(task, now);
  const cls = state === 'overdue' ? 'tk-due tk-overdue' : state === 'due_soon' ? 'tk-due tk-due-soon' : 'tk-due';
  const text =
    state === 'overdue'
      ? `Overdue, due ${ago(at, now)}`
      : state === 'due_soon'
        ? `Due soon, ${ago(at, now)}`
        : short
          ? `Due ${ago(at, now)}`
          : `${fullTime(at)} (${ago(at, now)})`;
  return (
    <time class={cls} dateTime={at} title={fullTime(at)}>
      {text}
    </time>
  );
}

/** A task's name, or its element when the model gave it none. */
function title(t: Task): string {
  return t.name?.trim() || t.element;
}

/** Due first, soonest (so overdue) first; then those without a due date, newest first. */
function sortTasks(tasks: Task[]): Task[] {
  const time = (s: string | null | undefined) => (s ? new Date(s).getTime() : NaN);
  return [...tasks].sort((a, b) => {
    const da = time(a.due_at);
    const db = time(b.due_at);
    if (!isNaN(da) || !isNaN(db)) {
      if (isNaN(da)) return 1;
      if (isNaN(db)) return -1;
      if (da !== db) return da - db;
    }
    return time(b.created_at) - time(a.created_at);
  });
}
