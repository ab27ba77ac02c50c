// The signed-in application: loads the account and its workspaces, opens the live connection,
// and lays out the header, the sidebar and the main pane chosen by the route.
import { lazy, Suspense } from 'preact/compat';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, api, describeError, setTokens, type Me } from '../api';
import { connect, disconnect, on } from '../live';
import type { Route } from '../app';
import { navigate } from './router';
import { Sidebar } from './Sidebar';
import { Header } from './Header';
import { OfflineBanner } from './OfflineBanner';
import { ErrorBoundary, Loading, Redirect, useTitle } from './ui';
import type { Channel, Workspace } from './types';
import { useWorkspaceData } from './workspaceData';
import { useTaskInbox } from '../workflows/inbox';
import { CreateWorkspaceDialog, NoChannels } from './dialogs';

const ChannelView = lazy(() => import('../chat/ChannelView'));
const DocumentsView = lazy(() => import('../docs/DocumentsView'));
const SearchView = lazy(() => import('../search/SearchView'));
const TasksView = lazy(() => import('../workflows/TasksView'));
const DesignerView = lazy(() => import('../designer/DesignerView'));
const InstancePage = lazy(() => import('../operations/InstanceView'));
const ProcessPage = lazy(() => import('../operations/ProcessPage'));
const AccountView = lazy(() => import('../account/AccountView'));
const ComplianceView = lazy(() => import('../compliance/ComplianceView'));
const AdminView = lazy(() => import('../admin/AdminView'));

/** `/compliance/<section>` or `/admin/<section>`: the area and its section (empty for the area's root). */
export function consolePath(path: string): { area: 'compliance' | 'admin'; section: string } | null {
  const m = path.match(/^\/(compliance|admin)(?:\/([^/]*))?\/?$/);
  return m ? { area: m[1] === 'admin' ? 'admin' : 'compliance', section: m[2] ?? '' } : null;
}

const LAST_WS = 'concord.workspace';

function rememberWorkspace(id: string) {
  try {
    localStorage.setItem(LAST_WS, id);
  } catch {
    /* storage unavailable */
  }
}

function lastWorkspace(): string | null {
  try {
    return localStorage.getItem(LAST_WS);
  } catch {
    return null;
  }
}

export function Session({ route }: { route: Route }) {
  const [me, setMe] = useState<Me | null>(null);
  const [workspaces, setWorkspaces] = useState<Workspace[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let live = true;
    setError(null);
    Promise.all([api('get', '/api/v1/users/me'), api('get', '/api/v1/workspaces')])
      .then(([m, ws]) => {
        if (!live) return;
        setMe(m);
        setWorkspaces(ws);
        connect();
      })
      .catch((e) => live && setError(describeError(e)));
    return () => {
      live = false;
    };
  }, [attempt]);

  // The live connection reports a revoked session (signed out elsewhere, or by an administrator).
  useEffect(
    () =>
      on('session_ended', (ev) => {
        if (ev.code === 4403) {
          disconnect();
          setTokens(null);
          return;
        }
        // Otherwise find out over REST: a refused refresh signs out, anything else retries later.
        api('get', '/api/v1/users/me').catch((e) => {
          if (e instanceof ApiError && e.status === 401) setTokens(null);
        });
      }),
    [],
  );

  const reloadWorkspaces = useCallback(async () => {
    const ws = await api('get', '/api/v1/workspaces');
    setWorkspaces(ws);
    return ws;
  }, []);

  if (error && !me) {
    return (
      <div class="auth-page">
        <main class="auth-card" id="main">
          <h1>Concord could not load</h1>
          <p role="alert">{error}</p>
          <button type="button" class="button button-primary button-block" onClick={() => setAttempt((a) => a + 1)}>
            Try again
          </button>
        </main>
      </div>
    );
  }
  if (!me || !workspaces) return <Loading label="Loading Concord…" />;

  const { path } = route;
  const m = path.match(/^\/w\/([^/]+)(\/.*)?$/);
  const remembered = lastWorkspace();
  const fallback = workspaces.find((w) => w.id === remembered) ?? workspaces[0];

  const outsideWorkspaces = path === '/account' || consolePath(path) !== null;
  if (path === '/' || (!m && !outsideWorkspaces) || (m && workspaces.length === 0)) {
    if (fallback) return <Redirect to={`/w/${fallback.id}`} />;
    return <NoWorkspace me={me} onCreated={reloadWorkspaces} />;
  }
  const wsId = m ? decodeURIComponent(m[1]) : fallback?.id;
  const workspace = workspaces.find((w) => w.id === wsId) ?? null;
  if (m && !workspace) {
    return (
      <Frame me={me} workspaces={workspaces} workspace={null} route={route} reloadWorkspaces={reloadWorkspaces}>
        <div class="empty-state">
          <h1>Workspace not found</h1>
          <p>It does not exist, or you are not a member of it.</p>
          {fallback && (
            <a class="button button-primary" href={`/w/${fallback.id}`} onClick={(e) => (e.preventDefault(), navigate(`/w/${fallback.id}`))}>
              Go to {fallback.name}
            </a>
          )}
        </div>
      </Frame>
    );
  }
  return <Frame me={me} workspaces={workspaces} workspace={workspace} route={route} reloadWorkspaces={reloadWorkspaces} onMe={setMe} />;
}

function NoWorkspace({ me, onCreated }: { me: Me; onCreated: () => Promise<Workspace[]> }) {
  useTitle('Welcome');
  const [open, setOpen] = useState(false);
  return (
    <div class="auth-page">
      <main class="auth-card" id="main">
        <h1>Welcome, {me.display_name}</h1>
        <p>You are not in any workspace yet. Open an invitation link from your team, or create a workspace.</p>
        <button type="button" class="button button-primary button-block" onClick={() => setOpen(true)}>
          Create a workspace
        </button>
        <p class="center">
          <a href="/account" onClick={(e) => (e.preventDefault(), navigate('/account'))}>
            Your account
          </a>
        </p>
        {open && (
          <CreateWorkspaceDialog
            onClose={() => setOpen(false)}
            onCreated={async (w) => {
              await onCreated();
              navigate(`/w/${w.id}`);
            }}
          />
        )}
      </main>
    </div>
  );
}

interface FrameProps {
  me: Me;
  workspaces: Workspace[];
  workspace: Workspace | null;
  route: Route;
  reloadWorkspaces: () => Promise<Workspace[]>;
  onMe?: (m: Me) => void;
  children?: preact.ComponentChildren;
}

/** The application frame: skip link, header, sidebar (a drawer at phone width) and main pane. */
function Frame(props: FrameProps) {
  const { me, workspace, route } = props;
  const [drawer, setDrawer] = useState(false);
  const mainRef = useRef<HTMLElement>(null);
  const parts = parseWorkspacePath(route.path);
  const openChannel = parts?.view === 'channel' ? parts.id : undefined;
  const data = useWorkspaceData(workspace?.id ?? null, me, openChannel);
  const tasks = useTaskInbox(workspace?.id ?? null);

  useEffect(() => {
    if (workspace) rememberWorkspace(workspace.id);
  }, [workspace?.id]);

  // The drawer closes on navigation.
  useEffect(() => setDrawer(false), [route.path, route.query.toString()]);

  const channel = openChannel ? data.channels?.find((c) => c.id === openChannel) : undefined;
  const title = useMemo(() => {
    if (route.path === '/account') return 'Your account';
    const area = consolePath(route.path)?.area;
    if (area) return area === 'admin' ? 'Administration' : 'Compliance';
    if (!workspace) return 'Concord';
    if (parts?.view === 'channel') return channel ? `${data.label(channel)} · ${workspace.name}` : workspace.name;
    if (parts?.view === 'docs') return `Documents · ${workspace.name}`;
    if (parts?.view === 'search') return `Search · ${workspace.name}`;
    if (parts?.view === 'tasks') return `Tasks · ${workspace.name}`;
    if (parts?.view === 'designer') return `Processes · ${workspace.name}`;
    if (parts?.view === 'instance') return `Instance · ${workspace.name}`;
    if (parts?.view === 'process') return `Process · ${workspace.name}`;
    return workspace.name;
  }, [route.path, workspace, channel, data.label]);
  // Mentions and unread direct messages elsewhere show in the tab's title, as "(3) …".
  const waiting = (data.channels ?? []).reduce((n, c) => {
    if (c.id === openChannel) return n;
    const direct = c.kind === 'direct' || c.kind === 'group';
    return n + (direct ? Math.max(c.unread_count ?? 0, c.mention_count ?? 0) : c.mention_count ?? 0);
  }, 0);
  useTitle(waiting > 0 ? `(${waiting}) ${title}` : title);

  let main: preact.ComponentChildren = props.children;
  if (!main) {
    const area = consolePath(route.path);
    if (route.path === '/account') {
      main = <AccountView me={me} onMe={props.onMe} />;
    } else if (area?.area === 'compliance') {
      main = <ComplianceView me={me} workspaces={props.workspaces} section={area.section} />;
    } else if (area?.area === 'admin') {
      main = <AdminView me={me} workspaces={props.workspaces} section={area.section} />;
    } else if (workspace && parts) {
      if (parts.view === 'home') {
        if (data.channels === null) main = data.error ? <LoadError error={data.error} retry={data.reload} /> : <Loading label="Loading channels…" />;
        else {
          const first = pickFirstChannel(data.channels);
          main = first ? <Redirect to={`/w/${workspace.id}/c/${first}`} /> : <NoChannels workspaceId={workspace.id} data={data} />;
        }
      } else if (parts.view === 'channel') {
        main = (
          <ChannelView key={parts.id} workspaceId={workspace.id} channelId={parts.id!} messageId={parts.sub} me={me} navigate={navigate} />
        );
      } else if (parts.view === 'docs') {
        main = <DocumentsView workspaceId={workspace.id} documentId={parts.id} me={me} navigate={navigate} />;
      } else if (parts.view === 'search') {
        main = <SearchView workspaceId={workspace.id} query={route.query.get('q') ?? ''} me={me} navigate={navigate} />;
      } else if (parts.view === 'tasks') {
        main = <TasksView workspaceId={workspace.id} taskId={parts.id} me={me} inbox={tasks} data={data} navigate={navigate} />;
      } else if (parts.view === 'designer') {
        main = <DesignerView screen={parts.screen!} id={parts.id} workspace={workspace} me={me} data={data} navigate={navigate} />;
      } else if (parts.view === 'instance') {
        main = <InstancePage key={parts.id} workspaceId={workspace.id} instanceId={parts.id!} me={me} data={data} />;
      } else if (parts.view === 'process') {
        const tab = parts.sub === 'mining' || parts.sub === 'instances' ? parts.sub : 'dashboard';
        main = <ProcessPage key={parts.id} workspaceId={workspace.id} processId={parts.id!} tab={tab} me={me} data={data} />;
      } else {
        main = (
          <div class="empty-state">
            <h1>Page not found</h1>
            <a class="button" href={`/w/${workspace.id}`} onClick={(e) => (e.preventDefault(), navigate(`/w/${workspace.id}`))}>
              Back to {workspace.name}
            </a>
          </div>
        );
      }
    }
  }

  return (
    <div class={drawer ? 'app drawer-open' : 'app'}>
      <a class="skip-link" href="#main" onClick={(e) => (e.preventDefault(), mainRef.current?.focus())}>
        Skip to main content
      </a>
      <Header
        me={me}
        workspace={workspace}
        route={route}
        drawerOpen={drawer}
        onMenu={() => setDrawer((d) => !d)}
      />
      <OfflineBanner />
      <div class="app-body">
        <div class="drawer-scrim" aria-hidden="true" onClick={() => setDrawer(false)} />
        <Sidebar
          me={me}
          workspaces={props.workspaces}
          workspace={workspace}
          route={route}
          data={data}
          openTasks={tasks.tasks?.length ?? null}
          open={drawer}
          onClose={() => setDrawer(false)}
          reloadWorkspaces={props.reloadWorkspaces}
        />
        <main id="main" class="main" ref={mainRef} tabIndex={-1}>
          <ErrorBoundary resetKey={route.path}>
            <Suspense fallback={<Loading />}>{main}</Suspense>
          </ErrorBoundary>
        </main>
      </div>
    </div>
  );
}

function LoadError({ error, retry }: { error: string; retry: () => void }) {
  return (
    <div class="empty-state" role="alert">
      <h1>Could not load this workspace</h1>
      <p>{error}</p>
      <button type="button" class="button" onClick={retry}>
        Try again
      </button>
    </div>
  );
}

export interface WorkspacePath {
  view: 'home' | 'channel' | 'docs' | 'search' | 'tasks' | 'designer' | 'instance' | 'process' | 'unknown';
  id?: string;
  sub?: string;
  /** For the designer: which of its screens. */
  screen?: 'processes' | 'process' | 'decision' | 'form';
}

export function parseWorkspacePath(path: string): WorkspacePath | null {
  const m = path.match(/^\/w\/[^/]+(\/.*)?$/);
  if (!m) return null;
  const rest = m[1] ?? '';
  if (rest === '' || rest === '/') return { view: 'home' };
  let r = rest.match(/^\/c\/([^/]+)(?:\/m\/([^/]+))?\/?$/);
  if (r) return { view: 'channel', id: decodeURIComponent(r[1]), sub: r[2] && decodeURIComponent(r[2]) };
  r = rest.match(/^\/d(?:\/([^/]+))?\/?$/);
  if (r) return { view: 'docs', id: r[1] && decodeURIComponent(r[1]) };
  if (rest === '/search' || rest === '/search/') return { view: 'search' };
  r = rest.match(/^\/tasks(?:\/([^/]+))?\/?$/);
  if (r) return { view: 'tasks', id: r[1] && decodeURIComponent(r[1]) };
  if (rest === '/processes' || rest === '/processes/') return { view: 'designer', screen: 'processes' };
  r = rest.match(/^\/(processes|decisions|forms)\/([^/]+)\/?$/);
  if (r) {
    const screen = r[1] === 'processes' ? 'process' : r[1] === 'decisions' ? 'decision' : 'form';
    return { view: 'designer', screen, id: decodeURIComponent(r[2]) };
  }
  r = rest.match(/^\/instances\/([^/]+)\/?$/);
  if (r) return { view: 'instance', id: decodeURIComponent(r[1]) };
  r = rest.match(/^\/processes\/([^/]+)\/(dashboard|mining|instances)\/?$/);
  if (r) return { view: 'process', id: decodeURIComponent(r[1]), sub: r[2] };
  return { view: 'unknown' };
}

function pickFirstChannel(channels: Channel[]): string | undefined {
  const named = channels.filter((c) => (c.kind === 'public' || c.kind === 'private') && !c.archived);
  const general = named.find((c) => c.name === 'general');
  if (general) return general.id;
  const sorted = [...named].sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''));
  return sorted[0]?.id ?? channels[0]?.id;
}
