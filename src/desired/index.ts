import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { areaExemptInNamespace } from "../api/exemptions.js";
import { objectKey, type Snapshot } from "../cluster/snapshot.js";
import { auditPolicyConfigMap, renderAuditPolicyYaml } from "./auditpolicy.js";
import { API_VERSIONS, type Child, type ChildKind } from "./children.js";
import { ownershipLabels } from "../api/vocabulary.js";
import { ownerReference } from "./metadata.js";
import { selectNamespacesSteps } from "./namespaces.js";
import { drain, SLICE, sortedSteps, type Steps } from "./slices.js";
import { desiredNetworkPolicies } from "./networkpolicies.js";
import { desiredRoleObjects } from "./rbac.js";
import { effectiveSpec } from "./spec.js";

/** What one policy wants in the cluster: the namespaces it selects and the children it owns there. */
export interface DesiredState {
  namespaces: string[];
  /** Every child exactly once: no Kind/namespace/name appears twice. */
  children: Child[];
  /**
   * Spec problems admission could not refuse (a policy stored before a rule existed): one message per
   * pair of spec fields that generate the same object, naming both. Report them as InvalidSpec.
   */
  invalid: string[];
}

/** One Kind/namespace/name generated more than once, and the spec fields that generated it, in order. */
export interface DuplicateChild {
  key: string;
  sources: string[];
}

/**
 * Finds every desired child key (Kind/namespace/name) that occurs more than once. Two children with one
 * key would both be applied on every reconcile, each undoing the other and each write re-enqueueing the
 * policy: a flapping object. Pure; `sourceOf` names the spec field a child comes from.
 */
export function duplicateChildKeys(
  children: readonly Child[],
  sourceOf: (child: Child) => string | undefined = () => undefined,
): DuplicateChild[] {
  return drain(duplicateChildKeysSteps(children, sourceOf));
}

function* duplicateChildKeysSteps(
  children: readonly Child[],
  sourceOf: (child: Child) => string | undefined,
): Steps<DuplicateChild[]> {
  const byKey = new Map<string, string[]>();
  let n = 0;
  for (const c of children) {
    const key = objectKey(c.kind, c.metadata.namespace, c.metadata.name);
    const list = byKey.get(key);
    if (list) list.push(sourceOf(c) ?? "?");
    else byKey.set(key, [sourceOf(c) ?? "?"]);
    if (++n % SLICE === 0) yield;
  }
  const out: DuplicateChild[] = [];
  for (const [key, sources] of byKey) {
    if (sources.length > 1) out.push({ key, sources });
    if (++n % SLICE === 0) yield;
  }
  return out;
}

/** One message per set of colliding spec fields, however many namespaces it happens in. */
function duplicateMessages(duplicates: readonly DuplicateChild[]): string[] {
  const groups = new Map<string, { kind: string; objects: string[] }>();
  for (const d of duplicates) {
    const [kind = "", ...rest] = d.key.split("/");
    const fields = `${d.sources.join(" and ")}|${kind}`;
    const g = groups.get(fields) ?? { kind, objects: [] };
    g.objects.push(rest.join("/"));
    groups.set(fields, g);
  }
  return [...groups].map(([fields, g]) => {
    const more = g.objects.length > 1 ? ` and ${g.objects.length - 1} more` : "";
    return (
      `${fields.split("|")[0]} generate the same ${g.kind} (${g.objects[0]}${more}); ` +
      "only the first is applied"
    );
  });
}

/**
 * Computes a policy's desired children from the snapshot. Pure and deterministic: children are sorted by
 * kind, namespace and name, carry the ownership labels and ownerReference, and each key occurs once (the
 * first generated wins; the collision is reported in `invalid`).
 */
export function desiredState(policy: ClusterSecurityPolicy, snapshot: Snapshot): DesiredState {
  return drain(desiredStateSteps(policy, snapshot));
}

/** desiredState in steps (see slices.ts). */
export function* desiredStateSteps(policy: ClusterSecurityPolicy, snapshot: Snapshot): Steps<DesiredState> {
  const spec = effectiveSpec(policy);
  const namespaces = yield* selectNamespacesSteps(spec, snapshot.namespaces);
  const all: Child[] = [];
  const sources = new Map<Child, string>();
  const live = { policyUid: policy.metadata.uid, objects: snapshot.networkPolicies };
  let n = 0;
  for (const namespace of namespaces) {
    const child = (kind: ChildKind, name: string, fields: Record<string, unknown>, source: string): Child => {
      const c: Child = {
        apiVersion: API_VERSIONS[kind],
        kind,
        metadata: {
          name,
          namespace,
          labels: ownershipLabels(policy.metadata.name),
          ownerReferences: [ownerReference(policy)],
        },
        ...fields,
      };
      sources.set(c, source);
      return c;
    };
    const exempt = (area: string) => areaExemptInNamespace(spec.exemptions, area, namespace, snapshot.now);
    if (spec.networkPolicies && !exempt("networkPolicies"))
      all.push(...desiredNetworkPolicies(policy.metadata.name, namespace, spec.networkPolicies, child, live));
    if (!exempt("rbac"))
      for (const role of spec.rbac?.roles ?? []) all.push(...desiredRoleObjects(role, namespace, child));
    if (++n % SLICE === 0) yield;
  }
  if (spec.auditPolicy) {
    // The rendered audit Policy, for the node agent (or a person) to place at --audit-policy-file.
    const cm = auditPolicyConfigMap(policy.metadata.name, renderAuditPolicyYaml(spec.auditPolicy));
    all.push({
      apiVersion: API_VERSIONS.ConfigMap,
      kind: "ConfigMap",
      metadata: {
        name: cm.metadata!.name!,
        namespace: cm.metadata!.namespace!,
        labels: ownershipLabels(policy.metadata.name),
        ownerReferences: [ownerReference(policy)],
      },
      data: cm.data,
    });
  }
  const duplicates = yield* duplicateChildKeysSteps(all, (c) => sources.get(c));
  const seen = new Set<string>();
  const unique: Child[] = [];
  for (const c of all) {
    const key = objectKey(c.kind, c.metadata.namespace, c.metadata.name);
    if (!seen.has(key)) {
      seen.add(key);
      unique.push(c);
    }
    if (++n % SLICE === 0) yield;
  }
  const children = yield* sortedSteps(
    unique,
    (a, b) =>
      a.kind.localeCompare(b.kind) ||
      a.metadata.namespace.localeCompare(b.metadata.namespace) ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  return { namespaces, children, invalid: duplicateMessages(duplicates) };
}
