/**
 * A small HTTP fault proxy for tests: a plain-HTTP listener on loopback that the operator's kubeconfig
 * points at, forwarding to a real API server with the harness's admin credentials (or to any upstream),
 * and misbehaving on request: answer an error status to the first N LISTs of a resource, stall, send a
 * huge body, reset the connection, cut open watches. It counts every request by verb and path, so a test
 * can prove what a client did (e.g. how often it retried).
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { writeFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";

/** The Kubernetes verb of a request: list, watch, get, create, update, patch, delete (or the method). */
export function verbOf(method: string, path: string, query: URLSearchParams): string {
  if (method === "GET") {
    if (query.get("watch") === "true" || query.get("watch") === "1") return "watch";
    return isCollection(path) ? "list" : "get";
  }
  return { POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" }[method] ?? method.toLowerCase();
}

/** The resource (plural) a path names, e.g. networkpolicies; "" for discovery and non-resource paths. */
export function resourceOf(path: string): string {
  const parts = resourceParts(path);
  if (!parts) return "";
  return parts[0] === "namespaces" && parts.length >= 3 ? parts[2]! : parts[0]!;
}

function resourceParts(path: string): string[] | undefined {
  const segs = path.split("/").filter(Boolean);
  if (segs[0] === "api" && segs.length >= 3) return segs.slice(2);
  if (segs[0] === "apis" && segs.length >= 4) return segs.slice(3);
  return undefined;
}

function isCollection(path: string): boolean {
  const parts = resourceParts(path);
  if (!parts) return false;
  if (parts[0] === "namespaces" && parts.length >= 3) return parts.length === 3;
  return parts.length === 1;
}

export type FaultAction =
  /** Answer this status with a Kubernetes Status body (or the given body), and extra headers (Retry-After). */
  | { status: number; body?: string; headers?: Record<string, string> }
  /** Accept the request and never answer (until the proxy stops or the client gives up). */
  | { stall: true }
  /** Answer 200 with a body of this many bytes. */
  | { hugeBody: number }
  /** Destroy the client connection without an answer. */
  | { reset: true };

export interface FaultRule {
  verb?: string;
  resource?: string;
  path?: RegExp;
  action: FaultAction;
  /** Applies to the first `times` matching requests only (default: every one until removed). */
  times?: number;
}

export interface RuleHandle {
  /** Requests this rule answered. */
  readonly hits: number;
  remove(): void;
}

interface Upstream {
  url: URL;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
}

export class FaultProxy {
  private readonly rules: { rule: FaultRule; hits: number; removed: boolean }[] = [];
  private readonly counts = new Map<string, number>();
  private readonly open = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  /** The upstream response piped into each open client response. */
  private readonly upstreamOf = new Map<ServerResponse, IncomingMessage>();
  private blackholing = false;
  /** When each response silenced by silenceStreams() or the blackhole was closed by its client (ms epoch). */
  readonly silencedClosedAt: number[] = [];
  /** Every request seen, in order: `${verb} ${path}`. */
  readonly log: string[] = [];
  private forwarding = true;

  private constructor(
    private readonly server: ReturnType<typeof createServer>,
    private readonly upstream: Upstream,
  ) {}

  /** A proxy in front of the API server of an admin kubeconfig (the harness's), with its credentials. */
  static forKubeconfig(kubeconfigPath: string): Promise<FaultProxy> {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const cluster = kc.getCurrentCluster();
    const user = kc.getCurrentUser();
    if (!cluster) throw new Error(`${kubeconfigPath}: no current cluster`);
    const b64 = (v: string | undefined) => (v ? Buffer.from(v, "base64") : undefined);
    const upstream: Upstream = { url: new URL(cluster.server) };
    const ca = b64(cluster.caData);
    const cert = b64(user?.certData);
    const key = b64(user?.keyData);
    if (ca) upstream.ca = ca;
    if (cert) upstream.cert = cert;
    if (key) upstream.key = key;
    if (user?.token) upstream.token = user.token;
    return FaultProxy.start(upstream);
  }

  /** A proxy in front of any upstream (plain HTTP or HTTPS). */
  static async start(upstream: Upstream): Promise<FaultProxy> {
    const server = createServer();
    const proxy = new FaultProxy(server, upstream);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => proxy.handle(req, res));
    server.on("connection", (s) => {
      proxy.sockets.add(s);
      s.on("close", () => proxy.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  /** Writes a kubeconfig (no credentials: the proxy adds them) pointing at the proxy; returns its path. */
  writeKubeconfig(path: string): string {
    writeFileSync(
      path,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{ name: proxy, cluster: { server: '" +
          this.url +
          "', insecure-skip-tls-verify: true } }]",
        "users: [{ name: proxy, user: {} }]",
        "contexts: [{ name: proxy, context: { cluster: proxy, user: proxy } }]",
        "current-context: proxy",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    return path;
  }

  addRule(rule: FaultRule): RuleHandle {
    const entry = { rule, hits: 0, removed: false };
    this.rules.push(entry);
    return {
      get hits() {
        return entry.hits;
      },
      remove: () => {
        entry.removed = true;
      },
    };
  }

  clearRules(): void {
    for (const r of this.rules) r.removed = true;
  }

  /** Requests seen with this verb (and resource, when given). */
  count(verb: string, resource?: string): number {
    let n = 0;
    for (const [k, v] of this.counts) {
      const [kv, kr] = k.split(" ");
      if (kv === verb && (resource === undefined || kr === resource)) n += v;
    }
    return n;
  }

  /** Stop forwarding: every new request is refused at the connection (like an API server that is down). */
  set forward(on: boolean) {
    this.forwarding = on;
  }

  /**
   * Every response in flight (open watches above all) stops receiving data without being closed, like a
   * connection whose packets a NAT or firewall started dropping: the client sees silence, never an end.
   * New requests are forwarded as usual. Returns how many streams were silenced; `silencedClosedAt` records
   * when the client gave up on each (closed its side).
   */
  silenceStreams(filter: (path: string) => boolean = () => true): number {
    let n = 0;
    for (const res of this.open) {
      const up = this.upstreamOf.get(res);
      const path = (res.req as IncomingMessage | undefined)?.url ?? "";
      if (!up || !filter(path)) continue;
      up.unpipe(res);
      up.resume(); // keep draining the API server's side; the client gets nothing
      this.upstreamOf.delete(res);
      res.once("close", () => this.silencedClosedAt.push(Date.now()));
      n++;
    }
    return n;
  }

  /**
   * Blackhole: every new request is accepted and never answered, and every open stream is silenced (a
   * network partition that drops packets instead of refusing connections). Off again: new requests flow.
   */
  set blackhole(on: boolean) {
    this.blackholing = on;
    if (on) this.silenceStreams();
  }

  /**
   * Ends every open stream cleanly, as the API server does when a watch reaches its timeoutSeconds: the client
   * sees a complete response and resumes from its last resourceVersion. Returns how many were ended.
   */
  endStreams(filter: (path: string) => boolean = () => true): number {
    let n = 0;
    for (const res of [...this.open]) {
      const up = this.upstreamOf.get(res);
      const path = (res.req as IncomingMessage | undefined)?.url ?? "";
      if (!up || !filter(path) || !res.headersSent) continue;
      up.unpipe(res);
      up.destroy();
      this.upstreamOf.delete(res);
      this.open.delete(res);
      res.end();
      n++;
    }
    return n;
  }

  /** Ends every response in flight (open watches, stalled requests): clients see the connection close. */
  dropStreams(): void {
    for (const res of this.open) res.destroy();
    this.open.clear();
  }

  async stop(): Promise<void> {
    this.dropStreams();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://proxy");
    const verb = verbOf(req.method ?? "GET", url.pathname, url.searchParams);
    const resource = resourceOf(url.pathname);
    const key = `${verb} ${resource}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.log.push(`${verb} ${url.pathname}`);
    this.open.add(res);
    res.on("close", () => this.open.delete(res));
    if (!this.forwarding) {
      req.socket.destroy();
      return;
    }
    if (this.blackholing) {
      req.resume();
      res.once("close", () => this.silencedClosedAt.push(Date.now()));
      return;
    }
    const match = this.rules.find(
      (r) =>
        !r.removed &&
        (r.rule.times === undefined || r.hits < r.rule.times) &&
        (r.rule.verb === undefined || r.rule.verb === verb) &&
        (r.rule.resource === undefined || r.rule.resource === resource) &&
        (r.rule.path === undefined || r.rule.path.test(url.pathname)),
    );
    if (match) {
      match.hits++;
      const a = match.rule.action;
      if ("status" in a) {
        const body =
          a.body ??
          JSON.stringify({
            kind: "Status",
            apiVersion: "v1",
            status: "Failure",
            message: `fault proxy: ${a.status} for ${verb} ${url.pathname}`,
            code: a.status,
          });
        res.writeHead(a.status, {
          ...a.headers,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(body),
        });
        res.end(body);
      } else if ("stall" in a) {
        req.resume();
      } else if ("hugeBody" in a) {
        res.writeHead(200, { "Content-Type": "text/plain" });
        const chunk = Buffer.alloc(64 * 1024, "x");
        let left = a.hugeBody;
        const pump = () => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
              return void res.once("drain", pump);
          }
          res.end();
        };
        res.on("error", () => undefined);
        pump();
      } else {
        req.socket.destroy();
      }
      return;
    }
    this.forwardTo(req, res, url);
  }

  private forwardTo(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const up = this.upstream;
    const target = new URL(url.pathname + url.search, up.url);
    const headers = { ...req.headers, host: target.host };
    delete headers["authorization"];
    if (up.token) headers["authorization"] = `Bearer ${up.token}`;
    const opts = {
      method: req.method ?? "GET",
      headers,
      ...(up.ca ? { ca: up.ca } : {}),
      ...(up.cert ? { cert: up.cert } : {}),
      ...(up.key ? { key: up.key } : {}),
    };
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    const upstreamReq = send(target, opts, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      res.flushHeaders(); // a watch sends its headers long before its first event
      this.upstreamOf.set(res, upRes);
      upRes.pipe(res);
      res.on("close", () => {
        this.upstreamOf.delete(res);
        upRes.destroy();
      });
    });
    upstreamReq.on("error", () => res.destroy());
    res.on("close", () => upstreamReq.destroy());
    req.pipe(upstreamReq);
  }
}
