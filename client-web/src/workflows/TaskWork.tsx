// Working a task with others: handing it to someone else (a person picker of those the server
// says it may go to, and a note), and its comments (read, and added, live as others add theirs).
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, describeError, type Schemas } from '../api';
import { on } from '../live';
import { ago, fullTime } from '../docs/model';
import type { Member } from '../shell/types';
import type { Task } from './inbox';

type Comment = Schemas['TaskCommentView'];

/** The longest comment the server takes, in characters. */
const MAX_COMMENT = 4000;

/** Hands a task on: who may get it comes from the server, names from the workspace's members. */
export function Reassign(props: {
  task: Task;
  members: Map<string, Member>;
  meId: string;
  onDone: (to: string, task: Task) => void;
  onCancel: () => void;
}) {
  const { task } = props;
  const [people, setPeople] = useState<string[] | null>(null);
  const [to, setTo] = useState('');
  const [note, setNote] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/workflow-tasks/{task_id}/candidates', { params: { path: { task_id: task.id } } })
      .then((list) => live && setPeople(list.people))
      .catch((e) => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [task.id]);

  const choices = useMemo(
    () =>
      (people ?? [])
        .map((id) => ({ id, name: props.members.get(id)?.display_name ?? 'Former member' }))
        .sort((a, b) => a.name.localeCompare(b.name)),
    [people, props.members],
  );

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!to) {
      setError('Choose the person to hand it to.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const moved = await api('post', '/api/v1/workflow-tasks/{task_id}/reassign', {
        params: { path: { task_id: task.id } },
        json: { to, note: note.trim() || undefined },
      });
      props.onDone(to, moved);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="tk-reassign" onSubmit={submit} aria-labelledby="tk-reassign-title">
      <h3 id="tk-reassign-title">Hand this task on</h3>
      {people === null && !error && <p class="tk-muted">Finding who it may go to…</p>}
      {people !== null && choices.length === 0 && <p class="tk-muted">Nobody else may take this task.</p>}
      {choices.length > 0 && (
        <>
          <div class="field">
            <label for="tk-reassign-to">Hand it to</label>
            <select id="tk-reassign-to" value={to} onChange={(e) => setTo(e.currentTarget.value)} aria-required="true">
              <option value="">Choose a person…</option>
              {choices.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="tk-reassign-note">Note (optional)</label>
            <textarea id="tk-reassign-note" rows={2} maxLength={MAX_COMMENT} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
            <p class="hint">Kept as a comment on the task and sent to them with it.</p>
          </div>
        </>
      )}
      {error && (
        <p class="error-text" role="alert">
          {error}
        </p>
      )}
      <div class="tk-actions">
        {choices.length > 0 && (
          <button type="submit" class="button button-primary" disabled={busy}>
            {busy ? 'Handing on…' : 'Reassign'}
          </button>
        )}
        <button type="button" class="button" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** A task's comments, oldest first, and a box to add one. */
export function Comments(props: { task: Task; members: Map<string, Member>; meId: string }) {
  const { task } = props;
  const [comments, setComments] = useState<Comment[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/workflow-tasks/{task_id}/comments', { params: { path: { task_id: task.id } } })
      .then((list) => {
        if (!live) return;
        setComments(list.comments);
        setError(null);
      })
      .catch((e) => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [task.id, tick]);

  // Someone else's comment arrives as a change of the task.
  useEffect(
    () =>
      on('workflow_task_changed', (ev) => {
        if (ev.task_id === task.id && ev.status === 'commented') setTick((t) => t + 1);
      }),
    [task.id],
  );

  const add = async (e: Event) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) {
      setProblem('Write something first.');
      return;
    }
    if (body.length > MAX_COMMENT) {
      setProblem(`A comment may have at most ${MAX_COMMENT} characters.`);
      return;
    }
    setBusy(true);
    setProblem(null);
    try {
      const made = await api('post', '/api/v1/workflow-tasks/{task_id}/comments', {
        params: { path: { task_id: task.id } },
        json: { text: body },
      });
      setComments((list) => [...(list ?? []).filter((c) => c.id !== made.id), made]);
      setText('');
    } catch (err) {
      setProblem(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  const nameOf = (id: string) => (id === props.meId ? 'You' : props.members.get(id)?.display_name ?? 'Former member');

  return (
    <section class="tk-comments" aria-labelledby="tk-comments-title">
      <h3 id="tk-comments-title">Comments{comments && comments.length > 0 ? ` (${comments.length})` : ''}</h3>
      {error && (
        <p class="error-text" role="alert">
          Could not load the comments: {error}
        </p>
      )}
      {comments !== null && comments.length === 0 && <p class="tk-muted">No comments yet.</p>}
      {comments !== null && comments.length > 0 && (
        <ol class="tk-comment-list" aria-label="Comments">
          {comments.map((c) => (
            <li key={c.id} class="tk-comment">
              <p class="tk-comment-head">
                <strong>{nameOf(c.author_id)}</strong>{' '}
                <time class="tk-muted" dateTime={c.created_at} title={fullTime(c.created_at)}>
                  {ago(c.created_at)}
                </time>
              </p>
              <p class="tk-comment-text">{c.text}</p>
            </li>
          ))}
        </ol>
      )}
      <form class="tk-comment-form" onSubmit={add}>
        <label for="tk-comment-text" class="sr-only">
          Add a comment
        </label>
        <textarea
          id="tk-comment-text"
          rows={2}
          placeholder="Add a comment…"
          value={text}
          aria-invalid={problem ? 'true' : undefined}
          aria-describedby={problem ? 'tk-comment-problem' : undefined}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        {problem && (
          <p class="tk-field-error" id="tk-comment-problem" role="alert">
            {problem}
          </p>
        )}
        <div class="tk-actions">
          <button type="submit" class="button" disabled={busy}>
            {busy ? 'Adding…' : 'Add comment'}
          </button>
        </div>
      </form>
    </section>
  );
}
