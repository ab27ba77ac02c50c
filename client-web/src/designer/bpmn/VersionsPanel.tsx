// A process's deployed versions, newest first, each with its note, and what changed from the
// version before it: added, removed and changed elements (with each attribute's old and new
// value), marked on the diagram while comparing.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { useState } from 'preact/hooks';
import { describeError, type Schemas } from '../../api';
import type { Member } from '../../shell/types';
import { download } from '../download';
import { compare, type Change } from './diff';

export interface Comparison {
  before: number;
  after: number;
  beforeXml: string;
  afterXml: string;
  changes: Change[];
  /** Which version the canvas shows. */
  showing: 'before' | 'after';
}

const KIND: Record<Change['kind'], string> = { added: 'Added', removed: 'Removed', changed: 'Changed', moved: 'Moved' };

export function VersionsPanel(props: {
  workspaceId: string;
  processId: string;
  versions: Schemas['DeploymentView'][] | null;
  members: Map<string, Member>;
  comparison: Comparison | null;
  moddle: any;
  fetchXml: (version: number) => Promise<string>;
  onCompare: (c: Comparison) => void;
  onStop: () => void;
  onOpen: (version: number) => void;
  onFocus: (id: string) => void;
}) {
  const [busy, setBusy] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const { versions, comparison } = props;

  const compareWithPrevious = async (after: number) => {
    setBusy(after);
    setError(null);
    try {
      const [beforeXml, afterXml] = await Promise.all([props.fetchXml(after - 1), props.fetchXml(after)]);
      const changes = await compare(props.moddle, beforeXml, afterXml);
      props.onCompare({ before: after - 1, after, beforeXml, afterXml, changes, showing: 'after' });
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(null);
    }
  };

  if (comparison) {
    const shown = comparison.changes.filter((c) => c.kind !== 'moved');
    const moved = comparison.changes.length - shown.length;
    return (
      <div class="ds-compare" data-testid="ds-compare">
        <h2 class="ds-h2">
          Version {comparison.before} → {comparison.after}
        </h2>
        <div class="button-row">
          <button type="button" class="button button-secondary ds-small" onClick={() => props.onCompare({ ...comparison, showing: comparison.showing === 'after' ? 'before' : 'after' })}>
            Show version {comparison.showing === 'after' ? comparison.before : comparison.after}
          </button>
          <button type="button" class="button button-primary ds-small" onClick={props.onStop}>
            Back to editing
          </button>
        </div>
        <p class="hint">
          Showing version {comparison.showing === 'after' ? comparison.after : comparison.before}:{' '}
          <span class="ds-key ds-key-added">added</span> <span class="ds-key ds-key-changed">changed</span> <span class="ds-key ds-key-removed">removed</span>
        </p>
        {shown.length === 0 ? (
          <p class="tk-muted">{moved ? `Only the layout changed (${moved} elements moved).` : 'Nothing changed.'}</p>
        ) : (
          <ul class="ds-changes">
            {shown.map((c) => (
              <li key={`${c.kind}-${c.id}`} class={`ds-change ds-change-${c.kind}`} data-change={c.kind} data-element={c.id}>
                <button type="button" class="link-button" onClick={() => props.onFocus(c.id)}>
                  {KIND[c.kind]} {c.type} <strong>{c.name || c.id}</strong>
                </button>
                {c.attrs.length > 0 && (
                  <ul class="ds-attrs">
                    {c.attrs.map((a) => (
                      <li key={a.name}>
                        <code>{a.name}</code>: <del>{a.before}</del> → <ins>{a.after}</ins>
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
            {moved > 0 && <li class="tk-muted">and {moved} moved on the diagram</li>}
          </ul>
        )}
      </div>
    );
  }

  if (versions === null) return <p class="tk-muted">Loading the versions…</p>;
  if (versions.length === 0) return <p class="tk-muted">Not deployed yet: the first deploy makes version 1.</p>;
  return (
    <div>
      {error && (
        <p class="error-text" role="alert">
          {error}
        </p>
      )}
      <ol class="ds-versions" aria-label="Versions">
        {versions.map((v) => (
          <li key={v.id} class="ds-version" data-version={v.version}>
            <div class="ds-version-head">
              <strong>Version {v.version}</strong>
              <span class="tk-muted">
                {new Date(v.deployed_at).toLocaleString()}
                {v.deployed_by ? ` · ${props.members.get(v.deployed_by)?.display_name ?? 'a former member'}` : ''}
              </span>
            </div>
            {v.note && <p class="ds-version-note">{v.note}</p>}
            <div class="button-row">
              {v.version > 1 && (
                <button type="button" class="link-button" disabled={busy !== null} onClick={() => compareWithPrevious(v.version)}>
                  {busy === v.version ? 'Comparing…' : `Compare with version ${v.version - 1}`}
                </button>
              )}
              <button type="button" class="link-button" onClick={() => props.onOpen(v.version)}>
                Open
              </button>
              <button
                type="button"
                class="link-button"
                onClick={async () => {
                  try {
                    download(`${props.processId}-v${v.version}.bpmn`, await props.fetchXml(v.version), 'application/xml');
                  } catch (e) {
                    setError(describeError(e));
                  }
                }}
              >
                Download
              </button>
            </div>
          </li>
        ))}
      </ol>
    </div>
  );
}
