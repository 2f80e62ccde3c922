import type { KubernetesObject, V1ServiceAccount } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { OWNED_FIELDS, type Child, type ChildKind } from "../desired/children.js";
import { FIELD_MANAGER, isOwnedBy, POLICY_LABEL } from "../desired/metadata.js";
import { wantedNamespaceLabels, type SharedNamespaceState } from "../desired/namespacestate.js";
import { effectiveSpec } from "../desired/spec.js";
import { areaExemptInNamespace } from "../findings/exemptions.js";
import { objectKey, type Snapshot } from "../snapshot.js";
import { lastOtherManager } from "./managedfields.js";
import { diffPaths, normalizeField } from "./normalize.js";

/** Named drift reasons; the same words appear in status, conditions, events and logs. */
export type DriftReason = "Missing" | "Modified" | "Unowned" | "Conflict" | "Orphaned";

/** The policy area a drift belongs to; each maps to a per-area condition. */
export type Area =
  "networkPolicies" | "podSecurity" | "serviceAccounts" | "rbac" | "auditPolicy" | "encryption";

export interface Drift {
  kind: string;
  namespace?: string;
  name: string;
  reason: DriftReason;
  area: Area;
  fields?: string[];
  manager?: string;
  message: string;
  /** What Enforce mode does about it; absent when nothing may be done (Unowned, Conflict). */
  repair?: { action: "apply"; object: Child } | { action: "delete"; object: KubernetesObject };
}

export function areaOf(kind: ChildKind, name?: string): Area {
  if (kind === "NetworkPolicy") return "networkPolicies";
  if (kind === "ConfigMap") return name?.endsWith("-audit-policy") ? "auditPolicy" : "encryption";
  return "rbac";
}

type Observed = KubernetesObject & Record<string, unknown>;

/** Every labelled child in the snapshot, keyed by Kind/namespace/name. */
function managedIndex(snapshot: Snapshot): Map<string, Observed> {
  const index = new Map<string, Observed>();
  const add = (kind: string, objs: readonly KubernetesObject[]) => {
    for (const o of objs) {
      if (!o.metadata?.labels?.[POLICY_LABEL] || !o.metadata.name) continue;
      index.set(objectKey(kind, o.metadata.namespace, o.metadata.name), o as Observed);
    }
  };
  add("NetworkPolicy", snapshot.networkPolicies);
  add("ServiceAccount", snapshot.serviceAccounts);
  add("Role", snapshot.roles);
  add("RoleBinding", snapshot.roleBindings);
  add("ConfigMap", snapshot.configMaps ?? []);
  return index;
}

/** Compares the fields the operator owns; returns the differing paths (empty when equal). */
export function ownedFieldDiff(desired: Child, observed: Record<string, unknown>): string[] {
  const paths: string[] = [];
  for (const field of OWNED_FIELDS[desired.kind]) {
    const want = normalizeField(desired.kind, field, desired[field]);
    const have = normalizeField(desired.kind, field, observed[field]);
    paths.push(...diffPaths(want, have, field));
  }
  const labels = (observed["metadata"] as { labels?: Record<string, string> } | undefined)?.labels ?? {};
  for (const [k, v] of Object.entries(desired.metadata.labels))
    if (labels[k] !== v) paths.push(`metadata.labels.${k}`);
  return paths;
}

/**
 * Drift of the children a policy owns: each desired child is Missing, Modified, owned by another policy
 * (Conflict) or occupied by an object the operator did not create (Unowned, never touched); each labelled
 * child the policy no longer wants is Orphaned.
 */
export function childDrift(
  policy: ClusterSecurityPolicy,
  desired: readonly Child[],
  snapshot: Snapshot,
): Drift[] {
  const index = managedIndex(snapshot);
  const wanted = new Set<string>();
  const out: Drift[] = [];
  for (const d of desired) {
    const { namespace, name } = d.metadata;
    const key = objectKey(d.kind, namespace, name);
    wanted.add(key);
    const at = { kind: d.kind, namespace, name, area: areaOf(d.kind, name) };
    const observed = index.get(key);
    if (observed && !isOwnedBy(observed.metadata?.labels, policy.metadata.name)) {
      const other = observed.metadata?.labels?.[POLICY_LABEL] ?? "?";
      out.push({
        ...at,
        reason: "Conflict",
        message: `${d.kind} ${namespace}/${name} is managed by policy ${other}`,
      });
      continue;
    }
    if (observed) {
      const fields = ownedFieldDiff(d, observed);
      if (fields.length > 0) {
        const manager = lastOtherManager(observed, FIELD_MANAGER, OWNED_FIELDS[d.kind]);
        out.push({
          ...at,
          reason: "Modified",
          fields,
          ...(manager ? { manager } : {}),
          message: `${fields.join(", ")} differ from the policy${manager ? ` (changed by ${manager})` : ""}`,
          repair: { action: "apply", object: d },
        });
      }
      continue;
    }
    const occupant = snapshot.occupied?.get(key) as Observed | undefined;
    if (occupant) {
      const ours = occupant.metadata?.ownerReferences?.some((r) => r.uid && r.uid === policy.metadata.uid);
      if (ours) {
        out.push({
          ...at,
          reason: "Modified",
          fields: ["metadata.labels"],
          message: "the operator's labels were removed",
          repair: { action: "apply", object: d },
        });
      } else {
        out.push({
          ...at,
          reason: "Unowned",
          message: `${d.kind} ${namespace}/${name} exists and was not created by csp-operator; left untouched`,
        });
      }
      continue;
    }
    out.push({
      ...at,
      reason: "Missing",
      message: `${d.kind} ${namespace}/${name} does not exist`,
      repair: { action: "apply", object: d },
    });
  }
  for (const [key, observed] of index) {
    if (wanted.has(key) || !isOwnedBy(observed.metadata?.labels, policy.metadata.name)) continue;
    const kind = key.split("/")[0] as ChildKind;
    out.push({
      kind,
      ...(observed.metadata?.namespace ? { namespace: observed.metadata.namespace } : {}),
      name: observed.metadata!.name!,
      area: areaOf(kind, observed.metadata?.name),
      reason: "Orphaned",
      message: "no longer wanted by the policy",
      repair: { action: "delete", object: observed },
    });
  }
  return out;
}

/**
 * Drift of what a policy wants on shared objects (namespace Pod Security labels, the default
 * ServiceAccount's token automount), seen from this policy. Repairs of shared objects are computed for all
 * policies at once by sharedWrites(); here a value another policy won is a Conflict, reported on both sides.
 */
export function sharedDrift(
  policy: ClusterSecurityPolicy,
  namespaces: readonly string[],
  snapshot: Snapshot,
  states: ReadonlyMap<string, SharedNamespaceState>,
): Drift[] {
  const spec = effectiveSpec(policy);
  const self = policy.metadata.name;
  const wanted = wantedNamespaceLabels(policy);
  const byName = new Map(snapshot.namespaces.map((n) => [n.metadata?.name ?? "", n]));
  const out: Drift[] = [];
  for (const ns of namespaces) {
    const observedNs = byName.get(ns);
    const labels = observedNs?.metadata?.labels ?? {};
    const state = states.get(ns);
    const exempt = (area: string) => areaExemptInNamespace(spec.exemptions, area, ns, snapshot.now);
    const wantedHere = exempt("podSecurity") ? {} : wanted;
    for (const [key, value] of Object.entries(wantedHere).sort(([a], [b]) => a.localeCompare(b))) {
      const at = {
        kind: "Namespace",
        name: ns,
        area: "podSecurity" as const,
        fields: [`metadata.labels.${key}`],
      };
      const others = (state?.wants[key] ?? []).filter((w) => w.policy !== self && w.value !== value);
      const winner = state?.labels[key];
      if (others.length > 0) {
        const who = others.map((w) => `${w.policy} wants ${w.value}`).join(", ");
        const outcome =
          winner === value ? `${value} applies` : `${winner ?? labels[key] ?? "nothing"} applies`;
        out.push({
          ...at,
          reason: "Conflict",
          message: `${key}: this policy wants ${value}; ${who}; ${outcome}`,
        });
        continue;
      }
      if (labels[key] === value) continue;
      const manager = lastOtherManager(observedNs, FIELD_MANAGER, [`metadata.labels.${key}`]);
      out.push({
        ...at,
        reason: labels[key] === undefined ? "Missing" : "Modified",
        ...(manager ? { manager } : {}),
        message: `${key} is ${labels[key] ?? "unset"}, want ${value}`,
      });
    }
    if (spec.serviceAccounts?.automountDefaultToken === false && !exempt("serviceAccounts")) {
      const sa = snapshot.serviceAccounts.find(
        (s) => s.metadata?.namespace === ns && s.metadata.name === "default",
      );
      const at = { kind: "ServiceAccount", namespace: ns, name: "default", area: "serviceAccounts" as const };
      if (!sa)
        out.push({ ...at, reason: "Missing", message: "the default ServiceAccount does not exist yet" });
      else if (sa.automountServiceAccountToken !== false) {
        const manager = lastOtherManager(sa, FIELD_MANAGER, ["automountServiceAccountToken"]);
        out.push({
          ...at,
          reason: "Modified",
          fields: ["automountServiceAccountToken"],
          ...(manager ? { manager } : {}),
          message: `automountServiceAccountToken is ${String(sa.automountServiceAccountToken ?? "unset (true)")}, want false`,
        });
      }
    }
  }
  return out;
}

/** Helper for tests and the gatherer: the default ServiceAccount of a namespace in the snapshot. */
export function defaultServiceAccount(snapshot: Snapshot, namespace: string): V1ServiceAccount | undefined {
  return snapshot.serviceAccounts.find(
    (s) => s.metadata?.namespace === namespace && s.metadata.name === "default",
  );
}
