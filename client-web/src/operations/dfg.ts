// The directly-follows graph's layout: activities in columns left to right by how early they
// first occur (a breadth-first walk from the start activities, the busiest edges first), each
// column's activities stacked in the order they were reached; an edge forward is a curve between
// columns, an edge back (a loop, a rework) an arc above the boxes. A start node feeds the first
// activities and an end node takes the last. Pure: no DOM, so it is easy to check.

export interface DfgInput {
  nodes: { activity: string; element?: string | null; count: number }[];
  edges: { from: string; to: string; count: number; median_ms?: number | null }[];
  starts: { activity: string; count: number }[];
  ends: { activity: string; count: number }[];
}

export interface PlacedNode {
  id: string;
  label: string;
  count: number;
  kind: 'activity' | 'start' | 'end';
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface PlacedEdge {
  from: string;
  to: string;
  count: number;
  medianMs: number | null;
  path: string;
  labelX: number;
  labelY: number;
  width: number;
  back: boolean;
}

export interface DfgLayout {
  width: number;
  height: number;
  nodes: PlacedNode[];
  edges: PlacedEdge[];
}

const START = '\u0000start';
const END = '\u0000end';
const NODE_W = 150;
const NODE_H = 44;
const GAP_X = 70;
const GAP_Y = 28;
const MARGIN = 24;
const ARC_ROOM = 56;

export function layoutDfg(input: DfgInput): DfgLayout {
  const counts = new Map(input.nodes.map((n) => [n.activity, n.count]));
  const out = new Map<string, { to: string; count: number }[]>();
  const add = (from: string, to: string, count: number) => {
    const list = out.get(from) ?? [];
    list.push({ to, count });
    out.set(from, list);
  };
  for (const s of input.starts) add(START, s.activity, s.count);
  for (const e of input.edges) add(e.from, e.to, e.count);
  for (const list of out.values()) list.sort((a, b) => b.count - a.count || a.to.localeCompare(b.to));

  // Columns: the breadth-first depth from the start; what the walk never reaches goes last.
  const layer = new Map<string, number>([[START, 0]]);
  const order: string[] = [START];
  for (let i = 0; i < order.length; i++) {
    const here = order[i];
    for (const { to } of out.get(here) ?? []) {
      if (layer.has(to)) continue;
      layer.set(to, (layer.get(here) ?? 0) + 1);
      order.push(to);
    }
  }
  let deepest = Math.max(0, ...[...layer.values()]);
  const unreached = input.nodes.map((n) => n.activity).filter((a) => !layer.has(a)).sort();
  for (const a of unreached) {
    layer.set(a, deepest + 1);
    order.push(a);
  }
  deepest = Math.max(0, ...[...layer.values()]);
  const hasEnds = input.ends.length > 0;
  if (hasEnds) {
    layer.set(END, deepest + 1);
    order.push(END);
  }

  const columns = new Map<number, string[]>();
  for (const id of order) {
    const l = layer.get(id) ?? 0;
    const column = columns.get(l) ?? [];
    column.push(id);
    columns.set(l, column);
  }
  const tallest = Math.max(1, ...[...columns.values()].map((c) => c.length));
  const innerHeight = tallest * NODE_H + (tallest - 1) * GAP_Y;
  const nodes: PlacedNode[] = [];
  const byId = new Map<string, PlacedNode>();
  for (const [l, ids] of columns) {
    const columnHeight = ids.length * NODE_H + (ids.length - 1) * GAP_Y;
    const top = MARGIN + ARC_ROOM + (innerHeight - columnHeight) / 2;
    ids.forEach((id, i) => {
      const terminal = id === START || id === END;
      const w = terminal ? NODE_H : NODE_W;
      const node: PlacedNode = {
        id,
        label: id === START ? 'Start' : id === END ? 'End' : id,
        count: id === START ? sum(input.starts) : id === END ? sum(input.ends) : counts.get(id) ?? 0,
        kind: id === START ? 'start' : id === END ? 'end' : 'activity',
        x: MARGIN + l * (NODE_W + GAP_X) + (terminal ? (NODE_W - NODE_H) / 2 : 0),
        y: top + i * (NODE_H + GAP_Y),
        w,
        h: NODE_H,
      };
      nodes.push(node);
      byId.set(id, node);
    });
  }

  const all: { from: string; to: string; count: number; median_ms?: number | null }[] = [
    ...input.starts.map((s) => ({ from: START, to: s.activity, count: s.count })),
    ...input.edges,
    ...(hasEnds ? input.ends.map((e) => ({ from: e.activity, to: END, count: e.count })) : []),
  ];
  const most = Math.max(1, ...all.map((e) => e.count));
  let arcs = 0;
  const edges: PlacedEdge[] = [];
  for (const e of all) {
    const a = byId.get(e.from);
    const b = byId.get(e.to);
    if (!a || !b) continue;
    const width = 1 + 5 * (e.count / most);
    const forward = (layer.get(e.to) ?? 0) > (layer.get(e.from) ?? 0);
    let path: string;
    let labelX: number;
    let labelY: number;
    if (forward) {
      const x1 = a.x + a.w;
      const y1 = a.y + a.h / 2;
      const x2 = b.x;
      const y2 = b.y + b.h / 2;
      const dx = (x2 - x1) / 2;
      path = `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
      labelX = (x1 + x2) / 2;
      labelY = (y1 + y2) / 2 - 4;
    } else if (e.from === e.to) {
      // A self-loop: a small arc over the box.
      const x1 = a.x + a.w * 0.35;
      const x2 = a.x + a.w * 0.65;
      const y = a.y;
      path = `M${x1},${y} C${x1},${y - 30} ${x2},${y - 30} ${x2},${y}`;
      labelX = a.x + a.w / 2;
      labelY = y - 26;
    } else {
      // Back (or within a column): an arc above everything, a little higher for each.
      arcs++;
      const x1 = a.x + a.w / 2;
      const x2 = b.x + b.w / 2;
      const top = MARGIN + ARC_ROOM - 12 - ((arcs * 9) % (ARC_ROOM - 12));
      path = `M${x1},${a.y} C${x1},${top} ${x2},${top} ${x2},${b.y}`;
      labelX = (x1 + x2) / 2;
      labelY = top + 10;
    }
    edges.push({ from: e.from, to: e.to, count: e.count, medianMs: e.median_ms ?? null, path, labelX, labelY, width, back: !forward });
  }
  const width = MARGIN * 2 + (Math.max(0, ...[...columns.keys()]) + 1) * (NODE_W + GAP_X) - GAP_X;
  const height = MARGIN * 2 + ARC_ROOM + innerHeight;
  return { width, height, nodes, edges };
}

function sum(list: { count: number }[]): number {
  return list.reduce((n, x) => n + x.count, 0);
}
