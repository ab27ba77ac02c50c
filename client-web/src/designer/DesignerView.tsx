// The designer's screens, one lazily loaded chunk each so the modellers load only where they are
// used: the lists (/w/<ws>/processes), the process designer with bpmn-js
// (/w/<ws>/processes/<id>), the decision-table editor with dmn-js (/w/<ws>/decisions/<key>)
// and the form designer (/w/<ws>/forms/<key>). Members without `workflows.manage` see the lists
// only, read-only; the server refuses them the rest anyway.
import { lazy } from 'preact/compat';
import type { Me } from '../api';
import type { Workspace } from '../shell/types';
import type { WorkspaceData } from '../shell/workspaceData';
import { Loading } from '../shell/ui';
import { useCanDesign } from './access';
import { ProcessList } from './ProcessList';
import './designer.css';

const ProcessDesigner = lazy(() => import('./bpmn/ProcessDesigner'));
const DecisionEditor = lazy(() => import('./dmn/DecisionEditor'));
const FormDesigner = lazy(() => import('./forms/FormDesigner'));

export type DesignerScreen = 'processes' | 'process' | 'decision' | 'form';

export default function DesignerView(props: {
  screen: DesignerScreen;
  id?: string;
  workspace: Workspace;
  me: Me;
  data: WorkspaceData;
  navigate: (path: string, opts?: { replace?: boolean }) => void;
}) {
  const can = useCanDesign(props.workspace);
  if (can === null) return <Loading />;
  if (props.screen === 'processes' || !props.id || !can) {
    return <ProcessList workspace={props.workspace} me={props.me} canDesign={can} navigate={props.navigate} refused={props.screen !== 'processes' && !can} />;
  }
  if (props.screen === 'process') {
    return <ProcessDesigner key={props.id} workspace={props.workspace} processId={props.id} me={props.me} data={props.data} navigate={props.navigate} />;
  }
  if (props.screen === 'decision') {
    return <DecisionEditor key={props.id} workspace={props.workspace} decisionKey={props.id} navigate={props.navigate} />;
  }
  return <FormDesigner key={props.id} workspace={props.workspace} formKey={props.id} me={props.me} data={props.data} navigate={props.navigate} />;
}
