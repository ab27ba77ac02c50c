// /w/<ws>/processes: the workspace's processes (latest version, how many versions, the latest
// note), drafts not deployed yet, decision tables and task forms, each opening its designer;
// and the ways to start one: blank, from a shipped template in one click, or from a .bpmn or
// .dmn file. Members who cannot design see the lists only.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, describeError, type Me, type Schemas } from '../api';
import { linkClick } from '../shell/router';
import { Dialog, useTitle } from '../shell/ui';
import type { Workspace } from '../shell/types';
import { draftIds, loadDraft, saveDraft, saveTests } from './drafts';
import { DECISION_TEMPLATES, PROCESS_TEMPLATES, blankDecision, blankProcess, freeId, idFrom, type ProcessTemplate } from './templates';

type Deployment = Schemas['DeploymentView'];

interface ProcessRow {
  id: string;
  name: string;
  latest: Deployment | null;
  versions: number;
  draft: boolean;
}

const BPMN_NS = 'http://www.omg.org/spec/BPMN/20100524/MODEL';
const DMN_NAMESPACES = ['https://www.omg.org/spec/DMN/20191111/MODEL/', 'https://www.omg.org/spec/DMN/20230324/MODEL/', 'http://www.omg.org/spec/DMN/20180521/MODEL/', 'http://www.omg.org/spec/DMN/20151101/dmn.xsd'];

export function ProcessList(props: { workspace: Workspace; me: Me; canDesign: boolean; refused: boolean; navigate: (path: string) => void }) {
  const ws = props.workspace.id;
  const base = `/w/${ws}`;
  useTitle(`Processes · ${props.workspace.name}`);
  const [deployments, setDeployments] = useState<Deployment[] | null>(null);
  const [decisions, setDecisions] = useState<Schemas['DecisionView'][] | null>(null);
  const [forms, setForms] = useState<Schemas['FormView'][] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [dialog, setDialog] = useState<'process' | 'decision' | 'form' | null>(null);
  const bpmnInput = useRef<HTMLInputElement>(null);
  const dmnInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    const path = { params: { path: { workspace_id: ws } } };
    api('get', '/api/v1/workspaces/{workspace_id}/workflows', path)
      .then((r) => setDeployments(r.deployments))
      .catch((e) => setError(describeError(e)));
    api('get', '/api/v1/workspaces/{workspace_id}/workflow-decisions', path)
      .then((r) => setDecisions(r.decisions))
      .catch(() => setDecisions([]));
    api('get', '/api/v1/workspaces/{workspace_id}/workflow-forms', path)
      .then((r) => setForms(r.forms))
      .catch(() => setForms([]));
  }, [ws]);

  const rows: ProcessRow[] = [];
  const byId = new Map<string, Deployment[]>();
  for (const d of deployments ?? []) byId.set(d.process_id, [...(byId.get(d.process_id) ?? []), d]);
  const drafts = props.canDesign ? draftIds('process', ws) : [];
  for (const [id, list] of byId) {
    const latest = list.reduce((a, b) => (b.version > a.version ? b : a));
    rows.push({ id, name: latest.name ?? id, latest, versions: list.length, draft: drafts.includes(id) });
  }
  // Until the deployments are read, a draft cannot say whether it was ever deployed.
  for (const id of deployments === null ? [] : drafts) {
    if (!byId.has(id)) rows.push({ id, name: draftName(loadDraft('process', ws, id)?.xml) ?? id, latest: null, versions: 0, draft: true });
  }
  rows.sort((a, b) => a.name.localeCompare(b.name));
  const takenProcesses = new Set(rows.map((r) => r.id));

  const openDraft = (id: string, xml: string) => {
    saveDraft('process', ws, id, { xml });
    props.navigate(`${base}/processes/${encodeURIComponent(id)}`);
  };

  const importFile = async (file: File, kind: 'bpmn' | 'dmn') => {
    setError(null);
    try {
      const xml = await file.text();
      const doc = new DOMParser().parseFromString(xml, 'application/xml');
      if (doc.getElementsByTagName('parsererror').length) throw new Error(`${file.name} is not XML.`);
      if (kind === 'bpmn') {
        const process = doc.getElementsByTagNameNS(BPMN_NS, 'process')[0];
        const id = process?.getAttribute('id');
        if (!id) throw new Error(`${file.name} holds no BPMN process.`);
        openDraft(id, xml);
      } else {
        const decision = DMN_NAMESPACES.map((ns) => doc.getElementsByTagNameNS(ns, 'decision')[0]).find(Boolean);
        const key = decision?.getAttribute('id');
        if (!key) throw new Error(`${file.name} holds no DMN decision.`);
        saveDraft('decision', ws, key, { xml });
        props.navigate(`${base}/decisions/${encodeURIComponent(key)}`);
      }
    } catch (e) {
      setError(describeError(e));
    }
  };

  return (
    <section class="ds-page" aria-labelledby="ds-list-title">
      <div class="tk-top">
        <h1 id="ds-list-title">Processes</h1>
        {props.canDesign && (
          <div class="ds-bar-actions">
            <button type="button" class="button button-primary" onClick={() => setDialog('process')}>
              New process
            </button>
            <button type="button" class="button button-secondary" onClick={() => bpmnInput.current?.click()}>
              Import .bpmn
            </button>
            <input
              ref={bpmnInput}
              type="file"
              accept=".bpmn,.xml,application/xml"
              class="sr-only"
              tabIndex={-1}
              aria-label="BPMN file to import"
              data-testid="ds-import-bpmn"
              onChange={(e) => {
                const f = e.currentTarget.files?.[0];
                if (f) importFile(f, 'bpmn');
                e.currentTarget.value = '';
              }}
            />
          </div>
        )}
      </div>
      {props.refused && <p class="tk-notice tk-notice-problem">Designing processes needs the workflows.manage permission (owners and admins).</p>}
      {!props.canDesign && !props.refused && <p class="tk-muted">The processes of this workspace. Owners and admins design and deploy them.</p>}
      {error && (
        <p class="error-text" role="alert">
          {error}
        </p>
      )}
      {deployments === null && !error && <p class="tk-muted">Loading…</p>}
      {deployments !== null && rows.length === 0 && <p class="tk-muted">No processes yet.{props.canDesign ? ' Start from a template: it is deployable as it is.' : ''}</p>}
      {rows.length > 0 && (
        <ul class="ds-list" aria-label="Processes">
          {rows.map((r) => (
            <li key={r.id} class="ds-row">
              {props.canDesign ? (
                <a class="ds-row-main" href={`${base}/processes/${encodeURIComponent(r.id)}`} onClick={linkClick}>
                  <strong>{r.name}</strong> <span class="tag">{r.id}</span>
                </a>
              ) : (
                <span class="ds-row-main">
                  <strong>{r.name}</strong> <span class="tag">{r.id}</span>
                </span>
              )}
              <span class="ds-row-meta">
                {r.latest ? `Version ${r.latest.version} · ${r.versions} ${r.versions === 1 ? 'version' : 'versions'} · ${new Date(r.latest.deployed_at).toLocaleDateString()}` : 'Not deployed yet'}
                {r.draft && r.latest && ' · changed since'}
              </span>
              {r.latest?.note && <span class="ds-row-note">{r.latest.note}</span>}
            </li>
          ))}
        </ul>
      )}

      <div class="tk-top ds-section">
        <h2>Decision tables</h2>
        {props.canDesign && (
          <div class="ds-bar-actions">
            <button type="button" class="button button-secondary" onClick={() => setDialog('decision')}>
              New decision table
            </button>
            <button type="button" class="button button-secondary" onClick={() => dmnInput.current?.click()}>
              Import .dmn
            </button>
            <input
              ref={dmnInput}
              type="file"
              accept=".dmn,.xml,application/xml"
              class="sr-only"
              tabIndex={-1}
              aria-label="DMN file to import"
              onChange={(e) => {
                const f = e.currentTarget.files?.[0];
                if (f) importFile(f, 'dmn');
                e.currentTarget.value = '';
              }}
            />
          </div>
        )}
      </div>
      {decisions !== null && decisions.length === 0 && <p class="tk-muted">No decision tables yet.</p>}
      {decisions && decisions.length > 0 && (
        <ul class="ds-list" aria-label="Decision tables">
          {decisions.map((d) => (
            <li key={d.key} class="ds-row">
              {props.canDesign ? (
                <a class="ds-row-main" href={`${base}/decisions/${encodeURIComponent(d.key)}`} onClick={linkClick}>
                  <strong>{d.name ?? d.key}</strong> <span class="tag">{d.key}</span>
                </a>
              ) : (
                <span class="ds-row-main">
                  <strong>{d.name ?? d.key}</strong> <span class="tag">{d.key}</span>
                </span>
              )}
              <span class="ds-row-meta">
                Version {d.version} · {d.rules} rules · hit policy {d.hit_policy}
              </span>
            </li>
          ))}
        </ul>
      )}

      <div class="tk-top ds-section">
        <h2>Task forms</h2>
        {props.canDesign && (
          <div class="ds-bar-actions">
            <button type="button" class="button button-secondary" onClick={() => setDialog('form')}>
              New form
            </button>
          </div>
        )}
      </div>
      {forms !== null && forms.length === 0 && <p class="tk-muted">No forms yet.</p>}
      {forms && forms.length > 0 && (
        <ul class="ds-list" aria-label="Task forms">
          {forms.map((f) => (
            <li key={f.key} class="ds-row">
              {props.canDesign ? (
                <a class="ds-row-main" href={`${base}/forms/${encodeURIComponent(f.key)}`} onClick={linkClick}>
                  <strong>{formTitle(f) ?? f.key}</strong> <span class="tag">{f.key}</span>
                </a>
              ) : (
                <span class="ds-row-main">
                  <strong>{formTitle(f) ?? f.key}</strong> <span class="tag">{f.key}</span>
                </span>
              )}
              <span class="ds-row-meta">Version {f.version}</span>
            </li>
          ))}
        </ul>
      )}

      {dialog === 'process' && (
        <NewProcessDialog
          workspaceId={ws}
          taken={takenProcesses}
          forms={new Set((forms ?? []).map((f) => f.key))}
          onClose={() => setDialog(null)}
          onCreated={openDraft}
        />
      )}
      {dialog === 'decision' && (
        <NewDecisionDialog
          taken={new Set([...(decisions ?? []).map((d) => d.key), ...draftIds('decision', ws)])}
          onClose={() => setDialog(null)}
          onCreated={(key, xml, tests) => {
            saveDraft('decision', ws, key, { xml });
            saveTests(ws, key, tests);
            props.navigate(`${base}/decisions/${encodeURIComponent(key)}`);
          }}
        />
      )}
      {dialog === 'form' && (
        <NewKeyDialog
          title="New form"
          label="Form key"
          hint="User tasks name their form by this key."
          taken={new Set((forms ?? []).map((f) => f.key))}
          onClose={() => setDialog(null)}
          onCreated={(key) => props.navigate(`${base}/forms/${encodeURIComponent(key)}`)}
        />
      )}
    </section>
  );
}

function formTitle(f: Schemas['FormView']): string | undefined {
  const t = (f.schema as Record<string, unknown>)?.title;
  return typeof t === 'string' && t.trim() ? t : undefined;
}

function draftName(xml: string | undefined): string | undefined {
  if (!xml) return undefined;
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  return doc.getElementsByTagNameNS(BPMN_NS, 'process')[0]?.getAttribute('name') ?? undefined;
}

/** The template's XML with its process renamed. */
function renamed(t: ProcessTemplate, id: string, name: string): string {
  const doc = new DOMParser().parseFromString(t.source, 'application/xml');
  const process = doc.getElementsByTagNameNS(BPMN_NS, 'process')[0];
  const old = process.getAttribute('id');
  process.setAttribute('id', id);
  process.setAttribute('name', name);
  for (const plane of Array.from(doc.getElementsByTagNameNS('http://www.omg.org/spec/BPMN/20100524/DI', 'BPMNPlane'))) {
    if (plane.getAttribute('bpmnElement') === old) plane.setAttribute('bpmnElement', id);
  }
  return new XMLSerializer().serializeToString(doc);
}

function NewProcessDialog(props: {
  workspaceId: string;
  taken: Set<string>;
  forms: Set<string>;
  onClose: () => void;
  onCreated: (id: string, xml: string) => void;
}) {
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const create = async (template: ProcessTemplate | null) => {
    setBusy(true);
    setError(null);
    try {
      const title = name.trim() || template?.title || 'New process';
      const id = freeId(idFrom(title, 'process'), props.taken);
      // The forms a template's tasks name come with it, so it deploys as it is.
      for (const f of template?.forms ?? []) {
        if (!props.forms.has(f.key)) {
          await api('post', '/api/v1/workspaces/{workspace_id}/workflow-forms', {
            params: { path: { workspace_id: props.workspaceId } },
            json: f as Schemas['NewForm'],
          });
        }
      }
      props.onCreated(id, template ? renamed(template, id, title) : blankProcess(id, title));
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };

  return (
    <Dialog title="New process" onClose={props.onClose} wide>
      <div class="form">
        <div class="field">
          <label for="ds-new-name">Name</label>
          <input id="ds-new-name" type="text" value={name} placeholder="Expense approval" onInput={(e) => setName(e.currentTarget.value)} />
          <span class="hint">Its id is made from the name; you can change both in the designer before deploying.</span>
        </div>
        <div class="ds-templates">
          <button type="button" class="ds-template" disabled={busy} onClick={() => create(null)}>
            <strong>Blank process</strong>
            <span>A start event to draw from.</span>
          </button>
          {PROCESS_TEMPLATES.map((t) => (
            <button key={t.key} type="button" class="ds-template" disabled={busy} data-template={t.key} onClick={() => create(t)}>
              <strong>{t.title}</strong>
              <span>{t.description}</span>
            </button>
          ))}
        </div>
        {error && (
          <p class="error-text" role="alert">
            {error}
          </p>
        )}
      </div>
    </Dialog>
  );
}

function NewDecisionDialog(props: {
  taken: Set<string>;
  onClose: () => void;
  onCreated: (key: string, xml: string, tests: { name: string; input: string; expect: string }[]) => void;
}) {
  const [name, setName] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <Dialog title="New decision table" onClose={props.onClose} wide>
      <div class="form">
        <div class="field">
          <label for="ds-new-decision">Name</label>
          <input id="ds-new-decision" type="text" value={name} placeholder="Discount" onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <div class="ds-templates">
          <button
            type="button"
            class="ds-template"
            onClick={() => {
              const title = name.trim() || 'New decision';
              const key = freeId(idFrom(title, 'decision'), props.taken);
              props.onCreated(key, blankDecision(key, title), []);
            }}
          >
            <strong>Blank table</strong>
            <span>One input, one output, no rules yet.</span>
          </button>
          {DECISION_TEMPLATES.map((t) => (
            <button
              key={t.key}
              type="button"
              class="ds-template"
              data-template={t.key}
              onClick={async () => {
                try {
                  const { testsOf } = await import('./dmn/twin');
                  props.onCreated(t.key, t.source, testsOf(t.twin));
                } catch (e) {
                  setError(describeError(e));
                }
              }}
            >
              <strong>{t.title}</strong>
              <span>The shipped example, with its test cases.</span>
            </button>
          ))}
        </div>
        {error && (
          <p class="error-text" role="alert">
            {error}
          </p>
        )}
      </div>
    </Dialog>
  );
}

function NewKeyDialog(props: { title: string; label: string; hint: string; taken: Set<string>; onClose: () => void; onCreated: (key: string) => void }) {
  const [key, setKey] = useState('');
  const valid = /^[A-Za-z0-9_.-]{1,100}$/.test(key);
  const taken = props.taken.has(key);
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          if (valid) props.onCreated(key);
        }}
      >
        <div class="field">
          <label for="ds-new-key">{props.label}</label>
          <input id="ds-new-key" type="text" value={key} onInput={(e) => setKey(e.currentTarget.value.trim())} aria-describedby="ds-new-key-hint" />
          <span id="ds-new-key-hint" class={key && !valid ? 'error-text' : 'hint'}>
            {key && !valid ? 'Letters, digits, _, - or . (up to 100).' : taken ? 'A form with this key exists: you will edit it.' : props.hint}
          </span>
        </div>
        <div class="dialog-actions">
          <button type="button" class="button button-secondary" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="button button-primary" disabled={!valid}>
            {taken ? 'Open' : 'Create'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
