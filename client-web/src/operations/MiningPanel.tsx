// What really happened in a process: the variants (the paths instances actually took, with how
// many took each and how long they took), the directly-follows graph discovered from its history
// (drawn as SVG by dfg.ts's layered layout), the instances that deviated from the model, and
// the history to download as XES, OCEL 2.0 or CSV for process-mining tools.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, describeError } from '../api';
import { downloadFrom } from '../console/download';
import { ago, fullTime } from '../docs/model';
import { linkClick } from '../shell/router';
import { layoutDfg } from './dfg';
import { period, useInstanceChanges, type RangeId } from './ProcessPage';
import { duration, loadMining, logPath, percent, type Mining } from './watch';

/** Instances listed under a variant at first. */
const SHOWN_INSTANCES = 5;

export default function MiningPanel(props: { workspaceId: string; processId: string; range: RangeId }) {
  const { workspaceId, processId, range } = props;
  const [mining, setMining] = useState<Mining | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const [downloading, setDownloading] = useState<string | null>(null);
  const [downloadError, setDownloadError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    const { from, to } = period(range);
    loadMining(workspaceId, processId, from, to)
      .then((m) => {
        if (!live) return;
        setMining(m);
        setError(null);
      })
      .catch((e) => live && setError(e instanceof ApiError && e.status === 404 ? 'This server does not offer process mining.' : describeError(e)));
    return () => {
      live = false;
    };
  }, [workspaceId, processId, range, tick]);

  useInstanceChanges(workspaceId, processId, () => setTick((t) => t + 1));

  const download = async (format: 'xes' | 'ocel' | 'csv') => {
    setDownloading(format);
    setDownloadError(null);
    try {
      const ext = format === 'ocel' ? 'json' : format;
      await downloadFrom(logPath(workspaceId, processId, format), `${processId}.${format === 'ocel' ? 'ocel' : 'log'}.${ext}`);
    } catch (e) {
      setDownloadError(describeError(e));
    } finally {
      setDownloading(null);
    }
  };

  const downloads = (
    <section aria-labelledby="op-downloads-title" class="op-downloads">
      <h2 id="op-downloads-title">Download the history</h2>
      <p class="op-muted">For process-mining tools such as PM4Py, ProM or Celonis.</p>
      <div class="op-actions">
        <button type="button" class="button" disabled={downloading !== null} onClick={() => download('xes')}>
          XES
        </button>
        <button type="button" class="button" disabled={downloading !== null} onClick={() => download('ocel')}>
          OCEL 2.0
        </button>
        <button type="button" class="button" disabled={downloading !== null} onClick={() => download('csv')}>
          CSV
        </button>
      </div>
      {downloadError && (
        <p class="error-text" role="alert">
          The download failed: {downloadError}
        </p>
      )}
    </section>
  );

  if (error) {
    return (
      <div class="op-panel">
        <p class="error-text" role="alert">
          Could not load what happened: {error}
        </p>
        {downloads}
      </div>
    );
  }
  if (!mining) return <p class="op-muted">Loading what happened…</p>;

  return (
    <div class="op-panel">
      <p class="op-lead">
        {mining.instances === 1 ? 'One instance' : `${mining.instances} instances`} in this period took{' '}
        {mining.variants.length === 1 ? 'one path' : `${mining.variants.length} different paths`}.
      </p>

      <h2>Variants</h2>
      {mining.variants.length === 0 ? (
        <p class="op-muted">No instance ended in this period.</p>
      ) : (
        <ol class="op-variants" aria-label="Variants">
          {mining.variants.map((v, i) => (
            <li key={i} class="op-variant">
              <div class="op-variant-head">
                <span class="op-variant-count">
                  {v.count} {v.count === 1 ? 'instance' : 'instances'} · {percent(v.share)}
                </span>
                <span class="op-muted">
                  median {duration(v.median_duration_ms)}, p90 {duration(v.p90_duration_ms)}
                </span>
              </div>
              <span class="op-share" aria-hidden="true">
                <span style={{ width: `${Math.max(2, v.share * 100)}%` }} />
              </span>
              <p class="op-variant-path">
                {v.activities.map((a, j) => (
                  <span key={j}>
                    {j > 0 && <span class="op-arrow" aria-label="then"> → </span>}
                    <span class="op-activity">{a}</span>
                  </span>
                ))}
              </p>
              {v.instance_ids.length > 0 && (
                <details class="op-details">
                  <summary>Instances</summary>
                  <ul class="op-inline-list">
                    {v.instance_ids.slice(0, SHOWN_INSTANCES).map((id) => (
                      <li key={id}>
                        <a href={`/w/${workspaceId}/instances/${id}`} onClick={linkClick} class="op-mono">
                          {id.slice(-12)}
                        </a>
                      </li>
                    ))}
                    {v.instance_ids.length > SHOWN_INSTANCES && <li class="op-muted">and {v.instance_ids.length - SHOWN_INSTANCES} more</li>}
                  </ul>
                </details>
              )}
            </li>
          ))}
        </ol>
      )}

      <h2>Directly-follows graph</h2>
      <DfgGraph dfg={mining.dfg} />

      <h2>Deviations</h2>
      {mining.deviations.length === 0 ? (
        <p class="op-muted">No instance deviated from the model in this period.</p>
      ) : (
        <ul class="op-deviations" aria-label="Deviations">
          {mining.deviations.map((d) => (
            <li key={d.instance_id}>
              <a href={`/w/${workspaceId}/instances/${d.instance_id}`} onClick={linkClick} class="op-mono">
                {d.instance_id.slice(-12)}
              </a>{' '}
              <time class="op-muted" dateTime={d.started_at} title={fullTime(d.started_at)}>
                started {ago(d.started_at)}
              </time>{' '}
              {d.kinds.map((k) => (
                <span key={k} class="op-badge op-badge-kind">
                  {k.replace(/_/g, ' ')}
                </span>
              ))}
              {d.detail && <span class="op-muted"> {d.detail}</span>}
            </li>
          ))}
        </ul>
      )}
      {downloads}
    </div>
  );
}

/** The directly-follows graph as SVG, with the edges also listed as text. */
export function DfgGraph({ dfg }: { dfg: Mining['dfg'] }) {
  const layout = useMemo(() => layoutDfg(dfg), [dfg]);
  if (dfg.nodes.length === 0) return <p class="op-muted">Nothing to draw yet.</p>;
  const label = (id: string) => (id.startsWith('\u0000') ? (id.endsWith('start') ? 'Start' : 'End') : id);
  return (
    <figure class="op-dfg">
      <div class="op-dfg-scroll">
        <svg
          width={layout.width}
          height={layout.height}
          viewBox={`0 0 ${layout.width} ${layout.height}`}
          role="img"
          aria-label={`Directly-follows graph: ${dfg.nodes.length} activities, ${dfg.edges.length} transitions`}
        >
          <defs>
            <marker id="op-dfg-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="op-dfg-head" />
            </marker>
          </defs>
          {layout.edges.map((e, i) => (
            <g key={i} class={e.back ? 'op-dfg-edge op-dfg-back' : 'op-dfg-edge'}>
              <path d={e.path} stroke-width={e.width} fill="none" marker-end="url(#op-dfg-arrow)" />
              <text x={e.labelX} y={e.labelY} text-anchor="middle">
                {e.count}
              </text>
            </g>
          ))}
          {layout.nodes.map((n) => (
            <g key={n.id} class={`op-dfg-node op-dfg-${n.kind}`}>
              {n.kind === 'activity' ? (
                <rect x={n.x} y={n.y} width={n.w} height={n.h} rx={6} />
              ) : (
                <circle cx={n.x + n.w / 2} cy={n.y + n.h / 2} r={n.h / 2 - 4} />
              )}
              {n.kind === 'activity' ? (
                <>
                  <text x={n.x + n.w / 2} y={n.y + 18} text-anchor="middle" class="op-dfg-name">
                    {n.label.length > 20 ? `${n.label.slice(0, 19)}…` : n.label}
                  </text>
                  <text x={n.x + n.w / 2} y={n.y + 34} text-anchor="middle" class="op-dfg-count">
                    {n.count}
                  </text>
                  <title>{n.label}</title>
                </>
              ) : (
                <text x={n.x + n.w / 2} y={n.y + n.h + 14} text-anchor="middle" class="op-dfg-count">
                  {n.label}
                </text>
              )}
            </g>
          ))}
        </svg>
      </div>
      <details class="op-details">
        <summary>The transitions as a list</summary>
        <ul class="op-plain-list" aria-label="Transitions">
          {layout.edges.map((e, i) => (
            <li key={i}>
              {label(e.from)} → {label(e.to)}: {e.count}
              {e.medianMs !== null ? `, median ${duration(e.medianMs)}` : ''}
            </li>
          ))}
        </ul>
      </details>
    </figure>
  );
}
