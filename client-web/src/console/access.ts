// Who sees the compliance and admin areas. The server decides every request; these only choose
// which links and screens to offer, from the caller's system role (`GET /api/v1/users/me`).
import type { Me } from '../api';

/** Compliance officers and system administrators (who hold every permission). */
export function canSeeCompliance(me: Me): boolean {
  return me.system_role === 'compliance_officer' || me.system_role === 'system_admin';
}

/** System administrators. */
export function canSeeAdmin(me: Me): boolean {
  return me.system_role === 'system_admin';
}
