// Reading and writing Concord's settings on a diagram element through the modeler's own
// commands (`modeling.updateProperties`, `updateModdleProperties`), so every change is one
// undoable step and is saved exactly as bpmn-js saves Concord's extension (`concord.json`).
/* eslint-disable @typescript-eslint/no-explicit-any */

/** A diagram element (shape or connection) as bpmn-js hands it out. */
export type Shape = any;
/** A bpmn-js Modeler. */
export type Modeler = any;

export function bo(element: Shape): any {
  return element?.businessObject ?? element;
}

/** The element's Concord extension element of `type` (`concord:Http`, `concord:Post`, …). */
export function extension(element: Shape, type: string): any | undefined {
  return (bo(element).extensionElements?.values ?? []).find((v: any) => v.$type === type);
}

/** Sets (or with `null` removes) the element's extension element of `type`. */
export function setExtension(modeler: Modeler, element: Shape, type: string, attrs: Record<string, unknown> | null) {
  const modeling = modeler.get('modeling');
  const moddle = modeler.get('moddle');
  const existing = extension(element, type);
  if (existing && attrs) {
    modeling.updateModdleProperties(element, existing, attrs);
    return;
  }
  const others = (bo(element).extensionElements?.values ?? []).filter((v: any) => v.$type !== type);
  const values = attrs ? [...others, moddle.create(type, attrs)] : others;
  modeling.updateProperties(element, {
    extensionElements: values.length ? moddle.create('bpmn:ExtensionElements', { values }) : undefined,
  });
}

/** Sets attributes of the element itself (`undefined` removes one). */
export function setProps(modeler: Modeler, element: Shape, attrs: Record<string, unknown>) {
  modeler.get('modeling').updateProperties(element, attrs);
}

/** Sets attributes of an object inside the element (an event definition, an extension element). */
export function setInner(modeler: Modeler, element: Shape, inner: any, attrs: Record<string, unknown>) {
  modeler.get('modeling').updateModdleProperties(element, inner, attrs);
}

export function expression(modeler: Modeler, body: string): any {
  return modeler.get('moddle').create('bpmn:FormalExpression', { body });
}

/** The element's first event definition. */
export function eventDefinition(element: Shape): any | undefined {
  return bo(element).eventDefinitions?.[0];
}

export type TimerKind = 'timeDuration' | 'timeDate' | 'timeCycle';

export function timerOf(element: Shape): { kind: TimerKind; value: string } | null {
  const def = eventDefinition(element);
  if (def?.$type !== 'bpmn:TimerEventDefinition') return null;
  for (const kind of ['timeDuration', 'timeDate', 'timeCycle'] as TimerKind[]) {
    if (def[kind]) return { kind, value: def[kind].body ?? '' };
  }
  return { kind: 'timeDuration', value: '' };
}

export function setTimer(modeler: Modeler, element: Shape, kind: TimerKind, value: string) {
  const def = eventDefinition(element);
  if (!def) return;
  setInner(modeler, element, def, {
    timeDuration: kind === 'timeDuration' ? expression(modeler, value) : undefined,
    timeDate: kind === 'timeDate' ? expression(modeler, value) : undefined,
    timeCycle: kind === 'timeCycle' ? expression(modeler, value) : undefined,
  });
}

/** A flow's condition (CEL), or '' for none. */
export function conditionOf(flow: Shape): string {
  return bo(flow).conditionExpression?.body ?? '';
}

export function setCondition(modeler: Modeler, flow: Shape, value: string) {
  setProps(modeler, flow, { conditionExpression: value.trim() ? expression(modeler, value) : undefined });
}

/**
 * The name of a message, signal or error an element refers to. These live at the top of the
 * file (`bpmn:Message` …) and are shared by name: setting a name reuses one with that name or
 * adds one.
 */
export function refName(ref: any): string {
  if (!ref) return '';
  return ref.$type === 'bpmn:Error' ? ref.errorCode ?? ref.name ?? '' : ref.name ?? '';
}

export function rootRef(modeler: Modeler, type: 'bpmn:Message' | 'bpmn:Signal' | 'bpmn:Error', name: string): any {
  const definitions = modeler.getDefinitions();
  const found = (definitions.rootElements ?? []).find(
    (r: any) => r.$type === type && (type === 'bpmn:Error' ? r.errorCode === name : r.name === name),
  );
  if (found) return found;
  const prefix = type.slice(5).toLowerCase();
  const slug = name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || prefix;
  let id = `${prefix}_${slug}`;
  const ids = new Set((definitions.rootElements ?? []).map((r: any) => r.id));
  for (let n = 2; ids.has(id); n++) id = `${prefix}_${slug}_${n}`;
  const attrs = type === 'bpmn:Error' ? { id, name, errorCode: name } : { id, name };
  const made = modeler.get('bpmnFactory').create(type, attrs);
  definitions.rootElements.push(made);
  made.$parent = definitions;
  return made;
}

/** Who a user task is for. */
export type AssignmentKind = 'person' | 'role' | 'channel' | 'none';

export function assignmentOf(task: Shape): { kind: AssignmentKind; value: string } {
  const b = bo(task);
  const get = (name: string) => b.get?.(`concord:${name}`) ?? b[name];
  if (get('assignee')) return { kind: 'person', value: get('assignee') };
  if (get('candidateRole')) return { kind: 'role', value: get('candidateRole') };
  if (get('candidateChannel')) return { kind: 'channel', value: get('candidateChannel') };
  return { kind: 'none', value: '' };
}

export function setAssignment(modeler: Modeler, task: Shape, kind: AssignmentKind, value: string) {
  const v = value.trim() || undefined;
  setProps(modeler, task, {
    'concord:assignee': kind === 'person' ? v : undefined,
    'concord:candidateRole': kind === 'role' ? v : undefined,
    'concord:candidateChannel': kind === 'channel' ? v : undefined,
  });
}

/** A Concord attribute of the element (`concord:formKey` …), '' when unset. */
export function attr(element: Shape, name: string): string {
  const b = bo(element);
  return (b.get?.(`concord:${name}`) ?? '') as string;
}

/** The process the diagram draws. */
export function processElement(modeler: Modeler): Shape {
  return modeler.get('canvas').getRootElement();
}
