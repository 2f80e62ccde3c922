import { connect, type PeerCertificate } from "node:tls";
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { KubeConfig, RequestContext } from "@kubernetes/client-node";
import { fetch, type Dispatcher } from "undici";
import { INVALID_SINCE_LABEL, LAST_USED_LABEL, SA_NAME_ANNOTATION } from "../hygiene/credentials.js";
import { ApiError, RestClient } from "./rest.js";

/** Token Secrets per page of the metadata LIST. */
export const TOKEN_SECRET_PAGE = 100;
const TOKEN_ANNOTATIONS = [SA_NAME_ANNOTATION];
const TOKEN_LABELS = [LAST_USED_LABEL, INVALID_SINCE_LABEL];

/** The named keys of a label or annotation map, each value clipped to 253 characters; undefined if none. */
function pick(
  map: Record<string, string> | undefined,
  keys: readonly string[],
): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const k of keys) if (typeof map?.[k] === "string") out[k] = map[k].slice(0, 253);
  return Object.keys(out).length ? out : undefined;
}

/**
 * Small readers for the cluster hygiene areas (versions, credentials): what they need from the API and
 * the API servers' TLS endpoints, nothing else. Judgement lives in src/hygiene/ (pure).
 */
export class HygieneReader {
  readonly rest: RestClient;

  constructor(
    private readonly kc: KubeConfig,
    private readonly timeoutMs = 10_000,
  ) {
    this.rest = new RestClient(kc, { defaultTimeoutMs: timeoutMs });
  }

  /** The API server's `/version` gitVersion. */
  async apiServerVersion(): Promise<string> {
    const v = await this.rest.request<{ gitVersion?: unknown }>("GET", "/version");
    if (typeof v?.gitVersion !== "string") throw new Error("GET /version: no gitVersion in the answer");
    return v.gitVersion;
  }

  /** Every Node's kubelet version, page by page. */
  async kubeletVersions(): Promise<{ node: string; version: string }[]> {
    const out: { node: string; version: string }[] = [];
    let cont: string | undefined;
    do {
      const page = await this.rest.request<{
        items?: { metadata?: { name?: string }; status?: { nodeInfo?: { kubeletVersion?: string } } }[];
        metadata?: { continue?: string };
      }>("GET", "/api/v1/nodes", { query: { limit: "500", ...(cont ? { continue: cont } : {}) } });
      for (const n of page.items ?? [])
        if (n.metadata?.name)
          // Clipped: a Node's status is anyone's with nodes/status, and a version is never this long.
          out.push({
            node: n.metadata.name,
            version: String(n.status?.nodeInfo?.kubeletVersion ?? "").slice(0, 256),
          });
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  /** One ConfigMap's data, or undefined when it does not exist. */
  async configMapData(namespace: string, name: string): Promise<Record<string, string> | undefined> {
    try {
      const cm = await this.rest.request<{ data?: Record<string, string> }>(
        "GET",
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps/${encodeURIComponent(name)}`,
      );
      return cm.data ?? {};
    } catch (err) {
      if (err instanceof ApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  /**
   * Legacy ServiceAccount token Secrets, METADATA ONLY: the request asks for a PartialObjectMetadataList
   * and nothing else (no plain JSON fallback in Accept), so the API server either sends metadata or
   * answers 406; it never sends `data`. An answer of another kind is refused, not used.
   */
  async legacyTokenSecrets(): Promise<
    {
      namespace: string;
      name: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    }[]
  > {
    const out: {
      namespace: string;
      name: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    }[] = [];
    let cont: string | undefined;
    do {
      const query: Record<string, string> = {
        fieldSelector: "type=kubernetes.io/service-account-token",
        // Small pages: an answer holds every annotation of every Secret in it until it is slimmed.
        limit: String(TOKEN_SECRET_PAGE),
        ...(cont ? { continue: cont } : {}),
      };
      const page = await this.metadataList("/api/v1/secrets", query);
      for (const s of page.items) {
        const m = s.metadata ?? {};
        if (!m.name || !m.namespace) continue;
        // Only what a finding names is kept: other annotations can be large, and one of them
        // (kubectl's last-applied-configuration) can hold the token itself.
        const labels = pick(m.labels, TOKEN_LABELS);
        const annotations = pick(m.annotations, TOKEN_ANNOTATIONS);
        out.push({
          namespace: m.namespace,
          name: m.name,
          ...(labels ? { labels } : {}),
          ...(annotations ? { annotations } : {}),
        });
      }
      cont = page.continue;
    } while (cont);
    return out;
  }

  private async metadataList(
    path: string,
    query: Record<string, string>,
  ): Promise<{
    items: {
      metadata?: {
        name?: string;
        namespace?: string;
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
      };
    }[];
    continue: string | undefined;
  }> {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error("kubeconfig has no current cluster");
    const url = new URL(path, server);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const ctx = new RequestContext(url.toString(), "GET");
    await this.kc.applySecurityAuthentication(ctx);
    const res = await fetch(url, {
      headers: {
        ...ctx.getHeaders(),
        Accept: "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
      },
      signal: AbortSignal.timeout(this.timeoutMs),
      ...(ctx.getDispatcher() ? { dispatcher: ctx.getDispatcher() as Dispatcher } : {}),
    });
    if (!res.ok) {
      // Error bodies are Status objects (JSON), never Secret data.
      const text = (await res.text()).slice(0, 2000);
      let body: unknown = { message: text.slice(0, 200) };
      try {
        body = JSON.parse(text);
      } catch {
        /* plain text */
      }
      throw new ApiError(res.status, body);
    }
    const list = (await res.json()) as {
      kind?: string;
      items?: never[];
      metadata?: { continue?: string };
    };
    if (list.kind !== "PartialObjectMetadataList")
      throw new Error(`GET ${path}: expected a PartialObjectMetadataList, got ${String(list.kind)}`);
    return { items: list.items ?? [], continue: list.metadata?.continue || undefined };
  }

  /**
   * The endpoints behind the `kubernetes` Service (every API server), from its EndpointSlices. Empty when
   * none is published; the caller falls back to the address it talks to.
   */
  async apiServerEndpoints(): Promise<{ host: string; port: number }[]> {
    const list = await this.rest.request<{
      items?: {
        endpoints?: { addresses?: string[]; conditions?: { ready?: boolean } }[];
        ports?: { name?: string; port?: number }[];
      }[];
    }>("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", {
      query: { labelSelector: "kubernetes.io/service-name=kubernetes" },
    });
    const seen = new Map<string, { host: string; port: number }>();
    for (const slice of list.items ?? []) {
      const port = slice.ports?.find((p) => p.name === "https")?.port ?? slice.ports?.[0]?.port;
      if (!port) continue;
      for (const ep of slice.endpoints ?? [])
        for (const host of ep.addresses ?? []) seen.set(`${host}:${port}`, { host, port });
    }
    return [...seen.values()].sort((a, b) => `${a.host}:${a.port}`.localeCompare(`${b.host}:${b.port}`));
  }

  /** host:port of the API server the kubeconfig talks to. */
  configuredServer(): { host: string; port: number } | undefined {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) return undefined;
    const u = new URL(server);
    return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 443) };
  }
}

/**
 * The serving certificate an endpoint presents on the TLS handshake. Only the certificate is read: the
 * connection sends no request and closes at once, and it is not trusted for anything, so an endpoint whose
 * certificate fails verification (expired, another CA) is still inspected rather than skipped.
 */
export function servingCertificate(
  host: string,
  port: number,
  timeoutMs = 5_000,
  servername = "kubernetes.default.svc",
): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, servername, rejectUnauthorized: false, timeout: timeoutMs });
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once("secureConnect", () => {
      const peer: PeerCertificate = socket.getPeerCertificate();
      socket.end();
      socket.destroy();
      if (!peer?.raw) return reject(new Error(`${host}:${port} presented no certificate`));
      try {
        resolve(new X509Certificate(peer.raw));
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.once("timeout", () => fail(new Error(`${host}:${port}: no TLS handshake within ${timeoutMs} ms`)));
    socket.once("error", (err: Error) => fail(new Error(`${host}:${port}: ${err.message}`)));
  });
}

/**
 * A KubeConfig that talks to one API server endpoint (host:port from the `kubernetes` Service's
 * EndpointSlices) with the same credentials and CA. The certificate is checked against the configured
 * server's host name when it is a name (the endpoint is then only where to connect), else the endpoint IP.
 */
export function endpointKubeConfig(kc: KubeConfig, host: string, port: number): KubeConfig {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) throw new Error("kubeconfig has no current cluster or user");
  const configured = new URL(cluster.server).hostname.replace(/^\[|\]$/g, "");
  const tlsServerName = cluster.tlsServerName ?? (isIP(configured) ? undefined : configured);
  const out = new KubeConfig();
  out.loadFromOptions({
    clusters: [
      {
        ...cluster,
        name: "endpoint",
        server: `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`,
        ...(tlsServerName ? { tlsServerName } : {}),
      },
    ],
    users: [user],
    contexts: [{ name: "endpoint", cluster: "endpoint", user: user.name }],
    currentContext: "endpoint",
  });
  return out;
}

/**
 * Reads the /metrics of EVERY API server endpoint (the `kubernetes` Service's EndpointSlices; a load
 * balancer in front of several servers would mix their counters), one client per endpoint kept while the
 * endpoint is published; the API server the kubeconfig names when none is (or they cannot be listed).
 */
export class ApiServerMetricsReader {
  private readonly reader: HygieneReader;
  private readonly configured: RestClient;
  private readonly configuredName: string;
  private readonly clients = new Map<string, RestClient>();

  constructor(
    private readonly kc: KubeConfig,
    private readonly timeoutMs = 10_000,
  ) {
    this.reader = new HygieneReader(kc, timeoutMs);
    this.configured = new RestClient(kc, { defaultTimeoutMs: timeoutMs });
    const own = this.reader.configuredServer();
    this.configuredName = own ? `${own.host}:${own.port}` : "kube-apiserver";
  }

  /** `host:port` of every API server to read, sorted; forgets the clients of endpoints that left. */
  async servers(): Promise<string[]> {
    const found = await this.reader.apiServerEndpoints().catch(() => [] as { host: string; port: number }[]);
    if (found.length === 0) {
      this.clients.clear();
      return [this.configuredName];
    }
    const names = found.map(({ host, port }) => `${host}:${port}`);
    for (const name of [...this.clients.keys()]) if (!names.includes(name)) this.clients.delete(name);
    for (const { host, port } of found) {
      const name = `${host}:${port}`;
      if (!this.clients.has(name))
        this.clients.set(
          name,
          new RestClient(endpointKubeConfig(this.kc, host, port), { defaultTimeoutMs: this.timeoutMs }),
        );
    }
    return names;
  }

  /** The /metrics text of one server named by servers(). */
  async metrics(server: string): Promise<string> {
    const rest = server === this.configuredName ? this.configured : this.clients.get(server);
    if (!rest) throw new Error(`API server ${server} is not a known endpoint`);
    return rest.text("/metrics");
  }
}
