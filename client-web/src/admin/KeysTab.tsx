// Keys: the key-encryption key in use, data-key counts, the audit signing key's versions, and
// data-key rotations with their re-encryption progress; starting a rotation.
import { useEffect, useState } from 'preact/hooks';
import { api, type Schemas } from '../api';
import type { People } from '../console/people';
import { when } from '../console/time';
import { Empty, failureText, Notice } from '../console/ui';
import { ErrorText, Loading } from '../shell/ui';

type Status = Schemas['KeysStatus'];

export function KeysTab({ people }: { people: People }) {
  const [status, setStatus] = useState<Status | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState(false);
  const [notice, setNotice] = useState('');
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let live = true;
    api('get', '/api/v1/admin/keys/status')
      .then((s) => {
        if (!live) return;
        setStatus(s);
        setError(null);
      })
      .catch((e) => live && setError(failureText(e)));
    return () => {
      live = false;
    };
  }, [attempt]);

  // While a rotation re-encrypts, its progress is read again every few seconds.
  const running = (status?.rotations ?? []).some((r) => r.state !== 'finished');
  useEffect(() => {
    if (!running) return;
    const t = setTimeout(() => setAttempt((a) => a + 1), 3000);
    return () => clearTimeout(t);
  }, [running, status]);

  async function rotate() {
    setBusy(true);
    setError(null);
    setNotice('');
    try {
      const r = await api('post', '/api/v1/admin/keys/rotate-dek');
      setNotice(`A rotation was started: ${r.scopes} key ${r.scopes === 1 ? 'scope has' : 'scopes have'} a new version; re-encryption runs in the background.`);
      setAttempt((a) => a + 1);
    } catch (e) {
      setError(failureText(e));
    } finally {
      setBusy(false);
      setConfirm(false);
    }
  }

  return (
    <>
      <section class="card" aria-labelledby="keys-heading">
        <h2 id="keys-heading">Keys</h2>
        <ErrorText error={error} />
        <Notice text={notice} />
        {!status && !error && <Loading label="Loading key status…" />}
        {status && (
          <dl class="facts">
            <div>
              <dt>Key-encryption key</dt>
              <dd class="mono">{status.kek_id}</dd>
            </div>
            <div>
              <dt>Data keys</dt>
              <dd>
                {status.keys.scopes} scopes, {status.keys.current_versions} current and {status.keys.retired_versions} retired versions
              </dd>
            </div>
          </dl>
        )}
        <div class="button-row start" style={{ marginTop: '12px' }}>
          {confirm ? (
            <>
              <button type="button" class="button small button-danger" disabled={busy} aria-busy={busy} onClick={rotate}>
                {busy ? 'Starting…' : 'Confirm: rotate the data keys'}
              </button>
              <button type="button" class="button small" onClick={() => setConfirm(false)}>
                Cancel
              </button>
            </>
          ) : (
            <button type="button" class="button small" onClick={() => setConfirm(true)}>
              Start a data-key rotation
            </button>
          )}
        </div>
        <p class="hint">
          New writes use the new key versions at once; older data is re-encrypted in the background. The key-encryption key
          and the audit signing key are rotated on the server's command line.
        </p>
      </section>
      {status && (
        <section class="card" aria-labelledby="rotations-heading">
          <h2 id="rotations-heading">Rotations</h2>
          {status.rotations.length === 0 ? (
            <Empty>No data-key rotations yet.</Empty>
          ) : (
            <div class="table-wrap">
              <table class="data-table" aria-label="Rotations">
                <thead>
                  <tr>
                    <th scope="col">Requested</th>
                    <th scope="col">By</th>
                    <th scope="col">State</th>
                    <th scope="col">Progress</th>
                  </tr>
                </thead>
                <tbody>
                  {status.rotations.map((r) => (
                    <tr key={r.id}>
                      <td>{when(r.requested_at)}</td>
                      <td>{r.requested_by === 'system' ? 'command line' : people.name(r.requested_by)}</td>
                      <td>
                        <span class={r.state === 'finished' ? 'tag tag-success' : 'tag tag-warning'}>{r.state}</span>
                        {r.finished_at && <div class="hint">{when(r.finished_at)}</div>}
                      </td>
                      <td>
                        <progress class="progress" max={Math.max(r.total, 1)} value={r.total ? r.done : r.state === 'finished' ? 1 : 0} aria-label={`Rotation of ${when(r.requested_at)}`} />
                        <div class="hint">
                          {r.done} of {r.total} rows;{' '}
                          {r.targets
                            .filter((t) => t.total > 0)
                            .map((t) => `${t.target} ${t.reencrypted} re-encrypted${t.finished ? '' : '…'}`)
                            .join(', ') || 'nothing to re-encrypt'}
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      )}
      {status && (
        <section class="card" aria-labelledby="signing-heading">
          <h2 id="signing-heading">Audit signing keys</h2>
          <div class="table-wrap">
            <table class="data-table" aria-label="Audit signing keys">
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Signs since</th>
                  <th scope="col">Public key (Ed25519, base64)</th>
                </tr>
              </thead>
              <tbody>
                {status.audit_signing_keys.map((k) => (
                  <tr key={k.version}>
                    <td>{k.version}</td>
                    <td>{when(k.created_at)}</td>
                    <td class="mono">{k.public_key}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <p class="hint">Verify an audit export offline against these keys.</p>
        </section>
      )}
    </>
  );
}
