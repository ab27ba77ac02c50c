// The diagram viewer chunk: bpmn-js's NavigatedViewer (pan and zoom, no editing), loaded only by
// the screens that draw a process (`Diagram.tsx` imports this module lazily), with Concord's
// decorations: markers (a CSS class on an element: done, current, failed, taken flows) and
// overlays (a small label under an element, as text). Nothing here reads the API.
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import 'bpmn-js/dist/assets/diagram-js.css';

/** What to draw on a diagram. */
export interface Decorations {
  /** Element id → marker classes. */
  markers: Map<string, string[]>;
  /** Element id → a short label shown under it. */
  labels: Map<string, string>;
  /** Element id → a fill colour (the heat overlay). */
  fills: Map<string, string>;
}

export interface DiagramHandle {
  destroy(): void;
  fit(): void;
  /** The ids of the elements and flows drawn, with their source and target for flows. */
  elements(): { id: string; type: string; source?: string; target?: string }[];
  decorate(d: Decorations): void;
}

interface Shape {
  id: string;
  type: string;
  source?: { id: string };
  target?: { id: string };
  waypoints?: unknown[];
}
interface ElementRegistry {
  getAll(): Shape[];
  get(id: string): Shape | undefined;
  getGraphics(id: string): SVGElement | undefined;
}
interface Canvas {
  zoom(level: string | number, center?: unknown): number;
  addMarker(element: string, marker: string): void;
  removeMarker(element: string, marker: string): void;
}
interface Overlays {
  add(element: string, type: string, overlay: { position: { bottom?: number; left?: number; top?: number; right?: number }; html: HTMLElement }): string;
  remove(filter: { type: string }): void;
}

/** Draws `xml` into `container`; throws if it is not a diagram bpmn-js can read. */
export async function showDiagram(container: HTMLElement, xml: string): Promise<DiagramHandle> {
  const viewer = new NavigatedViewer({ container });
  await viewer.importXML(xml);
  const canvas = viewer.get<Canvas>('canvas');
  const registry = viewer.get<ElementRegistry>('elementRegistry');
  const overlays = viewer.get<Overlays>('overlays');
  canvas.zoom('fit-viewport');
  let marked: [string, string][] = [];
  let filled: SVGElement[] = [];
  return {
    destroy: () => viewer.destroy(),
    fit: () => {
      canvas.zoom('fit-viewport');
    },
    elements: () =>
      registry
        .getAll()
        .filter((e) => e.type !== 'label' && !e.type.startsWith('bpmn:Process') && !e.type.startsWith('bpmn:Collaboration'))
        .map((e) => ({ id: e.id, type: e.type, source: e.source?.id, target: e.target?.id })),
    decorate: (d: Decorations) => {
      for (const [id, m] of marked) canvas.removeMarker(id, m);
      marked = [];
      for (const el of filled) el.style.removeProperty('fill');
      filled = [];
      overlays.remove({ type: 'concord' });
      for (const [id, classes] of d.markers) {
        if (!registry.get(id)) continue;
        for (const c of classes) {
          canvas.addMarker(id, c);
          marked.push([id, c]);
        }
      }
      for (const [id, colour] of d.fills) {
        const shape = registry.getGraphics(id)?.querySelector<SVGElement>('.djs-visual > :first-child');
        if (!shape) continue;
        shape.style.fill = colour;
        filled.push(shape);
      }
      for (const [id, text] of d.labels) {
        if (!registry.get(id)) continue;
        const html = document.createElement('div');
        html.className = 'op-overlay';
        html.textContent = text;
        overlays.add(id, 'concord', { position: { bottom: -4, left: 0 }, html });
      }
    },
  };
}
