/**
 * Read-only gathering for `render --kubeconfig` and `diff`: the same Snapshot the controller's caches
 * give, from plain LISTs and GETs (nothing is watched, nothing is written). The policy from the file
 * takes the place of the stored one of the same name, keeping its UID so ownership is judged as the
 * controller would judge it.
 */
import type {
  KubernetesObject,
  V1ClusterRole,
  V1ConfigMap,
  V1Namespace,
  V1NetworkPolicy,
  V1Pod,
  V1Role,
  V1RoleBinding,
  V1Service,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { API_VERSION, PLURAL } from "../api/v1alpha1/policy.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OPERATOR_NAMESPACE } from "../api/vocabulary.js";
import { NotFoundError, resourcePath, type RestClient } from "../cluster/rest.js";
import { settleBounded } from "../controller/bounded.js";
import { GRANTABLE_CLUSTER_ROLE } from "../controller/failures.js";
import { desiredState } from "../desired/index.js";
import { objectKey, type Snapshot } from "../cluster/snapshot.js";
import { withUid } from "./render.js";

const MANAGED = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
/** GETs in flight at once: a new policy over many namespaces must not open thousands of requests. */
const READS_IN_FLIGHT = 16;

interface List<T> {
  items: T[];
}

async function list<T extends { metadata?: unknown }>(
  rest: RestClient,
  path: string,
  apiVersion: string,
  kind: string,
  query: Record<string, string> = {},
): Promise<T[]> {
  const items: T[] = [];
  let cont = "";
  do {
    const page = await rest.request<List<T> & { metadata?: { continue?: string } }>("GET", path, {
      query: { ...query, limit: "500", ...(cont ? { continue: cont } : {}) },
    });
    // A LIST's items carry neither apiVersion nor kind.
    for (const i of page.items) items.push({ ...i, apiVersion, kind });
    cont = page.metadata?.continue ?? "";
  } while (cont);
  return items;
}

/** GET one object; undefined when it does not exist. */
export async function readObject(
  rest: RestClient,
  apiVersion: string,
  kind: string,
  namespace: string | undefined,
  name: string,
): Promise<(KubernetesObject & Record<string, unknown>) | undefined> {
  try {
    const o = await rest.request<KubernetesObject & Record<string, unknown>>(
      "GET",
      resourcePath(apiVersion, kind, namespace, name),
    );
    return { ...o, apiVersion, kind };
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
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
  rest: RestClient,
  policy: ClusterSecurityPolicy,
  now: Date,
): Promise<LiveSnapshot> {
  const rbac = "rbac.authorization.k8s.io/v1";
  const [namespaces, policies, networkPolicies, managedSAs, defaultSAs, roles, roleBindings, configMaps] =
    await Promise.all([
      list<V1Namespace>(rest, "/api/v1/namespaces", "v1", "Namespace"),
      list<ClusterSecurityPolicy>(
        rest,
        `/apis/${API_VERSION}/${PLURAL}`,
        API_VERSION,
        "ClusterSecurityPolicy",
      ),
      list<V1NetworkPolicy>(
        rest,
        "/apis/networking.k8s.io/v1/networkpolicies",
        "networking.k8s.io/v1",
        "NetworkPolicy",
        { labelSelector: MANAGED },
      ),
      list<V1ServiceAccount>(rest, "/api/v1/serviceaccounts", "v1", "ServiceAccount", {
        labelSelector: MANAGED,
      }),
      list<V1ServiceAccount>(rest, "/api/v1/serviceaccounts", "v1", "ServiceAccount", {
        fieldSelector: "metadata.name=default",
      }),
      list<V1Role>(rest, `/apis/${rbac}/roles`, rbac, "Role", { labelSelector: MANAGED }),
      list<V1RoleBinding>(rest, `/apis/${rbac}/rolebindings`, rbac, "RoleBinding", {
        labelSelector: MANAGED,
      }),
      list<V1ConfigMap>(rest, `/api/v1/namespaces/${OPERATOR_NAMESPACE}/configmaps`, "v1", "ConfigMap", {
        labelSelector: MANAGED,
      }),
    ]);
  const grantable =
    ((await readObject(rest, rbac, "ClusterRole", undefined, GRANTABLE_CLUSTER_ROLE)) as
      V1ClusterRole | undefined) ?? undefined;
  const stored = policies.find((p) => p.metadata.name === policy.metadata.name);
  const mine = withUid({
    ...policy,
    metadata: {
      ...policy.metadata,
      ...(stored?.metadata.uid ? { uid: stored.metadata.uid } : {}),
      ...(stored?.metadata.creationTimestamp ? { creationTimestamp: stored.metadata.creationTimestamp } : {}),
    },
  });
  const serviceAccounts = [...defaultSAs, ...managedSAs.filter((s) => s.metadata?.name !== "default")];
  const base: Snapshot = {
    policies: [...policies.filter((p) => p.metadata.name !== policy.metadata.name), mine],
    namespaces,
    networkPolicies,
    serviceAccounts,
    roles,
    roleBindings,
    configMaps,
    rbac: {
      // Without the live ClusterRole every Role would be judged not grantable, as the controller would.
      clusterRoles: grantable ? [grantable] : [],
      clusterRoleBindings: [],
      roles: [],
      roleBindings: [],
    },
    now,
  };
  // Occupancy: whatever sits at a desired child's name without the operator's labels.
  const held = new Set(
    [...networkPolicies, ...serviceAccounts, ...roles, ...roleBindings, ...configMaps].map((o) =>
      objectKey(o.kind!, o.metadata?.namespace, o.metadata!.name!),
    ),
  );
  const occupied = new Map<string, KubernetesObject>();
  const missing = desiredState(mine, base).children.filter(
    (c) => !held.has(objectKey(c.kind, c.metadata.namespace, c.metadata.name)),
  );
  const results = await settleBounded(missing, READS_IN_FLIGHT, (c) =>
    readObject(rest, c.apiVersion, c.kind, c.metadata.namespace, c.metadata.name),
  );
  const found = results.map((r) => {
    if (r.status === "rejected") throw r.reason;
    return r.value;
  });
  for (const o of found) if (o) occupied.set(objectKey(o.kind!, o.metadata?.namespace, o.metadata!.name!), o);
  return { snapshot: { ...base, occupied }, ...(stored ? { stored } : {}) };
}

/** What the traffic preview needs: pods, Services and every NetworkPolicy in the given namespaces. */
export async function gatherTraffic(
  rest: RestClient,
  namespaces: readonly string[],
): Promise<{ pods: V1Pod[]; services: V1Service[]; networkPolicies: V1NetworkPolicy[] }> {
  const settled = await settleBounded(namespaces, READS_IN_FLIGHT / 4, async (ns) => {
    const n = encodeURIComponent(ns);
    const [pods, services, networkPolicies] = await Promise.all([
      list<V1Pod>(rest, `/api/v1/namespaces/${n}/pods`, "v1", "Pod"),
      list<V1Service>(rest, `/api/v1/namespaces/${n}/services`, "v1", "Service"),
      list<V1NetworkPolicy>(
        rest,
        `/apis/networking.k8s.io/v1/namespaces/${n}/networkpolicies`,
        "networking.k8s.io/v1",
        "NetworkPolicy",
      ),
    ]);
    return { pods, services, networkPolicies };
  });
  const per = settled.map((r) => {
    if (r.status === "rejected") throw r.reason;
    return r.value;
  });
  return {
    pods: per.flatMap((p) => p.pods),
    services: per.flatMap((p) => p.services),
    networkPolicies: per.flatMap((p) => p.networkPolicies),
  };
}
