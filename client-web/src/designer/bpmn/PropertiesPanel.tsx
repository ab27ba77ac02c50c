// The properties of the element chosen on the diagram (or of the process when nothing is):
// what Concord needs to run it. Who a user task is for and how it is routed, its form and due
// time; a service task's HTTP call; what a send task posts; the decision a business-rule task
// takes; conditions on flows (CEL, checked as typed); timers; message, signal and error names.
// Every change goes through the modeler's commands (settings.ts), so Ctrl+Z undoes it.
import { useEffect, useState } from 'preact/hooks';
import { parse as parseYaml } from 'yaml';
import type { Member } from '../../shell/types';
import { linkClick } from '../../shell/router';
import { ExpressionField } from '../ExpressionField';
import {
  assignmentOf,
  attr,
  bo,
  conditionOf,
  eventDefinition,
  extension,
  refName,
  rootRef,
  setAssignment,
  setCondition,
  setExtension,
  setInner,
  setProps,
  setTimer,
  timerOf,
  type AssignmentKind,
  type Modeler,
  type Shape,
  type TimerKind,
} from './settings';

export interface PanelContext {
  workspaceId: string;
  forms: string[];
  decisions: string[];
  processes: string[];
  members: Member[];
  channels: string[];
  roles: string[];
}

const DURATION = /^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$/;

/** A one-line text setting, handed on when the field is left or Enter is pressed. */
function TextProp(props: {
  id: string;
  label: string;
  value: string;
  onCommit: (v: string) => void;
  hint?: string;
  placeholder?: string;
  list?: string;
  check?: (v: string) => string | null;
}) {
  const [text, setText] = useState(props.value);
  useEffect(() => setText(props.value), [props.value, props.id]);
  const problem = props.check && text.trim() ? props.check(text.trim()) : null;
  const commit = () => {
    if (text !== props.value && !problem) props.onCommit(text);
  };
  const hintId = `${props.id}-hint`;
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="text"
        value={text}
        list={props.list}
        placeholder={props.placeholder}
        spellcheck={false}
        aria-invalid={problem ? true : undefined}
        aria-describedby={props.hint || problem ? hintId : undefined}
        onInput={(e) => setText(e.currentTarget.value)}
        onBlur={commit}
        onKeyDown={(e) => e.key === 'Enter' && commit()}
      />
      {(problem || props.hint) && (
        <span id={hintId} class={problem ? 'error-text' : 'hint'}>
          {problem ?? props.hint}
        </span>
      )}
    </div>
  );
}

function SelectProp(props: { id: string; label: string; value: string; options: [string, string][]; onChange: (v: string) => void }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {props.options.map(([v, l]) => (
          <option key={v} value={v}>
            {l}
          </option>
        ))}
      </select>
    </div>
  );
}

const TYPE_NAMES: Record<string, string> = {
  'bpmn:Process': 'Process',
  'bpmn:UserTask': 'User task',
  'bpmn:ServiceTask': 'Service task',
  'bpmn:SendTask': 'Send task',
  'bpmn:ReceiveTask': 'Receive task',
  'bpmn:BusinessRuleTask': 'Business-rule task',
  'bpmn:CallActivity': 'Call activity',
  'bpmn:SubProcess': 'Sub-process',
  'bpmn:StartEvent': 'Start event',
  'bpmn:EndEvent': 'End event',
  'bpmn:IntermediateCatchEvent': 'Intermediate event (waits)',
  'bpmn:IntermediateThrowEvent': 'Intermediate event',
  'bpmn:BoundaryEvent': 'Boundary event',
  'bpmn:ExclusiveGateway': 'Exclusive gateway',
  'bpmn:ParallelGateway': 'Parallel gateway',
  'bpmn:InclusiveGateway': 'Inclusive gateway',
  'bpmn:EventBasedGateway': 'Event-based gateway',
  'bpmn:SequenceFlow': 'Sequence flow',
  'bpmn:TextAnnotation': 'Annotation',
};

export function PropertiesPanel(props: { modeler: Modeler; element: Shape; ctx: PanelContext; revision: number }) {
  const { modeler, element, ctx } = props;
  const b = bo(element);
  const type: string = element.type;
  const key = `${element.id}`;
  const def = eventDefinition(element);
  const defType: string | undefined = def?.$type;

  return (
    <div class="ds-props" data-element-id={element.id}>
      <p class="ds-props-type">{TYPE_NAMES[type] ?? type.replace('bpmn:', '')}</p>
      <TextProp
        id="ds-prop-id"
        label="Id"
        value={b.id ?? ''}
        hint={type === 'bpmn:Process' ? 'The process id: instances, triggers and versions go by it.' : undefined}
        check={(v) => (/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(v) ? null : 'Letters, digits, _, - or ., starting with a letter or _.')}
        onCommit={(v) => v.trim() && setProps(modeler, element, { id: v.trim() })}
      />
      <TextProp
        id="ds-prop-name"
        label={type === 'bpmn:TextAnnotation' ? 'Text' : 'Name'}
        value={b.name ?? b.text ?? ''}
        onCommit={(v) => setProps(modeler, element, type === 'bpmn:TextAnnotation' ? { text: v } : { name: v || undefined })}
      />

      {type === 'bpmn:UserTask' && <UserTaskProps key={key} {...props} />}
      {type === 'bpmn:ServiceTask' && <ServiceTaskProps key={key} {...props} />}
      {type === 'bpmn:SendTask' && <SendTaskProps key={key} {...props} />}
      {type === 'bpmn:BusinessRuleTask' && (
        <>
          <SelectProp
            id="ds-prop-decision"
            label="Decision table"
            value={attr(element, 'decisionRef')}
            options={[['', 'Choose a table…'], ...withCurrent(ctx.decisions, attr(element, 'decisionRef')).map((d): [string, string] => [d, d])]}
            onChange={(v) => setProps(modeler, element, { 'concord:decisionRef': v || undefined })}
          />
          {attr(element, 'decisionRef') && (
            <a class="ds-link" href={`/w/${ctx.workspaceId}/decisions/${encodeURIComponent(attr(element, 'decisionRef'))}`} onClick={linkClick}>
              Open the table
            </a>
          )}
          <TextProp id="ds-prop-result" label="Result variable" value={attr(element, 'resultVariable')} placeholder="decision" onCommit={(v) => setProps(modeler, element, { 'concord:resultVariable': v.trim() || undefined })} />
        </>
      )}
      {type === 'bpmn:CallActivity' && (
        <>
          <TextProp id="ds-prop-called" label="Process to call" value={b.calledElement ?? ''} list="ds-processes" onCommit={(v) => setProps(modeler, element, { calledElement: v.trim() || undefined })} />
          <datalist id="ds-processes">
            {ctx.processes.map((p) => (
              <option key={p} value={p} />
            ))}
          </datalist>
          <TextProp id="ds-prop-result" label="Result variable" value={attr(element, 'resultVariable')} onCommit={(v) => setProps(modeler, element, { 'concord:resultVariable': v.trim() || undefined })} />
        </>
      )}
      {(type === 'bpmn:ReceiveTask' || defType === 'bpmn:MessageEventDefinition') && (
        <>
          <TextProp
            id="ds-prop-message"
            label="Message name"
            value={refName(type === 'bpmn:ReceiveTask' ? b.messageRef : def?.messageRef)}
            placeholder="order.paid"
            onCommit={(v) => {
              const ref = v.trim() ? rootRef(modeler, 'bpmn:Message', v.trim()) : undefined;
              if (type === 'bpmn:ReceiveTask') setProps(modeler, element, { messageRef: ref });
              else setInner(modeler, element, def, { messageRef: ref });
            }}
          />
          {type !== 'bpmn:EndEvent' && (
            <ExpressionField
              workspaceId={ctx.workspaceId}
              id="ds-prop-correlation"
              label="Correlation key (CEL)"
              kind="condition"
              optional
              value={attr(element, 'correlationKey')}
              hint="Which waiting instance a message is for, e.g. order.id"
              onCommit={(v) => setProps(modeler, element, { 'concord:correlationKey': v.trim() || undefined })}
            />
          )}
        </>
      )}
      {defType === 'bpmn:SignalEventDefinition' && (
        <TextProp id="ds-prop-signal" label="Signal name" value={refName(def.signalRef)} onCommit={(v) => setInner(modeler, element, def, { signalRef: v.trim() ? rootRef(modeler, 'bpmn:Signal', v.trim()) : undefined })} />
      )}
      {defType === 'bpmn:ErrorEventDefinition' && (
        <TextProp id="ds-prop-error" label="Error code" value={refName(def.errorRef)} onCommit={(v) => setInner(modeler, element, def, { errorRef: v.trim() ? rootRef(modeler, 'bpmn:Error', v.trim()) : undefined })} />
      )}
      {defType === 'bpmn:TimerEventDefinition' && <TimerProps key={key} {...props} />}
      {type === 'bpmn:BoundaryEvent' && defType === 'bpmn:TimerEventDefinition' && (
        <label class="ds-check-row">
          <input type="checkbox" checked={b.cancelActivity !== false} onChange={(e) => setProps(modeler, element, { cancelActivity: e.currentTarget.checked })} />
          Interrupting: the task stops when the timer fires
        </label>
      )}
      {type === 'bpmn:SequenceFlow' && <FlowProps key={key} {...props} />}
      {(type === 'bpmn:ExclusiveGateway' || type === 'bpmn:InclusiveGateway') && (
        <SelectProp
          id="ds-prop-default"
          label="Default flow (taken when no condition holds)"
          value={b.default?.id ?? ''}
          options={[['', 'None'], ...(element.outgoing ?? []).map((f: Shape): [string, string] => [f.id, `${f.businessObject.name || f.id} → ${f.target?.businessObject?.name || f.target?.id}`])]}
          onChange={(v) => setProps(modeler, element, { default: (element.outgoing ?? []).find((f: Shape) => f.id === v)?.businessObject })}
        />
      )}
    </div>
  );
}

function withCurrent(list: string[], current: string): string[] {
  return current && !list.includes(current) ? [...list, current] : list;
}

function UserTaskProps({ modeler, element, ctx }: { modeler: Modeler; element: Shape; ctx: PanelContext }) {
  const assignment = assignmentOf(element);
  const [kind, setKind] = useState<AssignmentKind>(assignment.kind);
  useEffect(() => setKind(assignment.kind), [assignment.kind]);
  const routing = extension(element, 'concord:Routing');
  const due = attr(element, 'due');
  const formKey = attr(element, 'formKey');
  const hasSla = (element.attachers ?? []).some((a: Shape) => a.businessObject.eventDefinitions?.[0]?.$type === 'bpmn:TimerEventDefinition');
  const list = kind === 'person' ? 'ds-people' : kind === 'role' ? 'ds-roles' : kind === 'channel' ? 'ds-channels' : undefined;
  return (
    <>
      <fieldset class="field ds-group">
        <legend>Who does it</legend>
        <div class="ds-segments" role="radiogroup" aria-label="Assign to">
          {(['person', 'role', 'channel', 'none'] as AssignmentKind[]).map((k) => (
            <label key={k} class="ds-segment">
              <input
                type="radio"
                name="ds-assign-kind"
                value={k}
                checked={kind === k}
                onChange={() => {
                  setKind(k);
                  if (k === 'none') setAssignment(modeler, element, 'none', '');
                }}
              />
              {k === 'person' ? 'A person' : k === 'role' ? 'A role' : k === 'channel' ? 'A channel' : 'Nobody yet'}
            </label>
          ))}
        </div>
        {kind !== 'none' && (
          <TextProp
            id="ds-prop-assignee"
            label={kind === 'person' ? 'Person (email, id or ${variable})' : kind === 'role' ? 'Role' : 'Channel'}
            value={assignment.kind === kind ? assignment.value : ''}
            list={list}
            onCommit={(v) => setAssignment(modeler, element, kind, v)}
          />
        )}
        <datalist id="ds-people">
          {ctx.members.map((m) => (
            <option key={m.user_id} value={m.email}>
              {m.display_name}
            </option>
          ))}
        </datalist>
        <datalist id="ds-roles">
          {ctx.roles.map((r) => (
            <option key={r} value={r} />
          ))}
        </datalist>
        <datalist id="ds-channels">
          {ctx.channels.map((c) => (
            <option key={c} value={c} />
          ))}
        </datalist>
      </fieldset>
      <RoutingProp modeler={modeler} element={element} value={routing?.text ?? ''} />
      <SelectProp
        id="ds-prop-form"
        label="Form"
        value={formKey}
        options={[['', 'No form (any variables)'], ...withCurrent(ctx.forms, formKey).map((f): [string, string] => [f, f])]}
        onChange={(v) => setProps(modeler, element, { 'concord:formKey': v || undefined })}
      />
      <a class="ds-link" href={`/w/${ctx.workspaceId}/forms/${encodeURIComponent(formKey || 'new')}`} onClick={linkClick}>
        {formKey ? 'Edit the form' : 'Design a new form'}
      </a>
      <TextProp
        id="ds-prop-due"
        label="Due after (SLA)"
        value={due}
        placeholder="PT48H"
        hint="An ISO 8601 duration: PT4H is four hours, P2D two days. The assignee is reminded before."
        check={(v) => (DURATION.test(v) ? null : 'Write a duration such as PT4H, P2D or P1DT12H.')}
        onCommit={(v) => setProps(modeler, element, { 'concord:due': v.trim() || undefined })}
      />
      {!hasSla && (
        <button type="button" class="button button-secondary ds-small" onClick={() => addSlaTimer(modeler, element, due || 'PT24H')}>
          Add an escalation timer
        </button>
      )}
    </>
  );
}

/** A non-interrupting timer on the task's border, firing after `duration`, ready to append an escalation to. */
function addSlaTimer(modeler: Modeler, task: Shape, duration: string) {
  const modeling = modeler.get('modeling');
  const shape = modeling.createShape(
    { type: 'bpmn:BoundaryEvent', eventDefinitionType: 'bpmn:TimerEventDefinition' },
    { x: task.x + task.width - 20, y: task.y + task.height },
    task,
    { attach: true },
  );
  modeling.updateProperties(shape, { cancelActivity: false, name: 'SLA' });
  setTimer(modeler, shape, 'timeDuration', duration);
  modeler.get('selection').select(shape);
}

function RoutingProp({ modeler, element, value }: { modeler: Modeler; element: Shape; value: string }) {
  const [text, setText] = useState(value);
  useEffect(() => setText(value), [value, element.id]);
  let problem: string | null = null;
  if (text.trim()) {
    try {
      const parsed = parseYaml(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) problem = 'Routing is a YAML map, e.g. strategy: least_loaded';
    } catch (e) {
      problem = e instanceof Error ? e.message.split('\n')[0] : 'This is not YAML.';
    }
  }
  const commit = () => {
    if (problem || text === value) return;
    setExtension(modeler, element, 'concord:Routing', text.trim() ? { text } : null);
  };
  return (
    <div class="field">
      <label for="ds-prop-routing">Routing (YAML)</label>
      <textarea
        id="ds-prop-routing"
        class="ds-code"
        rows={3}
        value={text}
        spellcheck={false}
        placeholder={'strategy: least_loaded\ncapacity: 5'}
        aria-invalid={problem ? true : undefined}
        aria-describedby="ds-prop-routing-hint"
        onInput={(e) => setText(e.currentTarget.value)}
        onBlur={commit}
      />
      <span id="ds-prop-routing-hint" class={problem ? 'error-text' : 'hint'}>
        {problem ?? 'How the task is shared out within the role or channel: round_robin, least_loaded, skills, learned…'}
      </span>
    </div>
  );
}

function ServiceTaskProps({ modeler, element, ctx }: { modeler: Modeler; element: Shape; ctx: PanelContext }) {
  const http = extension(element, 'concord:Http');
  const retry = extension(element, 'concord:Retry');
  const moddle = modeler.get('moddle');
  const set = (attrs: Record<string, unknown>) => setExtension(modeler, element, 'concord:Http', { method: http?.method ?? 'POST', url: http?.url ?? '', ...(http ? {} : { outputs: [] }), ...attrs });
  const outputs: { variable: string; expression: string }[] = (http?.outputs ?? []).map((o: { variable?: string; expression?: string }) => ({
    variable: o.variable ?? '',
    expression: o.expression ?? '',
  }));
  const setOutputs = (next: { variable: string; expression: string }[]) =>
    set({ outputs: next.map((o) => moddle.create('concord:Output', o)) });
  return (
    <>
      <SelectProp
        id="ds-prop-method"
        label="HTTP method"
        value={http?.method ?? 'POST'}
        options={['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m): [string, string] => [m, m])}
        onChange={(v) => set({ method: v })}
      />
      <ExpressionField workspaceId={ctx.workspaceId} id="ds-prop-url" label="URL" kind="template" value={http?.url ?? ''} placeholder="${services}/invoices" onCommit={(v) => set({ url: v })} />
      <ExpressionField
        workspaceId={ctx.workspaceId}
        id="ds-prop-body"
        label="Body (JSON template)"
        kind="json"
        multiline
        optional
        value={http?.body?.value ?? ''}
        placeholder={'{"order": "${order}"}'}
        onCommit={(v) => set({ body: v.trim() ? moddle.create('concord:Body', { value: v }) : undefined })}
      />
      <fieldset class="field ds-group">
        <legend>Keep from the answer</legend>
        {outputs.map((o, i) => (
          <div class="ds-pair" key={i}>
            <TextProp id={`ds-prop-out-var-${i}`} label="Variable" value={o.variable} onCommit={(v) => setOutputs(outputs.map((x, j) => (j === i ? { ...x, variable: v.trim() } : x)))} />
            <TextProp id={`ds-prop-out-expr-${i}`} label="Expression" value={o.expression} placeholder="response.body.id" onCommit={(v) => setOutputs(outputs.map((x, j) => (j === i ? { ...x, expression: v.trim() } : x)))} />
            <button type="button" class="link-button" onClick={() => setOutputs(outputs.filter((_, j) => j !== i))}>
              Remove
            </button>
          </div>
        ))}
        <button type="button" class="button button-secondary ds-small" onClick={() => setOutputs([...outputs, { variable: 'result', expression: 'response.body' }])}>
          Add a variable
        </button>
      </fieldset>
      <div class="field-row">
        <TextProp
          id="ds-prop-attempts"
          label="Attempts"
          value={retry?.attempts ? String(retry.attempts) : ''}
          placeholder="3"
          check={(v) => (/^[1-9]\d*$/.test(v) ? null : 'A whole number of at least 1.')}
          onCommit={(v) => setExtension(modeler, element, 'concord:Retry', v.trim() ? { attempts: Number(v), backoff: retry?.backoff ?? 'PT1S', multiplier: retry?.multiplier ?? 2 } : null)}
        />
        <TextProp
          id="ds-prop-backoff"
          label="First retry after"
          value={retry?.backoff ?? ''}
          placeholder="PT1S"
          check={(v) => (DURATION.test(v) ? null : 'A duration such as PT1S.')}
          onCommit={(v) => retry && setExtension(modeler, element, 'concord:Retry', { attempts: retry.attempts ?? 3, backoff: v.trim() || 'PT1S', multiplier: retry.multiplier ?? 2 })}
        />
      </div>
    </>
  );
}

function SendTaskProps({ modeler, element, ctx }: { modeler: Modeler; element: Shape; ctx: PanelContext }) {
  const post = extension(element, 'concord:Post');
  const toPerson = !!post?.person;
  const set = (attrs: Record<string, unknown>) =>
    setExtension(modeler, element, 'concord:Post', { channel: post?.channel, person: post?.person, text: post?.text ?? '', ...attrs });
  return (
    <>
      <SelectProp
        id="ds-prop-post-to"
        label="Post to"
        value={toPerson ? 'person' : 'channel'}
        options={[
          ['channel', 'A channel'],
          ['person', 'A person (direct message)'],
        ]}
        onChange={(v) => set(v === 'person' ? { person: post?.channel ?? '', channel: undefined } : { channel: post?.person ?? '', person: undefined })}
      />
      <ExpressionField
        workspaceId={ctx.workspaceId}
        id="ds-prop-post-target"
        label={toPerson ? 'Person' : 'Channel'}
        kind="template"
        value={(toPerson ? post?.person : post?.channel) ?? ''}
        placeholder={toPerson ? '${requester}' : 'approvals'}
        onCommit={(v) => set(toPerson ? { person: v } : { channel: v })}
      />
      <ExpressionField workspaceId={ctx.workspaceId} id="ds-prop-post-text" label="Text" kind="template" multiline value={post?.text ?? ''} placeholder="Order ${order} is invoiced" onCommit={(v) => set({ text: v })} />
    </>
  );
}

function TimerProps({ modeler, element }: { modeler: Modeler; element: Shape }) {
  const timer = timerOf(element) ?? { kind: 'timeDuration' as TimerKind, value: '' };
  const [kind, setKind] = useState<TimerKind>(timer.kind);
  useEffect(() => setKind(timer.kind), [timer.kind]);
  return (
    <>
      <SelectProp
        id="ds-prop-timer-kind"
        label="Timer"
        value={kind}
        options={[
          ['timeDuration', 'After a duration (PT1H)'],
          ['timeDate', 'At a date and time (2026-01-31T09:00:00Z)'],
          ['timeCycle', 'Repeating (R3/PT1H, or a cron line)'],
        ]}
        onChange={(v) => {
          setKind(v as TimerKind);
          if (timer.value) setTimer(modeler, element, v as TimerKind, timer.value);
        }}
      />
      <TextProp
        id="ds-prop-timer"
        label="When"
        value={timer.value}
        placeholder={kind === 'timeDuration' ? 'PT1H' : kind === 'timeDate' ? '2026-01-31T09:00:00Z' : 'R/P1D'}
        check={(v) => (kind === 'timeDuration' && !DURATION.test(v) ? 'A duration such as PT1H or P2D.' : null)}
        onCommit={(v) => setTimer(modeler, element, kind, v.trim())}
      />
    </>
  );
}

function FlowProps({ modeler, element, ctx }: { modeler: Modeler; element: Shape; ctx: PanelContext }) {
  const source = element.source;
  const conditional = ['bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway'].includes(source?.type) || (source?.type ?? '').endsWith('Task');
  const isDefault = source?.businessObject?.default?.id === element.id;
  return (
    <>
      {conditional && !isDefault && (
        <ExpressionField
          workspaceId={ctx.workspaceId}
          id="ds-prop-condition"
          label="Condition (CEL)"
          kind="condition"
          optional
          value={conditionOf(element)}
          placeholder="approved == true"
          hint="Taken when this is true, e.g. amount > 1000 && approved"
          onCommit={(v) => setCondition(modeler, element, v)}
        />
      )}
      {['bpmn:ExclusiveGateway', 'bpmn:InclusiveGateway'].includes(source?.type) && (
        <label class="ds-check-row">
          <input
            type="checkbox"
            checked={isDefault}
            onChange={(e) => {
              if (e.currentTarget.checked) setCondition(modeler, element, '');
              setProps(modeler, source, { default: e.currentTarget.checked ? element.businessObject : undefined });
            }}
          />
          The default flow: taken when no other condition holds
        </label>
      )}
    </>
  );
}
