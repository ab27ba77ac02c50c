// A task's form, filled in and completed from the browser: each field as its own labelled
// control, checked as the server checks it (see form.ts) with the problem next to the field, and
// the server's own problems placed the same way if it still refuses. A task without a form is
// simply marked done.
import { useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, api, describeError, type Schemas } from '../api';
import type { Member } from '../shell/types';
import { MAX_TEXT, check, choiceLabel, placeProblems, rangeText, type Entry, type FormField, type TaskForm as Form } from './form';
import type { Task } from './inbox';

/** The completion's variables as the API takes them: any JSON object, which the generated types
 * spell `Record<string, never>` (a schema of type object without named properties). */
type Variables = NonNullable<Schemas['CompleteTask']['variables']>;

export interface TaskFormProps {
  /** The task completed (only its id is used). */
  task: Pick<Task, 'id'>;
  /** The task's form, or `null` for a task without one. */
  form: Form | null;
  /** The workspace's members, for user fields. */
  members: Member[];
  meId: string;
  /** Called while the completion is on its way, and when it is answered. */
  onBusy: (busy: boolean) => void;
  /** The task was completed. */
  onCompleted: (done: Task) => void;
  /** The task cannot be completed from here any more (closed, reassigned, gone): why. */
  onGone: (message: string) => void;
  /** Only show the form and check it, sending nothing (the form designer's preview). */
  preview?: boolean;
}

export function TaskForm(props: TaskFormProps) {
  const { task, form } = props;
  const [entries, setEntries] = useState<Record<string, Entry>>(() =>
    Object.fromEntries((form?.fields ?? []).map((f) => [f.name, f.initial])),
  );
  const [changed, setChanged] = useState<ReadonlySet<string>>(new Set());
  const [attempted, setAttempted] = useState(false);
  const [serverErrors, setServerErrors] = useState<Record<string, string>>({});
  const [general, setGeneral] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  const checked = useMemo(() => (form ? check(form, entries, changed) : { variables: {}, errors: {} }), [form, entries, changed]);
  // The browser's checks show once a completion was tried; the server's until the field changes.
  const errors: Record<string, string> = { ...serverErrors, ...(attempted ? checked.errors : {}) };
  const invalid = Object.keys(errors).length;

  const set = (name: string, value: Entry) => {
    setEntries((e) => ({ ...e, [name]: value }));
    setChanged((c) => (c.has(name) ? c : new Set(c).add(name)));
    if (serverErrors[name]) {
      setServerErrors((s) => {
        const { [name]: _, ...rest } = s;
        return rest;
      });
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    if (busy) return;
    setAttempted(true);
    setGeneral([]);
    if (Object.keys(checked.errors).length > 0) {
      const first = form?.fields.find((f) => checked.errors[f.name]);
      if (first) formRef.current?.querySelector<HTMLElement>(`#${fieldId(first.name)}`)?.focus();
      return;
    }
    if (props.preview) return;
    setBusy(true);
    props.onBusy(true);
    try {
      const variables: Variables = checked.variables as Variables;
      const done = await api('post', '/api/v1/workflow-tasks/{task_id}/complete', {
        params: { path: { task_id: task.id } },
        json: { variables },
      });
      props.onCompleted(done);
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && err.problems.length > 0) {
        const placed = placeProblems(form, err.problems, checked.variables);
        setServerErrors(placed.fields);
        setGeneral(placed.general);
        const first = form?.fields.find((f) => placed.fields[f.name]);
        if (first && placed.general.length === 0) formRef.current?.querySelector<HTMLElement>(`#${fieldId(first.name)}`)?.focus();
      } else if (err instanceof ApiError && (err.code === 'task_closed' || err.code === 'not_assignee' || err.status === 404)) {
        props.onGone(goneMessage(err));
      } else {
        setGeneral([describeError(err)]);
      }
    } finally {
      setBusy(false);
      props.onBusy(false);
    }
  };

  const fields = form?.fields ?? [];
  const anyRequired = fields.some((f) => f.required && f.kind !== 'boolean');

  return (
    <form class="tk-form" ref={formRef} noValidate onSubmit={submit} aria-describedby={form?.description ? 'tk-form-description' : undefined}>
      {form?.title && <h3 class="tk-form-title">{form.title}</h3>}
      {form?.description && (
        <p class="tk-form-description" id="tk-form-description">
          {form.description}
        </p>
      )}
      {fields.length === 0 && <p class="tk-muted">This task has no form to fill in. Mark it done once you have finished it.</p>}
      {anyRequired && (
        <p class="hint">
          Fields marked <span aria-hidden="true">*</span>
          <span class="sr-only">with a star</span> are required.
        </p>
      )}
      {fields.map((f) => (
        <Field
          key={f.name}
          field={f}
          entry={entries[f.name] ?? f.initial}
          error={errors[f.name]}
          members={props.members}
          meId={props.meId}
          onChange={(v) => set(f.name, v)}
        />
      ))}
      {attempted && invalid > 0 && general.length === 0 && (
        <p class="error-text" role="alert">
          {invalid === 1 ? 'One field needs your attention.' : `${invalid} fields need your attention.`}
        </p>
      )}
      {general.length > 0 && (
        <div class="error-text" role="alert">
          <p class="tk-problems-title">The task could not be completed:</p>
          <ul class="tk-problems">
            {general.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </div>
      )}
      <div class="tk-actions">
        <button type="submit" class="button button-primary" disabled={busy}>
          {busy ? 'Completing…' : props.preview ? 'Check the form' : fields.length === 0 ? 'Mark done' : 'Complete task'}
        </button>
      </div>
    </form>
  );
}

function goneMessage(err: ApiError): string {
  if (err.code === 'task_closed') return 'This task is already closed: it was completed or cancelled elsewhere.';
  if (err.code === 'not_assignee') return 'This task is no longer yours to complete: it is assigned to someone else now.';
  return 'This task no longer exists.';
}

/** The id of a field's control (form field names are letters, digits and `_`). */
function fieldId(name: string): string {
  return `tk-field-${name}`;
}

function Field(props: {
  field: FormField;
  entry: Entry;
  error?: string;
  members: Member[];
  meId: string;
  onChange: (v: Entry) => void;
}) {
  const { field: f, entry, error } = props;
  const id = fieldId(f.name);
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const hint = hintFor(f);
  const described = [hint ? hintId : '', error ? errorId : ''].filter(Boolean).join(' ') || undefined;
  const common = {
    id,
    name: f.name,
    'aria-invalid': error ? ('true' as const) : undefined,
    'aria-describedby': described,
    'aria-required': f.required ? ('true' as const) : undefined,
  };
  const text = typeof entry === 'string' ? entry : '';

  const messages = (
    <>
      {hint && (
        <p class="hint" id={hintId}>
          {hint}
        </p>
      )}
      {error && (
        <p class="tk-field-error" id={errorId}>
          {error}
        </p>
      )}
    </>
  );

  if (f.kind === 'boolean') {
    // A checkbox always answers, yes or no: it is never missing, so never marked required.
    return (
      <div class={error ? 'field tk-field tk-check tk-invalid' : 'field tk-field tk-check'}>
        <label for={id}>
          <input
            type="checkbox"
            id={id}
            name={f.name}
            checked={entry === true}
            aria-invalid={error ? 'true' : undefined}
            aria-describedby={described}
            onChange={(e) => props.onChange(e.currentTarget.checked)}
          />
          <span>{f.label}</span>
        </label>
        {messages}
      </div>
    );
  }

  let control;
  switch (f.kind) {
    case 'choice':
      control = (
        <select {...common} value={text} onChange={(e) => props.onChange(e.currentTarget.value)}>
          <option value="">{f.required ? 'Choose…' : 'None'}</option>
          {f.choices.map((c, i) => (
            <option key={i} value={String(i)}>
              {choiceLabel(c)}
            </option>
          ))}
        </select>
      );
      break;
    case 'user': {
      const people = [...props.members].sort((a, b) => a.display_name.localeCompare(b.display_name));
      const known = text === '' || people.some((m) => m.user_id === text);
      control = (
        <select {...common} value={text} onChange={(e) => props.onChange(e.currentTarget.value)}>
          <option value="">{f.required ? 'Choose a person…' : 'Nobody'}</option>
          {!known && <option value={text}>Someone not in this workspace</option>}
          {people.map((m) => (
            <option key={m.user_id} value={m.user_id}>
              {m.display_name}
              {m.user_id === props.meId ? ' (you)' : ''}
            </option>
          ))}
        </select>
      );
      break;
    }
    case 'date':
      control = <input {...common} type="date" value={text} onInput={(e) => props.onChange(e.currentTarget.value)} />;
      break;
    case 'multiline':
      control = <textarea {...common} rows={4} value={text} onInput={(e) => props.onChange(e.currentTarget.value)} />;
      break;
    case 'number':
    case 'integer':
      control = (
        <input
          {...common}
          type="number"
          inputMode={f.kind === 'integer' ? 'numeric' : 'decimal'}
          min={f.minimum}
          max={f.maximum}
          step={f.kind === 'integer' ? 1 : 'any'}
          value={entry === null ? undefined : text}
          // Text the browser cannot read as a number reaches the page as ''; it is kept apart.
          onInput={(e) => props.onChange(e.currentTarget.validity.badInput ? null : e.currentTarget.value)}
        />
      );
      break;
    case 'file':
      control = (
        <input
          {...common}
          type="text"
          autoComplete="off"
          spellcheck={false}
          value={text}
          onInput={(e) => props.onChange(e.currentTarget.value)}
        />
      );
      break;
    default:
      control = (
        <input {...common} type="text" value={text} onInput={(e) => props.onChange(e.currentTarget.value)} />
      );
  }

  return (
    <div class={error ? 'field tk-field tk-invalid' : 'field tk-field'}>
      <label for={id}>
        {f.label}
        {f.required && (
          <span class="tk-required" aria-hidden="true">
            {' '}
            *
          </span>
        )}
      </label>
      {control}
      {messages}
    </div>
  );
}

/** What a field's hint says: its description, and what it takes when that is not obvious. */
function hintFor(f: FormField): string {
  const parts: string[] = [];
  if (f.description) parts.push(f.description);
  if ((f.kind === 'number' || f.kind === 'integer') && rangeText(f)) {
    parts.push(`${f.kind === 'integer' ? 'A whole number' : 'A number'} ${rangeText(f)}.`);
  }
  if ((f.kind === 'text' || f.kind === 'multiline') && f.maxLength < MAX_TEXT) parts.push(`Up to ${f.maxLength} characters.`);
  if (f.kind === 'file') parts.push('The id of a file shared in Concord.');
  return parts.join(' ');
}
