import { RequestContext, type KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { fetch, type Dispatcher } from "undici";

/** Without a timeout a stalled API server holds a worker for undici's 300 s; every call gets this default. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Text bodies (/metrics) are read whole into memory: bounded, so a huge answer is an error, not an OOM. */
export const DEFAULT_TEXT_MAX_BYTES = 16 * 1024 * 1024;
/** JSON bodies (objects, pages of lists, kubelet configz): a bound well above any sane page. */
export const DEFAULT_JSON_MAX_BYTES = 64 * 1024 * 1024;

export interface RequestOptions {
  query?: Record<string, string>;
  body?: unknown;
  contentType?: string;
  /** Whole request, body included; default DEFAULT_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Largest response body accepted; default DEFAULT_JSON_MAX_BYTES (DEFAULT_TEXT_MAX_BYTES for text). */
  maxBytes?: number;
  /** Accept header of a JSON request (e.g. PartialObjectMetadataList); default application/json. */
  accept?: string;
}

/** No complete response within the request's timeout. Retryable. */
export class RequestTimeoutError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly timeoutMs: number,
  ) {
    super(`${method} ${path}: no complete response within ${timeoutMs} ms`);
    this.name = "RequestTimeoutError";
  }
}

/** The response body was larger than the request accepts; it was not read further. */
export class ResponseTooLargeError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly maxBytes: number,
  ) {
    super(`${method} ${path}: response larger than ${maxBytes} bytes; not read`);
    this.name = "ResponseTooLargeError";
  }
}

/**
 * Raw JSON requests with the KubeConfig's authentication and its shared dispatcher. client-node's typed
 * models rename fields (NetworkPolicy `from` becomes `_from`) and silently drop what they do not know, so
 * objects the operator compares or server-side applies must travel as plain JSON.
 *
 * Every request has a timeout (default 30 s, body included) and a response size cap; watches do not go
 * through here (client-node's Watch has its own inactivity timeout).
 */
export class RestClient {
  private readonly defaultTimeoutMs: number;

  constructor(
    private readonly kc: KubeConfig,
    opts: { defaultTimeoutMs?: number } = {},
  ) {
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** GET a non-JSON endpoint (the API server's Prometheus /metrics) as text, at most 16 MiB by default. */
  async text(path: string, opts: { timeoutMs?: number; maxBytes?: number } = {}): Promise<string> {
    const text = await this.exchange("GET", path, {
      ...opts,
      accept: "text/plain",
      maxBytes: opts.maxBytes ?? DEFAULT_TEXT_MAX_BYTES,
    });
    if (!text.ok) throw apiError(text.status, { message: text.body.slice(0, 200) });
    return text.body;
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.exchange(method, path, { ...opts, accept: opts.accept ?? "application/json" });
    let parsed: unknown;
    try {
      parsed = res.body ? JSON.parse(res.body) : undefined;
    } catch {
      // A proxy or load balancer in front of the API server may answer in plain text.
      if (!res.ok) throw apiError(res.status, { message: res.body.slice(0, 200) });
      throw new Error(`${method} ${path}: the response is not JSON`);
    }
    if (!res.ok) throw apiError(res.status, parsed);
    return parsed as T;
  }

  /** One request, its body read within the timeout and the size cap. */
  private async exchange(
    method: string,
    path: string,
    opts: RequestOptions & { accept: string },
  ): Promise<{ ok: boolean; status: number; body: string }> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    const maxBytes = opts.maxBytes ?? DEFAULT_JSON_MAX_BYTES;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await this.send(method, path, opts, signal);
      const declared = Number(res.headers.get("content-length") ?? "NaN");
      if (declared > maxBytes) {
        await res.body?.cancel().catch(() => undefined);
        throw new ResponseTooLargeError(method, path, maxBytes);
      }
      const chunks: Uint8Array[] = [];
      let size = 0;
      if (res.body) {
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          size += value.byteLength;
          if (size > maxBytes) {
            await reader.cancel().catch(() => undefined);
            throw new ResponseTooLargeError(method, path, maxBytes);
          }
          chunks.push(value);
        }
      }
      return { ok: res.ok, status: res.status, body: Buffer.concat(chunks).toString("utf8") };
    } catch (err) {
      if (signal.aborted && !(err instanceof ResponseTooLargeError))
        throw new RequestTimeoutError(method, path, timeoutMs);
      throw err;
    }
  }

  /** One authenticated request over the KubeConfig's (shared) dispatcher. */
  private async send(
    method: string,
    path: string,
    opts: { accept: string; query?: Record<string, string>; body?: unknown; contentType?: string },
    signal: AbortSignal,
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
      signal,
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
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

/** 404: the object (or the resource) does not exist. */
export class NotFoundError extends ApiError {}
/** 409: a conflict (resourceVersion or uid precondition, an object that already exists). */
export class ConflictError extends ApiError {}
/** 403: the operator's identity may not do this. */
export class ForbiddenError extends ApiError {}
/**
 * 403 from RBAC's escalation check: a Role or binding grants permissions the operator does not hold.
 * `missing` is what the API server listed as not held.
 */
export class NotGrantableError extends ForbiddenError {
  get missing(): string {
    return NOT_GRANTABLE.exec(errorText(this.body))?.[1] ?? "";
  }
}
/** 400/422: the API server rejects the object itself (a spec the schema or admission refuses). */
export class InvalidError extends ApiError {}
/** 429: API Priority and Fairness (or a webhook) asks the client to slow down. Retryable. */
export class ThrottledError extends ApiError {}

const NOT_GRANTABLE = /attempting to grant RBAC permissions not currently held:?\s*([\s\S]*)/;

function errorText(body: unknown): string {
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === "string" ? message : "";
}

/** The typed error for an API server answer, so callers never parse codes or messages themselves. */
export function apiError(code: number, body: unknown): ApiError {
  if (code === 404) return new NotFoundError(code, body);
  if (code === 409) return new ConflictError(code, body);
  if (code === 403)
    return NOT_GRANTABLE.test(errorText(body))
      ? new NotGrantableError(code, body)
      : new ForbiddenError(code, body);
  if (code === 400 || code === 422) return new InvalidError(code, body);
  if (code === 429) return new ThrottledError(code, body);
  return new ApiError(code, body);
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
