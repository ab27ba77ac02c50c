// The sidebar: workspace switcher, documents, tasks (with the open ones counted), channels and
// direct messages with unread and mention badges, and the actions to browse, create, message and
// invite.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Me } from '../api';
import type { Route } from '../app';
import { linkClick, navigate } from './router';
import { isConversation, type Channel, type Workspace } from './types';
import type { WorkspaceData } from './workspaceData';
import { Avatar, Icon } from './ui';
import { useCanDesign } from '../designer/access';
import { BrowseChannelsDialog, CreateChannelDialog, CreateWorkspaceDialog, InviteDialog, NewMessageDialog } from './dialogs';

type DialogKind = 'browse' | 'create' | 'dm' | 'invite' | 'workspace' | null;

export function Sidebar(props: {
  me: Me;
  workspaces: Workspace[];
  workspace: Workspace | null;
  route: Route;
  data: WorkspaceData;
  /** How many workflow tasks are open for the signed-in person here (`null` until known). */
  openTasks: number | null;
  open: boolean;
  onClose: () => void;
  reloadWorkspaces: () => Promise<Workspace[]>;
}) {
  const { me, workspace, route, data } = props;
  const [dialog, setDialog] = useState<DialogKind>(null);
  const ref = useRef<HTMLElement>(null);

  // At phone width the sidebar is a drawer: focus moves into it when it opens, Escape closes it.
  useEffect(() => {
    if (!props.open) return;
    const first = ref.current?.querySelector<HTMLElement>('button, a[href]');
    first?.focus();
    const key = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !document.querySelector('dialog[open]')) {
        props.onClose();
        document.querySelector<HTMLElement>('.menu-button')?.focus();
      }
    };
    addEventListener('keydown', key);
    return () => removeEventListener('keydown', key);
  }, [props.open]);

  // Alt+Up / Alt+Down: the previous or next channel in the sidebar; with Shift, the next unread one.
  useEffect(() => {
    const key = (e: KeyboardEvent) => {
      if (!e.altKey || e.ctrlKey || e.metaKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
      if (document.querySelector('dialog[open]')) return;
      const links = [...(ref.current?.querySelectorAll<HTMLAnchorElement>('a[data-channel-id]') ?? [])];
      if (links.length === 0) return;
      const at = links.findIndex((a) => a.getAttribute('aria-current') === 'page');
      const step = e.key === 'ArrowUp' ? -1 : 1;
      let target: HTMLAnchorElement | undefined;
      for (let i = 1; i <= links.length; i++) {
        const candidate = links[(((at < 0 ? (step > 0 ? -1 : 0) : at) + step * i) % links.length + links.length) % links.length];
        if (!e.shiftKey || candidate.classList.contains('unread')) {
          target = candidate;
          break;
        }
      }
      if (!target) return;
      e.preventDefault();
      navigate(target.getAttribute('href')!);
    };
    addEventListener('keydown', key);
    return () => removeEventListener('keydown', key);
  }, []);

  const channels = data.channels ?? [];
  const named = channels.filter((c) => !isConversation(c)).sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''));
  const convos = channels.filter(isConversation).sort((a, b) => data.label(a).localeCompare(data.label(b)));
  const base = workspace ? `/w/${workspace.id}` : '';
  const canDesign = useCanDesign(workspace);
  const designing = ['/processes', '/decisions/', '/forms/'].some((p) => route.path.startsWith(`${base}${p}`));

  return (
    <nav
      id="sidebar"
      class={props.open ? 'sidebar sidebar-open' : 'sidebar'}
      aria-label="Workspace"
      ref={ref}
      onClick={(e) => {
        // Following a link closes the drawer, even the link to the page already open.
        if (props.open && (e.target as HTMLElement).closest('a[href]')) props.onClose();
      }}
    >
      <WorkspaceSwitcher workspaces={props.workspaces} current={workspace} onCreate={() => setDialog('workspace')} />
      {workspace && (
        <>
          <ul class="nav-list">
            <li>
              <a
                href={`${base}/d`}
                class="nav-item"
                aria-current={route.path.startsWith(`${base}/d`) ? 'page' : undefined}
                onClick={linkClick}
              >
                <Icon name="doc" size={16} />
                <span class="nav-label">Documents</span>
              </a>
            </li>
            <li>
              <a
                href={`${base}/tasks`}
                class="nav-item"
                aria-current={route.path === `${base}/tasks` || route.path.startsWith(`${base}/tasks/`) ? 'page' : undefined}
                onClick={linkClick}
              >
                <Icon name="tasks" size={16} />
                <span class="nav-label">Tasks</span>
                {(props.openTasks ?? 0) > 0 && (
                  <>
                    <span class="badge badge-quiet" aria-hidden="true">
                      {props.openTasks! > 99 ? '99+' : props.openTasks}
                    </span>
                    <span class="sr-only">, {props.openTasks} open</span>
                  </>
                )}
              </a>
            </li>
            {canDesign && (
              <li>
                <a href={`${base}/processes`} class="nav-item" aria-current={designing ? 'page' : undefined} onClick={linkClick}>
                  <Icon name="flow" size={16} />
                  <span class="nav-label">Processes</span>
                </a>
              </li>
            )}
            <li>
              <button type="button" class="nav-item" onClick={() => setDialog('browse')}>
                <Icon name="compass" size={16} />
                <span class="nav-label">Browse channels</span>
              </button>
            </li>
          </ul>

          <section class="nav-section" aria-labelledby="channels-heading">
            <div class="nav-section-head">
              <h2 id="channels-heading">Channels</h2>
              <button type="button" class="icon-button small" aria-label="Create a channel" title="Create a channel" onClick={() => setDialog('create')}>
                <Icon name="plus" size={16} />
              </button>
            </div>
            {data.channels === null && !data.error && <p class="nav-note">Loading…</p>}
            {data.error && data.channels === null && (
              <p class="nav-note" role="alert">
                Could not load channels.{' '}
                <button type="button" class="link-button" onClick={data.reload}>
                  Retry
                </button>
              </p>
            )}
            <ul class="nav-list">
              {named.map((c) => (
                <ChannelItem key={c.id} c={c} label={c.name ?? ''} href={`${base}/c/${c.id}`} route={route} />
              ))}
            </ul>
            {data.channels !== null && named.length === 0 && <p class="nav-note">No channels yet.</p>}
          </section>

          <section class="nav-section" aria-labelledby="dms-heading">
            <div class="nav-section-head">
              <h2 id="dms-heading">Direct messages</h2>
              <button type="button" class="icon-button small" aria-label="New direct message" title="New direct message" onClick={() => setDialog('dm')}>
                <Icon name="plus" size={16} />
              </button>
            </div>
            <ul class="nav-list">
              {convos.map((c) => (
                <ChannelItem
                  key={c.id}
                  c={c}
                  label={data.label(c)}
                  href={`${base}/c/${c.id}`}
                  route={route}
                  avatar={(c.participants ?? []).find((id) => id !== me.id) ?? me.id}
                />
              ))}
            </ul>
            {data.channels !== null && convos.length === 0 && <p class="nav-note">No conversations yet.</p>}
          </section>

          <div class="sidebar-foot">
            <button type="button" class="button button-secondary button-block" onClick={() => setDialog('invite')}>
              <Icon name="invite" size={16} /> Invite people
            </button>
          </div>
        </>
      )}

      {dialog === 'workspace' && (
        <CreateWorkspaceDialog
          onClose={() => setDialog(null)}
          onCreated={async (w) => {
            setDialog(null);
            await props.reloadWorkspaces().catch(() => undefined);
            navigate(`/w/${w.id}`);
          }}
        />
      )}
      {workspace && dialog === 'create' && <CreateChannelDialog workspaceId={workspace.id} data={data} onClose={() => setDialog(null)} />}
      {workspace && dialog === 'browse' && <BrowseChannelsDialog workspaceId={workspace.id} data={data} onClose={() => setDialog(null)} />}
      {workspace && dialog === 'dm' && <NewMessageDialog workspaceId={workspace.id} me={me} data={data} onClose={() => setDialog(null)} />}
      {workspace && dialog === 'invite' && <InviteDialog workspace={workspace} onClose={() => setDialog(null)} />}
    </nav>
  );
}

function ChannelItem(props: { c: Channel; label: string; href: string; route: Route; avatar?: string }) {
  const { c } = props;
  const current = props.route.path === props.href || props.route.path.startsWith(`${props.href}/`);
  const unread = !current && (c.unread_count ?? 0) > 0;
  const mentions = current ? 0 : c.mention_count ?? 0;
  // In a conversation every message is for you: its badge counts them all.
  const convo = isConversation(c);
  const count = convo ? Math.max(mentions, unread ? c.unread_count ?? 0 : 0) : mentions;
  const countLabel = convo && count > mentions ? `${count} unread ${count === 1 ? 'message' : 'messages'}` : `${count} ${count === 1 ? 'mention' : 'mentions'}`;
  const cls = ['nav-item', unread ? 'unread' : '', c.archived ? 'archived' : ''].filter(Boolean).join(' ');
  return (
    <li>
      <a href={props.href} class={cls} aria-current={current ? 'page' : undefined} onClick={linkClick} data-channel-id={c.id}>
        {props.avatar ? (
          <Avatar id={props.avatar} name={props.label} size={18} />
        ) : (
          <Icon name={c.kind === 'private' ? 'lock' : 'hash'} size={16} />
        )}
        <span class="nav-label">{props.label}</span>
        {c.kind === 'private' && <span class="sr-only">(private)</span>}
        {c.archived && <span class="sr-only">(archived)</span>}
        {unread && count === 0 && <span class="sr-only">, {c.unread_count} unread</span>}
        {count > 0 && (
          <>
            <span class="badge" aria-hidden="true">
              {count > 99 ? '99+' : count}
            </span>
            <span class="sr-only">, {countLabel}</span>
          </>
        )}
      </a>
    </li>
  );
}

function WorkspaceSwitcher(props: { workspaces: Workspace[]; current: Workspace | null; onCreate: () => void }) {
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);
  const button = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!open) return;
    const click = (e: MouseEvent) => {
      if (!root.current?.contains(e.target as Node)) setOpen(false);
    };
    const key = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        setOpen(false);
        button.current?.focus();
      }
    };
    document.addEventListener('mousedown', click);
    root.current?.addEventListener('keydown', key);
    root.current?.querySelector<HTMLElement>('.switcher-panel a, .switcher-panel button')?.focus();
    const el = root.current;
    return () => {
      document.removeEventListener('mousedown', click);
      el?.removeEventListener('keydown', key);
    };
  }, [open]);

  return (
    <div class="switcher" ref={root}>
      <button
        type="button"
        ref={button}
        class="switcher-button"
        aria-expanded={open}
        aria-controls={open ? 'workspace-list' : undefined}
        onClick={() => setOpen((o) => !o)}
      >
        <span class="switcher-name">{props.current?.name ?? 'Choose a workspace'}</span>
        <span class="sr-only">, switch workspace</span>
        <Icon name="chevron" size={16} />
      </button>
      {open && (
        <div class="switcher-panel" id="workspace-list">
          <h2 class="sr-only">Your workspaces</h2>
          <ul class="nav-list">
            {props.workspaces.map((w) => (
              <li key={w.id}>
                <a
                  class="nav-item"
                  href={`/w/${w.id}`}
                  aria-current={w.id === props.current?.id ? 'true' : undefined}
                  onClick={(e) => {
                    setOpen(false);
                    linkClick(e);
                  }}
                >
                  <span class="ws-mark" aria-hidden="true">
                    {[...w.name][0]?.toUpperCase()}
                  </span>
                  <span class="nav-label">{w.name}</span>
                  {w.id === props.current?.id && <Icon name="check" size={16} />}
                </a>
              </li>
            ))}
          </ul>
          <button
            type="button"
            class="nav-item"
            onClick={() => {
              setOpen(false);
              props.onCreate();
            }}
          >
            <Icon name="plus" size={16} />
            <span class="nav-label">Create a workspace</span>
          </button>
        </div>
      )}
    </div>
  );
}
