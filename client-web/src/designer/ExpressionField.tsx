// A text field for a condition (CEL), a `${…}` template or a JSON template, checked as it is
// typed: a pause in typing sends it to the server's check (the engine's own parser, the one a
// deploy runs), and any problem shows under the field with where it is. The value is handed
// on when the field is left (or Enter is pressed in a one-line field), so each edit is one
// undo step in the modeler.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, describeError, type Schemas } from '../api';

export type ExpressionKind = Schemas['ExpressionKind'];

const PAUSE_MS = 350;

export function ExpressionField(props: {
  workspaceId: string;
  id: string;
  label: string;
  kind: ExpressionKind;
  value: string;
  onCommit: (value: string) => void;
  multiline?: boolean;
  placeholder?: string;
  hint?: string;
  /** An empty value is fine (the setting is optional). */
  optional?: boolean;
}) {
  const [text, setText] = useState(props.value);
  const [problems, setProblems] = useState<string[]>([]);
  const [checking, setChecking] = useState(false);
  const asked = useRef(0);
  const committed = useRef(props.value);

  // Another element selected, or the value changed by undo: show what the model holds.
  useEffect(() => {
    setText(props.value);
    committed.current = props.value;
  }, [props.value, props.id]);

  useEffect(() => {
    const n = ++asked.current;
    if (text.trim() === '') {
      setProblems(props.optional ? [] : ['This cannot be empty.']);
      setChecking(false);
      return;
    }
    setChecking(true);
    const timer = setTimeout(() => {
      api('post', '/api/v1/workspaces/{workspace_id}/workflow-expressions/check', {
        params: { path: { workspace_id: props.workspaceId } },
        json: { expression: text, kind: props.kind },
      })
        .then((r) => {
          if (n !== asked.current) return;
          setProblems(r.problems.map((p) => (p.column ? `${p.line && p.line > 1 ? `Line ${p.line}, column` : 'Column'} ${p.column}: ${p.message}` : p.message)));
        })
        .catch((e) => n === asked.current && setProblems([`Could not check: ${describeError(e)}`]))
        .finally(() => n === asked.current && setChecking(false));
    }, PAUSE_MS);
    return () => clearTimeout(timer);
  }, [text, props.kind, props.workspaceId]);

  const commit = () => {
    if (text !== committed.current) {
      committed.current = text;
      props.onCommit(text);
    }
  };
  const problemId = `${props.id}-problem`;
  const hintId = `${props.id}-hint`;
  const describedBy = [props.hint ? hintId : '', problems.length ? problemId : ''].filter(Boolean).join(' ') || undefined;
  const common = {
    id: props.id,
    value: text,
    placeholder: props.placeholder,
    spellcheck: false,
    class: problems.length ? 'ds-code ds-invalid' : 'ds-code',
    'aria-invalid': problems.length ? true : undefined,
    'aria-describedby': describedBy,
    onInput: (e: Event) => setText((e.currentTarget as HTMLInputElement).value),
    onBlur: commit,
  } as const;
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.multiline ? (
        <textarea {...common} rows={4} />
      ) : (
        <input {...common} type="text" onKeyDown={(e) => e.key === 'Enter' && commit()} />
      )}
      {props.hint && (
        <span class="hint" id={hintId}>
          {props.hint}
        </span>
      )}
      <div id={problemId} class="ds-check" role="status" aria-live="polite" data-checking={checking ? 'true' : undefined}>
        {problems.map((p) => (
          <p key={p} class="error-text">
            {p}
          </p>
        ))}
      </div>
    </div>
  );
}
