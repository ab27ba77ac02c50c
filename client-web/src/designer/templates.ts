// What a new process, decision table or form starts from: a blank one, or one of the examples
// Concord ships in `bots/workflows/examples` (bundled as text, so a template is one click and
// is exactly the file the engine's tests run).
import approval from '../../../bots/workflows/examples/document-approval.bpmn?raw';
import ticket from '../../../bots/workflows/examples/support-ticket.bpmn?raw';
import purchase from '../../../bots/workflows/examples/purchase-order.bpmn?raw';
import onboarding from '../../../bots/workflows/examples/employee-onboarding.bpmn?raw';
import approvalForm from '../../../bots/workflows/examples/forms/approval.json?raw';
import ticketForm from '../../../bots/workflows/examples/forms/ticket_response.json?raw';
import expenseDmn from '../../../bots/workflows/examples/decisions/expense-approval.dmn?raw';
import expenseYaml from '../../../bots/workflows/examples/decisions/expense-approval.yaml?raw';
import leaveDmn from '../../../bots/workflows/examples/decisions/leave-days.dmn?raw';
import leaveYaml from '../../../bots/workflows/examples/decisions/leave-days.yaml?raw';
import priorityDmn from '../../../bots/workflows/examples/decisions/ticket-priority.dmn?raw';
import priorityYaml from '../../../bots/workflows/examples/decisions/ticket-priority.yaml?raw';

export interface ProcessTemplate {
  key: string;
  title: string;
  description: string;
  /** The BPMN XML. */
  source: string;
  /** The forms its user tasks name, as shipped beside it. */
  forms: { key: string; schema: unknown }[];
}

export const PROCESS_TEMPLATES: ProcessTemplate[] = [
  {
    key: 'document-approval',
    title: 'Document approval',
    description: 'A review and a final sign-off, an SLA that chases the review, the result posted to a channel.',
    source: approval,
    forms: [JSON.parse(approvalForm)],
  },
  {
    key: 'support-ticket',
    title: 'Ticket intake',
    description: 'Started by a ticket message, queued to the support channel, escalated after an hour.',
    source: ticket,
    forms: [JSON.parse(ticketForm)],
  },
  {
    key: 'purchase-order',
    title: 'Purchase order',
    description: 'Reserve stock, invoice, notify the buyer; a failed invoice releases the stock.',
    source: purchase,
    forms: [],
  },
  {
    key: 'employee-onboarding',
    title: 'Employee onboarding',
    description: 'IT, HR and the manager work in parallel; the welcome waits for all three.',
    source: onboarding,
    forms: [],
  },
];

/** A process with a start event and nothing else, as a modeler's "new diagram". */
export function blankProcess(id: string, name: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:concord="https://concord.dev/bpmn" id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="${escapeXml(id)}" name="${escapeXml(name)}" isExecutable="true">
    <bpmn:startEvent id="start" name="Start" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_1">
    <bpmndi:BPMNPlane id="BPMNPlane_1" bpmnElement="${escapeXml(id)}">
      <bpmndi:BPMNShape id="start_di" bpmnElement="start">
        <dc:Bounds x="182" y="162" width="36" height="36" />
        <bpmndi:BPMNLabel><dc:Bounds x="188" y="205" width="25" height="14" /></bpmndi:BPMNLabel>
      </bpmndi:BPMNShape>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
`;
}

export interface DecisionTemplate {
  key: string;
  title: string;
  source: string;
  /** Its test cases, from the YAML twin. */
  twin: string;
}

export const DECISION_TEMPLATES: DecisionTemplate[] = [
  { key: 'expense_approval', title: 'Expense approval', source: expenseDmn, twin: expenseYaml },
  { key: 'leave_days', title: 'Leave days', source: leaveDmn, twin: leaveYaml },
  { key: 'ticket_priority', title: 'Ticket priority', source: priorityDmn, twin: priorityYaml },
];

/** A decision table with one input, one output and no rules yet. */
export function blankDecision(key: string, name: string): string {
  const k = escapeXml(key);
  const n = escapeXml(name);
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" xmlns:dmndi="https://www.omg.org/spec/DMN/20191111/DMNDI/" xmlns:dc="http://www.omg.org/spec/DMN/20180521/DC/" id="${k}_definitions" name="${n}" namespace="http://bpmn.io/schema/dmn">
  <decision id="${k}" name="${n}">
    <decisionTable id="${k}_table" hitPolicy="FIRST">
      <input id="${k}_input_1" label="Input">
        <inputExpression id="${k}_input_expression_1" typeRef="string">
          <text>value</text>
        </inputExpression>
      </input>
      <output id="${k}_output_1" label="Result" name="result" typeRef="string" />
    </decisionTable>
  </decision>
  <dmndi:DMNDI>
    <dmndi:DMNDiagram id="${k}_diagram">
      <dmndi:DMNShape id="${k}_shape" dmnElementRef="${k}">
        <dc:Bounds height="80" width="180" x="160" y="100" />
      </dmndi:DMNShape>
    </dmndi:DMNDiagram>
  </dmndi:DMNDI>
</definitions>
`;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** An id for something named `name`: letters, digits and `_`, starting with a letter. */
export function idFrom(name: string, fallback: string): string {
  const id = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 60);
  return /^[a-z]/.test(id) ? id : id ? `${fallback}_${id}` : fallback;
}

/** `id`, or `id_2`, `id_3`… whichever `taken` does not hold. */
export function freeId(id: string, taken: Set<string>): string {
  if (!taken.has(id)) return id;
  for (let n = 2; ; n++) if (!taken.has(`${id}_${n}`)) return `${id}_${n}`;
}
