// The forms of the account page that change the profile: display name, out-of-office period and
// password. Each sends one request and shows the server's answer (its error message as given).
import { useEffect, useState } from 'preact/hooks';
import { api, describeError, type Schemas } from '../api';
import { ErrorText } from '../shell/ui';

type Profile = Schemas['UserView'];

/** The display name, editable; `onSaved` gets the profile the server answered with. */
export function NameForm({ profile, onSaved }: { profile: Profile; onSaved: (p: Profile) => void }) {
  const [name, setName] = useState(profile.display_name);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  useEffect(() => setName(profile.display_name), [profile.display_name]);

  async function save(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setNotice('');
    try {
      const saved = await api('patch', '/api/v1/users/me', { json: { display_name: name } });
      onSaved(saved);
      setNotice('Your name was saved.');
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  const unchanged = name.trim() === profile.display_name;
  return (
    <form class="form" onSubmit={save}>
      <div class="field">
        <label for="profile-name">Display name</label>
        <input
          id="profile-name"
          required
          maxLength={100}
          autoComplete="name"
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
        />
      </div>
      <ErrorText error={error} />
      <p class="hint" role="status">
        {notice}
      </p>
      <div>
        <button type="submit" class="button button-primary small" disabled={busy || unchanged || !name.trim()} aria-busy={busy}>
          {busy ? 'Saving…' : 'Save name'}
        </button>
      </div>
    </form>
  );
}

/** The out-of-office period: first and last day and a message; saved or cleared. */
export function OutOfOfficeForm({ profile, onSaved }: { profile: Profile; onSaved: (p: Profile) => void }) {
  const current = profile.out_of_office ?? null;
  const [from, setFrom] = useState(current?.from ?? '');
  const [until, setUntil] = useState(current?.until ?? '');
  const [message, setMessage] = useState(current?.message ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');

  useEffect(() => {
    setFrom(current?.from ?? '');
    setUntil(current?.until ?? '');
    setMessage(current?.message ?? '');
  }, [current?.from, current?.until, current?.message]);

  async function send(period: { from: string; until: string; message: string | null } | null, done: string) {
    setBusy(true);
    setError(null);
    setNotice('');
    try {
      const saved = await api('patch', '/api/v1/users/me', { json: { out_of_office: period } });
      onSaved(saved);
      setNotice(done);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  function save(e: Event) {
    e.preventDefault();
    if (until < from) {
      setError('The last day cannot be before the first.');
      return;
    }
    void send({ from, until, message: message.trim() || null }, 'Your out-of-office dates were saved.');
  }

  return (
    <form class="form" onSubmit={save} aria-label="Out of office">
      <div class="field-row">
        <div class="field">
          <label for="ooo-from">Away from</label>
          <input id="ooo-from" type="date" required value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="ooo-until">Back after</label>
          <input id="ooo-until" type="date" required min={from || undefined} value={until} onInput={(e) => setUntil(e.currentTarget.value)} />
        </div>
      </div>
      <div class="field">
        <label for="ooo-message">Message (optional)</label>
        <textarea id="ooo-message" maxLength={500} rows={2} value={message} onInput={(e) => setMessage(e.currentTarget.value)} />
        <p class="hint">Shown to the people in your workspaces. At most a year away, 500 characters.</p>
      </div>
      <ErrorText error={error} />
      <p class="hint" role="status">
        {notice}
      </p>
      <div class="button-row start">
        <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
          {busy ? 'Saving…' : 'Save dates'}
        </button>
        {current && (
          <button type="button" class="button small" disabled={busy} onClick={() => void send(null, 'You are no longer shown as out of office.')}>
            Clear
          </button>
        )}
      </div>
    </form>
  );
}

/** Changes the password; the other sessions end, so `onChanged` lets the page list them again. */
export function PasswordForm({ onChanged }: { onChanged: () => void }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');

  async function change(e: Event) {
    e.preventDefault();
    setError(null);
    setNotice('');
    if (next !== again) {
      setError('The new passwords do not match.');
      return;
    }
    setBusy(true);
    try {
      const res = await api('post', '/api/v1/users/me/password', {
        json: { current_password: current, new_password: next },
      });
      setCurrent('');
      setNext('');
      setAgain('');
      const n = res.sessions_revoked;
      setNotice(`Your password was changed${n ? `; ${n === 1 ? 'one other session was' : `${n} other sessions were`} signed out` : ''}.`);
      onChanged();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={change} aria-label="Change password">
      <input type="text" autoComplete="username" hidden readOnly value="" />
      <div class="field">
        <label for="pw-current">Current password</label>
        <input id="pw-current" type="password" required autoComplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
      </div>
      <div class="field-row">
        <div class="field">
          <label for="pw-new">New password</label>
          <input
            id="pw-new"
            type="password"
            required
            minLength={12}
            autoComplete="new-password"
            aria-describedby="pw-new-hint"
            value={next}
            onInput={(e) => setNext(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="pw-again">New password again</label>
          <input id="pw-again" type="password" required minLength={12} autoComplete="new-password" value={again} onInput={(e) => setAgain(e.currentTarget.value)} />
        </div>
      </div>
      <p class="hint" id="pw-new-hint">
        At least 12 characters. Your other sessions are signed out; this one stays.
      </p>
      <ErrorText error={error} />
      <p class="hint" role="status">
        {notice}
      </p>
      <div>
        <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
          {busy ? 'Changing…' : 'Change password'}
        </button>
      </div>
    </form>
  );
}
