// Documents: list, create, and the co-editing editor (TipTap bound to Yjs over Concord's Yjs
// endpoint). Loaded lazily so the initial bundle stays small; the editor (TipTap, Yjs, the
// y-websocket provider) is a further chunk loaded only when a document is opened.
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

export default function DocumentsView(props: DocumentsViewProps) {
  if (props.documentId) {
    return (
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
    );
  }
  return <DocumentList workspaceId={props.workspaceId} navigate={props.navigate} />;
}
