import { lazy, Suspense } from 'preact/compat';
import { useEffect, useState } from 'preact/hooks';
import type { Me } from './api';

// Routes (History API; the server answers every non-API path with index.html):
//   /login, /setup?token=..., /account
//   /w/:ws                      the workspace's first channel
//   /w/:ws/c/:channel           a channel   (/w/:ws/c/:channel/m/:message is a permalink)
//   /w/:ws/d                    documents   (/w/:ws/d/:document opens one)
//   /w/:ws/search?q=...         search
const DocumentsView = lazy(() => import('./docs/DocumentsView'));

export function navigate(path: string) {
  history.pushState(null, '', path);
  dispatchEvent(new PopStateEvent('popstate'));
}

export function App() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const on = () => setPath(location.pathname);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  const me: Me = { id: '', email: '', display_name: '' };
  const m = path.match(/^\/w\/([^/]+)\/d(?:\/([^/]+))?$/);
  if (m) {
    return (
      <Suspense fallback={<p>Loading…</p>}>
        <DocumentsView workspaceId={m[1]} documentId={m[2]} me={me} navigate={navigate} />
      </Suspense>
    );
  }
  return <main>Concord</main>;
}
