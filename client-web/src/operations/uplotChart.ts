// The chart chunk: uPlot (a small, maintained time-series library) and its stylesheet, loaded
// only when a dashboard draws its charts.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Series {
  label: string;
  colour: string;
  values: number[];
}

export interface ChartHandle {
  setSize(width: number): void;
  destroy(): void;
}

/** Draws one line per series over `times` (seconds since the epoch) into `container`. */
export function drawChart(container: HTMLElement, times: number[], series: Series[], width: number, height: number): ChartHandle {
  const styles = getComputedStyle(container);
  const axis = styles.getPropertyValue('--text-muted').trim() || '#555d69';
  const grid = styles.getPropertyValue('--border').trim() || '#d6d9e0';
  const plot = new uPlot(
    {
      width,
      height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [
        { stroke: axis, grid: { stroke: grid, width: 1 } },
        { stroke: axis, grid: { stroke: grid, width: 1 }, values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) },
      ],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 2, points: { show: times.length < 60 } }))],
    },
    [times, ...series.map((s) => s.values)],
    container,
  );
  return {
    setSize: (w: number) => plot.setSize({ width: w, height }),
    destroy: () => plot.destroy(),
  };
}
