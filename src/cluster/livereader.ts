/**
 * The API calls of `render --kubeconfig`, `diff` and `integrity accept`: plain paged LISTs, GETs and
 * server-side DRY RUNS (dryRun=All), nothing watched and nothing written. The operator's informers keep
 * these objects in caches; the CLI reads them once. Raw JSON (RestClient): client-node's models rename and
 * drop fields the comparisons need.
 */
import type {
  KubeConfig,
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
import { API_VERSION, PLURAL, type ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OPERATOR_NAMESPACE } from "../api/vocabulary.js";
import { NotFoundError, objectPath, resourcePath, RestClient } from "./rest.js";

/** Items per page of a LIST (the informers' LIST is one page; the CLI pages so a huge cluster stays bounded). */
export const LIST_PAGE_SIZE = 500;

/** A live object as plain JSON, with its apiVersion and kind set (a LIST's items carry neither). */
export type LiveObject = KubernetesObject & Record<string, unknown>;

/** Everything the controller's caches would hold for a snapshot, read once with LISTs (see gitops/gather.ts). */
export interface SnapshotSources {
  namespaces: V1Namespace[];
  policies: ClusterSecurityPolicy[];
  /** Labelled managed-by csp-operator, as the informers select them. */
  networkPolicies: V1NetworkPolicy[];
  managedServiceAccounts: V1ServiceAccount[];
  /** Every namespace's `default` ServiceAccount. */
  defaultServiceAccounts: V1ServiceAccount[];
  roles: V1Role[];
  roleBindings: V1RoleBinding[];
  /** Labelled ConfigMaps in the operator's namespace. */
  configMaps: V1ConfigMap[];
  /** The ClusterRole that bounds what Roles may grant, when it exists. */
  grantable?: V1ClusterRole;
}

/** What the traffic preview reads in each namespace. */
export interface NamespaceTraffic {
  pods: V1Pod[];
  services: V1Service[];
  networkPolicies: V1NetworkPolicy[];
}

const RBAC = "rbac.authorization.k8s.io/v1";
const MANAGED = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

/** Read-only access (plus dry runs) to a live cluster for the CLI. */
export class LiveReader {
  private readonly rest: RestClient;

  constructor(kcOrRest: KubeConfig | RestClient) {
    this.rest = kcOrRest instanceof RestClient ? kcOrRest : new RestClient(kcOrRest);
  }

  /** Every object of a LIST, page by page, each with its apiVersion and kind. */
  async list<T extends { metadata?: unknown }>(
    path: string,
    apiVersion: string,
    kind: string,
    query: Record<string, string> = {},
  ): Promise<T[]> {
    const items: T[] = [];
    let cont = "";
    do {
      const page = await this.rest.request<{ items?: T[] | null; metadata?: { continue?: string } }>(
        "GET",
        path,
        { query: { ...query, limit: String(LIST_PAGE_SIZE), ...(cont ? { continue: cont } : {}) } },
      );
      for (const i of page.items ?? []) items.push({ ...i, apiVersion, kind });
      cont = page.metadata?.continue ?? "";
    } while (cont);
    return items;
  }

  /** GET one object; undefined when it does not exist. */
  async read(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<LiveObject | undefined> {
    try {
      const o = await this.rest.request<LiveObject>("GET", resourcePath(apiVersion, kind, namespace, name));
      return { ...o, apiVersion, kind };
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /** A ConfigMap in the operator's namespace (a node agent's report); undefined when it does not exist. */
  async operatorConfigMap(name: string): Promise<V1ConfigMap | undefined> {
    return this.read("v1", "ConfigMap", OPERATOR_NAMESPACE, name);
  }

  /**
   * The LISTs behind a controller snapshot, in parallel: the same selections as the operator's informers,
   * plus a GET of `grantableClusterRole` (the ClusterRole that bounds what Roles may grant).
   */
  async snapshotSources(grantableClusterRole: string): Promise<SnapshotSources> {
    const [
      namespaces,
      policies,
      networkPolicies,
      managedServiceAccounts,
      defaultServiceAccounts,
      roles,
      roleBindings,
      configMaps,
      grantable,
    ] = await Promise.all([
      this.list<V1Namespace>("/api/v1/namespaces", "v1", "Namespace"),
      this.list<ClusterSecurityPolicy>(
        `/apis/${API_VERSION}/${PLURAL}`,
        API_VERSION,
        "ClusterSecurityPolicy",
      ),
      this.list<V1NetworkPolicy>(
        "/apis/networking.k8s.io/v1/networkpolicies",
        "networking.k8s.io/v1",
        "NetworkPolicy",
        { labelSelector: MANAGED },
      ),
      this.list<V1ServiceAccount>("/api/v1/serviceaccounts", "v1", "ServiceAccount", {
        labelSelector: MANAGED,
      }),
      this.list<V1ServiceAccount>("/api/v1/serviceaccounts", "v1", "ServiceAccount", {
        fieldSelector: "metadata.name=default",
      }),
      this.list<V1Role>(`/apis/${RBAC}/roles`, RBAC, "Role", { labelSelector: MANAGED }),
      this.list<V1RoleBinding>(`/apis/${RBAC}/rolebindings`, RBAC, "RoleBinding", { labelSelector: MANAGED }),
      this.list<V1ConfigMap>(`/api/v1/namespaces/${OPERATOR_NAMESPACE}/configmaps`, "v1", "ConfigMap", {
        labelSelector: MANAGED,
      }),
      this.read(RBAC, "ClusterRole", undefined, grantableClusterRole),
    ]);
    return {
      namespaces,
      policies,
      networkPolicies,
      managedServiceAccounts,
      defaultServiceAccounts,
      roles,
      roleBindings,
      configMaps,
      ...(grantable ? { grantable } : {}),
    };
  }

  /** Pods, Services and every NetworkPolicy (the operator's or not) of one namespace. */
  async namespaceTraffic(namespace: string): Promise<NamespaceTraffic> {
    const n = encodeURIComponent(namespace);
    const [pods, services, networkPolicies] = await Promise.all([
      this.list<V1Pod>(`/api/v1/namespaces/${n}/pods`, "v1", "Pod"),
      this.list<V1Service>(`/api/v1/namespaces/${n}/services`, "v1", "Service"),
      this.list<V1NetworkPolicy>(
        `/apis/networking.k8s.io/v1/namespaces/${n}/networkpolicies`,
        "networking.k8s.io/v1",
        "NetworkPolicy",
      ),
    ]);
    return { pods, services, networkPolicies };
  }

  /** What a server-side apply of `obj` under `fieldManager` would leave, without writing (dryRun=All). */
  async dryRunApply(obj: KubernetesObject, fieldManager: string): Promise<LiveObject> {
    const result = await this.rest.request<LiveObject>("PATCH", objectPath(obj), {
      query: { fieldManager, force: "true", dryRun: "All" },
      body: obj,
      contentType: "application/apply-patch+yaml",
    });
    return { ...result, apiVersion: obj.apiVersion!, kind: obj.kind! };
  }

  /** A DELETE the API server checks (RBAC, admission) and does not perform (dryRun=All). */
  async dryRunDelete(obj: KubernetesObject): Promise<void> {
    await this.rest.request("DELETE", objectPath(obj), { query: { dryRun: "All" } });
  }
}
