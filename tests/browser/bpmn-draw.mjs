// Draws Concord's example processes in bpmn-js, the modeler Camunda Modeler and most web BPMN
// editors are built on, and saves them as that modeler saves them: the fixtures the workflow
// examples in `bots/workflows/examples/`, which the workflow engine's tests deploy unchanged.
//
//   node tests/browser/bpmn-draw.mjs [OUTPUT_DIR]
//
// Each diagram is drawn through the modeler's own editing commands (append a shape, attach a
// boundary event, connect two shapes, set a condition), the same commands its palette and
// context pad run when a person draws, then written with `saveXML`. Nothing here writes XML by
// hand, so the files carry exactly the namespaces, ids, diagram interchange and quirks of a
// real modeler's output. Run it again after changing a drawing: the modeler's generated ids come
// from a seeded generator, so an unchanged drawing gives the same file.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const modelerScript = require.resolve('bpmn-js/dist/bpmn-modeler.development.js');
const out = process.argv[2] ?? join(here, '../../bots/workflows/examples');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// Concord's BPMN extension (who a task is for, which HTTP call a service task makes, what a
// send task posts) as a moddle descriptor: the modeler reads and writes it like its own, as it
// does Camunda's. The same file lets any bpmn-js based editor edit Concord's settings.
const descriptor = JSON.parse(readFileSync(join(here, '../../bots/workflows/concord.json'), 'utf8'));

// The drawings, run inside the page. `d` is the drawing kit defined in `kit` below.
const drawings = {
  // Two-level sign-off of a document, with an SLA that escalates to the approvers' manager
  // while the review waits, and the result posted to the channel.
  'document-approval': (d) => {
    d.process('document_approval', 'Document approval');
    const start = d.start('submitted', 'Document submitted');
    const review = d.append(start, 'bpmn:UserTask', 'review', 'Review the document');
    d.set(review, { 'concord:candidateRole': 'approver', 'concord:formKey': 'approval', 'concord:due': 'PT48H' });
    const first = d.append(review, 'bpmn:ExclusiveGateway', 'first_decision', 'Approved?');
    const signOff = d.append(first, 'bpmn:UserTask', 'sign_off', 'Final sign-off');
    d.set(signOff, { 'concord:candidateRole': 'director', 'concord:formKey': 'approval' });
    d.condition(d.flowBetween(first, signOff), 'approved == true', 'first_approved');
    const second = d.append(signOff, 'bpmn:ExclusiveGateway', 'second_decision', 'Signed off?');
    const posted = d.append(second, 'bpmn:SendTask', 'post_approved', 'Post the approval');
    d.post(posted, { channel: 'approvals' }, 'Approved: ${document}');
    d.condition(d.flowBetween(second, posted), 'approved == true', 'second_approved');
    d.append(posted, 'bpmn:EndEvent', 'approved', 'Approved');
    const rejected = d.append(first, 'bpmn:SendTask', 'post_rejected', 'Post the rejection', { dx: 200, dy: 240 });
    d.post(rejected, { channel: 'approvals' }, 'Rejected: ${document}');
    d.defaultFlow(first, d.flowBetween(first, rejected), 'first_rejected');
    d.connect(second, rejected, 'second_rejected');
    d.defaultFlow(second, d.flowBetween(second, rejected));
    d.append(rejected, 'bpmn:EndEvent', 'rejected', 'Rejected');
    const sla = d.boundaryTimer(review, 'review_sla', 'SLA: one day', { timeDuration: 'PT24H' }, false);
    const escalate = d.append(sla, 'bpmn:UserTask', 'escalate', 'Chase the review', { dx: -20, dy: 110 });
    d.set(escalate, { 'concord:candidateRole': 'manager' });
    d.append(escalate, 'bpmn:EndEvent', 'escalated', 'Escalated');
  },

  // Onboarding: IT, HR and the manager work in parallel; the welcome waits for all three.
  'employee-onboarding': (d) => {
    d.process('employee_onboarding', 'Employee onboarding');
    const start = d.start('hired', 'Employee hired');
    const split = d.append(start, 'bpmn:ParallelGateway', 'split');
    const it = d.append(split, 'bpmn:UserTask', 'it_setup', 'Set up laptop and accounts', { dx: 150, dy: -120 });
    d.set(it, { 'concord:candidateRole': 'it' });
    const hr = d.append(split, 'bpmn:UserTask', 'hr_paperwork', 'Contract and payroll', { dx: 150, dy: 0 });
    d.set(hr, { 'concord:candidateRole': 'hr' });
    const manager = d.append(split, 'bpmn:UserTask', 'manager_plan', 'First-week plan', { dx: 150, dy: 120 });
    d.set(manager, { 'concord:assignee': '${manager}' });
    const join = d.append(hr, 'bpmn:ParallelGateway', 'join');
    d.connect(it, join);
    d.connect(manager, join);
    const welcome = d.append(join, 'bpmn:SendTask', 'welcome', 'Post the welcome');
    d.post(welcome, { channel: 'team' }, 'Welcome ${employee}!');
    d.append(welcome, 'bpmn:EndEvent', 'onboarded', 'Onboarded');
  },

  // Purchase order: reserve stock, invoice, notify; a failed invoice undoes the reservation.
  'purchase-order': (d) => {
    d.process('purchase_order', 'Purchase order');
    const start = d.start('ordered', 'Order received');
    const reserve = d.append(start, 'bpmn:ServiceTask', 'reserve_stock', 'Reserve stock');
    d.http(reserve, {
      method: 'POST',
      url: '${services}/stock/reservations',
      body: '{"sku": "${sku}", "quantity": "${quantity}"}',
      outputs: { reservation: 'response.body.id' },
      retry: { attempts: 3, backoff: 'PT1S', multiplier: 2 },
    });
    const invoice = d.append(reserve, 'bpmn:ServiceTask', 'create_invoice', 'Create the invoice');
    d.http(invoice, {
      method: 'POST',
      url: '${services}/invoices',
      body: '{"order": "${order}", "reservation": "${reservation}"}',
      outputs: { invoice: 'response.body.id' },
    });
    const notify = d.append(invoice, 'bpmn:SendTask', 'notify', 'Notify the buyer');
    d.post(notify, { channel: 'orders' }, 'Order ${order} is invoiced');
    d.append(notify, 'bpmn:EndEvent', 'done', 'Invoiced');
    // Undoing the reservation: a compensation boundary event with its handler.
    const undo = d.boundaryEvent(reserve, 'reserve_compensation', 'bpmn:CompensateEventDefinition');
    const release = d.shapeNear(undo, 'bpmn:ServiceTask', 'release_stock', 'Release the stock', { dx: 60, dy: 140 });
    d.http(release, { method: 'DELETE', url: '${services}/stock/reservations/${reservation}' });
    d.compensationHandler(undo, release);
    // Invoicing fails: compensate, then end.
    const failed = d.boundaryEvent(invoice, 'invoice_failed', 'bpmn:ErrorEventDefinition');
    d.errorCode(failed, 'invoice_error', 'INVOICE_FAILED');
    const compensate = d.append(failed, 'bpmn:IntermediateThrowEvent', 'compensate', 'Undo the reservation',
      { dx: 100, dy: 140 }, 'bpmn:CompensateEventDefinition');
    d.append(compensate, 'bpmn:EndEvent', 'cancelled', 'Order cancelled');
  },

  // Support ticket from a CRM webhook, queued to the support channel, with a first-response SLA.
  'support-ticket': (d) => {
    d.process('support_ticket', 'Support ticket');
    const start = d.start('ticket_opened', 'Ticket opened', 'bpmn:MessageEventDefinition');
    d.message(start, 'ticket_message', 'ticket.opened');
    const respond = d.append(start, 'bpmn:UserTask', 'first_response', 'First response');
    d.set(respond, { 'concord:candidateChannel': 'support', 'concord:formKey': 'ticket_response' });
    d.append(respond, 'bpmn:EndEvent', 'answered', 'Answered');
    const sla = d.boundaryTimer(respond, 'response_sla', 'First response due', { timeDuration: 'PT1H' }, true);
    const escalate = d.append(sla, 'bpmn:SendTask', 'escalate', 'Escalate to the lead', { dx: 120, dy: 130 });
    d.post(escalate, { channel: 'support' }, 'Ticket ${ticket} has waited an hour for a first response');
    const lead = d.append(escalate, 'bpmn:UserTask', 'lead_response', 'Lead responds');
    d.set(lead, { 'concord:candidateRole': 'support_lead', 'concord:formKey': 'ticket_response' });
    d.append(lead, 'bpmn:EndEvent', 'answered_by_lead', 'Answered by the lead');
  },
};

// The drawing kit, evaluated in the page next to the modeler.
function kit(modeler) {
  const modeling = modeler.get('modeling');
  const registry = modeler.get('elementRegistry');
  const factory = modeler.get('bpmnFactory');
  const moddle = modeler.get('moddle');
  const definitions = modeler.getDefinitions();
  const rootId = () => registry.filter((e) => e.type === 'bpmn:Process')[0];
  const extend = (shape, values) => {
    modeling.updateProperties(shape, { extensionElements: moddle.create('bpmn:ExtensionElements', { values }) });
  };
  const name = (shape, id, label) => {
    modeling.updateProperties(shape, label ? { id, name: label } : { id });
  };
  const withDefinition = (shape, type) => {
    if (!type) return;
    modeling.updateProperties(shape, {
      eventDefinitions: [factory.create(type)],
    });
  };
  return {
    process(id, label) {
      modeling.updateProperties(rootId(), { id, name: label, isExecutable: true });
    },
    start(id, label, definitionType) {
      const start = registry.filter((e) => e.type === 'bpmn:StartEvent')[0];
      name(start, id, label);
      withDefinition(start, definitionType);
      return registry.get(id);
    },
    append(from, type, id, label, offset, definitionType) {
      const position = offset
        ? { x: from.x + from.width + (offset.dx ?? 100) + 50, y: from.y + from.height / 2 + (offset.dy ?? 0) }
        : undefined;
      const shapeAttrs = definitionType ? { type, eventDefinitionType: definitionType } : { type };
      const shape = modeling.appendShape(from, shapeAttrs, position);
      name(shape, id, label);
      return shape;
    },
    // Concord's settings of a user task (who it is for, its form, when it is due).
    set(shape, attrs) {
      modeling.updateProperties(shape, attrs);
    },
    // The HTTP call of a service task, with its output mappings and retry policy.
    http(shape, { method, url, body, outputs, retry }) {
      const http = moddle.create('concord:Http', { method, url });
      if (body) http.body = moddle.create('concord:Body', { value: body });
      http.outputs = Object.entries(outputs ?? {}).map(([variable, expression]) =>
        moddle.create('concord:Output', { variable, expression }),
      );
      extend(shape, retry ? [http, moddle.create('concord:Retry', retry)] : [http]);
    },
    // What a send task posts, and where.
    post(shape, to, text) {
      extend(shape, [moddle.create('concord:Post', { ...to, text })]);
    },
    shapeNear(from, type, id, label, offset) {
      const shape = modeling.createShape({ type }, {
        x: from.x + from.width / 2 + offset.dx + 50,
        y: from.y + from.height / 2 + offset.dy,
      }, registry.get(rootId().id));
      name(shape, id, label);
      return shape;
    },
    connect(a, b, id) {
      const flow = modeling.connect(a, b);
      if (id) modeling.updateProperties(flow, { id });
      return flow;
    },
    flowBetween(a, b) {
      return a.outgoing.find((c) => c.target === b);
    },
    condition(flow, expression, id) {
      modeling.updateProperties(flow, {
        ...(id ? { id } : {}),
        conditionExpression: factory.create('bpmn:FormalExpression', { body: expression }),
      });
    },
    defaultFlow(gateway, flow, id) {
      if (id) modeling.updateProperties(flow, { id });
      modeling.updateProperties(gateway, { default: flow.businessObject });
    },
    boundaryEvent(task, id, definitionType, interrupting = true) {
      const shape = modeling.createShape(
        { type: 'bpmn:BoundaryEvent', eventDefinitionType: definitionType },
        { x: task.x + task.width - 20, y: task.y + task.height },
        task,
        { attach: true },
      );
      modeling.updateProperties(shape, interrupting ? { id } : { id, cancelActivity: false });
      return shape;
    },
    boundaryTimer(task, id, label, timer, interrupting) {
      const shape = this.boundaryEvent(task, id, 'bpmn:TimerEventDefinition', interrupting);
      modeling.updateLabel(shape, label);
      const definition = shape.businessObject.eventDefinitions[0];
      for (const [k, v] of Object.entries(timer)) {
        definition[k] = factory.create('bpmn:FormalExpression', { body: v });
      }
      return shape;
    },
    errorCode(event, id, code) {
      const error = factory.create('bpmn:Error', { id, name: code, errorCode: code });
      definitions.rootElements.push(error);
      error.$parent = definitions;
      event.businessObject.eventDefinitions[0].errorRef = error;
    },
    message(event, id, messageName) {
      const message = factory.create('bpmn:Message', { id, name: messageName });
      definitions.rootElements.push(message);
      message.$parent = definitions;
      event.businessObject.eventDefinitions[0].messageRef = message;
    },
    compensationHandler(boundary, handler) {
      modeling.updateProperties(handler, { isForCompensation: true });
      modeling.connect(boundary, handler, { type: 'bpmn:Association', associationDirection: 'One' });
    },
  };
}

mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.setContent('<html><body><div id="canvas" style="width:1800px;height:1000px"></div></body></html>');
  await page.addScriptTag({ path: modelerScript });
  for (const [file, draw] of Object.entries(drawings)) {
    const xml = await page.evaluate(
      async ({ kitSource, drawSource, descriptor }) => {
        document.querySelector('#canvas').innerHTML = '';
        // The modeler names what the drawing does not (flows, diagram shapes) from
        // Math.random; a seeded generator makes a redraw give the same file.
        let seed = 0x2f6b1a3d;
        Math.random = () => {
          seed = (seed + 0x6d2b79f5) | 0;
          let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
          t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
          return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
        };
        const modeler = new window.BpmnJS({ container: '#canvas', moddleExtensions: { concord: descriptor } });
        await modeler.createDiagram();
        // eslint-disable-next-line no-new-func
        const makeKit = new Function(`return (${kitSource})`)();
        // eslint-disable-next-line no-new-func
        const drawing = new Function(`return (${drawSource})`)();
        drawing(makeKit(modeler));
        const { xml } = await modeler.saveXML({ format: true });
        modeler.get('canvas').zoom('fit-viewport');
        return xml;
      },
      { kitSource: kit.toString(), drawSource: draw.toString(), descriptor },
    );
    if (errors.length) throw new Error(`${file}: ${errors.join('; ')}`);
    if (process.env.BPMN_SCREENSHOTS) {
      await page.screenshot({ path: join(process.env.BPMN_SCREENSHOTS, `${file}.png`) });
    }
    writeFileSync(join(out, `${file}.bpmn`), xml + '\n');
    console.log(`wrote ${join(out, `${file}.bpmn`)}`);
  }
} finally {
  await browser.close();
}
