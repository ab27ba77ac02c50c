import type { Me } from '../api';

export interface SearchViewProps {
  workspaceId: string;
  query: string;
  me: Me;
  navigate: (path: string) => void;
}

export default function SearchView(props: SearchViewProps) {
  return <section aria-label="Search results">{props.query}</section>;
}
