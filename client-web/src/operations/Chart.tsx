// A line chart of counts over time, drawn by uPlot in its own chunk, with the same figures as a
// table for those who cannot see the lines.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ChartHandle, Series } from './uplotChart';

export type { Series };

export function Chart(props: { title: string; times: string[]; series: Series[]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<ChartHandle | null>(null);
  const [error, setError] = useState<string | null>(null);
  const height = props.height ?? 220;

  useEffect(() => {
    let live = true;
    const container = box.current;
    if (!container) return;
    const seconds = props.times.map((t) => Math.floor(new Date(t).getTime() / 1000));
    import('./uplotChart')
      .then(({ drawChart }) => {
        if (!live) return;
        chart.current?.destroy();
        chart.current = drawChart(container, seconds, props.series, Math.max(200, container.clientWidth), height);
      })
      .catch((e: unknown) => live && setError(e instanceof Error ? e.message : 'The chart could not be drawn.'));
    return () => {
      live = false;
      chart.current?.destroy();
      chart.current = null;
    };
  }, [props.times, props.series, height]);

  // The chart follows its box's width (the sidebar opening, a phone turned).
  useEffect(() => {
    const container = box.current;
    if (!container || typeof ResizeObserver === 'undefined') return;
    const observer = new ResizeObserver(() => chart.current?.setSize(Math.max(200, container.clientWidth)));
    observer.observe(container);
    return () => observer.disconnect();
  }, []);

  return (
    <figure class="op-chart">
      <figcaption class="op-chart-title">{props.title}</figcaption>
      <div ref={box} class="op-chart-canvas" aria-hidden="true" />
      {error && <p class="error-text">The chart could not be drawn: {error}</p>}
      <details class="op-chart-table">
        <summary>Show the figures</summary>
        <div class="op-table-wrap">
          <table class="op-table">
            <thead>
              <tr>
                <th scope="col">Time</th>
                {props.series.map((s) => (
                  <th key={s.label} scope="col">
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {props.times.map((t, i) => (
                <tr key={t}>
                  <th scope="row">{new Date(t).toLocaleString()}</th>
                  {props.series.map((s) => (
                    <td key={s.label}>{s.values[i] ?? 0}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
