// A process's dashboard: its instances started, running, completed and failed in the period and
// over time (uPlot, in its own chunk), each step's waiting and working time percentiles and SLA
// breaches, open incidents by step, and the slowest steps as heat on the diagram (the share of
// the slowest step's p90 time). Read again, at most once a second, as its instances change.
import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, api, describeError } from '../api';
import { Chart, type Series } from './Chart';
import { Diagram, type DrawnElement } from './Diagram';
import { period, useInstanceChanges, type RangeId } from './ProcessPage';
import { duration, heatColour, loadDashboard, percent, type Dashboard } from './watch';

export default function DashboardPanel(props: { workspaceId: string; processId: string; range: RangeId }) {
  const { workspaceId, processId, range } = props;
  const [dash, setDash] = useState<Dashboard | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [xml, setXml] = useState<string | null>(null);
  const [diagramNote, setDiagramNote] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let live = true;
    const { from, to, bucket } = period(range);
    loadDashboard(workspaceId, processId, from, to, bucket)
      .then((d) => {
        if (!live) return;
        setDash(d);
        setError(null);
      })
      .catch((e) => live && setError(e instanceof ApiError && e.status === 404 ? 'This server does not offer process dashboards.' : describeError(e)));
    return () => {
      live = false;
    };
  }, [workspaceId, processId, range, tick]);

  useInstanceChanges(workspaceId, processId, () => setTick((t) => t + 1));

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/workspaces/{workspace_id}/workflows/{process_id}/bpmn', {
      params: { path: { workspace_id: workspaceId, process_id: processId } },
    })
      .then((text) => live && setXml(typeof text === 'string' ? text : null))
      .catch((e) => {
        if (!live) return;
        setDiagramNote(e instanceof ApiError && e.status === 403 ? 'The diagram is shown to the people who manage this workspace’s processes.' : `The diagram could not be loaded: ${describeError(e)}`);
      });
    return () => {
      live = false;
    };
  }, [workspaceId, processId]);

  const heat = dash?.heat ?? [];
  const decorate = useCallback(
    (drawn: DrawnElement[]) => {
      const ids = new Set(drawn.map((d) => d.id));
      const fills = new Map<string, string>();
      const labels = new Map<string, string>();
      for (const h of heat) {
        if (!ids.has(h.element)) continue;
        fills.set(h.element, heatColour(h.share));
        labels.set(h.element, `p90 ${duration(h.p90_total_ms)}`);
      }
      return { markers: new Map<string, string[]>(), labels, fills };
    },
    [heat],
  );

  const times = useMemo(() => (dash?.series ?? []).map((s) => s.at), [dash]);
  const series: Series[] = useMemo(
    () => [
      { label: 'Started', colour: '#3b4fd8', values: (dash?.series ?? []).map((s) => s.started) },
      { label: 'Completed', colour: '#1a7f37', values: (dash?.series ?? []).map((s) => s.completed) },
      { label: 'Failed', colour: '#b42318', values: (dash?.series ?? []).map((s) => s.failed) },
      { label: 'Cancelled', colour: '#8a6d00', values: (dash?.series ?? []).map((s) => s.cancelled) },
    ],
    [dash],
  );

  if (error) {
    return (
      <p class="error-text" role="alert">
        Could not load the dashboard: {error}
      </p>
    );
  }
  if (!dash) return <p class="op-muted">Loading the dashboard…</p>;
  const t = dash.totals;
  const slowest = [...heat].sort((a, b) => b.share - a.share).slice(0, 5);
  const nameOf = (element: string) => dash.steps.find((s) => s.element === element)?.name ?? element;

  return (
    <div class="op-panel">
      <h2 class="sr-only">Totals</h2>
      <dl class="op-totals" aria-label="Instances in the period">
        <Total label="Started" value={t.started} />
        <Total label="Running" value={t.running} />
        <Total label="Completed" value={t.completed} tone="good" />
        <Total label="Failed" value={t.failed} tone={t.failed > 0 ? 'bad' : undefined} />
        <Total label="Cancelled" value={t.cancelled} />
        <Total label="Open incidents" value={t.incidents_open} tone={t.incidents_open > 0 ? 'bad' : undefined} />
      </dl>

      <Chart title="Instances over time" times={times} series={series} />

      <h2>Where the time goes</h2>
      {xml ? (
        <Diagram
          xml={xml}
          decorate={decorate}
          label="The process diagram with its slowest steps coloured by their share of the slowest step's p90 time"
          legend={
            <span class="op-heat-legend">
              <span class="op-heat-bar" aria-hidden="true" /> Faster to slower (p90 of waiting and working time)
            </span>
          }
        />
      ) : (
        <p class="op-muted">{diagramNote ?? 'Loading the diagram…'}</p>
      )}
      {slowest.length > 0 && (
        <ol class="op-slowest" aria-label="Slowest steps">
          {slowest.map((h) => (
            <li key={h.element}>
              <strong>{nameOf(h.element)}</strong> p90 {duration(h.p90_total_ms)} <span class="op-muted">({percent(h.share)} of the slowest)</span>
            </li>
          ))}
        </ol>
      )}

      <h2>Steps</h2>
      {dash.steps.length === 0 ? (
        <p class="op-muted">No step ran in this period.</p>
      ) : (
        <div class="op-table-wrap">
          <table class="op-table op-steps">
            <thead>
              <tr>
                <th scope="col" rowSpan={2}>
                  Step
                </th>
                <th scope="col" rowSpan={2}>
                  Runs
                </th>
                <th scope="colgroup" colSpan={3}>
                  Waiting
                </th>
                <th scope="colgroup" colSpan={3}>
                  Working
                </th>
                <th scope="col" rowSpan={2}>
                  SLA breaches
                </th>
              </tr>
              <tr>
                <th scope="col">p50</th>
                <th scope="col">p90</th>
                <th scope="col">p99</th>
                <th scope="col">p50</th>
                <th scope="col">p90</th>
                <th scope="col">p99</th>
              </tr>
            </thead>
            <tbody>
              {dash.steps.map((s) => (
                <tr key={s.element}>
                  <th scope="row">
                    {s.name ?? s.element} <span class="op-muted op-kind">{s.kind.replace(/_/g, ' ')}</span>
                  </th>
                  <td>{s.count}</td>
                  <td>{duration(s.waiting_ms.p50)}</td>
                  <td>{duration(s.waiting_ms.p90)}</td>
                  <td>{duration(s.waiting_ms.p99)}</td>
                  <td>{duration(s.working_ms.p50)}</td>
                  <td>{duration(s.working_ms.p90)}</td>
                  <td>{duration(s.working_ms.p99)}</td>
                  <td class={s.sla_breaches > 0 ? 'op-bad' : undefined}>{s.sla_breaches}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <div class="op-two">
        <section aria-labelledby="op-sla-title">
          <h2 id="op-sla-title">SLA</h2>
          <dl class="op-facts">
            <div>
              <dt>Tasks with a due date</dt>
              <dd>{dash.sla.tasks_with_due}</dd>
            </div>
            <div>
              <dt>Done late</dt>
              <dd class={dash.sla.breached > 0 ? 'op-bad' : undefined}>{dash.sla.breached}</dd>
            </div>
            <div>
              <dt>Open and overdue</dt>
              <dd class={dash.sla.open_breached > 0 ? 'op-bad' : undefined}>{dash.sla.open_breached}</dd>
            </div>
          </dl>
        </section>
        <section aria-labelledby="op-incidents-title">
          <h2 id="op-incidents-title">Incidents</h2>
          {dash.incidents.filter((i) => i.open > 0).length === 0 ? (
            <p class="op-muted">No open incidents.</p>
          ) : (
            <ul class="op-plain-list">
              {dash.incidents
                .filter((i) => i.open > 0)
                .map((i) => (
                  <li key={i.element}>
                    <strong>{i.name ?? i.element}</strong>: {i.open} open
                  </li>
                ))}
            </ul>
          )}
        </section>
      </div>
    </div>
  );
}

function Total({ label, value, tone }: { label: string; value: number; tone?: 'good' | 'bad' }) {
  return (
    <div class={tone ? `op-total op-total-${tone}` : 'op-total'}>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}
