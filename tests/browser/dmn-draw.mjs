// Draws Concord's example decision tables in dmn-js, the editor Camunda Modeler and most web DMN
// editors are built on, and saves them as that editor saves them: the DMN files in
// `bots/workflows/examples/decisions/`, which the decision engine's tests read unchanged (each
// beside its twin in Concord's YAML form).
//
//   node tests/browser/dmn-draw.mjs [OUTPUT_DIR]
//
// (`DMN_SCREENSHOTS=DIR` also saves a picture of each table as the editor shows it.)
//
// Each table is made as a person makes one: a decision placed on an empty decision requirements
// diagram, turned into a decision table, opened, and then edited through the decision table
// editor's own commands (add an input or output column, add a rule, set the hit policy, type
// into a cell, write an annotation, give an output its list of values), the same commands its
// menus and cells run, then written with `saveXML`. The only XML written by hand is the empty
// document the editor starts from (dmn-js has no "new diagram" of its own), so the files carry
// exactly the namespaces, ids, diagram interchange and quirks of a real editor's output. Run it
// again after changing a table: the editor's generated ids come from a seeded generator, so an
// unchanged table gives the same file.
import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const modelerScript = require.resolve('dmn-js/dist/dmn-modeler.development.js');
const assets = dirname(require.resolve('dmn-js/dist/assets/dmn-js-shared.css'));
const out = process.argv[2] ?? join(here, '../../bots/workflows/examples/decisions');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// The empty DMN 1.3 document the editor opens, as an editor's "new file" would: definitions and
// nothing else. Its id, name and namespace, the decision and its diagram shape are all drawn.
const EMPTY = '<?xml version="1.0" encoding="UTF-8"?>\n'
  + '<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" />';

// The tables, made inside the page. `d` is the drawing kit defined in `kit` below. Cells are
// DMN simple unary tests (inputs) and literals (outputs), written as a person types them.
const drawings = {
  // Who approves an expense, by amount and category; small ones need nobody.
  'expense-approval': async (d) => {
    await d.decision('expense_approval', 'Expense approval');
    d.hitPolicy('FIRST');
    d.input({ label: 'Amount', expression: 'amount', type: 'number' });
    d.input({ label: 'Category', expression: 'category', type: 'string' });
    d.output({ name: 'approver', label: 'Approver', type: 'string' });
    d.output({ name: 'auto_approve', label: 'Auto-approve', type: 'boolean' });
    d.rule(['< 100', '-'], ['"none"', 'true'], 'Small expenses');
    d.rule(['[100..1000]', '"travel","meals"'], ['"manager"', 'false']);
    d.rule(['[100..1000]', '-'], ['"finance"', 'false']);
    d.rule(['> 1000', 'not("equipment")'], ['"director"', 'false']);
    d.rule(['-', '-'], ['"cfo"', 'false'], 'Everything else');
  },

  // A support ticket's priority: of the rules that match, the one whose priority comes first in
  // the output's list of values wins.
  'ticket-priority': async (d) => {
    await d.decision('ticket_priority', 'Ticket priority');
    d.hitPolicy('PRIORITY');
    d.input({ label: 'Plan', expression: 'customer.plan', type: 'string' });
    d.input({ label: 'Severity', expression: 'severity', type: 'number' });
    d.output({ name: 'priority', type: 'string', values: ['"urgent"', '"high"', '"normal"', '"low"'] });
    d.rule(['"enterprise"', '>= 3'], ['"urgent"']);
    d.rule(['-', '>= 4'], ['"urgent"']);
    d.rule(['"enterprise","business"', '-'], ['"high"']);
    d.rule(['-', '[2..3]'], ['"normal"']);
    d.rule(['-', '-'], ['"low"']);
  },

  // Days of leave a year: every rule that matches adds its days to the base 22.
  'leave-days': async (d) => {
    await d.decision('leave_days', 'Leave days');
    d.hitPolicy('COLLECT', 'SUM');
    d.input({ label: 'Age', expression: 'age', type: 'number' });
    d.input({ label: 'Years of service', expression: 'years', type: 'number' });
    d.output({ name: 'days', type: 'number' });
    d.rule(['-', '-'], ['22']);
    d.rule(['< 18', '-'], ['5']);
    d.rule(['>= 60', '-'], ['3']);
    d.rule(['-', '>= 30'], ['3']);
    d.rule(['[18..60)', '[15..30)'], ['2']);
  },
};

// The drawing kit, evaluated in the page next to the editor.
function kit(modeler) {
  // The decision table editor's services, once the table is open.
  let table;
  // Columns made so far; the table dmn-js makes comes with one input and one output, which the
  // first `input` and `output` fill in rather than add.
  let inputs = 0;
  let outputs = 0;
  return {
    // A decision table named `label`: a decision placed on the requirements diagram, replaced by
    // a decision table (the context pad's "change type"), renamed, and opened for editing.
    async decision(id, label) {
      const drd = modeler.getActiveViewer();
      const modeling = drd.get('modeling');
      const canvas = drd.get('canvas');
      const root = canvas.getRootElement();
      // The diagram's id and name, as typed into the box at its top left.
      modeling.updateProperties(root, {
        id: `${id}_definitions`,
        name: label,
        namespace: 'http://bpmn.io/schema/dmn',
      });
      const shape = modeling.createShape(
        drd.get('elementFactory').createShape({ type: 'dmn:Decision' }),
        { x: 240, y: 140 },
        root,
      );
      const decision = drd.get('drdReplace').replaceElement(shape, {
        type: 'dmn:Decision',
        table: true,
        expression: false,
      });
      modeling.updateProperties(decision, { id });
      modeling.updateLabel(decision, label);
      const view = modeler.getViews().find((v) => v.type === 'decisionTable' && v.element.id === id);
      await modeler.open(view);
      table = modeler.getActiveViewer();
    },
    // The hit policy (and, under COLLECT, the aggregation), as picked in the table's head.
    hitPolicy(hitPolicy, aggregation) {
      table.get('modeling').editHitPolicy(hitPolicy, aggregation);
    },
    // An input column: its label, its expression and the expression's type, as set in the
    // column's editor and its type menu.
    input({ label, expression, type }) {
      const col = inputs++ === 0
        ? table.get('sheet').getRoot().cols.find((c) => c.businessObject.$type === 'dmn:InputClause')
        : table.get('editorActions').trigger('addInput');
      table.get('modeling').updateProperties(col.businessObject, {
        label,
        inputExpression: { text: expression, typeRef: type },
      });
    },
    // An output column: its name, label and type, and its list of allowed values if any (the
    // order PRIORITY and OUTPUT ORDER rank by).
    output({ name, label, type, values }) {
      const col = outputs++ === 0
        ? table.get('sheet').getRoot().cols.find((c) => c.businessObject.$type === 'dmn:OutputClause')
        : table.get('editorActions').trigger('addOutput');
      const modeling = table.get('modeling');
      modeling.updateProperties(col.businessObject, label ? { name, label } : { name });
      modeling.updateProperties(col.businessObject, { typeRef: type });
      if (values) modeling.editAllowedValues(col.businessObject, values);
    },
    // A rule at the bottom of the table: its input cells, its output cells, its annotation.
    rule(when, then, annotation) {
      const modeling = table.get('modeling');
      const row = table.get('editorActions').trigger('addRule');
      const texts = [...when, ...then];
      if (texts.length !== row.cells.length) {
        throw new Error(`rule ${row.id}: ${texts.length} cells for ${row.cells.length} columns`);
      }
      row.cells.forEach((cell, i) => modeling.editCell(cell.businessObject, texts[i]));
      if (annotation) modeling.editAnnotation(row.businessObject, annotation);
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
  for (const [file, draw] of Object.entries(drawings)) {
    // A fresh page for each table, so that a table's ids depend on nothing drawn before it.
    const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
    const errors = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.setContent('<html><body><div id="canvas" style="width:1400px;height:700px"></div></body></html>');
    for (const css of ['dmn-js-shared.css', 'dmn-js-decision-table.css', 'dmn-js-decision-table-controls.css',
      'dmn-js-drd.css', 'diagram-js.css']) {
      await page.addStyleTag({ path: join(assets, css) });
    }
    await page.addScriptTag({ path: modelerScript });
    const xml = await page.evaluate(
      async ({ kitSource, drawSource, empty, file }) => {
        // The editor names what the drawing does not (columns, rules, cells, diagram shapes)
        // from Math.random; a generator seeded by the file's name makes a redraw give the same
        // file, and each file its own ids.
        let seed = 0x4d4e1a3d;
        for (const c of file) seed = Math.imul(seed ^ c.charCodeAt(0), 0x01000193);
        Math.random = () => {
          seed = (seed + 0x6d2b79f5) | 0;
          let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
          t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
          return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
        };
        const modeler = new window.DmnJS({ container: '#canvas' });
        await modeler.importXML(empty);
        // eslint-disable-next-line no-new-func
        const makeKit = new Function(`return (${kitSource})`)();
        // eslint-disable-next-line no-new-func
        const drawing = new Function(`return (${drawSource})`)();
        await drawing(makeKit(modeler));
        const { xml } = await modeler.saveXML({ format: true });
        return xml;
      },
      { kitSource: kit.toString(), drawSource: draw.toString(), empty: EMPTY, file },
    );
    if (errors.length) throw new Error(`${file}: ${errors.join('; ')}`);
    if (process.env.DMN_SCREENSHOTS) {
      await page.screenshot({ path: join(process.env.DMN_SCREENSHOTS, `${file}.png`) });
    }
    await page.close();
    writeFileSync(join(out, `${file}.dmn`), xml + '\n');
    console.log(`wrote ${join(out, `${file}.dmn`)}`);
  }
} finally {
  await browser.close();
}
