import type {
  V1ClusterRole,
  V1ConfigMap,
  V1ClusterRoleBinding,
  V1Namespace,
  V1NetworkPolicy,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
  KubernetesObject,
} from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import type { NetworkPolicySummary } from "../findings/networkpolicies.js";

/**
 * An immutable view of the cluster, read from the informer caches by the cluster layer (ClusterCache
 * builds it: this file is the gatherer's contract, types and the object identity only, no I/O, so the
 * pure layers can import it). Everything that
 * decides (desired state, drift, findings, status) is a pure function of a policy and a Snapshot, so it is
 * unit-tested without an API server. New areas add fields here; absent fields mean "not watched".
 */
export interface Snapshot {
  readonly policies: readonly ClusterSecurityPolicy[];
  readonly namespaces: readonly V1Namespace[];
  /** NetworkPolicies labelled managed-by csp-operator. */
  readonly networkPolicies: readonly V1NetworkPolicy[];
  /** Every namespace's `default` ServiceAccount plus the ServiceAccounts the operator manages. */
  readonly serviceAccounts: readonly V1ServiceAccount[];
  /** Roles and RoleBindings the operator manages. */
  readonly roles: readonly V1Role[];
  readonly roleBindings: readonly V1RoleBinding[];
  /**
   * ConfigMaps in csp-system labelled managed-by csp-operator: children such as the rendered audit policy,
   * and the node agents' reports. Undefined when not watched.
   */
  readonly configMaps?: readonly V1ConfigMap[];
  /** All RBAC in the cluster, for findings. Undefined when RBAC auditing is not watched. */
  readonly rbac?: {
    readonly clusterRoles: readonly V1ClusterRole[];
    readonly clusterRoleBindings: readonly V1ClusterRoleBinding[];
    readonly roles: readonly V1Role[];
    readonly roleBindings: readonly V1RoleBinding[];
  };
  /**
   * Objects found by a live read at the name of a desired child that is not in the managed caches (the
   * caches only hold labelled objects): whatever is there belongs to someone else. Keyed by objectKey().
   */
  readonly occupied?: ReadonlyMap<string, KubernetesObject>;
  /**
   * The metadata (name, uid, ownerReferences, the operator's own managedFields entries) of whatever object
   * of `kind` sits at a name, from a metadata-only cache of every object of the kinds children have:
   * occupancy without a GET per child. Undefined when nothing is there (or the kind is not watched).
   */
  readonly occupant?: (
    kind: string,
    namespace: string | undefined,
    name: string,
  ) => KubernetesObject | undefined;
  /**
   * Every NetworkPolicy (the operator's or not) that opens a direction to every peer and port, summarised
   * (identity, ownerReferences, the directions): judged against the policies' default-deny. Undefined
   * when not watched.
   */
  readonly wideningNetworkPolicies?: readonly NetworkPolicySummary[];
  /**
   * The objects without the managed-by label (NetworkPolicy summaries, ServiceAccount metadata, Roles and
   * RoleBindings) whose controller ownerReference carries the policy UID `policyUid`: a child whose label
   * was stripped, or a look-alike someone pointed at the policy (drift/orphans.ts tells them apart).
   * Undefined when not watched.
   */
  readonly controlledUnlabelled?: (
    policyUid: string,
  ) => readonly { readonly kind: string; readonly object: KubernetesObject }[];
  /**
   * UID marks of objects the operator itself created (or rewrote by UID) as `policy`'s children that its
   * status.childUIDs does not remember yet (controller/ledger.ts): ownership counts them as remembered.
   */
  readonly unrememberedChildren?: (policy: ClusterSecurityPolicy) => readonly string[];
  /** The time the snapshot was taken, for expiring exemptions. */
  readonly now: Date;
}

/** `Kind/namespace/name`: the identity used to match desired objects with observed ones. */
export function objectKey(kind: string, namespace: string | undefined, name: string): string {
  return namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
}
