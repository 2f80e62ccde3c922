/**
 * Read-only gathering for `render --kubeconfig` and `diff`: the same Snapshot the controller's caches
 * give, from the LISTs and GETs of cluster/livereader.ts (nothing is watched, nothing is written); what is
 * made of them is pure (liveBase, unheldChildren). The policy from the file
 * takes the place of the stored one of the same name, keeping its UID so ownership is judged as the
 * controller would judge it.
 */
import type { KubernetesObject, V1Pod, V1Service, V1NetworkPolicy } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import type { LiveReader, SnapshotSources } from "../cluster/livereader.js";
import { settleBounded } from "../controller/bounded.js";
import { GRANTABLE_CLUSTER_ROLE } from "../controller/failures.js";
import { desiredState } from "../desired/index.js";
import { objectKey, type Snapshot } from "../cluster/snapshot.js";
import { withUid } from "./render.js";

/** GETs in flight at once: a new policy over many namespaces must not open thousands of requests. */
const READS_IN_FLIGHT = 16;

/** The values of settled calls; the first rejection is thrown (after every call has settled). */
function valuesOf<R>(settled: PromiseSettledResult<R>[]): R[] {
  return settled.map((r) => {
    if (r.status === "rejected") throw r.reason;
    return r.value;
  });
}

/** What a live gather found, besides the snapshot: the stored policy, if any. */
export interface LiveSnapshot {
  snapshot: Snapshot;
  /** The stored policy of that name, when the cluster has one. */
  stored?: ClusterSecurityPolicy;
}

/**
 * The controller's view of the cluster with `policy` (from a file) in place of the stored one. Reads:
 * namespaces, policies, the operator's labelled children, every default ServiceAccount, the grantable
 * ClusterRole, and a GET at the name of each desired child the labelled lists do not hold (occupancy).
 */
export async function gatherLive(
  reader: LiveReader,
  policy: ClusterSecurityPolicy,
  now: Date,
): Promise<LiveSnapshot> {
  const { base, mine, stored } = liveBase(await reader.snapshotSources(GRANTABLE_CLUSTER_ROLE), policy, now);
  // Occupancy: whatever sits at a desired child's name without the operator's labels.
  const missing = unheldChildren(mine, base);
  const found = valuesOf(
    await settleBounded(missing, READS_IN_FLIGHT, (c) =>
      reader.read(c.apiVersion, c.kind, c.metadata.namespace, c.metadata.name),
    ),
  );
  const occupied = new Map<string, KubernetesObject>();
  for (const o of found) if (o) occupied.set(objectKey(o.kind!, o.metadata?.namespace, o.metadata!.name!), o);
  return { snapshot: { ...base, occupied }, ...(stored ? { stored } : {}) };
}

/**
 * PURE: the snapshot the caches would give from the LISTs, with `policy` (from a file) in place of the
 * stored one of that name (keeping its UID and creation time), before occupancy is known.
 */
export function liveBase(
  sources: SnapshotSources,
  policy: ClusterSecurityPolicy,
  now: Date,
): { base: Snapshot; mine: ClusterSecurityPolicy; stored?: ClusterSecurityPolicy } {
  const stored = sources.policies.find((p) => p.metadata.name === policy.metadata.name);
  const mine = withUid({
    ...policy,
    metadata: {
      ...policy.metadata,
      ...(stored?.metadata.uid ? { uid: stored.metadata.uid } : {}),
      ...(stored?.metadata.creationTimestamp ? { creationTimestamp: stored.metadata.creationTimestamp } : {}),
    },
  });
  const serviceAccounts = [
    ...sources.defaultServiceAccounts,
    ...sources.managedServiceAccounts.filter((s) => s.metadata?.name !== "default"),
  ];
  const base: Snapshot = {
    policies: [...sources.policies.filter((p) => p.metadata.name !== policy.metadata.name), mine],
    namespaces: sources.namespaces,
    networkPolicies: sources.networkPolicies,
    serviceAccounts,
    roles: sources.roles,
    roleBindings: sources.roleBindings,
    configMaps: sources.configMaps,
    rbac: {
      // Without the live ClusterRole every Role would be judged not grantable, as the controller would.
      clusterRoles: sources.grantable ? [sources.grantable] : [],
      clusterRoleBindings: [],
      roles: [],
      roleBindings: [],
    },
    now,
  };
  return { base, mine, ...(stored ? { stored } : {}) };
}

/** PURE: the desired children of `policy` that no labelled list holds: their names must be read (occupancy). */
export function unheldChildren(policy: ClusterSecurityPolicy, base: Snapshot) {
  const held = new Set(
    [
      ...base.networkPolicies,
      ...base.serviceAccounts,
      ...base.roles,
      ...base.roleBindings,
      ...(base.configMaps ?? []),
    ].map((o) => objectKey(o.kind!, o.metadata?.namespace, o.metadata!.name!)),
  );
  return desiredState(policy, base).children.filter(
    (c) => !held.has(objectKey(c.kind, c.metadata.namespace, c.metadata.name)),
  );
}

/** What the traffic preview needs: pods, Services and every NetworkPolicy in the given namespaces. */
export async function gatherTraffic(
  reader: LiveReader,
  namespaces: readonly string[],
): Promise<{ pods: V1Pod[]; services: V1Service[]; networkPolicies: V1NetworkPolicy[] }> {
  const per = valuesOf(
    await settleBounded(namespaces, READS_IN_FLIGHT / 4, (ns) => reader.namespaceTraffic(ns)),
  );
  return {
    pods: per.flatMap((p) => p.pods),
    services: per.flatMap((p) => p.services),
    networkPolicies: per.flatMap((p) => p.networkPolicies),
  };
}
