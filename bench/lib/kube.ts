// A minimal raw-JSON Kubernetes client for the benchmark's own actors (bare client, reflex client, probe,
// observer, fault injector). Same library and connection handling as the operator: @kubernetes/client-node
// for authentication and ONE shared keep-alive undici dispatcher per identity.
import { RequestContext } from "@kubernetes/client-node";
import { fetch, type Dispatcher } from "undici";
import { loadKubeConfig } from "../../src/cluster/client.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 300)}`);
  }
}

export type Json = Record<string, unknown>;

export class Kube {
  private readonly kc;
  readonly server: string;

  constructor(kubeconfigPath: string) {
    this.kc = loadKubeConfig(kubeconfigPath);
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error(`${kubeconfigPath}: no current cluster`);
    this.server = server;
  }

  /** One request; resolves with the raw response (body unread) so watches can stream it. */
  async send(
    method: string,
    path: string,
    opts: { body?: unknown; contentType?: string; signal?: AbortSignal } = {},
  ) {
    const url = new URL(path, this.server);
    const ctx = new RequestContext(url.toString(), method as never);
    await this.kc.applySecurityAuthentication(ctx);
    const headers: Record<string, string> = { ...ctx.getHeaders(), Accept: "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = opts.contentType ?? "application/json";
    return fetch(url, {
      method,
      headers,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(ctx.getDispatcher() ? { dispatcher: ctx.getDispatcher() as Dispatcher } : {}),
    });
  }

  async json<T = Json>(
    method: string,
    path: string,
    opts: { body?: unknown; contentType?: string } = {},
  ): Promise<T> {
    const res = await this.send(method, path, opts);
    const text = await res.text();
    if (!res.ok) throw new HttpError(res.status, text);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Server-side apply with force under the given field manager. */
  apply<T = Json>(path: string, obj: unknown, fieldManager: string): Promise<T> {
    return this.json<T>("PATCH", `${path}?fieldManager=${fieldManager}&force=true`, {
      body: obj,
      contentType: "application/apply-patch+yaml",
    });
  }

  mergePatch<T = Json>(path: string, patch: unknown): Promise<T> {
    return this.json<T>("PATCH", path, { body: patch, contentType: "application/merge-patch+json" });
  }
}

/** Runs fn over items with at most `concurrency` in flight; rejects on the first failure. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}
