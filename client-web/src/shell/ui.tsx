// Small building blocks shared by the shell's screens and dialogs.
import type { ComponentChildren } from 'preact';
import { Component } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { navigate } from './router';

/** Replaces the current URL once rendered. */
export function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <span class="spinner" role="status">
      <span class="spinner-dot" aria-hidden="true" />
      <span class="sr-only">{label}</span>
    </span>
  );
}

/** A page-level loading state that does not flash for fast responses. */
export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div class="loading" role="status">
      <span class="spinner-dot" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

export function ErrorText({ error, id }: { error: string | null; id?: string }) {
  if (!error) return null;
  return (
    <p class="error-text" role="alert" id={id}>
      {error}
    </p>
  );
}

/**
 * A modal dialog on the native <dialog> element: focus is kept inside, Escape closes it,
 * and focus returns to whatever opened it.
 */
export function Dialog(props: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
  description?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useRef(`dlg-${Math.random().toString(36).slice(2)}`).current;
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const dlg = ref.current!;
    if (!dlg.open) dlg.showModal();
    const first = dlg.querySelector<HTMLElement>('[autofocus], input, select, textarea, button:not(.dialog-close)');
    first?.focus();
    return () => {
      if (dlg.open) dlg.close();
      if (opener && document.contains(opener)) opener.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class={props.wide ? 'dialog dialog-wide' : 'dialog'}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
      onClick={(e) => {
        // A click on the backdrop (the dialog element itself, outside its box) closes it.
        if (ref.current && e.target === ref.current) {
          const r = ref.current.getBoundingClientRect();
          const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
          if (!inside) props.onClose();
        }
      }}
    >
      <div class="dialog-head">
        <h2 id={titleId}>{props.title}</h2>
        <button type="button" class="icon-button dialog-close" aria-label="Close" onClick={props.onClose}>
          <Icon name="close" />
        </button>
      </div>
      {props.description && <p class="dialog-description">{props.description}</p>}
      <div class="dialog-body">{props.children}</div>
    </dialog>
  );
}

const paths: Record<string, string> = {
  close: 'M6 6l12 12M18 6L6 18',
  menu: 'M4 7h16M4 12h16M4 17h16',
  plus: 'M12 5v14M5 12h14',
  search: 'M11 4a7 7 0 1 1 0 14 7 7 0 0 1 0-14zM20 20l-4-4',
  hash: 'M9 4L7 20M17 4l-2 16M4 9h16M3 15h16',
  lock: 'M7 11V8a5 5 0 0 1 10 0v3M5 11h14v9H5z',
  doc: 'M7 3h7l5 5v13H7zM14 3v5h5',
  tasks: 'M10 6h10M10 12h10M10 18h10M4 6l1.5 1.5L8 5M4 12l1.5 1.5L8 11M4 18l1.5 1.5L8 17',
  compass: 'M12 3a9 9 0 1 1 0 18 9 9 0 0 1 0-18zM15.5 8.5l-2 5-5 2 2-5z',
  user: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0',
  chevron: 'M7 10l5 5 5-5',
  check: 'M5 12l5 5 9-10',
  invite: 'M15 19a6 6 0 0 0-12 0M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM19 8v6M16 11h6',
  offline: 'M3 3l18 18M8.5 16.5a5 5 0 0 1 7 0M5 12.5a10 10 0 0 1 5-2.4M19 12.5a10 10 0 0 0-2.6-1.8M2 8.8a15 15 0 0 1 4.3-2.6M22 8.8A15 15 0 0 0 12 5',
  message: 'M4 5h16v11H9l-5 4z',
  smile: 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Zm-3.5-7.5a4.5 4.5 0 0 0 7 0M9 9.5h.01M15 9.5h.01',
  reply: 'M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12Z',
  edit: 'M4 20h4L19 9l-4-4L4 16v4Zm9-13 4 4',
  pin: 'M9 3h6l-1 6 4 4H6l4-4-1-6Zm3 10v8',
  link: 'M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1',
  trash: 'M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
  clip: 'M20 11.5 12.5 19a5 5 0 0 1-7-7L13 4.5a3.3 3.3 0 0 1 4.7 4.7L10.3 16.6a1.7 1.7 0 0 1-2.4-2.4L14.5 7.6',
  file: 'M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8l-5-5Zm0 0v5h5',
  down: 'M12 5v14m-6-6 6 6 6-6',
  shield: 'M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z',
  flow: 'M4 5h6v5H4zM14 14h6v5h-6zM7 10v6.5h7M17 14V8.5h-7',
  settings: 'M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM12 2v3M12 19v3M4.2 4.2l2.1 2.1M17.7 17.7l2.1 2.1M2 12h3M19 12h3M4.2 19.8l2.1-2.1M17.7 6.3l2.1-2.1',
};

/** An interface icon as inline SVG (emoji glyphs depend on the system's fonts). Decorative: the
 * control holding it carries the accessible name. */
export function Icon({ name, size = 18, weight = 2 }: { name: keyof typeof paths | string; size?: number; weight?: number }) {
  return (
    <svg
      class="icon"
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      stroke-width={weight}
      stroke-linecap="round"
      stroke-linejoin="round"
      aria-hidden="true"
      focusable="false"
    >
      <path d={paths[name] ?? ''} />
    </svg>
  );
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return '?';
  const first = [...parts[0]][0] ?? '';
  const last = parts.length > 1 ? [...parts[parts.length - 1]][0] ?? '' : '';
  return (first + last).toUpperCase();
}

/** A coloured circle with initials, its hue derived from the id. */
export function Avatar({ id, name, size = 28 }: { id: string; name: string; size?: number }) {
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return (
    <span
      class="avatar"
      aria-hidden="true"
      style={{ width: `${size}px`, height: `${size}px`, background: `hsl(${h} 45% 38%)`, fontSize: `${Math.round(size * 0.4)}px` }}
    >
      {initials(name)}
    </span>
  );
}

const RELOADED = 'concord.reloaded-for-update';

function isChunkError(error: Error): boolean {
  return /dynamically imported module|Importing a module script failed|error loading dynamically|Failed to fetch/i.test(error.message);
}

/** Shows a lazily loaded view's failure instead of a blank screen. */
export class ErrorBoundary extends Component<{ children: ComponentChildren; resetKey?: string }, { error: Error | null }> {
  state = { error: null as Error | null };
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  componentDidCatch(error: Error) {
    this.setState({ error });
    // A newer build replaced the file this view lives in: reload once to pick up the new build.
    if (isChunkError(error)) {
      try {
        const last = Number(sessionStorage.getItem(RELOADED) ?? 0);
        if (Date.now() - last > 30_000) {
          sessionStorage.setItem(RELOADED, String(Date.now()));
          location.reload();
        }
      } catch {
        /* storage unavailable: the message below offers the reload */
      }
    }
  }
  componentDidUpdate(prev: { resetKey?: string }) {
    if (prev.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }
  render() {
    if (this.state.error) {
      const chunk = isChunkError(this.state.error);
      return (
        <div class="empty-state" role="alert">
          <h2>{chunk ? 'This part of Concord could not be loaded' : 'Something went wrong here'}</h2>
          <p>{chunk ? 'Check your connection, then reload the page.' : this.state.error.message}</p>
          <button type="button" class="button" onClick={() => location.reload()}>
            Reload
          </button>
        </div>
      );
    }
    return this.props.children;
  }
}

/** Sets the document title while mounted. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = title ? `${title} · Concord` : 'Concord';
  }, [title]);
}
