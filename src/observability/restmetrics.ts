import type { KubeConfig } from "@kubernetes/client-node";
import type { Dispatcher } from "undici";

type OnResponse = (method: string, host: string, code: string) => void;

/**
 * Counts every HTTP request sent with `kc` (rest_client_requests_total {code, method, host}): it wraps the
 * KubeConfig's (shared, see cluster/client.ts) undici dispatcher with an interceptor, so the raw RestClient,
 * client-node's typed APIs and its watches are all counted without touching any of them. A request that
 * got no response (network error, timeout) counts with code "<error>", as client-go does.
 */
export function instrumentRequests(kc: KubeConfig, onResponse: OnResponse): void {
  const target = kc as unknown as { createDispatcher(cluster: unknown, agentOptions: unknown): unknown };
  const original = target.createDispatcher.bind(kc);
  const wrapped = new WeakMap<object, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    const d = original(cluster, agentOptions) as Dispatcher | undefined;
    if (!d || typeof d.compose !== "function") return d;
    let w = wrapped.get(d);
    if (!w) {
      w = d.compose(interceptor(onResponse));
      wrapped.set(d, w);
    }
    return w;
  };
}

function interceptor(onResponse: OnResponse): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => {
    const method = String(opts.method ?? "GET");
    let host = "";
    try {
      host = opts.origin ? new URL(String(opts.origin)).host : "";
    } catch {
      /* left empty */
    }
    let counted = false;
    const count = (code: string) => {
      if (counted) return;
      counted = true;
      onResponse(method, host, code);
    };
    const h = handler as unknown as Record<string | symbol, unknown>;
    const proxy: Dispatcher.DispatchHandler = new Proxy(h, {
      get(t, prop, receiver) {
        const v: unknown = Reflect.get(t, prop, receiver);
        if (typeof v !== "function") return v;
        if (prop === "onResponseStart")
          return (controller: unknown, status: number, ...rest: unknown[]) => {
            count(String(status));
            return (v as (...a: unknown[]) => unknown).call(t, controller, status, ...rest);
          };
        if (prop === "onHeaders")
          return (status: number, ...rest: unknown[]) => {
            count(String(status));
            return (v as (...a: unknown[]) => unknown).call(t, status, ...rest);
          };
        if (prop === "onResponseError" || prop === "onError")
          return (...args: unknown[]) => {
            count("<error>");
            return (v as (...a: unknown[]) => unknown).apply(t, args);
          };
        return (v as (...a: unknown[]) => unknown).bind(t);
      },
    });
    return dispatch(opts, proxy);
  };
}
