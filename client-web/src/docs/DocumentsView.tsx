// Documents: list, create, and the co-editing editor (TipTap bound to Yjs over Concord's Yjs
// endpoint). Loaded lazily so the initial bundle stays small.
import type { Me } from '../api';

export interface DocumentsViewProps {
  workspaceId: string;
  /** The open document, or undefined for the list. */
  documentId?: string;
  me: Me;
  navigate: (path: string) => void;
}

export default function DocumentsView(props: DocumentsViewProps) {
  return <section aria-label="Documents">Documents of {props.workspaceId}</section>;
}
