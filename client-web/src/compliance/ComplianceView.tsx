// The compliance area (`/compliance/<section>`): the audit log, legal holds, data-subject
// requests and the breach register. Offered to compliance officers and system administrators;
// each screen shows the server's refusal should the caller lack the permission after all.
import type { Me } from '../api';
import { canSeeCompliance } from '../console/access';
import { usePeople } from '../console/people';
import { ConsolePage, type Tab } from '../console/ui';
import type { Workspace } from '../shell/types';
import { Redirect } from '../shell/ui';
import { AuditTab } from './AuditTab';
import { BreachesTab } from './BreachesTab';
import { HoldsTab } from './HoldsTab';
import { RequestsTab } from './RequestsTab';

const TABS: Tab[] = [
  { id: 'audit', label: 'Audit' },
  { id: 'holds', label: 'Holds' },
  { id: 'requests', label: 'Data-subject requests' },
  { id: 'breaches', label: 'Breaches' },
];

export default function ComplianceView({ me, workspaces, section }: { me: Me; workspaces: Workspace[]; section: string }) {
  const tab = TABS.find((t) => t.id === section);
  if (!canSeeCompliance(me)) {
    return (
      <div class="empty-state">
        <h1>Compliance</h1>
        <p>This area is for compliance officers and system administrators.</p>
      </div>
    );
  }
  if (!tab) return <Redirect to="/compliance/audit" />;
  return <Sections tab={tab} workspaces={workspaces} />;
}

/** The sections, once the caller may see them (the accounts are read only then). */
function Sections({ tab, workspaces }: { tab: Tab; workspaces: Workspace[] }) {
  const people = usePeople();
  return (
    <ConsolePage title="Compliance" base="/compliance" tabs={TABS} current={tab.id}>
      {people.error && <p class="hint">Names of people cannot be shown: {people.error}</p>}
      {tab.id === 'audit' && <AuditTab people={people} workspaces={workspaces} />}
      {tab.id === 'holds' && <HoldsTab people={people} workspaces={workspaces} />}
      {tab.id === 'requests' && <RequestsTab people={people} />}
      {tab.id === 'breaches' && <BreachesTab people={people} />}
    </ConsolePage>
  );
}
