// A process, watched: its dashboard (instances over time, per-step waiting and working times,
// SLA breaches, incidents, the slowest steps as heat on the diagram), what really happened
// (mining: the variants, the directly-follows graph, the instances that deviated, the history
// to download) and its instances. `/w/<ws>/processes/<id>/dashboard|mining|instances`.
import { lazy, Suspense } from 'preact/compat';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, describeError, type Me, type Schemas } from '../api';
import { on } from '../live';
import { ago, fullTime } from '../docs/model';
import { linkClick } from '../shell/router';
import type { WorkspaceData } from '../shell/workspaceData';
import { StatusBadge } from './InstanceView';
import './operations.css';

const DashboardPanel = lazy(() => import('./DashboardPanel'));
const MiningPanel = lazy(() => import('./MiningPanel'));

export type ProcessTab = 'dashboard' | 'mining' | 'instances';

export interface ProcessPageProps {
  workspaceId: string;
  processId: string;
  tab: ProcessTab;
  me: Me;
  data: WorkspaceData;
}

/** The periods a dashboard shows, with the bucket its series is counted in. */
export const RANGES = [
  { id: '24h', label: 'Last 24 hours', hours: 24, bucket: 'hour' },
  { id: '7d', label: 'Last 7 days', hours: 24 * 7, bucket: 'day' },
  { id: '30d', label: 'Last 30 days', hours: 24 * 30, bucket: 'day' },
] as const;
export type RangeId = (typeof RANGES)[number]['id'];

export default function ProcessPage(props: ProcessPageProps) {
  const { workspaceId, processId, tab } = props;
  const [name, setName] = useState<string | null>(null);
  const [range, setRange] = useState<RangeId>('24h');
  const base = `/w/${workspaceId}/processes/${encodeURIComponent(processId)}`;
  const title = name ?? processId;

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/workspaces/{workspace_id}/workflows', { params: { path: { workspace_id: workspaceId } } })
      .then((list) => {
        if (!live) return;
        const latest = list.deployments.find((d) => d.process_id === processId);
        setName(latest?.name ?? null);
      })
      .catch(() => {
        /* the id stands in for the name */
      });
    return () => {
      live = false;
    };
  }, [workspaceId, processId]);

  const tabs: { id: ProcessTab; label: string }[] = [
    { id: 'dashboard', label: 'Dashboard' },
    { id: 'mining', label: 'Mining' },
    { id: 'instances', label: 'Instances' },
  ];

  return (
    <section class="op-page" aria-labelledby="op-process-title">
      <div class="op-top">
        <h1 id="op-process-title">{title}</h1>
        {name && <span class="op-muted op-mono">{processId}</span>}
      </div>
      <div class="op-bar">
        <nav class="op-tabs" aria-label="Process views">
          {tabs.map((t) => (
            <a key={t.id} class="op-tab" href={`${base}/${t.id}`} aria-current={t.id === tab ? 'page' : undefined} onClick={linkClick}>
              {t.label}
            </a>
          ))}
        </nav>
        {tab !== 'instances' && (
          <label class="op-range">
            <span>Period</span>
            <select value={range} onChange={(e) => setRange(e.currentTarget.value as RangeId)}>
              {RANGES.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.label}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      <Suspense fallback={<p class="op-muted">Loading…</p>}>
        {tab === 'dashboard' && <DashboardPanel workspaceId={workspaceId} processId={processId} range={range} />}
        {tab === 'mining' && <MiningPanel workspaceId={workspaceId} processId={processId} range={range} />}
        {tab === 'instances' && <InstancesPanel {...props} />}
      </Suspense>
    </section>
  );
}

/** The period a range covers, ending now. */
export function period(range: RangeId): { from: Date; to: Date; bucket: 'hour' | 'day' } {
  const r = RANGES.find((x) => x.id === range) ?? RANGES[0];
  const to = new Date();
  return { from: new Date(to.getTime() - r.hours * 3600_000), to, bucket: r.bucket };
}

/**
 * Calls `reload` (at most once a second) when an instance of `processId` changes, and when the
 * live connection missed events.
 */
export function useInstanceChanges(workspaceId: string, processId: string, reload: () => void) {
  const timer = useRef<number | undefined>(undefined);
  const latest = useRef(reload);
  latest.current = reload;
  useEffect(() => {
    const soon = () => {
      if (timer.current !== undefined) return;
      timer.current = window.setTimeout(() => {
        timer.current = undefined;
        latest.current();
      }, 1000);
    };
    const offAll = on('*', (ev) => {
      const e = ev as { type: string; workspace_id?: string; process_id?: string };
      if (e.type === 'workflow_instance_changed' && e.workspace_id === workspaceId && e.process_id === processId) soon();
    });
    const offResync = on('resync', soon);
    return () => {
      offAll();
      offResync();
      clearTimeout(timer.current);
      timer.current = undefined;
    };
  }, [workspaceId, processId]);
}

type Summary = Schemas['InstanceSummary'];

const STATUSES = ['', 'running', 'completed', 'failed', 'cancelled', 'terminated'] as const;

function InstancesPanel(props: ProcessPageProps) {
  const { workspaceId, processId, data, me } = props;
  const [status, setStatus] = useState<(typeof STATUSES)[number]>('');
  const [rows, setRows] = useState<Summary[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  const load = useCallback(
    async (cursor: string | null) => {
      const page = await api('get', '/api/v1/workspaces/{workspace_id}/workflow-instances', {
        params: {
          path: { workspace_id: workspaceId },
          query: { process_id: processId, status: status || undefined, cursor: cursor ?? undefined, limit: 100 },
        },
      });
      return page;
    },
    [workspaceId, processId, status],
  );

  useEffect(() => {
    let live = true;
    load(null)
      .then((page) => {
        if (!live) return;
        setRows(page.instances);
        setNext(page.next_cursor ?? null);
        setError(null);
      })
      .catch((e) => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [load, tick]);

  useInstanceChanges(workspaceId, processId, () => setTick((t) => t + 1));

  const more = async () => {
    try {
      const page = await load(next);
      setRows((r) => [...(r ?? []), ...page.instances]);
      setNext(page.next_cursor ?? null);
    } catch (e) {
      setError(describeError(e));
    }
  };

  const nameOf = (id: string | null | undefined) =>
    !id ? 'A trigger' : id === me.id ? 'You' : data.members.get(id)?.display_name ?? 'Former member';

  return (
    <div class="op-panel">
      <div class="op-bar">
        <label class="op-range">
          <span>Status</span>
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value as (typeof STATUSES)[number])}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s === '' ? 'Any' : s[0].toUpperCase() + s.slice(1)}
              </option>
            ))}
          </select>
        </label>
        <button type="button" class="link-button" onClick={() => setTick((t) => t + 1)}>
          Refresh
        </button>
      </div>
      {error && (
        <p class="error-text" role="alert">
          Could not load the instances: {error}
        </p>
      )}
      {rows === null && !error && <p class="op-muted">Loading the instances…</p>}
      {rows !== null && rows.length === 0 && <p class="op-muted">No instances{status ? ` ${status}` : ''} yet.</p>}
      {rows !== null && rows.length > 0 && (
        <div class="op-table-wrap">
          <table class="op-table" aria-label="Instances, oldest first">
            <thead>
              <tr>
                <th scope="col">Instance</th>
                <th scope="col">Status</th>
                <th scope="col">Started by</th>
                <th scope="col">Started</th>
                <th scope="col">Ended</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((i) => (
                <tr key={i.id}>
                  <th scope="row">
                    <a href={`/w/${workspaceId}/instances/${i.id}`} onClick={linkClick} class="op-mono">
                      {i.id.slice(-12)}
                    </a>
                  </th>
                  <td>
                    <StatusBadge status={i.status} />
                  </td>
                  <td>{nameOf(i.started_by)}</td>
                  <td>
                    <time dateTime={i.started_at} title={fullTime(i.started_at)}>
                      {ago(i.started_at)}
                    </time>
                  </td>
                  <td>
                    {i.ended_at ? (
                      <time dateTime={i.ended_at} title={fullTime(i.ended_at)}>
                        {ago(i.ended_at)}
                      </time>
                    ) : (
                      '–'
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {next && (
        <button type="button" class="button" onClick={more}>
          Load more
        </button>
      )}
    </div>
  );
}
