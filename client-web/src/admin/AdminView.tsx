// The admin area (`/admin/<section>`) for system administrators: people and their roles, roles
// and their permissions, workspace policies, keys and rotations, sessions. Each screen shows the
// server's refusal should the caller lack the permission after all.
import type { Me } from '../api';
import { canSeeAdmin } from '../console/access';
import { usePeople } from '../console/people';
import { ConsolePage, type Tab } from '../console/ui';
import type { Workspace } from '../shell/types';
import { Redirect } from '../shell/ui';
import { KeysTab } from './KeysTab';
import { PeopleTab } from './PeopleTab';
import { PoliciesTab } from './PoliciesTab';
import { RolesTab } from './RolesTab';
import { SessionsTab } from './SessionsTab';

const TABS: Tab[] = [
  { id: 'people', label: 'People' },
  { id: 'roles', label: 'Roles' },
  { id: 'policies', label: 'Policies' },
  { id: 'keys', label: 'Keys' },
  { id: 'sessions', label: 'Sessions' },
];

export default function AdminView({ me, workspaces, section }: { me: Me; workspaces: Workspace[]; section: string }) {
  const tab = TABS.find((t) => t.id === section);
  if (!canSeeAdmin(me)) {
    return (
      <div class="empty-state">
        <h1>Administration</h1>
        <p>This area is for system administrators.</p>
      </div>
    );
  }
  if (!tab) return <Redirect to="/admin/people" />;
  return <Sections me={me} tab={tab} workspaces={workspaces} />;
}

/** The sections, once the caller may see them (the accounts are read only then). */
function Sections({ me, tab, workspaces }: { me: Me; tab: Tab; workspaces: Workspace[] }) {
  const people = usePeople();
  return (
    <ConsolePage title="Administration" base="/admin" tabs={TABS} current={tab.id}>
      {people.error && <p class="hint">People cannot be listed: {people.error}</p>}
      {tab.id === 'people' && <PeopleTab me={me} people={people} workspaces={workspaces} />}
      {tab.id === 'roles' && <RolesTab people={people} workspaces={workspaces} />}
      {tab.id === 'policies' && <PoliciesTab people={people} workspaces={workspaces} />}
      {tab.id === 'keys' && <KeysTab people={people} />}
      {tab.id === 'sessions' && <SessionsTab me={me} people={people} />}
    </ConsolePage>
  );
}
