// The chat view's icons: the shared set, drawn a little lighter next to message text.
import { Icon as SharedIcon } from '../shell/ui';

export function Icon({ name, size = 18 }: { name: string; size?: number }) {
  return <SharedIcon name={name} size={size} weight={1.8} />;
}
