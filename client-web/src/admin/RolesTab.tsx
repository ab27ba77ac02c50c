// Roles: the system roles (with how many hold each) and a workspace's roles, built-in and custom,
// with their permissions; defining a custom role, optionally starting from an existing one, and
// changing a custom role's name, description and permissions.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type Schemas } from '../api';
import type { People } from '../console/people';
import { Empty, failureText, NoWorkspaces, Notice, WorkspacePicker } from '../console/ui';
import type { Workspace } from '../shell/types';
import { ErrorText, Loading } from '../shell/ui';

type Role = Schemas['RoleView'];

const SYSTEM: { name: string; description: string }[] = [
  { name: 'system_admin', description: 'Administers the deployment: every permission, everywhere.' },
  {
    name: 'compliance_officer',
    description:
      'Searches and exports audit trails, manages legal holds and reads what they keep, answers data-subject requests, keeps the record of processing and the breach register.',
  },
];

export function RolesTab({ people, workspaces }: { people: People; workspaces: Workspace[] }) {
  const [ws, setWs] = useState(workspaces[0]?.id ?? '');
  const [roles, setRoles] = useState<Role[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState('');
  const [template, setTemplate] = useState<Role | null>(null);
  const [editing, setEditing] = useState<Role | null>(null);
  const [defined, setDefined] = useState(0);

  useEffect(() => {
    if (!ws) return;
    setRoles(null);
    setEditing(null);
    setError(null);
    api('get', '/api/v1/workspaces/{workspace_id}/roles', { params: { path: { workspace_id: ws } } })
      .then(setRoles)
      .catch((e) => {
        setRoles([]);
        setError(failureText(e));
      });
  }, [ws]);

  // The permissions a custom role may grant: those the workspace's roles grant between them.
  const permissions = useMemo(() => [...new Set((roles ?? []).flatMap((r) => r.permissions))].sort(), [roles]);
  const holders = (name: string) => (people.list ?? []).filter((p) => p.system_role === name).length;

  return (
    <>
      <section class="card" aria-labelledby="system-roles-heading">
        <h2 id="system-roles-heading">System roles</h2>
        <div class="table-wrap">
          <table class="data-table" aria-label="System roles">
            <thead>
              <tr>
                <th scope="col">Role</th>
                <th scope="col">Grants</th>
                <th scope="col">Held by</th>
              </tr>
            </thead>
            <tbody>
              {SYSTEM.map((r) => (
                <tr key={r.name}>
                  <td class="mono">{r.name}</td>
                  <td>{r.description}</td>
                  <td>{people.list ? `${holders(r.name)} ${holders(r.name) === 1 ? 'person' : 'people'}` : '…'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <p class="hint">Give or take a system role on the People screen.</p>
      </section>

      <section class="card" aria-labelledby="ws-roles-heading">
        <h2 id="ws-roles-heading">Workspace roles</h2>
        {workspaces.length === 0 ? (
          <NoWorkspaces />
        ) : (
          <>
            <WorkspacePicker id="roles-workspace" workspaces={workspaces} value={ws} onChange={setWs} />
            <ErrorText error={error} />
            <Notice text={notice} />
            {!roles && <Loading label="Loading roles…" />}
            {roles && roles.length === 0 && !error && <Empty>No roles.</Empty>}
            {roles && roles.length > 0 && (
              <div class="table-wrap">
                <table class="data-table" aria-label="Workspace roles">
                  <thead>
                    <tr>
                      <th scope="col">Role</th>
                      <th scope="col">Kind</th>
                      <th scope="col">Permissions</th>
                      <th scope="col">
                        <span class="sr-only">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {roles.map((r) => (
                      <tr key={r.id} data-role={r.name}>
                        <td>
                          <span class="mono">{r.name}</span>
                          {r.description && <div class="hint">{r.description}</div>}
                        </td>
                        <td>{r.builtin ? <span class="tag">built in</span> : <span class="tag tag-accent">custom</span>}</td>
                        <td>
                          <ul class="tag-list" aria-label={`Permissions of ${r.name}`}>
                            {r.permissions.map((p) => (
                              <li key={p} class="tag mono">
                                {p}
                              </li>
                            ))}
                          </ul>
                        </td>
                        <td>
                          <div class="button-row start">
                            {!r.builtin && (
                              <button type="button" class="button small" aria-label={`Edit ${r.name}`} onClick={() => setEditing(r)}>
                                Edit
                              </button>
                            )}
                            <button type="button" class="button small" aria-label={`New role from ${r.name}`} onClick={() => setTemplate(r)}>
                              Copy
                            </button>
                          </div>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            <p class="hint">
              Built-in roles follow the server's code. A custom role can be changed: everyone holding it has its new
              permissions at their next request. You can grant only permissions you hold yourself.
            </p>
          </>
        )}
      </section>

      {workspaces.length > 0 && editing && (
        <section class="card" aria-labelledby="edit-role-heading">
          <h2 id="edit-role-heading">Edit the role {editing.name}</h2>
          <RoleForm
            key={`edit-${editing.id}`}
            workspaceId={ws}
            permissions={permissions}
            template={editing}
            editing
            onSaved={(r) => {
              setRoles((rs) => (rs ?? []).map((x) => (x.id === r.id ? r : x)));
              setEditing(null);
              setNotice(`The role ${r.name} was changed.`);
            }}
            onCancel={() => setEditing(null)}
          />
        </section>
      )}

      {workspaces.length > 0 && (
        <section class="card" aria-labelledby="new-role-heading">
          <h2 id="new-role-heading">Define a custom role</h2>
          <RoleForm
            key={`${ws}-${template?.id ?? ''}-${defined}`}
            workspaceId={ws}
            permissions={permissions}
            template={template}
            onSaved={(r) => {
              setRoles((rs) => [...(rs ?? []), r]);
              setTemplate(null);
              setDefined((n) => n + 1);
              setNotice(`The role ${r.name} was defined.`);
            }}
          />
        </section>
      )}
    </>
  );
}

function sameSet(a: Set<string>, b: string[]): boolean {
  return a.size === b.length && b.every((x) => a.has(x));
}

/** Defines a custom role (from `template`, if given) or, with `editing`, changes `template`. */
function RoleForm(props: {
  workspaceId: string;
  permissions: string[];
  template: Role | null;
  editing?: boolean;
  onSaved: (r: Role) => void;
  onCancel?: () => void;
}) {
  const t = props.template;
  const [name, setName] = useState(t ? (props.editing ? t.name : `${t.name}_copy`) : '');
  const [description, setDescription] = useState(t?.description ?? '');
  const [chosen, setChosen] = useState<Set<string>>(new Set(t?.permissions ?? []));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const prefix = props.editing ? 'edit-role' : 'role';
  // Every permission on offer, plus any the edited role grants that no other role does.
  const offered = [...new Set([...props.permissions, ...(props.editing ? (t?.permissions ?? []) : [])])].sort();

  async function create(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const role =
        props.editing && t
          ? await api('patch', '/api/v1/workspaces/{workspace_id}/roles/{role_id}', {
              params: { path: { workspace_id: props.workspaceId, role_id: t.id } },
              // Only what was changed here, so two people editing other parts do not undo each other.
              json: {
                name: name.trim() !== t.name ? name.trim() : null,
                description: description.trim() !== t.description ? description.trim() : null,
                permissions: sameSet(chosen, t.permissions) ? null : [...chosen],
              },
            })
          : await api('post', '/api/v1/workspaces/{workspace_id}/roles', {
              params: { path: { workspace_id: props.workspaceId } },
              json: { name: name.trim(), description: description.trim(), permissions: [...chosen] },
            });
      props.onSaved(role);
    } catch (err) {
      setError(failureText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form" onSubmit={create} aria-label={props.editing ? `Edit the role ${t?.name ?? ''}` : 'Define a custom role'}>
      <div class="field-row">
        <div class="field">
          <label for={`${prefix}-name`}>Role name</label>
          <input
            id={`${prefix}-name`}
            required
            value={name}
            onInput={(e) => setName(e.currentTarget.value)}
            aria-describedby={`${prefix}-name-hint`}
          />
          <p class="hint" id={`${prefix}-name-hint`}>
            Lower-case letters, digits and underscores.
          </p>
        </div>
        <div class="field">
          <label for={`${prefix}-description`}>Description</label>
          <input id={`${prefix}-description`} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
        </div>
      </div>
      <fieldset class="field">
        <legend>Permissions</legend>
        <div class="check-list">
          {offered.map((p) => (
            <label key={p} class="mono">
              <input
                type="checkbox"
                checked={chosen.has(p)}
                onChange={(e) => {
                  const next = new Set(chosen);
                  if (e.currentTarget.checked) next.add(p);
                  else next.delete(p);
                  setChosen(next);
                }}
              />
              {p}
            </label>
          ))}
        </div>
      </fieldset>
      <ErrorText error={error} />
      <div>
        <div class="button-row start">
          <button type="submit" class="button button-primary small" disabled={busy} aria-busy={busy}>
            {props.editing ? (busy ? 'Saving…' : 'Save role') : busy ? 'Defining…' : 'Define role'}
          </button>
          {props.onCancel && (
            <button type="button" class="button small" onClick={props.onCancel}>
              Cancel
            </button>
          )}
        </div>
      </div>
    </form>
  );
}
