// Task forms: the JSON Schema subset a user task's form is written in, read into the fields the
// form shows, and the checks the server makes on a completion (required fields, types, lengths,
// ranges, choices), so a person sees each problem next to its field before anything is sent.
// The server checks every completion again (`server/src/workflow/forms.rs`); this mirrors it.
//
// A field is `string` (with `format` `date`, `user`, `file` or `multiline`, or an `enum` of
// choices; `maxLength`), `number` or `integer` (`minimum`, `maximum`) or `boolean`, each with an
// optional `title`, `description` and `default`. Nothing here touches the DOM.

/** How a field is entered. */
export type FieldKind = 'text' | 'multiline' | 'date' | 'user' | 'file' | 'number' | 'integer' | 'boolean' | 'choice';

/** One field of a form, as shown. */
export interface FormField {
  /** The variable it sets. */
  name: string;
  kind: FieldKind;
  /** Its label: the `title`, else the name. */
  label: string;
  description?: string;
  required: boolean;
  /** For `choice`: the values offered, as the form gives them (any JSON value). */
  choices: unknown[];
  /** For text: the most characters it takes. */
  maxLength: number;
  minimum?: number;
  maximum?: number;
  /** The entry it starts with. */
  initial: Entry;
}

/** A task's form. */
export interface TaskForm {
  title?: string;
  description?: string;
  fields: FormField[];
}

/**
 * What a person has entered in a field: the text of a text, date, number or id field (a number
 * field's text is `null` when the browser could not read it as a number), the index of the
 * chosen option (`''` for none), or a checkbox's state.
 */
export type Entry = string | boolean | null;

/** The longest text a field takes unless its `maxLength` says less (as the server). */
export const MAX_TEXT = 10_000;

const UUID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})$/i;

function record(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * A form's fields in the order it shows them: those its `order` lists, then the rest by name
 * (the server keeps a schema's keys sorted, so `properties` alone carries no order).
 */
export function orderedFields(top: Record<string, unknown>): [string, unknown][] {
  const properties = record(top.properties) ?? {};
  const listed = Array.isArray(top.order) ? top.order.filter((n): n is string => typeof n === 'string' && Object.prototype.hasOwnProperty.call(properties, n)) : [];
  const first = [...new Set(listed)];
  const rest = Object.keys(properties)
    .filter((n) => !first.includes(n))
    .sort();
  return [...first, ...rest].map((n) => [n, properties[n]]);
}

/** Reads a task's form (`TaskView.form`); `null` for a task without one. Unknown keys are ignored. */
export function readForm(schema: unknown): TaskForm | null {
  const top = record(schema);
  if (!top) return null;
  const required = new Set(Array.isArray(top.required) ? top.required.filter((r): r is string => typeof r === 'string') : []);
  const fields = orderedFields(top).map(([name, raw]) => readField(name, record(raw) ?? {}, required.has(name)));
  return { title: text(top.title), description: text(top.description), fields };
}

function readField(name: string, spec: Record<string, unknown>, required: boolean): FormField {
  const type = spec.type;
  const format = spec.format;
  const choices = Array.isArray(spec.enum) ? spec.enum : [];
  let kind: FieldKind;
  if (choices.length > 0) kind = 'choice';
  else if (type === 'boolean') kind = 'boolean';
  else if (type === 'integer') kind = 'integer';
  else if (type === 'number') kind = 'number';
  else if (format === 'date' || format === 'user' || format === 'file' || format === 'multiline') kind = format;
  else kind = 'text';
  const maxLength = typeof spec.maxLength === 'number' && spec.maxLength >= 0 ? Math.min(spec.maxLength, MAX_TEXT) : MAX_TEXT;
  const field: FormField = {
    name,
    kind,
    label: text(spec.title) ?? name,
    description: text(spec.description),
    required,
    choices,
    maxLength,
    minimum: num(spec.minimum),
    maximum: num(spec.maximum),
    initial: kind === 'boolean' ? false : '',
  };
  field.initial = initialEntry(field, spec.default);
  return field;
}

/** A field's starting entry: its `default` when it is one the field can show. */
function initialEntry(f: FormField, value: unknown): Entry {
  if (value === undefined || value === null) return f.kind === 'boolean' ? false : '';
  switch (f.kind) {
    case 'boolean':
      return value === true;
    case 'choice': {
      const at = f.choices.findIndex((c) => sameValue(c, value));
      return at < 0 ? '' : String(at);
    }
    case 'number':
    case 'integer':
      return typeof value === 'number' ? String(value) : '';
    default:
      return typeof value === 'string' ? value : '';
  }
}

/** Whether two JSON values are equal (choices are compared as the server does, by value). */
function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The text of a choice, as its option shows it. */
export function choiceLabel(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'Yes' : 'No';
  return JSON.stringify(value);
}

/** A number field's allowed range, in words ("from 1 to 10"), or `''` when it has none. */
export function rangeText(f: FormField): string {
  const { minimum: lo, maximum: hi } = f;
  if (lo !== undefined && hi !== undefined) return `from ${lo} to ${hi}`;
  if (lo !== undefined) return `of at least ${lo}`;
  if (hi !== undefined) return `of at most ${hi}`;
  return '';
}

/** What a completion would send, or the problem of each field that keeps it from being sent. */
export interface Checked {
  /** Only the fields that were filled in (a checkbox: when required or changed). */
  variables: Record<string, unknown>;
  /** The problem of each field, by name. */
  errors: Record<string, string>;
}

/**
 * Checks the entries against the form and builds the variables to send. `changed` names the
 * checkboxes the person changed: an optional checkbox left alone is not sent.
 */
export function check(form: TaskForm, entries: Record<string, Entry>, changed: ReadonlySet<string>): Checked {
  const variables: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const f of form.fields) {
    const entry = entries[f.name] ?? f.initial;
    const result = checkField(f, entry, changed.has(f.name));
    if ('error' in result) errors[f.name] = result.error;
    else if ('value' in result) variables[f.name] = result.value;
  }
  return { variables, errors };
}

type FieldResult = { value: unknown } | { error: string } | {};

function checkField(f: FormField, entry: Entry, changed: boolean): FieldResult {
  const missing = f.required ? { error: 'This field is required.' } : {};
  if (f.kind === 'boolean') {
    return f.required || changed ? { value: entry === true } : {};
  }
  if (entry === null) return { error: `Enter a ${f.kind === 'integer' ? 'whole number' : 'number'}.` };
  if (typeof entry !== 'string') return missing;
  if (f.kind === 'choice') {
    if (entry === '') return missing;
    const at = Number(entry);
    return at >= 0 && at < f.choices.length ? { value: f.choices[at] } : { error: 'Choose one of the options.' };
  }
  if (entry.trim() === '') return missing;
  switch (f.kind) {
    case 'text':
    case 'multiline': {
      const length = [...entry].length;
      if (length > f.maxLength) return { error: `Use at most ${f.maxLength} characters (${length} now).` };
      return { value: entry };
    }
    case 'date':
      return isDate(entry) ? { value: entry } : { error: 'Enter a date as YYYY-MM-DD.' };
    case 'user':
      return UUID.test(entry) ? { value: entry } : { error: 'Choose a member of the workspace.' };
    case 'file':
      return UUID.test(entry.trim()) ? { value: entry.trim() } : { error: 'Enter a file id (as in the file’s link).' };
    case 'number':
    case 'integer': {
      const n = Number(entry);
      const what = f.kind === 'integer' ? 'a whole number' : 'a number';
      const range = rangeText(f);
      const expected = `Enter ${what}${range ? ` ${range}` : ''}.`;
      if (!Number.isFinite(n)) return { error: expected };
      if (f.kind === 'integer' && !Number.isSafeInteger(n)) return { error: expected };
      if ((f.minimum !== undefined && n < f.minimum) || (f.maximum !== undefined && n > f.maximum)) return { error: expected };
      return { value: n };
    }
  }
  return { value: entry };
}

/** Whether `s` is a calendar date written YYYY-MM-DD. */
function isDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

/**
 * The server's problems with a completion, sorted by the field each names ("amount must be a
 * whole number from 1 to 10" is the `amount` field's; "<id> is not a member of this workspace"
 * is the person field's that sent the id); the rest are the form's as a whole.
 */
export function placeProblems(
  form: TaskForm | null,
  problems: string[],
  sent: Record<string, unknown>,
): { fields: Record<string, string>; general: string[] } {
  const fields: Record<string, string> = {};
  const general: string[] = [];
  for (const p of problems) {
    const named = form?.fields.find((f) => p.startsWith(`${f.name} `));
    const person = form?.fields.find((f) => f.kind === 'user' && typeof sent[f.name] === 'string' && p.startsWith(`${sent[f.name]} `));
    if (named && !fields[named.name]) fields[named.name] = sentence(p.slice(named.name.length + 1));
    else if (person && !fields[person.name]) fields[person.name] = sentence(`That person ${p.slice(String(sent[person.name]).length + 1)}`);
    else general.push(sentence(p));
  }
  return { fields, general };
}

/** "must be a date" → "Must be a date." */
function sentence(s: string): string {
  const t = s.trim();
  if (!t) return t;
  return `${t[0].toUpperCase()}${t.slice(1)}${/[.!?]$/.test(t) ? '' : '.'}`;
}
