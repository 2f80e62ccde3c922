import type { V1ClusterRole, V1ClusterRoleBinding, V1Role, V1RoleBinding } from "@kubernetes/client-node";
import type { Problem } from "../cis/gather/incluster.js";
import { SecretEnvCollector, type SecretEnvScan } from "../cis/parse/podenv.js";
import type { RbacInventory } from "../findings/rbac.js";
import { errorMessage, statusCode } from "./client.js";
import type { RestClient } from "./rest.js";

/** Pods per page of the 5.4.1 scan: a page is parsed, folded into finding data, and dropped. */
export const POD_SCAN_PAGE = 250;

/** A read that failed, as the checks report it: Forbidden names the permission missing. */
export function problemOf(err: unknown, what: string, permission: string): Problem {
  const code = statusCode(err);
  if (code === 403) {
    return { reason: "Forbidden", message: `${what}: forbidden (the operator needs ${permission})` };
  }
  return { reason: "ReadFailed", message: `${what}: ${errorMessage(err)}` };
}

/** What the CIS 5.x checks read from the API beyond the operator's caches; see {@link PolicyObjectReader}. */
export interface PolicyObjects {
  networkPolicyNamespaces?: Set<string>;
  defaultNamespaceObjects?: string[];
  secretEnv?: SecretEnvScan;
  missing: { networkPolicyNamespaces?: string; defaultNamespaceObjects?: string; secretEnv?: string };
}

/** Every item of a collection, page by page, each handed to `each` and not kept. */
async function listAll<T>(
  rest: RestClient,
  path: string,
  each: (item: T) => void,
  pageSize = 500,
): Promise<void> {
  let cont: string | undefined;
  do {
    const page = await rest.request<{ metadata?: { continue?: string }; items?: T[] }>("GET", path, {
      query: { limit: String(pageSize), ...(cont ? { continue: cont } : {}) },
      timeoutMs: 60_000,
    });
    for (const item of page.items ?? []) each(item);
    cont = page.metadata?.continue;
  } while (cont);
}

/**
 * The reads of the CIS 5.x checks (src/cis/checks/policies.ts): the operator's controlPlane area uses them
 * next to its caches, and `csp-operator check --kubeconfig` uses them with nothing else. Read-only: LISTs.
 */
export class PolicyObjectReader {
  private lastSecretEnv: { at: number; value: SecretEnvScan } | undefined;

  constructor(
    private readonly rest: RestClient,
    /** How long one scan of every Pod serves later calls (0: scan every time). */
    private readonly podScanReuseMs = 0,
    /** Pods per page of that scan. */
    private readonly podScanPage = POD_SCAN_PAGE,
  ) {}

  /** Every namespace's name and labels (5.2.x, 5.3.2). */
  async namespaces(): Promise<{ name: string; labels: Record<string, string> }[]> {
    const out: { name: string; labels: Record<string, string> }[] = [];
    await listAll<{ metadata?: { name?: string; labels?: Record<string, string> } }>(
      this.rest,
      "/api/v1/namespaces",
      (n) => out.push({ name: n.metadata?.name ?? "", labels: n.metadata?.labels ?? {} }),
    );
    return out;
  }

  /** Every Role, ClusterRole and binding (5.1.x through the RBAC findings). */
  async rbacInventory(): Promise<RbacInventory> {
    const rbac = "/apis/rbac.authorization.k8s.io/v1";
    const all = async <T>(resource: string) => {
      const items: T[] = [];
      await listAll<T>(this.rest, `${rbac}/${resource}`, (i) => items.push(i));
      return items;
    };
    return {
      clusterRoles: await all<V1ClusterRole>("clusterroles"),
      roles: await all<V1Role>("roles"),
      clusterRoleBindings: await all<V1ClusterRoleBinding>("clusterrolebindings"),
      roleBindings: await all<V1RoleBinding>("rolebindings"),
    };
  }

  /**
   * What the 5.x checks need beyond the caches: the namespaces holding any NetworkPolicy (a paged list of
   * all of them, not only the operator's) and the user objects in `default` (pods and services other than
   * `kubernetes`). A read that fails leaves its input out, with the reason.
   */
  async policyObjects(opts: { secretEnv?: boolean } = {}): Promise<PolicyObjects> {
    type Named = { metadata?: { name?: string; namespace?: string; continue?: string }; items?: Named[] };
    const missing: {
      networkPolicyNamespaces?: string;
      defaultNamespaceObjects?: string;
      secretEnv?: string;
    } = {};
    let secretEnv: SecretEnvScan | undefined;
    if (opts.secretEnv === true) {
      try {
        secretEnv = await this.secretEnvironment();
      } catch (err) {
        missing.secretEnv = problemOf(err, "listing pods in every namespace", "list on pods").message;
      }
    }
    let networkPolicyNamespaces: Set<string> | undefined = new Set<string>();
    try {
      const found = networkPolicyNamespaces;
      await listAll<Named>(this.rest, "/apis/networking.k8s.io/v1/networkpolicies", (np) => {
        if (np.metadata?.namespace) found.add(np.metadata.namespace);
      });
    } catch (err) {
      networkPolicyNamespaces = undefined;
      missing.networkPolicyNamespaces = problemOf(
        err,
        "listing NetworkPolicies",
        "list on networkpolicies",
      ).message;
    }
    let defaultNamespaceObjects: string[] | undefined = [];
    try {
      for (const [kind, path] of [
        ["Pod", "/api/v1/namespaces/default/pods"],
        ["Service", "/api/v1/namespaces/default/services"],
      ] as const) {
        const list = await this.rest.request<Named>("GET", path, {
          query: { limit: "100" },
          timeoutMs: 30_000,
        });
        for (const o of list.items ?? []) {
          const name = o.metadata?.name ?? "?";
          if (kind === "Service" && name === "kubernetes") continue;
          defaultNamespaceObjects.push(`${kind}/${name}`);
        }
      }
    } catch (err) {
      defaultNamespaceObjects = undefined;
      missing.defaultNamespaceObjects = problemOf(
        err,
        "listing pods and services in default",
        "list on pods and services in default",
      ).message;
    }
    return {
      ...(networkPolicyNamespaces ? { networkPolicyNamespaces } : {}),
      ...(defaultNamespaceObjects ? { defaultNamespaceObjects } : {}),
      ...(secretEnv ? { secretEnv } : {}),
      missing,
    };
  }

  /**
   * CIS 5.4.1: which workloads take a Secret into a container's environment. A paged LIST of every Pod
   * (never a watch: the env is not a field a selector or a metadata-only list can show, and caching every
   * Pod spec would hold every literal env value in memory); each page is folded into the finding data
   * and dropped. Read at most once per `podScanReuseMs`. Throws when a page cannot be read: a partial
   * scan would pass workloads it never saw.
   */
  async secretEnvironment(now = Date.now()): Promise<SecretEnvScan> {
    if (this.lastSecretEnv && now - this.lastSecretEnv.at < this.podScanReuseMs)
      return this.lastSecretEnv.value;
    const collector = new SecretEnvCollector();
    await listAll<unknown>(this.rest, "/api/v1/pods", (pod) => collector.add(pod), this.podScanPage);
    const value = collector.result();
    this.lastSecretEnv = { at: now, value };
    return value;
  }
}
