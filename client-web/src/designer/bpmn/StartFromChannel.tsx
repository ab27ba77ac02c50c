// "Start from a channel": a message trigger (POST …/workflows/{process}/triggers) so that a
// message in a channel matching a pattern starts the process, with the triggers it already has.
import { useEffect, useState } from 'preact/hooks';
import { api, describeError, type Schemas } from '../../api';
import { Dialog } from '../../shell/ui';
import type { WorkspaceData } from '../../shell/workspaceData';

export function StartFromChannel(props: { workspaceId: string; processId: string; data: WorkspaceData; onClose: () => void }) {
  const channels = (props.data.channels ?? []).filter((c) => (c.kind === 'public' || c.kind === 'private') && !c.archived);
  const [channel, setChannel] = useState(channels[0]?.id ?? '');
  const [pattern, setPattern] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [existing, setExisting] = useState<Schemas['TriggerView'][] | null>(null);
  const path = { params: { path: { workspace_id: props.workspaceId } } };

  const reload = () =>
    api('get', '/api/v1/workspaces/{workspace_id}/workflow-triggers', path)
      .then((r) => setExisting(r.triggers.filter((t) => t.process_id === props.processId && !t.revoked_at && t.kind === 'message')))
      .catch(() => setExisting([]));
  useEffect(() => {
    reload();
  }, []);

  const name = (id: string | null | undefined) => (id ? channels.find((c) => c.id === id)?.name ?? 'a channel' : 'any channel');

  return (
    <Dialog title="Start from a channel" onClose={props.onClose} description="A message posted in the channel that matches the pattern starts the process, with the message's text and author as its variables.">
      {existing && existing.length > 0 && (
        <ul class="ds-triggers">
          {existing.map((t) => (
            <li key={t.id}>
              #{name(t.channel_id)}: “{t.pattern}”
            </li>
          ))}
        </ul>
      )}
      <form
        class="form"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            await api('post', '/api/v1/workspaces/{workspace_id}/workflows/{process_id}/triggers', {
              params: { path: { workspace_id: props.workspaceId, process_id: props.processId } },
              json: { kind: 'message', channel_id: channel || null, pattern: pattern.trim() || '*' },
            });
            setPattern('');
            await reload();
          } catch (err) {
            setError(describeError(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        <div class="field">
          <label for="ds-trigger-channel">Channel</label>
          <select id="ds-trigger-channel" value={channel} onChange={(e) => setChannel(e.currentTarget.value)}>
            {channels.map((c) => (
              <option key={c.id} value={c.id}>
                #{c.name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="ds-trigger-pattern">Messages containing</label>
          <input id="ds-trigger-pattern" type="text" value={pattern} placeholder="/approve or * for every message" onInput={(e) => setPattern(e.currentTarget.value)} />
        </div>
        {error && (
          <p class="error-text" role="alert">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" class="button button-secondary" onClick={props.onClose}>
            Close
          </button>
          <button type="submit" class="button button-primary" disabled={busy || !channel}>
            Add the trigger
          </button>
        </div>
      </form>
    </Dialog>
  );
}
