// A process diagram drawn by bpmn-js's viewer, loaded in its own chunk the first time a diagram
// is shown (so the task inbox and chat never load it). `decorate` is given the drawn elements and
// answers what to mark on them; it runs again whenever it changes.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Decorations, DiagramHandle } from './bpmnViewer';

export type { Decorations };

/** A drawn element: its id and BPMN type, and for a sequence flow its ends. */
export interface DrawnElement {
  id: string;
  type: string;
  source?: string;
  target?: string;
}

export function Diagram(props: {
  xml: string;
  /** What to mark, given what was drawn. */
  decorate: (drawn: DrawnElement[]) => Decorations;
  /** The diagram's accessible name. */
  label: string;
  /** A legend under the diagram. */
  legend?: preact.ComponentChildren;
}) {
  const box = useRef<HTMLDivElement>(null);
  const handle = useRef<DiagramHandle | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [ready, setReady] = useState(0);

  useEffect(() => {
    let live = true;
    setError(null);
    const container = box.current;
    if (!container) return;
    import('./bpmnViewer')
      .then(({ showDiagram }) => showDiagram(container, props.xml))
      .then((h) => {
        if (!live) {
          h.destroy();
          return;
        }
        handle.current = h;
        setReady((n) => n + 1);
      })
      .catch((e: unknown) => live && setError(e instanceof Error ? e.message : 'The diagram could not be drawn.'));
    return () => {
      live = false;
      handle.current?.destroy();
      handle.current = null;
    };
  }, [props.xml]);

  useEffect(() => {
    const h = handle.current;
    if (h) h.decorate(props.decorate(h.elements()));
  }, [ready, props.decorate]);

  return (
    <figure class="op-diagram">
      <div class="op-diagram-canvas" ref={box} role="img" aria-label={props.label} data-drawn={ready > 0 ? 'true' : undefined} />
      {error && (
        <p class="error-text" role="alert">
          The diagram could not be drawn: {error}
        </p>
      )}
      <figcaption class="op-diagram-tools">
        {props.legend}
        <button type="button" class="link-button" onClick={() => handle.current?.fit()}>
          Fit to view
        </button>
      </figcaption>
    </figure>
  );
}
