// What the modeler offers: only the elements Concord's engine runs
// (`crates/workflow/src/bpmn/mod.rs`, SUPPORTED_ELEMENTS). bpmn-js's own palette, context pad
// and "change element" menu offer all of BPMN; these providers run after them and take out
// what the engine would refuse (plain tasks, script and manual tasks, pools, data objects,
// escalation, conditional, link and cancel events, …) and put in the task types Concord runs.
// A model drawn anyway with something else (imported from another tool) is still refused at
// deploy, with the problem placed on that element.
/* eslint-disable @typescript-eslint/no-explicit-any */

/** The replace menu's targets that the engine runs (`replace-with-<id>`). */
const REPLACEABLE = new Set([
  'user-task',
  'service-task',
  'send-task',
  'receive-task',
  'rule-task',
  'call-activity',
  'subprocess',
  'expanded-subprocess',
  'exclusive-gateway',
  'parallel-gateway',
  'inclusive-gateway',
  'event-based-gateway',
  'none-start',
  'none-start-event',
  'message-start',
  'timer-start',
  'signal-start',
  'none-end',
  'none-end-event',
  'error-end',
  'terminate-end',
  'message-end',
  'message-intermediate-catch',
  'timer-intermediate-catch',
  'signal-intermediate-catch',
  'none-intermediate-throw',
  'none-intermediate-throwing',
  'compensation-intermediate-throw',
  'timer-boundary',
  'non-interrupting-timer-boundary',
  'error-boundary',
  'compensation-boundary',
  'sequence-flow',
  'default-flow',
  'conditional-flow',
]);

/** What the palette keeps of bpmn-js's own entries. */
const PALETTE_KEPT = new Set([
  'hand-tool',
  'lasso-tool',
  'space-tool',
  'global-connect-tool',
  'tool-separator',
  'create.start-event',
  'create.intermediate-event',
  'create.end-event',
  'create.exclusive-gateway',
  'create.subprocess-expanded',
]);

/** The tasks Concord runs, as palette and context pad entries. */
const TASKS: [string, string, string, string][] = [
  ['user-task', 'bpmn:UserTask', 'bpmn-icon-user-task', 'User task: a person does it'],
  ['service-task', 'bpmn:ServiceTask', 'bpmn-icon-service-task', 'Service task: an HTTP call'],
  ['send-task', 'bpmn:SendTask', 'bpmn-icon-send-task', 'Send task: a post in a channel'],
  ['business-rule-task', 'bpmn:BusinessRuleTask', 'bpmn-icon-business-rule-task', 'Business-rule task: a decision table'],
];

function ConcordPalette(this: any, palette: any, create: any, elementFactory: any) {
  palette.registerProvider(500, this);
  this.getPaletteEntries = () => (entries: Record<string, any>) => {
    const kept: Record<string, any> = {};
    for (const [id, entry] of Object.entries(entries)) if (PALETTE_KEPT.has(id)) kept[id] = entry;
    kept['create.parallel-gateway'] = {
      group: 'gateway',
      className: 'bpmn-icon-gateway-parallel',
      title: 'Parallel gateway: split into branches that all run, or wait for all of them',
      action: {
        dragstart: (event: Event) => create.start(event, elementFactory.createShape({ type: 'bpmn:ParallelGateway' })),
        click: (event: Event) => create.start(event, elementFactory.createShape({ type: 'bpmn:ParallelGateway' })),
      },
    };
    for (const [id, type, className, title] of TASKS) {
      const start = (event: Event) => create.start(event, elementFactory.createShape({ type }));
      kept[`create.${id}`] = { group: 'activity', className, title, action: { dragstart: start, click: start } };
    }
    return kept;
  };
}
ConcordPalette.$inject = ['palette', 'create', 'elementFactory'];

function ConcordContextPad(this: any, contextPad: any, create: any, elementFactory: any, injector: any) {
  contextPad.registerProvider(500, this);
  const autoPlace = injector.get('autoPlace', false);
  const append = (type: string, className: string, title: string) => {
    const make = () => elementFactory.createShape({ type });
    return {
      group: 'model',
      className,
      title: `Append ${title.charAt(0).toLowerCase()}${title.slice(1)}`,
      action: {
        dragstart: (event: Event, element: any) => create.start(event, make(), { source: element }),
        click: (event: Event, element: any) =>
          autoPlace ? autoPlace.append(element, make()) : create.start(event, make(), { source: element }),
      },
    };
  };
  this.getContextPadEntries = (element: any) => (entries: Record<string, any>) => {
    const out: Record<string, any> = {};
    const canAppendTasks = 'append.append-task' in entries;
    for (const [id, entry] of Object.entries(entries)) {
      if (id === 'append.append-task' || id === 'append.condition-intermediate-event') continue;
      if (id.startsWith('lane-')) continue;
      if (id === 'append.compensation-activity') {
        // A compensation handler is a service task here (the engine refuses plain tasks).
        const make = () => elementFactory.createShape({ type: 'bpmn:ServiceTask', isForCompensation: true });
        out[id] = {
          ...entry,
          className: 'bpmn-icon-service-task',
          action: {
            dragstart: (event: Event, el: any) => create.start(event, make(), { source: el }),
            click: (event: Event, el: any) => (autoPlace ? autoPlace.append(el, make()) : create.start(event, make(), { source: el })),
          },
        };
        continue;
      }
      out[id] = entry;
    }
    if (canAppendTasks && element?.type !== 'label') {
      for (const [id, type, className, title] of TASKS) out[`append.${id}`] = append(type, className, title.split(':')[0]);
    }
    return out;
  };
}
ConcordContextPad.$inject = ['contextPad', 'create', 'elementFactory', 'injector'];

function ConcordReplaceMenu(this: any, popupMenu: any) {
  popupMenu.registerProvider('bpmn-replace', 500, this);
  this.getPopupMenuEntries = (element: any) => (entries: Record<string, any>) => {
    const out: Record<string, any> = {};
    for (const [id, entry] of Object.entries(entries)) {
      const target = id.replace(/^replace-with-/, '');
      if (REPLACEABLE.has(target)) out[id] = entry;
    }
    void element;
    return out;
  };
  this.getPopupMenuHeaderEntries = (element: any) => (entries: Record<string, any>) => {
    const out: Record<string, any> = {};
    const userTask = element?.type === 'bpmn:UserTask';
    const boundaryTimer =
      element?.type === 'bpmn:BoundaryEvent' &&
      element.businessObject?.eventDefinitions?.[0]?.$type === 'bpmn:TimerEventDefinition';
    for (const [id, entry] of Object.entries(entries)) {
      if ((id === 'toggle-parallel-mi' || id === 'toggle-sequential-mi') && userTask) out[id] = entry;
      if (id === 'toggle-non-interrupting' && boundaryTimer) out[id] = entry;
    }
    return out;
  };
}
ConcordReplaceMenu.$inject = ['popupMenu'];

/** The bpmn-js module that limits the modeler to what Concord runs. */
export const concordModule = {
  __init__: ['concordPalette', 'concordContextPad', 'concordReplaceMenu'],
  concordPalette: ['type', ConcordPalette],
  concordContextPad: ['type', ConcordContextPad],
  concordReplaceMenu: ['type', ConcordReplaceMenu],
};
