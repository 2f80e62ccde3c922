import { RequestContext, type KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { fetch, type Dispatcher } from "undici";

/**
 * Raw JSON requests with the KubeConfig's authentication and its shared dispatcher. client-node's typed
 * models rename fields (NetworkPolicy `from` becomes `_from`) and silently drop what they do not know, so
 * objects the operator compares or server-side applies must travel as plain JSON.
 */
export class RestClient {
  constructor(private readonly kc: KubeConfig) {}

  /** GET a non-JSON endpoint (the API server's Prometheus /metrics) as text. */
  async text(path: string): Promise<string> {
    const res = await this.send("GET", path, { accept: "text/plain" });
    const text = await res.text();
    if (!res.ok) throw new ApiError(res.status, { message: text.slice(0, 200) });
    return text;
  }

  async request<T>(
    method: string,
    path: string,
    opts: { query?: Record<string, string>; body?: unknown; contentType?: string; timeoutMs?: number } = {},
  ): Promise<T> {
    const res = await this.send(method, path, { ...opts, accept: "application/json" });
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new ApiError(res.status, parsed);
    return parsed as T;
  }

  /** One authenticated request over the KubeConfig's (shared) dispatcher. */
  private async send(
    method: string,
    path: string,
    opts: {
      accept: string;
      query?: Record<string, string>;
      body?: unknown;
      contentType?: string;
      timeoutMs?: number;
    },
  ) {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error("kubeconfig has no current cluster");
    const url = new URL(path, server);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const ctx = new RequestContext(url.toString(), method as never);
    await this.kc.applySecurityAuthentication(ctx);
    const headers: Record<string, string> = { ...ctx.getHeaders(), Accept: opts.accept };
    if (opts.body !== undefined) headers["Content-Type"] = opts.contentType ?? "application/json";
    return fetch(url, {
      method,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      ...(opts.timeoutMs !== undefined ? { signal: AbortSignal.timeout(opts.timeoutMs) } : {}),
      ...(ctx.getDispatcher() ? { dispatcher: ctx.getDispatcher() as Dispatcher } : {}),
    });
  }
}

/** An API server error; `code` is the HTTP status, `body` the Status object. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${code}: ${(body as { message?: string } | undefined)?.message ?? "request failed"}`);
  }
}

const PLURALS: Record<string, string> = {
  Namespace: "namespaces",
  ServiceAccount: "serviceaccounts",
  ConfigMap: "configmaps",
  Secret: "secrets",
  NetworkPolicy: "networkpolicies",
  Role: "roles",
  RoleBinding: "rolebindings",
  ClusterRole: "clusterroles",
  ClusterRoleBinding: "clusterrolebindings",
};

/** The REST path of a kind (all namespaces when `namespace` is undefined), optionally of one object. */
export function resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string): string {
  const plural = PLURALS[kind];
  if (!plural) throw new Error(`no REST mapping for kind ${kind}`);
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = namespace && kind !== "Namespace" ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${base}${ns}/${plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

export function objectPath(obj: KubernetesObject): string {
  return resourcePath(obj.apiVersion!, obj.kind!, obj.metadata?.namespace, obj.metadata?.name);
}
