// First run: a display name (and, if wanted, a password) is all it takes; the account is made
// on this tab's own homeserver. People who already have an account here can log in instead.

import { useState } from 'preact/hooks';
import type { Session } from '../session';
import { ErrorLine, errorText, formText } from './widgets';
import { Transfer } from './Transfer';

export function Onboarding({ session }: { session: Session }) {
  const [mode, setMode] = useState<'new' | 'login' | 'import'>('new');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const text = (name: string) => formText(form, name);
    setBusy(true);
    setError(null);
    try {
      if (mode === 'new') await session.onboard(text('display-name'), text('password') || undefined);
      else await session.login(text('username').trim(), text('password'));
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };

  if (mode === 'import') return <Transfer onboarding onBack={() => setMode('new')} />;
  return (
    <div class="onboarding">
      <form class="card" onSubmit={(event) => void submit(event)} aria-busy={busy}>
        <h1>Hearth</h1>
        <p class="lead">Chat that runs in your browser. Your homeserver lives in this tab and talks to others directly.</p>
        {mode === 'new' ? (
          <>
            <label for="display-name">Your name</label>
            <input id="display-name" name="display-name" autocomplete="nickname" required maxLength={64} autoFocus placeholder="e.g. Alice" />
            <details>
              <summary>Password (optional)</summary>
              <label for="password">Password, to log in again on this homeserver</label>
              <input id="password" name="password" type="password" autocomplete="new-password" minLength={8} />
            </details>
            <button type="submit" class="primary" disabled={busy}>
              {busy ? 'Setting up…' : 'Start chatting'}
            </button>
            <button type="button" class="link" onClick={() => setMode('login')}>
              I have an account on this homeserver
            </button>
            <button type="button" class="link" onClick={() => setMode('import')}>
              Import a Hearth export
            </button>
          </>
        ) : (
          <>
            <label for="username">Username</label>
            {/* Keyed, as the password: Preact reusing the first-run fields' elements leaves them a
                maxlength of 0 (from the name's maxLength), and nothing can be typed. */}
            <input key="username" id="username" name="username" autocomplete="username" required autoFocus />
            <label for="password">Password</label>
            <input key="current-password" id="password" name="password" type="password" autocomplete="current-password" required />
            <button type="submit" class="primary" disabled={busy}>
              {busy ? 'Logging in…' : 'Log in'}
            </button>
            <button type="button" class="link" onClick={() => setMode('new')}>
              Create a new account instead
            </button>
          </>
        )}
        <ErrorLine error={error} />
      </form>
    </div>
  );
}
