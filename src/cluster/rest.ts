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
 * through here (client-node's Watch has its own inactivity timeout). A 429 is retried (see withRetry).
 */
export class RestClient {
  private readonly defaultTimeoutMs: number;
  private readonly retry: RetryPolicy;

  constructor(
    private readonly kc: KubeConfig,
    opts: { defaultTimeoutMs?: number; retry?: RetryPolicy } = {},
  ) {
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retry = opts.retry ?? DEFAULT_RETRY;
  }

  /** GET a non-JSON endpoint (the API server's Prometheus /metrics) as text, at most 16 MiB by default. */
  async text(path: string, opts: { timeoutMs?: number; maxBytes?: number } = {}): Promise<string> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    return withRetry(
      "GET",
      async (remainingMs) => {
        const text = await this.exchange("GET", path, {
          ...opts,
          timeoutMs: remainingMs,
          accept: "text/plain",
          maxBytes: opts.maxBytes ?? DEFAULT_TEXT_MAX_BYTES,
        });
        if (!text.ok) throw apiError(text.status, { message: text.body.slice(0, 200) }, text.retryAfter);
        return text.body;
      },
      this.retry,
      timeoutMs,
    );
  }

  /**
   * One API request, JSON in and out. A 429 (and a 5xx naming a Retry-After, except for a POST) is retried
   * as client-go does, within `retry` (see retryDelay) and within the request's timeout, which bounds the
   * tries and the waits together; any other failure is the caller's.
   */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
    return withRetry(
      method,
      (remainingMs) => this.requestOnce<T>(method, path, { ...opts, timeoutMs: remainingMs }),
      this.retry,
      timeoutMs,
    );
  }

  private async requestOnce<T>(method: string, path: string, opts: RequestOptions): Promise<T> {
    const res = await this.exchange(method, path, { ...opts, accept: opts.accept ?? "application/json" });
    let parsed: unknown;
    try {
      parsed = res.body ? JSON.parse(res.body) : undefined;
    } catch {
      // A proxy or load balancer in front of the API server may answer in plain text (APF's 429 does).
      if (!res.ok) throw apiError(res.status, { message: res.body.slice(0, 200) }, res.retryAfter);
      throw new Error(`${method} ${path}: the response is not JSON`);
    }
    if (!res.ok) throw apiError(res.status, parsed, res.retryAfter);
    return parsed as T;
  }

  /** One request, its body read within the timeout and the size cap. */
  private async exchange(
    method: string,
    path: string,
    opts: RequestOptions & { accept: string },
  ): Promise<{ ok: boolean; status: number; body: string; retryAfter?: string }> {
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
      const retryAfter = res.headers.get("retry-after") ?? undefined;
      return {
        ok: res.ok,
        status: res.status,
        body: Buffer.concat(chunks).toString("utf8"),
        ...(retryAfter !== undefined ? { retryAfter } : {}),
      };
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

/** An API server error; `code` is the HTTP status, `body` the Status object, `retryAfter` its header. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly body: unknown,
    readonly retryAfter?: string,
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
export function apiError(code: number, body: unknown, retryAfter?: string): ApiError {
  if (code === 404) return new NotFoundError(code, body, retryAfter);
  if (code === 409) return new ConflictError(code, body, retryAfter);
  if (code === 403)
    return NOT_GRANTABLE.test(errorText(body))
      ? new NotGrantableError(code, body, retryAfter)
      : new ForbiddenError(code, body, retryAfter);
  if (code === 400 || code === 422) return new InvalidError(code, body, retryAfter);
  if (code === 429) return new ThrottledError(code, body, retryAfter);
  return new ApiError(code, body, retryAfter);
}

// ---------------------------------------------------------------------------------------------------------
// Retrying what the API server asks to be retried (client-go's rest client: up to 10 tries, Retry-After).

/** How answers that ask the client to come back later are retried. */
export interface RetryPolicy {
  /** Tries in all, the first one included (client-go: 10). */
  maxAttempts: number;
  /** Longest single wait: a longer Retry-After (APF names up to 32 s) is cut to it, jittered below it. */
  maxWaitMs: number;
  /** Wait after the first failure when the answer names none (a webhook's 429); doubles per try. */
  baseWaitMs: number;
  sleep(ms: number): Promise<void>;
  /** Monotonic milliseconds, to keep the tries within a time budget. */
  now(): number;
  /** In [0, 1): spreads the retries of many requests rejected at the same moment. */
  random(): number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 10,
  maxWaitMs: 5_000,
  baseWaitMs: 500,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: () => performance.now(),
  random: Math.random,
};

/** No retries at all (tests that count single requests, callers with their own loop). */
export const NO_RETRY: RetryPolicy = { ...DEFAULT_RETRY, maxAttempts: 1 };

/**
 * Retry-After as milliseconds: delta-seconds or an HTTP date (relative to `nowMs`); undefined when absent or
 * unreadable (then the policy's own exponential wait applies).
 */
export function parseRetryAfter(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,9}$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * Pure: how long to wait before trying again after try number `attempt` (1-based) failed with `status`,
 * or undefined to give up (the caller gets the error).
 *
 * - 429 is always retried, whatever the method: the server did not process the request (API Priority and
 *   Fairness rejects before any handler runs; a webhook's 429 is before the write).
 * - A 5xx with a Retry-After (a server shutting down, etcd overloaded) is retried for every method but POST:
 *   GET is a read, PUT carries the resourceVersion it read, server-side apply and merge patches are
 *   idempotent, DELETE carries a uid precondition; a repeated POST could create twice.
 * - Anything else (timeouts, resets, 4xx, a 5xx without Retry-After) is not retried here: the caller's
 *   backoff (the workqueue's, the informer's) owns it.
 *
 * The wait is Retry-After but never under baseWaitMs (a `Retry-After: 0` or an HTTP date in the past would
 * otherwise retry at once, ten tries in a burst), else baseWaitMs doubling per try; at most maxWaitMs, plus
 * up to 25 % jitter; a wait that would pass maxWaitMs is drawn in [0.8, 1] x maxWaitMs instead.
 */
export function retryDelay(
  policy: Pick<RetryPolicy, "maxAttempts" | "maxWaitMs" | "baseWaitMs" | "random">,
  attempt: number,
  method: string,
  status: number | undefined,
  retryAfterMs: number | undefined,
): number | undefined {
  if (attempt >= policy.maxAttempts || status === undefined) return undefined;
  const retryable =
    status === 429 ||
    (status >= 500 && status <= 599 && retryAfterMs !== undefined && method.toUpperCase() !== "POST");
  if (!retryable) return undefined;
  const wanted =
    retryAfterMs !== undefined
      ? Math.max(retryAfterMs, policy.baseWaitMs)
      : policy.baseWaitMs * 2 ** Math.min(attempt - 1, 20);
  const target = Math.min(policy.maxWaitMs, wanted);
  const jittered = target * (1 + 0.25 * policy.random());
  return Math.round(
    jittered > policy.maxWaitMs ? policy.maxWaitMs * (0.8 + 0.2 * policy.random()) : jittered,
  );
}

/** The HTTP status and Retry-After of an error: an ApiError, or client-node's ApiException (headers). */
function answerOf(err: unknown): { status?: number; retryAfter?: string } {
  if (err instanceof ApiError)
    return { status: err.code, ...(err.retryAfter ? { retryAfter: err.retryAfter } : {}) };
  const e = err as { code?: unknown; headers?: unknown } | undefined;
  if (typeof e?.code !== "number") return {};
  const headers = (e.headers ?? {}) as Record<string, unknown>;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === "retry-after");
  const value = key ? headers[key] : undefined;
  return { status: e.code, ...(typeof value === "string" ? { retryAfter: value } : {}) };
}

/**
 * Runs `attempt` until it succeeds or fails in a way retryDelay does not retry, waiting between tries. Works
 * for the RestClient and for client-node's typed calls (their ApiException carries code and headers).
 *
 * With `budgetMs`, tries and waits together stay within it: `attempt` gets the time left (its own timeout),
 * and a wait that would end past the budget is not started (the last error is thrown). A caller that
 * bounds a call (a Lease renewal within its renew deadline) is never kept past that bound by retries.
 */
export async function withRetry<T>(
  method: string,
  attempt: (remainingMs: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  budgetMs: number = Number.POSITIVE_INFINITY,
): Promise<T> {
  const deadline = policy.now() + budgetMs;
  for (let n = 1; ; n++) {
    try {
      return await attempt(Math.max(1, Math.round(deadline - policy.now())));
    } catch (err) {
      const { status, retryAfter } = answerOf(err);
      const wait = retryDelay(policy, n, method, status, parseRetryAfter(retryAfter));
      // Waiting, then trying with almost nothing left, would only add a request bound to time out.
      if (wait === undefined || policy.now() + wait >= deadline - MIN_TRY_MS) throw err;
      await policy.sleep(wait);
    }
  }
}

/** The least time worth a new try after a wait (a LIST or an apply answers well within it). */
const MIN_TRY_MS = 1_000;

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
