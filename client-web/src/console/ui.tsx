// The frame of the compliance and admin areas (a page with a heading and a row of section links)
// and the small pieces their screens share.
import type { ComponentChildren } from 'preact';
import { ApiError, describeError } from '../api';
import { linkClick } from '../shell/router';
import type { Workspace } from '../shell/types';
import './console.css';

export interface Tab {
  /** The last path segment: `/compliance/holds` has `holds`. */
  id: string;
  label: string;
}

/** A console page: its title, the links to its sections (the current one marked) and the section. */
export function ConsolePage(props: { title: string; base: string; tabs: Tab[]; current: string; children: ComponentChildren }) {
  return (
    <div class="page console-page">
      <h1>{props.title}</h1>
      <nav class="console-tabs" aria-label={`${props.title} sections`}>
        {props.tabs.map((t) => (
          <a
            key={t.id}
            href={`${props.base}/${t.id}`}
            class="console-tab"
            aria-current={t.id === props.current ? 'page' : undefined}
            onClick={linkClick}
          >
            {t.label}
          </a>
        ))}
      </nav>
      {props.children}
    </div>
  );
}

/** An error as the reader should see it: a refusal says so, anything else is the server's message. */
export function failureText(e: unknown): string {
  if (e instanceof ApiError && e.status === 403) {
    return `You do not have permission for this${e.message ? `: ${e.message}` : '.'}`;
  }
  return describeError(e);
}

/** Shown when a list has nothing in it. */
export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="console-empty">{children}</p>;
}

/** A status message for screen readers and sighted readers alike (what a form just did). */
export function Notice({ text }: { text: string }) {
  return (
    <p class="hint console-notice" role="status">
      {text}
    </p>
  );
}

/** Picks one of the caller's workspaces. */
export function WorkspacePicker(props: { id: string; workspaces: Workspace[]; value: string; onChange: (id: string) => void }) {
  return (
    <div class="field console-picker">
      <label for={props.id}>Workspace</label>
      <select id={props.id} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        {props.workspaces.map((w) => (
          <option key={w.id} value={w.id}>
            {w.name}
          </option>
        ))}
      </select>
    </div>
  );
}

/** Says that the caller belongs to no workspace, for screens that work on one. */
export function NoWorkspaces() {
  return <Empty>You are not a member of any workspace, so there is none to show here.</Empty>;
}
