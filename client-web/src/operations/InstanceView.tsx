// An instance, for the people who operate a workspace's processes (`workflows.manage`) and for
// whoever started it: its diagram (the version it runs on) with the path taken and where it is
// now, its variables, tasks, incidents (retry, skip, or cancel the instance) and every step of
// its history. Kept current from the live connection (its tasks changing) and, while it runs,
// by reading it again now and then.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, api, describeError, type Me, type Schemas } from '../api';
import { on } from '../live';
import { ago, fullTime } from '../docs/model';
import { linkClick } from '../shell/router';
import type { WorkspaceData } from '../shell/workspaceData';
import { Diagram, type Decorations, type DrawnElement } from './Diagram';
import './operations.css';

type Instance = Schemas['InstanceView'];
type Step = Schemas['StepView'];
type Incident = Schemas['IncidentView'];

/** How often a running instance is read again (service calls and timers move it unseen). */
const POLL_MS = 5000;

export interface InstancePageProps {
  workspaceId: string;
  instanceId: string;
  me: Me;
  data: WorkspaceData;
}

export default function InstancePage(props: InstancePageProps) {
  const { workspaceId, instanceId, data } = props;
  const [instance, setInstance] = useState<Instance | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [xml, setXml] = useState<string | null>(null);
  const [diagramNote, setDiagramNote] = useState<string | null>(null);
  const [notice, setNotice] = useState<{ kind: 'done' | 'problem'; text: string } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [confirmCancel, setConfirmCancel] = useState(false);
  const [tick, setTick] = useState(0);
  const timer = useRef<number | undefined>(undefined);


  const reload = useCallback(() => setTick((t) => t + 1), []);
  const reloadSoon = useCallback(() => {
    clearTimeout(timer.current);
    timer.current = window.setTimeout(reload, 300);
  }, [reload]);
  useEffect(() => () => clearTimeout(timer.current), []);

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/workspaces/{workspace_id}/workflow-instances/{instance_id}', {
      params: { path: { workspace_id: workspaceId, instance_id: instanceId } },
    })
      .then((i) => {
        if (!live) return;
        setInstance(i);
        setError(null);
      })
      .catch((e) => {
        if (!live) return;
        setError(e instanceof ApiError && e.status === 404 ? 'not_found' : describeError(e));
      });
    return () => {
      live = false;
    };
  }, [workspaceId, instanceId, tick]);

  // Its tasks opening and closing, and its status changing, show without a reload.
  useEffect(() => {
    const offTasks = on('workflow_task_changed', (ev) => {
      if (ev.instance_id === instanceId) reloadSoon();
    });
    const offAll = on('*', (ev) => {
      const e = ev as { type: string; instance_id?: string };
      if (e.type === 'workflow_instance_changed' && e.instance_id === instanceId) reloadSoon();
    });
    const offResync = on('resync', reloadSoon);
    return () => {
      offTasks();
      offAll();
      offResync();
    };
  }, [instanceId, reloadSoon]);

  const running = instance?.status === 'running';
  useEffect(() => {
    if (!running) return;
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') reload();
    }, POLL_MS);
    return () => clearInterval(t);
  }, [running, reload]);

  // The diagram of the version it runs on (shown to those who may export the model).
  const processId = instance?.process_id;
  const version = instance?.version;
  useEffect(() => {
    if (!processId || !version) return;
    let live = true;
    api('get', '/api/v1/workspaces/{workspace_id}/workflows/{process_id}/bpmn', {
      params: { path: { workspace_id: workspaceId, process_id: processId }, query: { version } },
    })
      .then((text) => {
        if (!live) return;
        setXml(typeof text === 'string' ? text : null);
        setDiagramNote(null);
      })
      .catch((e) => {
        if (!live) return;
        setXml(null);
        setDiagramNote(
          e instanceof ApiError && e.status === 403
            ? 'The diagram is shown to the people who manage this workspace’s processes.'
            : `The diagram could not be loaded: ${describeError(e)}`,
        );
      });
    return () => {
      live = false;
    };
  }, [workspaceId, processId, version]);

  const nameOf = (id: string | null | undefined): string => {
    if (!id) return 'Nobody';
    if (id === 'system') return 'Concord';
    if (id === props.me.id) return 'You';
    return data.members.get(id)?.display_name ?? 'Former member';
  };

  const path = useMemo(() => walk(instance), [instance]);
  const decorate = useCallback((drawn: DrawnElement[]) => decorations(drawn, path, instance, nameOf), [path, instance, data.members]);

  const resolve = async (incident: Incident, action: 'retry' | 'skip' | 'cancel') => {
    setBusy(`${incident.id}:${action}`);
    setNotice(null);
    try {
      const after = await api('post', '/api/v1/workspaces/{workspace_id}/workflow-incidents/{incident_id}/resolve', {
        params: { path: { workspace_id: workspaceId, incident_id: incident.id } },
        json: { action },
      });
      setInstance(after);
      const what = action === 'retry' ? 'Retried' : action === 'skip' ? 'Skipped' : 'Cancelled the instance at';
      setNotice({ kind: 'done', text: `${what} “${incident.element}”.` });
      reloadSoon();
    } catch (e) {
      setNotice({ kind: 'problem', text: describeError(e) });
    } finally {
      setBusy(null);
    }
  };

  const cancel = async () => {
    setBusy('cancel');
    setNotice(null);
    try {
      const after = await api('post', '/api/v1/workspaces/{workspace_id}/workflow-instances/{instance_id}/cancel', {
        params: { path: { workspace_id: workspaceId, instance_id: instanceId } },
      });
      setInstance(after);
      setConfirmCancel(false);
      setNotice({ kind: 'done', text: 'The instance was cancelled.' });
    } catch (e) {
      setNotice({ kind: 'problem', text: describeError(e) });
    } finally {
      setBusy(null);
    }
  };

  if (error === 'not_found') {
    return (
      <section class="op-page">
        <h1>Instance not found</h1>
        <p class="op-muted">It does not exist, or it is not one you may see: you see the instances you started, and every instance if you manage this workspace’s processes.</p>
      </section>
    );
  }
  if (error && !instance) {
    return (
      <section class="op-page">
        <h1>Instance</h1>
        <p class="error-text" role="alert">
          Could not load the instance: {error}{' '}
          <button type="button" class="link-button" onClick={reload}>
            Try again
          </button>
        </p>
      </section>
    );
  }
  if (!instance) return <p class="op-page op-muted">Loading the instance…</p>;

  const processBase = `/w/${workspaceId}/processes/${encodeURIComponent(instance.process_id)}`;
  const open = instance.incidents.filter((i) => i.status === 'open');
  const resolved = instance.incidents.filter((i) => i.status !== 'open');
  const variables = Object.entries(instance.variables ?? {});

  return (
    <section class="op-page" aria-labelledby="op-instance-title">
      <nav class="op-crumbs" aria-label="Process">
        <a href={`${processBase}/instances`} onClick={linkClick}>
          {instance.name ?? instance.process_id}
        </a>
        <span aria-hidden="true"> › </span>
        <a href={`${processBase}/dashboard`} onClick={linkClick}>
          Dashboard
        </a>
      </nav>
      <div class="op-top">
        <h1 id="op-instance-title">
          {instance.name ?? instance.process_id} <span class="op-muted op-version">v{instance.version}</span>
        </h1>
        <StatusBadge status={instance.status} />
      </div>
      <dl class="op-facts">
        <div>
          <dt>Instance</dt>
          <dd class="op-mono">{instance.id}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>
            <time dateTime={instance.started_at} title={fullTime(instance.started_at)}>
              {ago(instance.started_at)}
            </time>{' '}
            by {instance.started_by ? nameOf(instance.started_by) : 'a trigger'}
          </dd>
        </div>
        <div>
          <dt>{instance.ended_at ? 'Ended' : 'Last change'}</dt>
          <dd>
            <time dateTime={instance.ended_at ?? instance.updated_at} title={fullTime(instance.ended_at ?? instance.updated_at)}>
              {ago(instance.ended_at ?? instance.updated_at)}
            </time>
          </dd>
        </div>
        {instance.parent_id && (
          <div>
            <dt>Started by instance</dt>
            <dd>
              <a href={`/w/${workspaceId}/instances/${instance.parent_id}`} onClick={linkClick}>
                {instance.parent_id.slice(0, 8)}…
              </a>
            </dd>
          </div>
        )}
      </dl>
      {instance.error && (
        <p class="op-error-box" role="note">
          It failed: {instance.error}
        </p>
      )}
      <div class="op-notice-slot" role="status" aria-live="polite">
        {notice?.kind === 'done' && <p class="op-notice op-notice-done">{notice.text}</p>}
      </div>
      {notice?.kind === 'problem' && (
        <p class="op-notice op-notice-problem" role="alert">
          {notice.text}
        </p>
      )}
      {running && (
        <div class="op-actions">
          {!confirmCancel ? (
            <button type="button" class="button" onClick={() => setConfirmCancel(true)}>
              Cancel instance…
            </button>
          ) : (
            <div class="op-confirm" role="group" aria-label="Cancel the instance">
              <span>Cancel this instance? Its open tasks close and it stops where it is.</span>
              <button type="button" class="button button-danger" disabled={busy === 'cancel'} onClick={cancel}>
                Cancel the instance
              </button>
              <button type="button" class="button" onClick={() => setConfirmCancel(false)}>
                Keep it running
              </button>
            </div>
          )}
        </div>
      )}

      <h2>Diagram</h2>
      {xml ? (
        <Diagram
          xml={xml}
          decorate={decorate}
          label={`The diagram of ${instance.name ?? instance.process_id}, with the path this instance took`}
          legend={
            <ul class="op-legend">
              <li>
                <span class="op-swatch op-swatch-done" /> Done
              </li>
              <li>
                <span class="op-swatch op-swatch-current" /> Now
              </li>
              <li>
                <span class="op-swatch op-swatch-failed" /> Incident
              </li>
            </ul>
          }
        />
      ) : (
        <p class="op-muted">{diagramNote ?? 'Loading the diagram…'}</p>
      )}
      <p class="op-path" aria-label="Path taken">
        <strong>Path taken:</strong> {path.order.length ? path.order.join(' → ') : 'nothing yet'}
        {running && path.current.size > 0 && (
          <>
            {' '}
            · <strong>Now at:</strong> {[...path.current].join(', ')}
          </>
        )}
      </p>

      <h2>Incidents</h2>
      {open.length === 0 && resolved.length === 0 && <p class="op-muted">No incidents.</p>}
      {open.length > 0 && (
        <ul class="op-incidents" aria-label="Open incidents">
          {open.map((i) => (
            <li key={i.id} class="op-incident">
              <p class="op-incident-head">
                <strong>{i.element}</strong>{' '}
                <time class="op-muted" dateTime={i.raised_at} title={fullTime(i.raised_at)}>
                  {ago(i.raised_at)}
                </time>
              </p>
              <p class="op-incident-message">{i.message}</p>
              <div class="op-actions">
                <button type="button" class="button button-primary" disabled={busy !== null} onClick={() => resolve(i, 'retry')}>
                  Retry
                </button>
                <button type="button" class="button" disabled={busy !== null} onClick={() => resolve(i, 'skip')}>
                  Skip
                </button>
                <button type="button" class="button button-danger" disabled={busy !== null} onClick={() => resolve(i, 'cancel')}>
                  Cancel instance
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
      {resolved.length > 0 && (
        <details class="op-details">
          <summary>{resolved.length === 1 ? 'One resolved incident' : `${resolved.length} resolved incidents`}</summary>
          <ul class="op-plain-list">
            {resolved.map((i) => (
              <li key={i.id}>
                <strong>{i.element}</strong>: {i.message}{' '}
                <span class="op-muted">(resolved {i.resolved_at ? ago(i.resolved_at) : ''})</span>
              </li>
            ))}
          </ul>
        </details>
      )}

      <h2>Tasks</h2>
      {instance.tasks.length === 0 ? (
        <p class="op-muted">No tasks.</p>
      ) : (
        <div class="op-table-wrap">
          <table class="op-table">
            <thead>
              <tr>
                <th scope="col">Task</th>
                <th scope="col">Status</th>
                <th scope="col">For</th>
                <th scope="col">Due</th>
                <th scope="col">Done by</th>
              </tr>
            </thead>
            <tbody>
              {instance.tasks.map((t) => (
                <tr key={t.id}>
                  <th scope="row">{t.name?.trim() || t.element}</th>
                  <td>
                    <StatusBadge status={t.status} />
                  </td>
                  <td>{t.assignee ? nameOf(t.assignee) : t.queue ? (t.queue.kind === 'role' ? 'A role' : 'A channel') : t.unresolved_assignment ?? 'Nobody'}</td>
                  <td>{t.due_at ? <Sla state={t.sla ?? null} due={t.due_at} /> : '–'}</td>
                  <td>{t.closed_by ? nameOf(t.closed_by) : '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2>Variables</h2>
      {variables.length === 0 ? (
        <p class="op-muted">No variables.</p>
      ) : (
        <div class="op-table-wrap">
          <table class="op-table op-variables">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Value</th>
              </tr>
            </thead>
            <tbody>
              {variables.map(([k, v]) => (
                <tr key={k}>
                  <th scope="row" class="op-mono">
                    {k}
                  </th>
                  <td class="op-mono op-value">{typeof v === 'string' ? v : JSON.stringify(v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2>History</h2>
      <ol class="op-history" aria-label="History">
        {instance.history.map((s) => (
          <li key={s.step}>
            <span class="op-history-step op-muted">#{s.step}</span>
            <time class="op-muted" dateTime={s.at} title={fullTime(s.at)}>
              {new Date(s.at).toLocaleTimeString()}
            </time>
            <span class="op-history-what">
              {eventText(s)}
              {s.element ? (
                <>
                  {' '}
                  <span class="op-mono">{s.element}</span>
                </>
              ) : null}
            </span>
            {s.actor && <span class="op-muted">by {nameOf(s.actor)}</span>}
            {Object.keys(s.changed ?? {}).length > 0 && <span class="op-muted">sets {Object.keys(s.changed).join(', ')}</span>}
          </li>
        ))}
      </ol>
    </section>
  );
}

/** An instance's or a task's status, in words and colour. */
export function StatusBadge({ status }: { status: string }) {
  const label: Record<string, string> = {
    running: 'Running',
    completed: 'Completed',
    failed: 'Failed',
    cancelled: 'Cancelled',
    terminated: 'Terminated',
    open: 'Open',
  };
  return <span class={`op-badge op-badge-${status}`}>{label[status] ?? status}</span>;
}

/** A task's standing against its due date. */
export function Sla({ state, due }: { state: string | null; due: string }) {
  const text = state === 'overdue' ? 'Overdue' : state === 'due_soon' ? 'Due soon' : 'On time';
  return (
    <span class={`op-sla op-sla-${state ?? 'on_time'}`} title={fullTime(due)}>
      {text}, due {ago(due)}
    </span>
  );
}

/** What a history step did, in words. */
function eventText(s: Step): string {
  const type = typeof s.event === 'object' && s.event !== null ? String((s.event as { type?: unknown }).type ?? '') : '';
  const words: Record<string, string> = {
    instance_started: 'Started',
    entered: 'Entered',
    completed: 'Completed',
    cancelled: 'Cancelled',
    task_completed: 'Task completed',
    decision_evaluated: 'Decided',
    call_failed: 'Call failed',
    timer_fired: 'Timer fired',
    message_received: 'Message received',
    boundary_triggered: 'Boundary event',
    incident_raised: 'Incident raised',
    incident_resolved: 'Incident resolved',
    compensation_started: 'Compensation started',
    instance_ended: 'Ended',
  };
  return words[type] ?? type.replace(/_/g, ' ');
}

/** The path an instance took and where it is, from its history. */
export interface Walk {
  /** Elements completed, in the order they first completed. */
  order: string[];
  done: Set<string>;
  entered: Set<string>;
  /** Elements it is in now (entered more often than left), while it runs. */
  current: Set<string>;
  failed: Set<string>;
}

export function walk(instance: Instance | null): Walk {
  const order: string[] = [];
  const done = new Set<string>();
  const entered = new Set<string>();
  const inside = new Map<string, number>();
  for (const s of instance?.history ?? []) {
    if (!s.element) continue;
    const type = typeof s.event === 'object' && s.event !== null ? (s.event as { type?: unknown }).type : undefined;
    if (type === 'entered') {
      entered.add(s.element);
      inside.set(s.element, (inside.get(s.element) ?? 0) + 1);
    } else if (type === 'completed' || type === 'cancelled') {
      inside.set(s.element, (inside.get(s.element) ?? 0) - 1);
      if (type === 'completed' && !done.has(s.element)) {
        done.add(s.element);
        order.push(s.element);
      }
    }
  }
  const current = new Set<string>();
  if (instance?.status === 'running') {
    for (const [el, n] of inside) if (n > 0) current.add(el);
    for (const t of instance.tasks) if (t.status === 'open') current.add(t.element);
  }
  const failed = new Set((instance?.incidents ?? []).filter((i) => i.status === 'open').map((i) => i.element));
  return { order, done, entered, current, failed };
}

function decorations(
  drawn: DrawnElement[],
  path: Walk,
  instance: Instance | null,
  nameOf: (id: string | null | undefined) => string,
): Decorations {
  const markers = new Map<string, string[]>();
  const labels = new Map<string, string>();
  const mark = (id: string, c: string) => markers.set(id, [...(markers.get(id) ?? []), c]);
  for (const el of drawn) {
    if (el.source && el.target) {
      // A flow was taken when its source completed and its target was entered.
      if (path.done.has(el.source) && (path.entered.has(el.target) || path.done.has(el.target))) mark(el.id, 'op-taken');
      continue;
    }
    if (path.failed.has(el.id)) mark(el.id, 'op-failed');
    else if (path.current.has(el.id)) mark(el.id, 'op-current');
    else if (path.done.has(el.id)) mark(el.id, 'op-done');
  }
  for (const t of instance?.tasks ?? []) {
    if (t.status !== 'open') continue;
    labels.set(t.element, t.assignee ? `Waiting for ${nameOf(t.assignee)}` : 'Waiting in a queue');
  }
  for (const id of path.failed) labels.set(id, 'Incident');
  return { markers, labels, fills: new Map() };
}
