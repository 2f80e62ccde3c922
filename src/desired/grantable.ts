/**
 * Whether requested RBAC rules fall within granting rules, with the API server's covering semantics
 * (k8s.io/component-helpers/auth/rbac/validation `Covers`): a requested rule is broken down into every
 * (verb, apiGroup, resource, resourceName) combination it grants, and each combination must be covered by
 * one granting rule. `*` in a granting rule covers any verb, group or resource; `*` in a requested rule is
 * covered only by `*`. A granting `*\/sub` covers the subresource `sub` of any resource. A granting rule
 * with resourceNames covers only those names; one without covers every name. Pure.
 */

/** The fields of an rbac/v1 PolicyRule that decide what it grants. */
export interface RuleLike {
  readonly verbs?: readonly string[] | undefined;
  readonly apiGroups?: readonly string[] | undefined;
  readonly resources?: readonly string[] | undefined;
  readonly resourceNames?: readonly string[] | undefined;
  readonly nonResourceURLs?: readonly string[] | undefined;
}

/** One permission a requested rule grants: a single verb on a single resource (and name), or URL. */
export interface Permission {
  verb: string;
  apiGroup?: string;
  resource?: string;
  resourceName?: string;
  nonResourceURL?: string;
}

const list = (xs: readonly string[] | undefined): readonly string[] => xs ?? [];

/** Every single permission a rule grants (BreakdownRule): empty lists grant nothing. */
export function breakdown(rule: RuleLike): Permission[] {
  const out: Permission[] = [];
  for (const apiGroup of list(rule.apiGroups))
    for (const resource of list(rule.resources))
      for (const verb of list(rule.verbs)) {
        if (list(rule.resourceNames).length === 0) out.push({ verb, apiGroup, resource });
        else
          for (const resourceName of list(rule.resourceNames))
            out.push({ verb, apiGroup, resource, resourceName });
      }
  for (const nonResourceURL of list(rule.nonResourceURLs))
    for (const verb of list(rule.verbs)) out.push({ verb, nonResourceURL });
  return out;
}

function resourceCovers(granting: readonly string[], resource: string): boolean {
  if (granting.includes("*") || granting.includes(resource)) return true;
  const slash = resource.indexOf("/");
  return slash >= 0 && granting.includes(`*/${resource.slice(slash + 1)}`);
}

function urlCovers(granting: readonly string[], url: string): boolean {
  return granting.some((g) => g === url || (g.endsWith("*") && url.startsWith(g.slice(0, -1))));
}

/** Whether one granting rule covers one permission (ruleCovers). */
export function ruleCovers(granting: RuleLike, p: Permission): boolean {
  const verbs = list(granting.verbs);
  if (!verbs.includes("*") && !verbs.includes(p.verb)) return false;
  if (p.nonResourceURL !== undefined)
    return (
      list(granting.resourceNames).length === 0 && urlCovers(list(granting.nonResourceURLs), p.nonResourceURL)
    );
  const groups = list(granting.apiGroups);
  if (p.apiGroup === undefined || (!groups.includes("*") && !groups.includes(p.apiGroup))) return false;
  if (p.resource === undefined || !resourceCovers(list(granting.resources), p.resource)) return false;
  const names = list(granting.resourceNames);
  if (names.length === 0) return true;
  return p.resourceName !== undefined && names.includes(p.resourceName);
}

/** The permissions of `requested` that no rule of `granting` covers, in order, each once. */
export function uncovered(granting: readonly RuleLike[], requested: readonly RuleLike[]): Permission[] {
  const seen = new Set<string>();
  const out: Permission[] = [];
  for (const rule of requested)
    for (const p of breakdown(rule)) {
      const key = JSON.stringify([p.verb, p.apiGroup, p.resource, p.resourceName, p.nonResourceURL]);
      if (seen.has(key) || granting.some((g) => ruleCovers(g, p))) continue;
      seen.add(key);
      out.push(p);
    }
  return out;
}

/** Whether every permission `requested` grants is covered by `granting` (Covers). */
export function covers(granting: readonly RuleLike[], requested: readonly RuleLike[]): boolean {
  return uncovered(granting, requested).length === 0;
}

/**
 * Permissions in words, grouped by resource: `secrets [list update]`, `rbac.authorization.k8s.io/roles
 * [create]`, `configmaps "app-config" [get]`. At most `max` groups, then how many more.
 */
export function describePermissions(perms: readonly Permission[], max = 12): string {
  const groups = new Map<string, string[]>();
  for (const p of perms) {
    const what =
      p.nonResourceURL !== undefined
        ? `nonResourceURL ${p.nonResourceURL}`
        : `${p.apiGroup ? `${p.apiGroup}/` : ""}${p.resource ?? ""}` +
          (p.resourceName !== undefined ? ` "${p.resourceName}"` : "");
    const verbs = groups.get(what) ?? [];
    verbs.push(p.verb);
    groups.set(what, verbs);
  }
  const parts = [...groups].map(([what, verbs]) => `${what} [${verbs.join(" ")}]`);
  const more = parts.length > max ? `, and ${parts.length - max} more` : "";
  return parts.slice(0, max).join(", ") + more;
}
