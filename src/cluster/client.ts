import { KubeConfig } from "@kubernetes/client-node";

/**
 * Loads the kubeconfig ($KUBECONFIG, ~/.kube/config, or in-cluster) and makes every request share ONE
 * keep-alive undici dispatcher. client-node 2.x otherwise builds a new Agent per request, so each call
 * pays a fresh TLS handshake (~16 ms on loopback) and leaves a connection behind.
 */
export function loadKubeConfig(kubeconfigPath?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfigPath) kc.loadFromFile(kubeconfigPath);
  else kc.loadFromDefault();
  shareDispatcher(kc);
  return kc;
}

interface DispatcherFactory {
  createDispatcher(cluster: unknown, agentOptions: unknown): unknown;
}

/** Memoizes KubeConfig's (TypeScript-private) dispatcher factory: one connection pool per KubeConfig. */
export function shareDispatcher(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as DispatcherFactory;
  const original = target.createDispatcher.bind(kc);
  let shared: { value: unknown } | undefined;
  target.createDispatcher = (cluster, agentOptions) =>
    (shared ??= { value: original(cluster, agentOptions) }).value;
  return kc;
}

/** The HTTP status of a client-node error, or undefined for network errors. */
export function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

/** The API server's message from a client-node error, without the headers dump. */
export function errorMessage(err: unknown): string {
  const body = (err as { body?: unknown } | undefined)?.body;
  if (body && typeof body === "object" && "message" in body) return String(body.message);
  if (typeof body === "string") {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      /* not JSON */
    }
  }
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}
