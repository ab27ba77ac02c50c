import type { Me } from '../api';

export interface ChannelViewProps {
  workspaceId: string;
  channelId: string;
  /** A permalinked message to scroll to and highlight. */
  messageId?: string;
  me: Me;
  navigate: (path: string) => void;
}

export default function ChannelView(props: ChannelViewProps) {
  return <section aria-label="Channel">{props.channelId}</section>;
}
