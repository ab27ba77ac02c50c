// What the Watch screens read: a process's dashboard (`GET .../workflows/{process}/dashboard`)
// and its mining (`GET .../workflows/{process}/mining`), plus the history downloads, and the
// small formatting helpers those screens share.
import { request } from '../api';

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
}

export interface Dashboard {
  process_id: string;
  name?: string | null;
  from: string;
  to: string;
  bucket: string;
  totals: { started: number; running: number; completed: number; failed: number; cancelled: number; incidents_open: number };
  series: { at: string; started: number; completed: number; failed: number; cancelled: number }[];
  steps: {
    element: string;
    name?: string | null;
    kind: string;
    count: number;
    waiting_ms: Percentiles;
    working_ms: Percentiles;
    sla_breaches: number;
  }[];
  sla: { tasks_with_due: number; breached: number; open_breached: number };
  incidents: { element: string; name?: string | null; open: number }[];
  heat: { element: string; p90_total_ms: number; share: number }[];
}

export interface Mining {
  process_id: string;
  instances: number;
  variants: {
    activities: string[];
    count: number;
    share: number;
    median_duration_ms: number;
    p90_duration_ms: number;
    instance_ids: string[];
  }[];
  dfg: {
    nodes: { activity: string; element?: string | null; count: number }[];
    edges: { from: string; to: string; count: number; median_ms?: number | null }[];
    starts: { activity: string; count: number }[];
    ends: { activity: string; count: number }[];
  };
  deviations: { instance_id: string; started_at: string; kinds: string[]; detail?: string | null }[];
}

export type Bucket = 'hour' | 'day';

function base(workspaceId: string, processId: string): `/api/v1/${string}` {
  return `/api/v1/workspaces/${encodeURIComponent(workspaceId)}/workflows/${encodeURIComponent(processId)}`;
}

export async function loadDashboard(workspaceId: string, processId: string, from: Date, to: Date, bucket: Bucket): Promise<Dashboard> {
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), bucket });
  const res = await request('get', `${base(workspaceId, processId)}/dashboard?${q}`);
  return (await res.json()) as Dashboard;
}

export async function loadMining(workspaceId: string, processId: string, from: Date, to: Date): Promise<Mining> {
  const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
  const res = await request('get', `${base(workspaceId, processId)}/mining?${q}`);
  return (await res.json()) as Mining;
}

/** The history download of a process in `format`. */
export function logPath(workspaceId: string, processId: string, format: 'xes' | 'ocel' | 'csv'): `/api/v1/${string}` {
  const q = new URLSearchParams({ process: processId, format });
  return `/api/v1/workspaces/${encodeURIComponent(workspaceId)}/workflow-log?${q}`;
}

/** A duration for people: "850 ms", "42 s", "3 min", "2 h 5 min", "3 d 4 h". */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${Math.round(s)} s`;
  const m = s / 60;
  if (m < 60) return `${Math.round(m)} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${Math.round(m - h * 60)} min`;
  const d = Math.floor(h / 24);
  return `${d} d ${h - d * 24} h`;
}

/** A share (0 to 1) as a percentage. */
export function percent(share: number): string {
  return `${Math.round(share * 1000) / 10}%`;
}

/** A heat colour for a share from 0 (cool) to 1 (hot), readable under dark text. */
export function heatColour(share: number): string {
  const s = Math.max(0, Math.min(1, share));
  // From a pale yellow to a strong orange-red, light enough for the element's label.
  const hue = 55 - 50 * s;
  const light = 88 - 30 * s;
  return `hsl(${hue.toFixed(0)} 95% ${light.toFixed(0)}%)`;
}
