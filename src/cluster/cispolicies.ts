import type { V1ClusterRole, V1ClusterRoleBinding, V1Role, V1RoleBinding } from "@kubernetes/client-node";
import type { Problem } from "../cis/gather/incluster.js";
import { SecretEnvCollector, type SecretEnvScan } from "../cis/parse/podenv.js";
import type { RbacInventory } from "../findings/rbac.js";
import { errorMessage, statusCode } from "./client.js";
import { ResponseTooLargeError, type RestClient } from "./rest.js";

/**
 * Pods asked for per page of the 5.4.1 scan: a page is parsed, folded into finding data, and dropped. Small,
 * because a Pod may carry ~1.5 MiB of literal env values: a page is also cut to {@link POD_SCAN_MAX_BYTES}.
 */
export const POD_SCAN_PAGE = 50;
/**
 * Largest page of the 5.4.1 scan read, in bytes of JSON: what the scan holds at once is a small multiple of
 * it (the body, its text, the parsed page), well inside the operator's 256 MiB. A larger page is asked for
 * again with half as many pods, down to one.
 */
export const POD_SCAN_MAX_BYTES = 8 * 1024 * 1024;
/**
 * Largest single Pod read: etcd keeps objects up to ~1.5 MiB, and JSON escapes (`\u003c` for `<`) can
 * make that ~6 times larger; above this a Pod cannot be read and the scan fails.
 */
export const POD_SCAN_ONE_POD_MAX_BYTES = 16 * 1024 * 1024;

/** One page of a LIST, as {@link scanPages} reads it. */
export interface ListPage<T> {
  metadata?: { continue?: string };
  items?: T[];
}

/**
 * Every item of a paged LIST, page by page, each handed to `each` and not kept; `read` asks for one page
 * (`limit` items from `cont`, at most `maxBytes` of body). A page over its byte cap
 * ({@link ResponseTooLargeError}) is asked for again from the same continue token with half the limit, down
 * to one item (whose cap is `onePodMaxBytes`); after a page that fits, the limit doubles back towards
 * `first`. Any other error, or one item over its cap, ends the scan with that error.
 */
export async function scanPages<T>(
  read: (limit: number, cont: string | undefined, maxBytes: number) => Promise<ListPage<T>>,
  each: (item: T) => void,
  opts: { first: number; maxBytes: number; onePodMaxBytes: number },
): Promise<void> {
  let cont: string | undefined;
  let limit = Math.max(1, opts.first);
  for (;;) {
    let page: ListPage<T>;
    try {
      page = await read(
        limit,
        cont,
        limit === 1 ? Math.max(opts.maxBytes, opts.onePodMaxBytes) : opts.maxBytes,
      );
    } catch (err) {
      if (!(err instanceof ResponseTooLargeError) || limit === 1) throw err;
      limit = Math.max(1, Math.floor(limit / 2));
      continue;
    }
    for (const item of page.items ?? []) each(item);
    cont = page.metadata?.continue;
    if (!cont) return;
    limit = Math.min(Math.max(1, opts.first), limit * 2);
  }
}

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
  /** The last scan, successful or not: a failed one is not retried before `podScanReuseMs` either. */
  private lastSecretEnv: { at: number; value: SecretEnvScan } | { at: number; error: unknown } | undefined;

  constructor(
    private readonly rest: RestClient,
    /** How long one scan of every Pod serves later calls (0: scan every time). */
    private readonly podScanReuseMs = 0,
    /** Pods asked for per page of that scan. */
    private readonly podScanPage = POD_SCAN_PAGE,
    /** Largest page of that scan, in bytes. */
    private readonly podScanMaxBytes = POD_SCAN_MAX_BYTES,
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
   * and dropped. Pages are small ({@link POD_SCAN_PAGE} pods, {@link POD_SCAN_MAX_BYTES}) and shrink when a
   * page is larger (see {@link scanPages}), so Pods with huge literal env values cost time, not memory.
   * Read at most once per `podScanReuseMs`, a failed scan too (its error is thrown again until then): a
   * scan that fails would otherwise be retried on every reconcile. Throws when a page cannot be read: a
   * partial scan would pass workloads it never saw.
   */
  async secretEnvironment(now = Date.now()): Promise<SecretEnvScan> {
    const last = this.lastSecretEnv;
    if (last && now - last.at < this.podScanReuseMs) {
      if ("error" in last) throw last.error;
      return last.value;
    }
    const collector = new SecretEnvCollector();
    try {
      await scanPages<unknown>(
        (limit, cont, maxBytes) =>
          this.rest.request<ListPage<unknown>>("GET", "/api/v1/pods", {
            query: { limit: String(limit), ...(cont ? { continue: cont } : {}) },
            timeoutMs: 60_000,
            maxBytes,
          }),
        (pod) => collector.add(pod),
        {
          first: this.podScanPage,
          maxBytes: this.podScanMaxBytes,
          onePodMaxBytes: POD_SCAN_ONE_POD_MAX_BYTES,
        },
      );
    } catch (error) {
      this.lastSecretEnv = { at: now, error };
      throw error;
    }
    const value = collector.result();
    this.lastSecretEnv = { at: now, value };
    return value;
  }
}
