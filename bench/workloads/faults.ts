// Drift injection, as cluster admin: one fault at a time, rotating through four kinds, each on a different
// namespace. Latency is measured watch to watch: from the observer seeing the fault's own event to the
// observer seeing the object desired again. That excludes the injector's request latency and is the same
// clock for every client.
import type { BenchCluster } from "../lib/cluster.js";
import { npPath, nsPath, saPath } from "../lib/desired.js";
import type { Json } from "../lib/kube.js";
import { key } from "../lib/observer.js";

export const FAULT_KINDS = [
  "NetworkPolicy deleted",
  "allow-all ingress added to default-deny",
  "Pod Security enforce label removed",
  "default ServiceAccount automount set to true",
] as const;

export interface FaultRun {
  latenciesMs: number[];
  /** performance.now() at which each fault was seen by the observer. */
  seenAt: number[];
  /** performance.now() at which each repair was seen. */
  fixedAt: number[];
}

const rvOf = (o: Json | undefined) =>
  Number((o?.["metadata"] as { resourceVersion?: string } | undefined)?.resourceVersion ?? 0);

async function inject(c: BenchCluster, kind: number, ns: string): Promise<{ k: string; rv: number }> {
  const deny = "csp-baseline-default-deny";
  switch (kind) {
    case 0: {
      const k = key("np", ns, deny);
      const before = c.observer.rv(k);
      const res = await c.admin.json<Json>("DELETE", npPath(ns, deny));
      return { k, rv: Math.max(before + 1, rvOf(res)) };
    }
    case 1:
      return {
        k: key("np", ns, deny),
        rv: rvOf(await c.admin.mergePatch(npPath(ns, deny), { spec: { ingress: [{}] } })),
      };
    case 2:
      return {
        k: key("ns", ns),
        rv: rvOf(
          await c.admin.mergePatch(nsPath(ns), {
            metadata: { labels: { "pod-security.kubernetes.io/enforce": null } },
          }),
        ),
      };
    default:
      return {
        k: key("sa", ns),
        rv: rvOf(await c.admin.mergePatch(saPath(ns), { automountServiceAccountToken: true })),
      };
  }
}

/**
 * Injects up to `count` faults into converged namespaces. Sequential by default: each repair is awaited
 * before the next fault. With `everyMs`, faults are started at that pace (each on another namespace) while
 * `keepGoing` holds, so a long load still yields many samples; each is timed independently.
 */
export async function injectFaults(
  c: BenchCluster,
  namespaces: readonly string[],
  count: number,
  opts: { keepGoing?: () => boolean; everyMs?: number; timeoutMs?: number } = {},
): Promise<FaultRun> {
  const out: FaultRun = { latenciesMs: [], seenAt: [], fixedAt: [] };
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const one = async (i: number) => {
    const ns = namespaces[(i * 7) % namespaces.length]!;
    const { k, rv } = await inject(c, i % FAULT_KINDS.length, ns);
    const seen = await c.observer.event(k, rv, timeoutMs);
    const fixed = await c.observer.repaired(k, seen.rv, timeoutMs);
    out.latenciesMs.push(fixed.at - seen.at);
    out.seenAt.push(seen.at);
    out.fixedAt.push(fixed.at);
  };
  const running: Promise<void>[] = [];
  for (let i = 0; i < count && (opts.keepGoing?.() ?? true); i++) {
    if (opts.everyMs === undefined) {
      await one(i);
      continue;
    }
    const p = one(i);
    p.catch(() => undefined); // awaited below
    running.push(p);
    await new Promise((r) => setTimeout(r, opts.everyMs)); // the injection pace
  }
  await Promise.all(running);
  return out;
}
