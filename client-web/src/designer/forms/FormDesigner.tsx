// The form designer at /w/<ws>/forms/<key>: a user task's form as a list of fields (name, label,
// type, required, choices, limits), written as the JSON Schema subset the server takes
// (server/src/workflow/forms.rs) and previewed live with the task screen's own form (TaskForm),
// checks included. Saving deploys the next version of the form under its key.
import '../designer.css';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, api, describeError, type Me, type Schemas } from '../../api';
import { linkClick } from '../../shell/router';
import { useTitle } from '../../shell/ui';
import type { Workspace } from '../../shell/types';
import type { WorkspaceData } from '../../shell/workspaceData';
import { TaskForm } from '../../workflows/TaskForm';
import { readForm } from '../../workflows/form';
import { fieldsOf, schemaOf, FIELD_TYPES, type DesignedField, type FieldType } from './schema';

export default function FormDesigner(props: { workspace: Workspace; formKey: string; me: Me; data: WorkspaceData; navigate: (path: string) => void }) {
  const ws = props.workspace.id;
  const key = props.formKey;
  useTitle(`${key} · Forms · ${props.workspace.name}`);
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [fields, setFields] = useState<DesignedField[] | null>(null);
  const [version, setVersion] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [previewKey, setPreviewKey] = useState(0);

  useEffect(() => {
    api('get', '/api/v1/workspaces/{workspace_id}/workflow-forms', { params: { path: { workspace_id: ws } } })
      .then((r) => {
        const form = r.forms.find((f) => f.key === key);
        const read = fieldsOf(form?.schema);
        setTitle(read.title);
        setDescription(read.description);
        setFields(form ? read.fields : [{ name: 'approved', label: 'Approve', type: 'boolean', required: true, description: '', choices: '', min: '', max: '', maxLength: '' }]);
        setVersion(form?.version ?? null);
      })
      .catch((e) => {
        setError(describeError(e));
        setFields([]);
      });
  }, [ws, key]);

  const schema = useMemo(() => schemaOf(title, description, fields ?? []), [title, description, fields]);
  const preview = useMemo(() => readForm(schema), [schema]);
  // The preview starts over when the form changes (its entries follow the fields).
  useEffect(() => setPreviewKey((k) => k + 1), [schema]);

  const names = (fields ?? []).map((f) => f.name);
  const problems = (fields ?? []).map((f, i) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(f.name)) return 'A name is a letter or _ then letters, digits or _ (it becomes a variable).';
    if (names.indexOf(f.name) !== i) return 'Two fields have this name.';
    if (f.type === 'choice' && !f.choices.split('\n').some((c) => c.trim())) return 'List at least one choice, one per line.';
    for (const n of [f.min, f.max, f.maxLength]) if (n.trim() && !Number.isFinite(Number(n))) return 'Limits are numbers.';
    return null;
  });
  const valid = problems.every((p) => p === null);

  const set = (i: number, change: Partial<DesignedField>) => setFields((all) => (all ?? []).map((f, j) => (j === i ? { ...f, ...change } : f)));
  const move = (i: number, by: number) =>
    setFields((all) => {
      const list = [...(all ?? [])];
      const [f] = list.splice(i, 1);
      list.splice(Math.max(0, Math.min(list.length, i + by)), 0, f);
      return list;
    });

  const save = async () => {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      const made = await api('post', '/api/v1/workspaces/{workspace_id}/workflow-forms', {
        params: { path: { workspace_id: ws } },
        json: { key, schema: schema as Schemas['NewForm']['schema'] },
      });
      setVersion(made.version);
      setNotice(`Saved: version ${made.version} of the form ${made.key}. Tasks opened from now on show it.`);
    } catch (e) {
      setError(e instanceof ApiError && e.problems.length ? `Not saved: ${e.problems.join('; ')}` : `Not saved: ${describeError(e)}`);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="ds-page ds-form-designer" aria-labelledby="ds-form-title">
      <header class="ds-bar">
        <div class="ds-bar-title">
          <a class="ds-back" href={`/w/${ws}/processes`} onClick={linkClick}>
            Processes
          </a>
          <h1 id="ds-form-title">Form</h1>
          <span class="tag">{key}</span>
          <span class="ds-state">{version ? `Version ${version}` : 'Not saved yet'}</span>
        </div>
        <div class="ds-bar-actions">
          <button type="button" class="button button-primary" disabled={!fields || !valid || busy} onClick={save}>
            {busy ? 'Saving…' : 'Save'}
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
      {fields === null ? (
        <p class="tk-muted">Loading…</p>
      ) : (
        <div class="ds-form-work">
          <div class="ds-form-edit">
            <div class="field">
              <label for="ds-form-title-input">Title</label>
              <input id="ds-form-title-input" type="text" value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
            </div>
            <div class="field">
              <label for="ds-form-description">Description</label>
              <textarea id="ds-form-description" rows={2} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
            </div>
            <h2 class="ds-h2">Fields</h2>
            <ol class="ds-fields">
              {fields.map((f, i) => (
                <li key={i} class="ds-field" aria-label={`Field ${i + 1}`}>
                  <div class="field-row">
                    <div class="field">
                      <label for={`ds-f-name-${i}`}>Name</label>
                      <input
                        id={`ds-f-name-${i}`}
                        type="text"
                        class="ds-code"
                        value={f.name}
                        spellcheck={false}
                        aria-invalid={problems[i] ? true : undefined}
                        aria-describedby={problems[i] ? `ds-f-problem-${i}` : undefined}
                        onInput={(e) => set(i, { name: e.currentTarget.value.trim() })}
                      />
                    </div>
                    <div class="field">
                      <label for={`ds-f-label-${i}`}>Label</label>
                      <input id={`ds-f-label-${i}`} type="text" value={f.label} onInput={(e) => set(i, { label: e.currentTarget.value })} />
                    </div>
                    <div class="field">
                      <label for={`ds-f-type-${i}`}>Type</label>
                      <select id={`ds-f-type-${i}`} value={f.type} onChange={(e) => set(i, { type: e.currentTarget.value as FieldType })}>
                        {FIELD_TYPES.map(([t, label]) => (
                          <option key={t} value={t}>
                            {label}
                          </option>
                        ))}
                      </select>
                    </div>
                  </div>
                  {f.type === 'choice' && (
                    <div class="field">
                      <label for={`ds-f-choices-${i}`}>Choices, one per line</label>
                      <textarea id={`ds-f-choices-${i}`} rows={3} value={f.choices} onInput={(e) => set(i, { choices: e.currentTarget.value })} />
                    </div>
                  )}
                  {(f.type === 'number' || f.type === 'integer') && (
                    <div class="field-row">
                      <div class="field">
                        <label for={`ds-f-min-${i}`}>Minimum</label>
                        <input id={`ds-f-min-${i}`} type="text" inputMode="decimal" value={f.min} onInput={(e) => set(i, { min: e.currentTarget.value })} />
                      </div>
                      <div class="field">
                        <label for={`ds-f-max-${i}`}>Maximum</label>
                        <input id={`ds-f-max-${i}`} type="text" inputMode="decimal" value={f.max} onInput={(e) => set(i, { max: e.currentTarget.value })} />
                      </div>
                    </div>
                  )}
                  {(f.type === 'text' || f.type === 'multiline') && (
                    <div class="field">
                      <label for={`ds-f-maxlength-${i}`}>Most characters</label>
                      <input id={`ds-f-maxlength-${i}`} type="text" inputMode="numeric" value={f.maxLength} placeholder="10000" onInput={(e) => set(i, { maxLength: e.currentTarget.value })} />
                    </div>
                  )}
                  <div class="field">
                    <label for={`ds-f-description-${i}`}>Help text</label>
                    <input id={`ds-f-description-${i}`} type="text" value={f.description} onInput={(e) => set(i, { description: e.currentTarget.value })} />
                  </div>
                  <div class="ds-field-foot">
                    <label class="ds-check-row">
                      <input type="checkbox" checked={f.required} onChange={(e) => set(i, { required: e.currentTarget.checked })} /> Required
                    </label>
                    <span class="button-row">
                      <button type="button" class="link-button" disabled={i === 0} onClick={() => move(i, -1)}>
                        Move up
                      </button>
                      <button type="button" class="link-button" disabled={i === fields.length - 1} onClick={() => move(i, 1)}>
                        Move down
                      </button>
                      <button type="button" class="link-button" onClick={() => setFields(fields.filter((_, j) => j !== i))}>
                        Remove
                      </button>
                    </span>
                  </div>
                  {problems[i] && (
                    <p id={`ds-f-problem-${i}`} class="error-text">
                      {problems[i]}
                    </p>
                  )}
                </li>
              ))}
            </ol>
            <button
              type="button"
              class="button button-secondary"
              onClick={() =>
                setFields([...fields, { name: freeName(names), label: '', type: 'text', required: false, description: '', choices: '', min: '', max: '', maxLength: '' }])
              }
            >
              Add a field
            </button>
          </div>
          <aside class="ds-form-preview" aria-labelledby="ds-preview-title">
            <h2 id="ds-preview-title" class="ds-h2">
              Preview
            </h2>
            <p class="hint">As the assignee sees it in Tasks, with the same checks. Nothing is sent from here.</p>
            <div class="ds-preview-box" data-testid="ds-form-preview">
              <TaskForm
                key={previewKey}
                task={{ id: 'preview' }}
                form={preview}
                members={[...props.data.members.values()]}
                meId={props.me.id}
                preview
                onBusy={() => undefined}
                onCompleted={() => undefined}
                onGone={() => undefined}
              />
            </div>
          </aside>
        </div>
      )}
    </section>
  );
}

function freeName(names: string[]): string {
  for (let n = names.length + 1; ; n++) if (!names.includes(`field_${n}`)) return `field_${n}`;
}
