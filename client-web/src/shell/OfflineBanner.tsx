// "Reconnecting…" while the live connection is down. The live region is always in the page so
// screen readers announce the change when it happens.
import { useEffect, useState } from 'preact/hooks';
import { currentStatus, onStatus, reconnectNow, type LiveStatus } from '../live';
import { Icon } from './ui';

export function OfflineBanner() {
  const [status, setStatus] = useState<LiveStatus>(currentStatus());
  const [online, setOnline] = useState(navigator.onLine);
  useEffect(() => {
    const off = onStatus(setStatus);
    const up = () => setOnline(true);
    const down = () => setOnline(false);
    addEventListener('online', up);
    addEventListener('offline', down);
    return () => {
      off();
      removeEventListener('online', up);
      removeEventListener('offline', down);
    };
  }, []);
  const down = status === 'offline' || !online;
  return (
    <div class={down ? 'offline-banner' : 'offline-banner offline-banner-hidden'} role="status" aria-live="polite">
      {down && (
        <>
          <Icon name="offline" size={16} />
          <span>
            {online ? 'Reconnecting…' : 'You are offline. Reconnecting…'}{' '}
            <span class="offline-detail">Messages you write are sent when the connection is back.</span>
          </span>
          {online && (
            <button type="button" class="link-button" onClick={() => reconnectNow()}>
              Retry now
            </button>
          )}
        </>
      )}
    </div>
  );
}
