// A form as the designer edits it (a list of fields) and as the server takes it (the JSON
// Schema subset of server/src/workflow/forms.rs: an object whose properties are the fields).
// Nothing here touches the DOM.
import { orderedFields } from '../../workflows/form';

export type FieldType = 'text' | 'multiline' | 'number' | 'integer' | 'boolean' | 'date' | 'choice' | 'user' | 'file';

export const FIELD_TYPES: [FieldType, string][] = [
  ['text', 'Text'],
  ['multiline', 'Long text'],
  ['number', 'Number'],
  ['integer', 'Whole number'],
  ['boolean', 'Yes or no'],
  ['date', 'Date'],
  ['choice', 'Choice'],
  ['user', 'Person'],
  ['file', 'File'],
];

/** A field as edited: limits and choices are the text typed. */
export interface DesignedField {
  name: string;
  label: string;
  type: FieldType;
  required: boolean;
  description: string;
  /** For `choice`: one per line. */
  choices: string;
  min: string;
  max: string;
  maxLength: string;
}

type Json = Record<string, unknown>;

/** The JSON Schema the fields make. */
export function schemaOf(title: string, description: string, fields: DesignedField[]): Json {
  const properties: Json = {};
  for (const f of fields) {
    const spec: Json = {};
    switch (f.type) {
      case 'text':
        spec.type = 'string';
        break;
      case 'multiline':
      case 'date':
      case 'user':
      case 'file':
        spec.type = 'string';
        spec.format = f.type;
        break;
      case 'choice':
        spec.type = 'string';
        spec.enum = f.choices
          .split('\n')
          .map((c) => c.trim())
          .filter(Boolean);
        break;
      default:
        spec.type = f.type;
    }
    if (f.label.trim()) spec.title = f.label.trim();
    if (f.description.trim()) spec.description = f.description.trim();
    if (f.type === 'number' || f.type === 'integer') {
      if (f.min.trim() && Number.isFinite(Number(f.min))) spec.minimum = Number(f.min);
      if (f.max.trim() && Number.isFinite(Number(f.max))) spec.maximum = Number(f.max);
    }
    if ((f.type === 'text' || f.type === 'multiline') && f.maxLength.trim() && Number.isFinite(Number(f.maxLength))) {
      spec.maxLength = Math.trunc(Number(f.maxLength));
    }
    properties[f.name] = spec;
  }
  const schema: Json = { type: 'object', properties };
  if (fields.length > 1) schema.order = fields.map((f) => f.name);
  if (title.trim()) schema.title = title.trim();
  if (description.trim()) schema.description = description.trim();
  const required = fields.filter((f) => f.required).map((f) => f.name);
  if (required.length) schema.required = required;
  return schema;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function num(v: unknown): string {
  return typeof v === 'number' && Number.isFinite(v) ? String(v) : '';
}

/** The fields of a deployed form's schema. */
export function fieldsOf(schema: unknown): { title: string; description: string; fields: DesignedField[] } {
  const top = typeof schema === 'object' && schema !== null ? (schema as Json) : {};
  const required = new Set(Array.isArray(top.required) ? top.required : []);
  const fields = orderedFields(top).map(([name, raw]): DesignedField => {
    const spec = typeof raw === 'object' && raw !== null ? (raw as Json) : {};
    const format = str(spec.format);
    let type: FieldType = 'text';
    if (Array.isArray(spec.enum)) type = 'choice';
    else if (spec.type === 'string' && ['multiline', 'date', 'user', 'file'].includes(format)) type = format as FieldType;
    else if (spec.type === 'number' || spec.type === 'integer' || spec.type === 'boolean') type = spec.type;
    return {
      name,
      label: str(spec.title),
      type,
      required: required.has(name),
      description: str(spec.description),
      choices: Array.isArray(spec.enum) ? spec.enum.map((c) => (typeof c === 'string' ? c : JSON.stringify(c))).join('\n') : '',
      min: num(spec.minimum),
      max: num(spec.maximum),
      maxLength: num(spec.maxLength),
    };
  });
  return { title: str(top.title), description: str(top.description), fields };
}
