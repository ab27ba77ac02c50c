import { useLayoutEffect, useState } from 'preact/hooks';
import { onSignedOut, signedIn } from './api';
import { disconnect } from './live';
import { Login } from './shell/Login';
import { Setup } from './shell/Setup';
import { SsoCallback } from './shell/SsoCallback';
import { Invite } from './shell/Invite';
import { Session } from './shell/Session';
import { Redirect } from './shell/ui';
import { navigate, safeNext } from './shell/router';

// Routes (History API; the server answers every non-API path with index.html):
//   /login, /setup?token=..., /account, /invite/:token, /sso/callback
//   /w/:ws                      the workspace's first channel
//   /w/:ws/c/:channel           a channel   (/w/:ws/c/:channel/m/:message is a permalink)
//   /w/:ws/d                    documents   (/w/:ws/d/:document opens one)
//   /w/:ws/search?q=...         search
//   /w/:ws/tasks                workflow tasks   (/w/:ws/tasks/:task opens one's form)
//   /w/:ws/processes            processes, decision tables, forms (the designer's lists)
//   /w/:ws/processes/:process   the process designer (bpmn-js)
//   /w/:ws/decisions/:key       the decision-table editor (dmn-js)
//   /w/:ws/forms/:key           the form designer
//   /w/:ws/instances/:id        a process instance (its diagram, path, incidents, history)
//   /w/:ws/processes/:id/dashboard|mining|instances   watching a process
//   /compliance/:section        audit, holds, requests, breaches (compliance officers, system admins)
//   /admin/:section             people, roles, policies, keys, sessions (system admins)

export { navigate, linkClick } from './shell/router';

export interface Route {
  path: string;
  query: URLSearchParams;
}

function current(): Route {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

export function App() {
  const [route, setRoute] = useState<Route>(current);
  const [authed, setAuthed] = useState(signedIn());

  // A layout effect, so it is listening before any child's effect navigates; and it catches up
  // with a navigation that happened before it was listening.
  useLayoutEffect(() => {
    const onPop = () => {
      setRoute((r) => (r.path === location.pathname && r.query.toString() === location.search.replace(/^\?/, '') ? r : current()));
      setAuthed(signedIn());
    };
    addEventListener('popstate', onPop);
    onPop();
    const off = onSignedOut(() => {
      // Signed out here, in another tab, or by a refused refresh: close the live connection too.
      disconnect();
      setAuthed(false);
      const here = location.pathname;
      if (here !== '/login' && !here.startsWith('/invite/') && here !== '/setup') {
        navigate('/login', { replace: true });
      }
    });
    return () => {
      removeEventListener('popstate', onPop);
      off();
    };
  }, []);

  const { path, query } = route;
  if (path === '/sso/callback') return <SsoCallback />;
  if (path === '/setup') return <Setup token={query.get('token') ?? ''} />;
  const invite = path.match(/^\/invite\/([^/]+)$/);
  if (invite) return <Invite token={decodeURIComponent(invite[1])} />;

  if (!authed) {
    if (path !== '/login') {
      const next = path === '/' ? '' : `?next=${encodeURIComponent(path + location.search)}`;
      return <Redirect to={`/login${next}`} />;
    }
    return <Login next={query.get('next')} ssoError={query.get('sso_error')} ssoMessage={query.get('sso_message')} />;
  }
  if (path === '/login') {
    const next = query.get('next');
    return <Redirect to={safeNext(next)} />;
  }
  return <Session route={route} />;
}
