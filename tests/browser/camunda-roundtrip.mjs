// Opens BPMN files as Camunda Modeler opens them and saves them as it saves them: bpmn-js's
// modeler (the editor Camunda Modeler is built on) with Camunda's own moddle extension for the
// chosen engine and none of Concord's, so Concord's settings reach it as attributes and
// extension elements of a namespace it does not know. Like Camunda Modeler, it stamps the file
// with its exporter and execution platform before saving.
//
//   node tests/browser/camunda-roundtrip.mjs camunda7|camunda8 IN_DIR OUT_DIR
//
// Every `*.bpmn` and `*.dmn` of IN_DIR is written to OUT_DIR under the same name (DMN through
// dmn-js's modeler, Camunda Modeler's DMN editor, with Camunda 7's DMN extension for camunda7). Prints one JSON object:
// for each file, the import warnings the modeler reported (an element or attribute it could not
// read) and how many shapes and connections it drew.
import { chromium } from 'playwright-core';
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const [flavour, inDir, outDir] = process.argv.slice(2);
const FLAVOURS = {
  camunda7: {
    prefix: 'camunda',
    descriptor: 'camunda-bpmn-moddle/resources/camunda.json',
    // Camunda 7's DMN extension (`camunda:inputVariable`, history time to live).
    dmnDescriptor: 'camunda-dmn-moddle/resources/camunda.json',
    platform: 'Camunda Platform',
    version: '7.22.0',
  },
  camunda8: {
    prefix: 'zeebe',
    descriptor: 'zeebe-bpmn-moddle/resources/zeebe.json',
    // Camunda 8 reads plain DMN.
    dmnDescriptor: null,
    platform: 'Camunda Cloud',
    version: '8.6.0',
  },
};
const chosen = FLAVOURS[flavour];
if (!chosen || !inDir || !outDir) {
  console.error('usage: camunda-roundtrip.mjs camunda7|camunda8 IN_DIR OUT_DIR');
  process.exit(2);
}
const descriptor = JSON.parse(readFileSync(require.resolve(chosen.descriptor), 'utf8'));
const modelerScript = require.resolve('bpmn-js/dist/bpmn-modeler.development.js');
const dmnModelerScript = require.resolve('dmn-js/dist/dmn-modeler.development.js');

mkdirSync(outDir, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
});
const report = {};
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.setContent('<html><body><div id="canvas" style="width:1600px;height:900px"></div></body></html>');
  await page.addScriptTag({ path: modelerScript });
  for (const file of readdirSync(inDir).filter((f) => f.endsWith('.dmn')).sort()) {
    report[file] = await roundTripDecision(file);
  }
  for (const file of readdirSync(inDir).filter((f) => f.endsWith('.bpmn')).sort()) {
    const source = readFileSync(join(inDir, file), 'utf8');
    const result = await page
      .evaluate(
      async ({ source, descriptor, chosen }) => {
        document.querySelector('#canvas').innerHTML = '';
        const modeler = new window.BpmnJS({ container: '#canvas', moddleExtensions: { [chosen.prefix]: descriptor } });
        const { warnings } = await modeler.importXML(source);
        modeler.get('canvas').zoom('fit-viewport');
        const drawn = modeler.get('elementRegistry').filter((e) => e.type !== 'label' && e.type !== 'bpmn:Process');
        // What Camunda Modeler writes on every save.
        const definitions = modeler.getDefinitions();
        definitions.exporter = 'Camunda Modeler';
        definitions.exporterVersion = '5.31.0';
        definitions.$attrs['xmlns:modeler'] = 'http://camunda.org/schema/modeler/1.0';
        definitions.$attrs['modeler:executionPlatform'] = chosen.platform;
        definitions.$attrs['modeler:executionPlatformVersion'] = chosen.version;
        const { xml } = await modeler.saveXML({ format: true });
        return {
          xml,
          warnings: warnings.map((w) => w.message),
          shapes: drawn.filter((e) => !e.waypoints).length,
          connections: drawn.filter((e) => e.waypoints).length,
        };
      },
      { source, descriptor, chosen },
      )
      // A file the modeler cannot open at all: reported with the file, as Camunda Modeler does.
      .catch((err) => ({ error: err.message.replace(/^page\.evaluate: (Error: )?/, '').split('\n')[0] }));
    if (errors.length) throw new Error(`${file}: ${errors.join('; ')}`);
    if (result.error) {
      report[file] = { error: result.error };
      continue;
    }
    writeFileSync(join(outDir, file), result.xml + '\n');
    report[file] = { warnings: result.warnings, shapes: result.shapes, connections: result.connections };
  }
} finally {
  await browser.close();
}

/** Opens a DMN file in dmn-js's modeler (Camunda Modeler's DMN editor) and saves it stamped. */
async function roundTripDecision(file) {
  const page = await browser.newPage();
  try {
    await page.setContent('<html><body><div id="canvas" style="width:1600px;height:900px"></div></body></html>');
    await page.addScriptTag({ path: dmnModelerScript });
    const descriptor = chosen.dmnDescriptor ? JSON.parse(readFileSync(require.resolve(chosen.dmnDescriptor), 'utf8')) : null;
    const source = readFileSync(join(inDir, file), 'utf8');
    const result = await page
      .evaluate(
        async ({ source, descriptor, chosen }) => {
          const modeler = new window.DmnJS({
            container: '#canvas',
            common: descriptor ? { moddleExtensions: { camunda: descriptor } } : {},
          });
          const { warnings } = await modeler.importXML(source);
          // Every view opens: the requirements diagram and each decision's table.
          for (const view of modeler.getViews()) await modeler.open(view);
          const definitions = modeler.getDefinitions();
          definitions.exporter = 'Camunda Modeler';
          definitions.exporterVersion = '5.31.0';
          definitions.$attrs['xmlns:modeler'] = 'http://camunda.org/schema/modeler/1.0';
          definitions.$attrs['modeler:executionPlatform'] = chosen.platform;
          definitions.$attrs['modeler:executionPlatformVersion'] = chosen.version;
          const { xml } = await modeler.saveXML({ format: true });
          return { xml, warnings: warnings.map((w) => w.message), shapes: modeler.getViews().length, connections: 0 };
        },
        { source, descriptor, chosen },
      )
      .catch((err) => ({ error: err.message.replace(/^page\.evaluate: (Error: )?/, '').split('\n')[0] }));
    if (result.error) return { error: result.error };
    writeFileSync(join(outDir, file), result.xml + '\n');
    return { warnings: result.warnings, shapes: result.shapes, connections: result.connections };
  } finally {
    await page.close();
  }
}
console.log(JSON.stringify(report));
