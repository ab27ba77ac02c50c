// The decision-table editor at /w/<ws>/decisions/<key>: dmn-js's decision table editor (the one
// Camunda Modeler uses) on the table's DMN, the table's test cases beside it, "Run tests" (the
// server checks every cell and runs each case without deploying: …/workflow-decisions/test),
// Deploy (refused unless every case passes) and export. A table deployed as YAML or CSV is
// edited as text. This module and dmn-js load only on this page.
/* eslint-disable @typescript-eslint/no-explicit-any */
import 'dmn-js/dist/assets/diagram-js.css';
import 'dmn-js/dist/assets/dmn-js-shared.css';
import 'dmn-js/dist/assets/dmn-js-drd.css';
import 'dmn-js/dist/assets/dmn-js-decision-table.css';
import 'dmn-js/dist/assets/dmn-js-decision-table-controls.css';
import 'dmn-js/dist/assets/dmn-font/css/dmn-embedded.css';
import '../designer.css';
import DmnModeler from 'dmn-js/lib/Modeler';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, describeError, request, type Schemas } from '../../api';
import { linkClick } from '../../shell/router';
import { useTitle } from '../../shell/ui';
import type { Workspace } from '../../shell/types';
import { download } from '../download';
import { blankDecision } from '../templates';
import { dropDraft, loadDraft, loadTests, saveDraft, saveTests, type DraftTest } from '../drafts';

type Report = Schemas['DecisionTestReport'];
type Format = 'dmn' | 'yaml' | 'csv';

export default function DecisionEditor(props: { workspace: Workspace; decisionKey: string; navigate: (path: string) => void }) {
  const ws = props.workspace.id;
  const key = props.decisionKey;
  useTitle(`${key} · Decision tables · ${props.workspace.name}`);
  const container = useRef<HTMLDivElement>(null);
  const modeler = useRef<any>(null);
  const [format, setFormat] = useState<Format | null>(null);
  const [text, setText] = useState('');
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [tests, setTests] = useState<DraftTest[]>(() => loadTests(ws, key));
  const [report, setReport] = useState<Report | null>(null);
  const [busy, setBusy] = useState<'test' | 'deploy' | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [version, setVersion] = useState<number | null>(null);

  useEffect(() => saveTests(ws, key, tests), [tests]);

  const openTable = async (xml: string) => {
    if (!modeler.current) {
      modeler.current = new DmnModeler({ container: container.current! });
      (window as any).__concordDmn = modeler.current;
      const watched = new WeakSet<object>();
      modeler.current.on('views.changed', () => {
        const viewer = modeler.current.getActiveViewer();
        if (!viewer || watched.has(viewer)) return;
        watched.add(viewer);
        viewer.get('eventBus').on('commandStack.changed', async () => {
          const { xml: now } = await modeler.current.saveXML({ format: true });
          saveDraft('decision', ws, key, { xml: now });
        });
      });
    }
    await modeler.current.importXML(xml);
    const tables = modeler.current.getViews().filter((v: any) => v.type === 'decisionTable');
    const view = tables.find((v: any) => v.element.id === key) ?? tables[0];
    if (view) await modeler.current.open(view);
  };

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const draft = loadDraft('decision', ws, key);
        const listed = await api('get', '/api/v1/workspaces/{workspace_id}/workflow-decisions', { params: { path: { workspace_id: ws } } });
        const deployed = listed.decisions.find((d) => d.key === key);
        if (live) setVersion(deployed?.version ?? null);
        if (draft) {
          if (!live) return;
          setFormat('dmn');
          await openTable(draft.xml);
          return;
        }
        if (!deployed) {
          if (live) setMissing(true);
          return;
        }
        const res = await request('get', `/api/v1/workspaces/${ws}/workflow-decisions/${encodeURIComponent(key)}/source`);
        const source = await res.text();
        const type = res.headers.get('content-type') ?? '';
        const f: Format = type.includes('xml') ? 'dmn' : type.includes('csv') ? 'csv' : 'yaml';
        if (!live) return;
        setFormat(f);
        if (f === 'dmn') await openTable(source);
        else setText(source);
      } catch (e) {
        if (live) setError(describeError(e));
      }
    })();
    return () => {
      live = false;
      modeler.current?.destroy();
      modeler.current = null;
    };
  }, [ws, key]);

  const source = async (): Promise<string> => (format === 'dmn' ? (await modeler.current.saveXML({ format: true })).xml : text);

  /** The test cases as the API takes them; a row that is not JSON is named. */
  const parsedTests = (): Schemas['NewDecisionTest'][] | string => {
    const out: Schemas['NewDecisionTest'][] = [];
    for (const [i, t] of tests.entries()) {
      try {
        const input = JSON.parse(t.input || '{}');
        if (typeof input !== 'object' || input === null || Array.isArray(input)) return `Test case ${i + 1}: the input is a JSON object of variables.`;
        out.push({ name: t.name || null, input, expect: JSON.parse(t.expect) });
      } catch {
        return `Test case ${i + 1} (${t.name || 'unnamed'}): the input and the expected result are JSON.`;
      }
    }
    return out;
  };

  const runTests = async () => {
    setBusy('test');
    setNotice(null);
    setError(null);
    try {
      const cases = parsedTests();
      if (typeof cases === 'string') {
        setError(cases);
        return;
      }
      const r = await api('post', '/api/v1/workspaces/{workspace_id}/workflow-decisions/test', {
        params: { path: { workspace_id: ws } },
        json: { source: await source(), format: format ?? 'dmn', tests: cases },
      });
      setReport(r);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(null);
    }
  };

  const deploy = async () => {
    setBusy('deploy');
    setNotice(null);
    setError(null);
    try {
      const cases = parsedTests();
      if (typeof cases === 'string') {
        setError(cases);
        return;
      }
      const made = await api('post', '/api/v1/workspaces/{workspace_id}/workflow-decisions', {
        params: { path: { workspace_id: ws } },
        json: { source: await source(), format: format ?? 'dmn', tests: cases },
      });
      dropDraft('decision', ws, key);
      const mine = made.decisions.find((d) => d.key === key) ?? made.decisions[0];
      setVersion(mine?.version ?? null);
      setNotice(`Deployed: ${made.decisions.map((d) => `${d.key} version ${d.version}`).join(', ')}.`);
      setReport(null);
    } catch (e) {
      if (e instanceof ApiError && e.problems.length) setError(`Not deployed: ${e.problems.join('; ')}`);
      else setError(`Not deployed: ${describeError(e)}`);
    } finally {
      setBusy(null);
    }
  };

  const setTest = (i: number, t: Partial<DraftTest>) => setTests((all) => all.map((x, j) => (j === i ? { ...x, ...t } : x)));

  return (
    <section class="ds-page ds-decision" aria-labelledby="ds-decision-title">
      <header class="ds-bar">
        <div class="ds-bar-title">
          <a class="ds-back" href={`/w/${ws}/processes`} onClick={linkClick}>
            Processes
          </a>
          <h1 id="ds-decision-title">Decision table</h1>
          <span class="tag">{key}</span>
          <span class="ds-state">{version ? `Version ${version}` : 'Not deployed yet'}</span>
        </div>
        <div class="ds-bar-actions">
          <button type="button" class="button button-secondary" disabled={!format || busy !== null} onClick={runTests}>
            {busy === 'test' ? 'Running…' : 'Run tests'}
          </button>
          <button type="button" class="button button-primary" disabled={!format || busy !== null} onClick={deploy}>
            {busy === 'deploy' ? 'Deploying…' : 'Deploy'}
          </button>
          <button
            type="button"
            class="button button-secondary"
            disabled={!format}
            onClick={async () => download(`${key}.${format === 'dmn' ? 'dmn' : format}`, await source(), format === 'dmn' ? 'application/xml' : 'text/plain')}
          >
            Export
          </button>
        </div>
      </header>
      <div class="tk-notice-slot" role="status" aria-live="polite">
        {notice && <p class="tk-notice tk-notice-done">{notice}</p>}
      </div>
      {error && (
        <p class="tk-notice tk-notice-problem" role="alert">
          {error}
        </p>
      )}
      {missing && (
        <div class="empty-state">
          <h2>No table {key} yet</h2>
          <button
            type="button"
            class="button button-primary"
            onClick={async () => {
              setMissing(false);
              setFormat('dmn');
              const xml = blankDecision(key, key);
              saveDraft('decision', ws, key, { xml });
              await openTable(xml);
            }}
          >
            Start a blank table
          </button>
        </div>
      )}
      {format && format !== 'dmn' && (
        <div class="field ds-text-source">
          <label for="ds-decision-text">The table ({format.toUpperCase()})</label>
          <textarea id="ds-decision-text" class="ds-code" rows={16} value={text} spellcheck={false} onInput={(e) => setText(e.currentTarget.value)} />
        </div>
      )}
      <div class="ds-table" ref={container} hidden={format !== 'dmn'} />

      <section class="ds-tests" aria-labelledby="ds-tests-title">
        <div class="tk-top">
          <h2 id="ds-tests-title">Test cases</h2>
          <button type="button" class="button button-secondary ds-small" onClick={() => setTests((t) => [...t, { name: '', input: '{}', expect: 'null' }])}>
            Add a test case
          </button>
        </div>
        <p class="hint">Each case decides on its input variables and expects a result: the output's value for a one-output table, an object by output name otherwise. Deploying runs them all.</p>
        {tests.length === 0 && <p class="tk-muted">No test cases yet.</p>}
        <ol class="ds-test-list">
          {tests.map((t, i) => {
            // A DMN file carries no cases of its own: the report's cases are these rows, in order.
            const result = format === 'dmn' ? report?.cases[i] : undefined;
            return (
              <li key={i} class="ds-test" data-passed={result ? String(result.passed) : undefined}>
                <div class="field">
                  <label for={`ds-test-name-${i}`}>Name</label>
                  <input id={`ds-test-name-${i}`} type="text" value={t.name} onInput={(e) => setTest(i, { name: e.currentTarget.value })} />
                </div>
                <div class="field-row">
                  <div class="field">
                    <label for={`ds-test-input-${i}`}>Input (JSON)</label>
                    <textarea id={`ds-test-input-${i}`} class="ds-code" rows={2} spellcheck={false} value={t.input} onInput={(e) => setTest(i, { input: e.currentTarget.value })} />
                  </div>
                  <div class="field">
                    <label for={`ds-test-expect-${i}`}>Expected (JSON)</label>
                    <textarea id={`ds-test-expect-${i}`} class="ds-code" rows={2} spellcheck={false} value={t.expect} onInput={(e) => setTest(i, { expect: e.currentTarget.value })} />
                  </div>
                </div>
                <button type="button" class="link-button" onClick={() => setTests((all) => all.filter((_, j) => j !== i))}>
                  Remove
                </button>
              </li>
            );
          })}
        </ol>
      </section>

      {report && (
        <section class="ds-report" aria-labelledby="ds-report-title" data-testid="ds-test-report">
          <h2 id="ds-report-title">
            {report.ok ? 'All tests pass' : report.problems.length ? 'The table has problems' : `${report.cases.filter((c) => !c.passed).length} of ${report.cases.length} tests fail`}
          </h2>
          {report.problems.length > 0 && (
            <ul class="ds-problems">
              {report.problems.map((p, i) => (
                <li key={i} class="error-text">
                  {p.element ? `${p.element}: ` : ''}
                  {p.message}
                </li>
              ))}
            </ul>
          )}
          <ul class="ds-results">
            {report.cases.map((c) => (
              <li key={`${c.decision}-${c.case}`} class={c.passed ? 'ds-result ds-pass' : 'ds-result ds-fail'} data-passed={String(c.passed)}>
                <span class="ds-result-mark" aria-hidden="true">
                  {c.passed ? '✓' : '✗'}
                </span>
                <span class="sr-only">{c.passed ? 'Passed: ' : 'Failed: '}</span>
                <strong>{c.name}</strong>
                {!c.passed && (
                  <span class="ds-result-why">
                    expected <code>{JSON.stringify(c.expected)}</code>, got <code>{JSON.stringify(c.actual)}</code>
                  </span>
                )}
                {c.explanation.length > 0 && (
                  <details>
                    <summary>Why</summary>
                    <ul>
                      {c.explanation.map((line, j) => (
                        <li key={j}>{line}</li>
                      ))}
                    </ul>
                  </details>
                )}
              </li>
            ))}
          </ul>
        </section>
      )}
    </section>
  );
}
