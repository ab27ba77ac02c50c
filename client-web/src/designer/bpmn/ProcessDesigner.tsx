// The process designer at /w/<ws>/processes/<process_id>: bpmn-js's modeler limited to what the
// engine runs (restrict.ts) with Concord's extension (concord.json), the properties of the
// chosen element (PropertiesPanel), deploy with a version note, the server's problems placed on
// the elements they name, the versions with what changed between them, export, and a way to
// start the process from a channel. This module and bpmn-js load only on this page.
/* eslint-disable @typescript-eslint/no-explicit-any */
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css';
import '../designer.css';
import Modeler from 'bpmn-js/lib/Modeler';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, api, describeError, request, type Me } from '../../api';
import { linkClick } from '../../shell/router';
import { Dialog, useTitle } from '../../shell/ui';
import type { Workspace } from '../../shell/types';
import type { WorkspaceData } from '../../shell/workspaceData';
import concordDescriptor from '../../../../bots/workflows/concord.json?raw';
import { dropDraft, loadDraft, saveDraft } from '../drafts';
import { download } from '../download';
import { PropertiesPanel, type PanelContext } from './PropertiesPanel';
import { concordModule } from './restrict';
import { processElement, type Shape } from './settings';
import { VersionsPanel, type Comparison } from './VersionsPanel';
import { StartFromChannel } from './StartFromChannel';

export interface Problem {
  element?: string | null;
  line?: number | null;
  message: string;
}

type Tab = 'properties' | 'problems' | 'versions';

export default function ProcessDesigner(props: {
  workspace: Workspace;
  processId: string;
  me: Me;
  data: WorkspaceData;
  navigate: (path: string, opts?: { replace?: boolean }) => void;
}) {
  const { workspace, processId } = props;
  const ws = workspace.id;
  const base = `/w/${ws}/processes`;
  const canvasRef = useRef<HTMLDivElement>(null);
  const modelerRef = useRef<any>(null);
  const [ready, setReady] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [selected, setSelected] = useState<Shape | null>(null);
  const [revision, setRevision] = useState(0);
  const [tab, setTab] = useState<Tab>('properties');
  const [problems, setProblems] = useState<Problem[]>([]);
  const [notice, setNotice] = useState<{ kind: 'done' | 'problem'; text: string } | null>(null);
  const [deploying, setDeploying] = useState(false);
  const [askNote, setAskNote] = useState(false);
  const [triggerOpen, setTriggerOpen] = useState(false);
  const [versions, setVersions] = useState<import('../../api').Schemas['DeploymentView'][] | null>(null);
  const [hasDraft, setHasDraft] = useState(false);
  const [comparison, setComparison] = useState<Comparison | null>(null);
  const [ctx, setCtx] = useState<Omit<PanelContext, 'members' | 'channels' | 'workspaceId'>>({ forms: [], decisions: [], processes: [], roles: [] });
  const quiet = useRef(false); // true while importing: not an edit
  const editingXml = useRef<string | null>(null);
  const marked = useRef<string[]>([]);

  const latest = versions?.[0]?.version ?? 0;
  const processName = useMemo(() => {
    const m = modelerRef.current;
    return (m && ready ? processElement(m)?.businessObject?.name : null) || versions?.[0]?.name || processId;
  }, [ready, revision, versions, processId]);
  useTitle(`${processName} · Processes · ${workspace.name}`);

  const loadVersions = async () => {
    const all = await api('get', '/api/v1/workspaces/{workspace_id}/workflows', { params: { path: { workspace_id: ws } } });
    const mine = all.deployments.filter((d) => d.process_id === processId).sort((a, b) => b.version - a.version);
    setVersions(mine);
    setCtx((c) => ({ ...c, processes: [...new Set(all.deployments.map((d) => d.process_id))].sort() }));
    return mine;
  };

  // The modeler, made once for the page.
  useEffect(() => {
    const modeler: any = new Modeler({
      container: canvasRef.current!,
      moddleExtensions: { concord: JSON.parse(concordDescriptor) },
      additionalModules: [concordModule],
    });
    modelerRef.current = modeler;
    (window as any).__concordModeler = modeler; // for the browser tests, as bpmn-draw.mjs drives one
    const bus = modeler.get('eventBus');
    bus.on('selection.changed', (e: any) => setSelected(e.newSelection?.[0] ?? null));
    // What the context pad appends stays in sight, so drawing can go on from it.
    bus.on('autoPlace.end', (e: any) => modeler.get('canvas').scrollToElement(e.shape, { top: 80, bottom: 80, left: 120, right: 160 }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    bus.on('commandStack.changed', () => {
      setRevision((r) => r + 1);
      if (quiet.current || editingXml.current !== null) return;
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const { xml } = await modeler.saveXML({ format: true });
        saveDraft('process', ws, processId, { xml: xml ?? '' });
        setHasDraft(true);
      }, 400);
    });
    return () => {
      clearTimeout(timer);
      modeler.destroy();
      modelerRef.current = null;
    };
  }, []);

  // What the panel offers: forms, decision tables, roles.
  useEffect(() => {
    const path = { params: { path: { workspace_id: ws } } };
    api('get', '/api/v1/workspaces/{workspace_id}/workflow-forms', path)
      .then((r) => setCtx((c) => ({ ...c, forms: r.forms.map((f) => f.key).sort() })))
      .catch(() => undefined);
    api('get', '/api/v1/workspaces/{workspace_id}/workflow-decisions', path)
      .then((r) => setCtx((c) => ({ ...c, decisions: r.decisions.map((d) => d.key).sort() })))
      .catch(() => undefined);
    api('get', '/api/v1/workspaces/{workspace_id}/roles', path)
      .then((r) => setCtx((c) => ({ ...c, roles: r.map((x) => x.name).sort() })))
      .catch(() => undefined);
  }, [ws]);

  const show = async (xml: string) => {
    const modeler = modelerRef.current;
    quiet.current = true;
    try {
      await modeler.importXML(xml);
      fitClearOfPalette(modeler);
      setSelected(null);
    } finally {
      quiet.current = false;
    }
  };

  // The draft if there is one, else the latest version.
  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const deployed = await loadVersions().catch(() => [] as never[]);
        const draft = loadDraft('process', ws, processId);
        let xml = draft?.xml;
        if (!xml && deployed.length > 0) xml = await exportXml(ws, processId, deployed[0].version);
        if (!live) return;
        if (!xml) {
          setLoadError('There is no process with this id here, and no draft of one in this browser.');
          return;
        }
        setHasDraft(!!draft);
        await show(xml);
        if (live) setReady(true);
      } catch (e) {
        if (live) setLoadError(describeError(e));
      }
    })();
    return () => {
      live = false;
    };
  }, [ws, processId]);

  const placeProblems = (list: Problem[]) => {
    const modeler = modelerRef.current;
    const overlays = modeler.get('overlays');
    const canvas = modeler.get('canvas');
    const registry = modeler.get('elementRegistry');
    overlays.remove({ type: 'ds-problem' });
    for (const id of marked.current) if (registry.get(id)) canvas.removeMarker(id, 'ds-problem-marker');
    marked.current = [];
    const counts = new Map<string, string[]>();
    for (const p of list) {
      if (p.element && registry.get(p.element)) counts.set(p.element, [...(counts.get(p.element) ?? []), p.message]);
    }
    for (const [id, messages] of counts) {
      const el = registry.get(id);
      canvas.addMarker(id, 'ds-problem-marker');
      marked.current.push(id);
      const badge = document.createElement('button');
      badge.type = 'button';
      badge.className = 'ds-problem-badge';
      badge.textContent = messages.length > 1 ? `! ${messages.length}` : '!';
      badge.title = messages.join('\n');
      badge.setAttribute('aria-label', `Problem on ${id}: ${messages.join('; ')}`);
      badge.addEventListener('click', () => {
        modeler.get('selection').select(el);
        setTab('problems');
      });
      const connection = !!el.waypoints;
      overlays.add(id, 'ds-problem', { position: connection ? { top: -24, left: -12 } : { top: -12, right: 12 }, html: badge });
    }
    setProblems(list);
  };

  const deploy = async (note: string) => {
    const modeler = modelerRef.current;
    setDeploying(true);
    setNotice(null);
    try {
      const { xml } = await modeler.saveXML({ format: true });
      const made = await api('post', '/api/v1/workspaces/{workspace_id}/workflows', {
        params: { path: { workspace_id: ws } },
        json: { source: xml, format: 'bpmn', note: note.trim() || null },
      });
      placeProblems([]);
      dropDraft('process', ws, processId);
      setHasDraft(false);
      setAskNote(false);
      setNotice({ kind: 'done', text: `Version ${made.version} of ${made.process_id} is deployed.` });
      if (made.process_id !== processId) {
        props.navigate(`${base}/${encodeURIComponent(made.process_id)}`, { replace: true });
        return;
      }
      await loadVersions();
    } catch (e) {
      setAskNote(false);
      if (e instanceof ApiError && e.code === 'invalid_model') {
        const list = e.details.map(readProblem).filter((p): p is Problem => p !== null);
        placeProblems(list.length ? list : e.problems.map((message) => ({ message })));
        setTab('problems');
        setNotice({ kind: 'problem', text: `Not deployed: ${list.length === 1 ? 'one problem' : `${list.length} problems`} to fix first.` });
      } else {
        setNotice({ kind: 'problem', text: `Not deployed: ${describeError(e)}` });
      }
    } finally {
      setDeploying(false);
    }
  };

  const exportCurrent = async () => {
    const { xml } = await modelerRef.current.saveXML({ format: true });
    download(`${processElement(modelerRef.current)?.businessObject?.id ?? processId}.bpmn`, xml, 'application/xml');
  };

  const discardDraft = async () => {
    if (!versions?.length) return;
    if (!confirm('Discard the changes made since the last deployed version?')) return;
    dropDraft('process', ws, processId);
    setHasDraft(false);
    placeProblems([]);
    await show(await exportXml(ws, processId, versions[0].version));
  };

  const openVersion = async (version: number) => {
    if (hasDraft && !confirm(`Replace the draft with version ${version}? The draft's changes are lost.`)) return;
    dropDraft('process', ws, processId);
    setHasDraft(false);
    placeProblems([]);
    await show(await exportXml(ws, processId, version));
  };

  // Comparing: the canvas shows a version with what changed marked; the edit comes back after.
  const startComparing = async (c: Comparison) => {
    const modeler = modelerRef.current;
    if (editingXml.current === null) editingXml.current = (await modeler.saveXML({ format: true })).xml;
    await show(c.showing === 'after' ? c.afterXml : c.beforeXml);
    const canvas = modeler.get('canvas');
    const registry = modeler.get('elementRegistry');
    for (const ch of c.changes) {
      const marker = ch.kind === 'added' ? 'ds-diff-added' : ch.kind === 'removed' ? 'ds-diff-removed' : ch.kind === 'changed' ? 'ds-diff-changed' : 'ds-diff-moved';
      const onThis = c.showing === 'after' ? ch.kind !== 'removed' : ch.kind !== 'added';
      if (onThis && registry.get(ch.id)) canvas.addMarker(ch.id, marker);
    }
    setComparison(c);
  };
  const stopComparing = async () => {
    const xml = editingXml.current;
    setComparison(null);
    if (xml !== null) await show(xml);
    editingXml.current = null;
  };
  const focusElement = (id: string) => {
    const modeler = modelerRef.current;
    const el = modeler.get('elementRegistry').get(id);
    if (!el) return;
    modeler.get('selection').select(el);
    modeler.get('canvas').scrollToElement(el);
  };

  const modeler = modelerRef.current;
  const current = selected ?? (ready && modeler ? processElement(modeler) : null);
  const panelCtx: PanelContext = {
    ...ctx,
    workspaceId: ws,
    members: [...props.data.members.values()],
    channels: (props.data.channels ?? []).filter((c) => c.kind === 'public' || c.kind === 'private').map((c) => c.name ?? '').filter(Boolean),
  };

  return (
    <section class="ds-page ds-designer" aria-labelledby="ds-title">
      <header class="ds-bar">
        <div class="ds-bar-title">
          <a class="ds-back" href={base} onClick={linkClick}>
            Processes
          </a>
          <h1 id="ds-title">{processName}</h1>
          <span class="tag">{processId}</span>
          <span class="ds-state" data-testid="ds-state">
            {latest === 0 ? 'Not deployed yet' : hasDraft ? `Changed since version ${latest}` : `Version ${latest}`}
          </span>
        </div>
        <div class="ds-bar-actions">
          <button type="button" class="button button-primary" disabled={!ready || deploying || comparison !== null} onClick={() => setAskNote(true)}>
            {deploying ? 'Deploying…' : 'Deploy…'}
          </button>
          <button type="button" class="button button-secondary" disabled={!ready} onClick={() => modelerRef.current && fitClearOfPalette(modelerRef.current)}>
            Fit
          </button>
          <button type="button" class="button button-secondary" disabled={!ready} onClick={exportCurrent}>
            Export .bpmn
          </button>
          {hasDraft && latest > 0 && (
            <button type="button" class="button button-secondary" onClick={discardDraft}>
              Discard changes
            </button>
          )}
          <button type="button" class="button button-secondary" disabled={latest === 0} title={latest === 0 ? 'Deploy it first' : undefined} onClick={() => setTriggerOpen(true)}>
            Start from a channel…
          </button>
          <a class="button button-secondary" href={`${base}/${encodeURIComponent(processId)}/dashboard`} onClick={linkClick}>
            Dashboard
          </a>
        </div>
      </header>
      <div class="tk-notice-slot" role="status" aria-live="polite">
        {notice?.kind === 'done' && <p class="tk-notice tk-notice-done ds-notice">{notice.text}</p>}
      </div>
      {notice?.kind === 'problem' && (
        <p class="tk-notice tk-notice-problem ds-notice" role="alert">
          {notice.text}
        </p>
      )}
      {loadError && (
        <div class="empty-state" role="alert">
          <h2>Could not open this process</h2>
          <p>{loadError}</p>
          <a class="button" href={base} onClick={linkClick}>
            Back to the processes
          </a>
        </div>
      )}
      <div class="ds-work" hidden={!!loadError}>
        <div class={comparison ? 'ds-canvas ds-comparing' : 'ds-canvas'} ref={canvasRef} aria-label="Diagram" role="application" />
        <aside class="ds-side" aria-label="Details">
          <div class="ds-tabs" role="tablist">
            {(['properties', 'problems', 'versions'] as Tab[]).map((t) => (
              <button
                key={t}
                type="button"
                role="tab"
                id={`ds-tab-${t}`}
                aria-selected={tab === t}
                aria-controls="ds-tabpanel"
                class={tab === t ? 'ds-tab ds-tab-on' : 'ds-tab'}
                onClick={() => setTab(t)}
              >
                {t === 'properties' ? 'Properties' : t === 'problems' ? `Problems${problems.length ? ` (${problems.length})` : ''}` : 'Versions'}
              </button>
            ))}
          </div>
          <div id="ds-tabpanel" role="tabpanel" aria-labelledby={`ds-tab-${tab}`} class="ds-tabpanel">
            {tab === 'properties' &&
              (comparison ? (
                <p class="tk-muted">Comparing versions: go back to editing to change the model.</p>
              ) : current && modeler ? (
                <PropertiesPanel key={current.id} modeler={modeler} element={current} ctx={panelCtx} revision={revision} />
              ) : (
                <p class="tk-muted">Loading…</p>
              ))}
            {tab === 'problems' && (
              <div class="ds-problems">
                {problems.length === 0 ? (
                  <p class="tk-muted">No problems reported. Deploying checks the whole model and lists here what the engine refuses, on the element at fault.</p>
                ) : (
                  <ul>
                    {problems.map((p, i) => (
                      <li key={i}>
                        {p.element && modeler?.get('elementRegistry').get(p.element) ? (
                          <button type="button" class="link-button ds-problem-item" data-element={p.element} onClick={() => focusElement(p.element!)}>
                            <strong>{p.element}</strong>: {p.message}
                          </button>
                        ) : (
                          <span>
                            {p.element && <strong>{p.element}: </strong>}
                            {p.message}
                          </span>
                        )}
                      </li>
                    ))}
                  </ul>
                )}
              </div>
            )}
            {tab === 'versions' && (
              <VersionsPanel
                workspaceId={ws}
                processId={processId}
                versions={versions}
                members={props.data.members}
                comparison={comparison}
                moddle={modeler?.get('moddle')}
                fetchXml={(v) => exportXml(ws, processId, v)}
                onCompare={startComparing}
                onStop={stopComparing}
                onOpen={openVersion}
                onFocus={focusElement}
              />
            )}
          </div>
        </aside>
      </div>
      {askNote && (
        <DeployDialog version={latest + 1} busy={deploying} onClose={() => setAskNote(false)} onDeploy={deploy} />
      )}
      {triggerOpen && <StartFromChannel workspaceId={ws} processId={processId} data={props.data} onClose={() => setTriggerOpen(false)} />}
    </section>
  );
}

/**
 * Fits the diagram in the part of the canvas right of the palette (never above 100 %),
 * centred vertically, so nothing drawn is hidden behind the tools.
 */
function fitClearOfPalette(modeler: any) {
  const canvas = modeler.get('canvas');
  const container: HTMLElement = canvas.getContainer();
  const palette = container.querySelector('.djs-palette');
  const left = palette ? palette.getBoundingClientRect().right - container.getBoundingClientRect().left + 24 : 24;
  const { clientWidth: w, clientHeight: h } = container;
  const inner = canvas.viewbox().inner;
  if (w <= left + 48 || h <= 48 || !inner) {
    canvas.zoom('fit-viewport', 'auto');
    return;
  }
  const scale = Math.min(1, (w - left - 24) / Math.max(inner.width, 1), (h - 48) / Math.max(inner.height, 1));
  canvas.viewbox({
    x: inner.x - left / scale,
    y: inner.y - (h / scale - inner.height) / 2,
    width: w / scale,
    height: h / scale,
  });
}

function DeployDialog(props: { version: number; busy: boolean; onClose: () => void; onDeploy: (note: string) => void }) {
  const [note, setNote] = useState('');
  return (
    <Dialog title={`Deploy version ${props.version}`} onClose={props.onClose} description="New instances run the new version; running ones finish on the version they started with.">
      <form
        class="form"
        onSubmit={(e) => {
          e.preventDefault();
          props.onDeploy(note);
        }}
      >
        <div class="field">
          <label for="ds-note">What changed (optional)</label>
          <textarea id="ds-note" rows={3} maxLength={500} value={note} onInput={(e) => setNote(e.currentTarget.value)} placeholder="Added a director's sign-off above 10,000" />
          <span class="hint">{500 - note.length} characters left</span>
        </div>
        <div class="dialog-actions">
          <button type="button" class="button button-secondary" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="button button-primary" disabled={props.busy}>
            {props.busy ? 'Deploying…' : 'Deploy'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function readProblem(p: unknown): Problem | null {
  if (typeof p !== 'object' || p === null) return null;
  const message = Reflect.get(p, 'message');
  if (typeof message !== 'string') return null;
  const element = Reflect.get(p, 'element');
  const line = Reflect.get(p, 'line');
  return { message, element: typeof element === 'string' ? element : null, line: typeof line === 'number' ? line : null };
}

/** A deployed version's BPMN, as the server exports it. */
export async function exportXml(ws: string, processId: string, version: number): Promise<string> {
  const res = await request('get', `/api/v1/workspaces/${ws}/workflows/${encodeURIComponent(processId)}/bpmn?version=${version}`);
  return res.text();
}
