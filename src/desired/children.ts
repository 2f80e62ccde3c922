import type { KubernetesObject, V1OwnerReference } from "@kubernetes/client-node";

/** Kinds of objects a policy creates and owns entirely (labels + ownerReference). */
export type ChildKind = "NetworkPolicy" | "ServiceAccount" | "Role" | "RoleBinding" | "ConfigMap";

/**
 * A desired child object: exactly the apply configuration the operator sends with server-side apply.
 * Deterministic: no timestamps, no server-defaulted fields, sorted lists.
 */
export interface Child {
  apiVersion: string;
  kind: ChildKind;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    ownerReferences: V1OwnerReference[];
    /**
     * Set only on the repair of an existing child: the UID of the object observed, so the write lands on
     * that object or nowhere (never on a namesake created meanwhile).
     */
    uid?: string;
  };
  [field: string]: unknown;
}

/** The top-level fields of each kind that the operator owns and compares (besides its labels). */
export const OWNED_FIELDS: Record<ChildKind, readonly string[]> = {
  NetworkPolicy: ["spec"],
  ServiceAccount: ["automountServiceAccountToken"],
  Role: ["rules"],
  RoleBinding: ["roleRef", "subjects"],
  ConfigMap: ["data"],
};

export const API_VERSIONS: Record<ChildKind, string> = {
  NetworkPolicy: "networking.k8s.io/v1",
  ServiceAccount: "v1",
  Role: "rbac.authorization.k8s.io/v1",
  RoleBinding: "rbac.authorization.k8s.io/v1",
  ConfigMap: "v1",
};

/**
 * The object with its apiVersion and kind set. Objects from a LIST carry neither (only watch events do),
 * and a request path cannot be built without them: a child seen only in the informer's first list could
 * otherwise never be deleted when it is orphaned.
 */
export function withTypeMeta<T extends KubernetesObject>(kind: ChildKind, obj: T): T {
  return { ...obj, apiVersion: obj.apiVersion ?? API_VERSIONS[kind], kind: obj.kind ?? kind };
}
