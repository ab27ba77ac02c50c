// What changed between two versions of a process: bpmn-js-differ (bpmn.io's semantic BPMN diff)
// over both files read with the modeler's own moddle (so Concord's attributes are compared
// too), flattened into one line per element for the list beside the diagram.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { diff } from 'bpmn-js-differ';

export interface Change {
  id: string;
  kind: 'added' | 'removed' | 'changed' | 'moved';
  type: string;
  name: string;
  /** For `changed`: each attribute, old and new value as text. */
  attrs: { name: string; before: string; after: string }[];
}

/** What is worth comparing of a value: text, an id for a reference, an expression's body. */
function text(v: unknown, depth = 0): string {
  if (v === undefined || v === null || v === '') return '(none)';
  if (typeof v !== 'object') return String(v);
  const o = v as any;
  if (Array.isArray(o)) return o.map((x) => text(x, depth + 1)).join(', ') || '(none)';
  if (typeof o.body === 'string') return o.body;
  if (o.id && depth > 0) return o.id;
  if (o.$type === 'bpmn:ExtensionElements') return text(o.values, depth + 1);
  if (o.$type && depth < 3) {
    const inner = Object.keys(o)
      .filter((k) => !k.startsWith('$') && k !== 'id')
      .map((k) => `${k}=${text(o[k], depth + 1)}`)
      .join(' ');
    return `${o.$type.replace(/^\w+:/, '')}${inner ? ` ${inner}` : ''}`;
  }
  return o.id ?? o.$type ?? '…';
}

/** The properties an element is compared by (not its diagram, nor its flows' wiring). */
const SKIPPED = new Set(['$parent', '$type', 'di', 'incoming', 'outgoing', 'flowElements', 'artifacts', 'laneSets', 'attachedToRef', 'sourceRef', 'targetRef']);

function properties(el: any): Map<string, string> {
  const out = new Map<string, string>();
  if (!el) return out;
  for (const key of Object.keys(el)) {
    if (SKIPPED.has(key)) continue;
    out.set(key === '$attrs' ? 'attributes' : key, key === '$attrs' ? JSON.stringify(el.$attrs) : text(el[key], 1));
  }
  return out;
}

/** Every element of a definitions tree by id. */
function byId(definitions: any): Map<string, any> {
  const out = new Map<string, any>();
  const walk = (el: any, depth: number) => {
    if (!el || typeof el !== 'object' || depth > 20) return;
    if (el.id && el.$type && !el.$type.startsWith('bpmndi:')) out.set(el.id, el);
    for (const child of [...(el.rootElements ?? []), ...(el.flowElements ?? []), ...(el.artifacts ?? [])]) walk(child, depth + 1);
  };
  walk(definitions, 0);
  return out;
}

export async function compare(moddle: any, before: string, after: string): Promise<Change[]> {
  const [{ rootElement: a }, { rootElement: b }] = await Promise.all([moddle.fromXML(before), moddle.fromXML(after)]);
  const d = diff(a, b);
  // bpmn-js-differ finds what changed; the values are read here from both versions, since its
  // attribute values do not cover nested settings (a condition's body, extension elements).
  const olds = byId(a);
  const news = byId(b);
  const out: Change[] = [];
  const push = (kind: Change['kind'], el: any, attrs: Change['attrs'] = []) => {
    if (!el?.id || /^(BPMNDiagram|BPMNPlane|Definitions)/.test(el.id) || (el.$type ?? '').startsWith('bpmndi:')) return;
    out.push({ id: el.id, kind, type: (el.$type ?? '').replace(/^bpmn:/, ''), name: el.name ?? '', attrs });
  };
  for (const el of Object.values<any>(d._added ?? {})) push('added', el);
  for (const el of Object.values<any>(d._removed ?? {})) push('removed', el);
  for (const c of Object.values<any>(d._changed ?? {})) {
    const before = properties(olds.get(c.model?.id));
    const after = properties(news.get(c.model?.id));
    const attrs: Change['attrs'] = [];
    for (const name of new Set([...before.keys(), ...after.keys()])) {
      const x = before.get(name) ?? '(none)';
      const y = after.get(name) ?? '(none)';
      if (x !== y) attrs.push({ name, before: x, after: y });
    }
    push('changed', news.get(c.model?.id) ?? c.model, attrs);
  }
  for (const el of Object.values<any>(d._layoutChanged ?? {})) if (!out.some((o) => o.id === el.id)) push('moved', el);
  return out;
}
