// Documents: list, create, and the co-editing editor (TipTap bound to Yjs over Concord's Yjs
// endpoint). Loaded lazily so the initial bundle stays small; the editor (TipTap, Yjs, the
// y-websocket provider) is a further chunk loaded only when a document is opened.
import { Component, type ComponentChildren } from 'preact';
import { lazy, Suspense } from 'preact/compat';
import type { Me } from '../api';
import { DocumentList } from './DocumentList';
import './docs.css';

const DocumentEditor = lazy(() => import('./DocumentEditor'));

export interface DocumentsViewProps {
  workspaceId: string;
  /** The open document, or undefined for the list. */
  documentId?: string;
  me: Me;
  navigate: (path: string) => void;
}

/**
 * Shows a way out when the editor's code cannot be loaded (offline, or a new version of the
 * client was deployed and the old chunk is gone) instead of an empty pane.
 */
class LoadGuard extends Component<{ children: ComponentChildren }, { failed: boolean }> {
  state = { failed: false };
  componentDidCatch(error: unknown) {
    this.setState({ failed: true });
    console.warn('The document editor could not be loaded', error);
  }
  render() {
    if (!this.state.failed) return this.props.children;
    return (
      <div class="dx-page">
        <div class="dx-error" role="alert">
          <p>The editor could not be loaded. Check your connection, then reload the page.</p>
          <button type="button" class="dx-btn" onClick={() => location.reload()}>
            Reload
          </button>
        </div>
      </div>
    );
  }
}

export default function DocumentsView(props: DocumentsViewProps) {
  if (props.documentId) {
    return (
      <LoadGuard key={props.documentId}>
        <Suspense
          fallback={
            <div class="dx-page dx-loading" role="status">
              Opening document…
            </div>
          }
        >
          <DocumentEditor
            key={props.documentId}
            workspaceId={props.workspaceId}
            documentId={props.documentId}
            me={props.me}
            navigate={props.navigate}
          />
        </Suspense>
      </LoadGuard>
    );
  }
  return <DocumentList workspaceId={props.workspaceId} navigate={props.navigate} />;
}
