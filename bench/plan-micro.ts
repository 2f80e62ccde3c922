// Micro-benchmark of the pure plan (not a test): how long one full plan() of the baseline policy blocks
// Node's event loop at N namespaces, cold (nothing applied yet) and converged (every write applied), and
// how long the repair lane's plan of one namespace takes, and the longest the event loop waits while the
// full reconcile's planYielding() runs (its longest step). Usage: npx tsx bench/plan-micro.ts [N ...]
import type {
  KubernetesObject,
  V1Namespace,
  V1NetworkPolicy,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../src/api/v1alpha1/policy.js";
import { FIELD_MANAGER } from "../src/api/vocabulary.js";
import type { Snapshot } from "../src/cluster/snapshot.js";
import { scopePlan } from "../src/controller/lane.js";
import { plan, planSteps, planYielding } from "../src/controller/plan.js";
import { baselinePolicy, SELECTOR_LABEL } from "./lib/desired.js";

const managed = (paths: string[]) => [
  {
    manager: FIELD_MANAGER,
    operation: "Apply",
    fieldsType: "FieldsV1",
    fieldsV1: Object.fromEntries(paths.map((p) => [p, {}])),
  },
];

function coldSnapshot(n: number, policy: ClusterSecurityPolicy): Snapshot {
  const namespaces: V1Namespace[] = [];
  const serviceAccounts: V1ServiceAccount[] = [];
  for (let i = 0; i < n; i++) {
    const name = `ns-${i}`;
    namespaces.push({
      metadata: {
        name,
        uid: `ns-uid-${i}`,
        resourceVersion: `${i}`,
        labels: { "kubernetes.io/metadata.name": name, [SELECTOR_LABEL]: "a" },
      },
      status: { phase: "Active" },
    });
    serviceAccounts.push({
      metadata: { name: "default", namespace: name, uid: `sa-${i}`, resourceVersion: "1" },
    });
  }
  return {
    policies: [policy],
    namespaces,
    networkPolicies: [],
    serviceAccounts,
    roles: [],
    roleBindings: [],
    configMaps: [],
    rbac: { clusterRoles: [], clusterRoleBindings: [], roles: [], roleBindings: [] },
    wideningNetworkPolicies: [],
    occupant: () => undefined,
    now: new Date(),
  };
}

/** The cold snapshot with every planned write applied as the API server would store it (roughly). */
function converged(s: Snapshot, name: string): Snapshot {
  const p = plan(name, s);
  let uid = 0;
  const nps: V1NetworkPolicy[] = p.writes
    .filter((w) => w.object.kind === "NetworkPolicy")
    .map((w) => ({
      ...(w.object as V1NetworkPolicy),
      metadata: {
        ...w.object.metadata,
        uid: `np-${uid++}`,
        resourceVersion: "2",
        managedFields: managed(["f:spec", "f:metadata"]),
      },
    }));
  const labels = new Map<string, Record<string, string>>();
  const automount = new Set<string>();
  for (const w of p.shared) {
    const o = w.object as KubernetesObject & { automountServiceAccountToken?: boolean };
    if (o.kind === "Namespace") labels.set(o.metadata!.name!, o.metadata?.labels ?? {});
    else if (o.automountServiceAccountToken === false) automount.add(o.metadata!.namespace!);
  }
  return {
    ...s,
    namespaces: s.namespaces.map((ns) => {
      const add = labels.get(ns.metadata!.name!) ?? {};
      return {
        ...ns,
        metadata: {
          ...ns.metadata,
          labels: { ...ns.metadata?.labels, ...add },
          managedFields: managed(Object.keys(add).map((k) => `f:metadata.f:labels.f:${k}`)),
        },
      };
    }),
    serviceAccounts: s.serviceAccounts.map((sa) =>
      automount.has(sa.metadata!.namespace!)
        ? {
            ...sa,
            automountServiceAccountToken: false,
            metadata: { ...sa.metadata, managedFields: managed(["f:automountServiceAccountToken"]) },
          }
        : sa,
    ),
    networkPolicies: nps,
  };
}

function time(f: () => unknown, reps: number): { median: number; max: number } {
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    f();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { median: ms[Math.floor(ms.length / 2)]!, max: ms[ms.length - 1]! };
}

/** The longest the event loop waited while `f` ran: the gap between ticks of a setImmediate loop. */
async function longestStall(f: () => Promise<unknown>): Promise<number> {
  let running = true;
  let last = performance.now();
  let worst = 0;
  const tick = () => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  await f();
  running = false;
  return worst;
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const policy = {
  ...(baselinePolicy() as unknown as ClusterSecurityPolicy),
  metadata: { name: "baseline", uid: "uid-baseline", generation: 1 },
};
for (const n of sizes.length ? sizes : [1000, 5000]) {
  const cold = coldSnapshot(n, policy);
  const warm = converged(cold, "baseline");
  const one = {
    ...warm,
    namespaces: warm.namespaces.slice(0, 1),
    networkPolicies: warm.networkPolicies.filter((o) => o.metadata?.namespace === "ns-0"),
    serviceAccounts: warm.serviceAccounts.slice(0, 1),
  };
  const c = time(() => plan("baseline", cold), 5);
  const w = time(() => plan("baseline", warm), 5);
  const o = time(() => scopePlan(plan("baseline", one), "ns-0"), 200);
  const left = plan("baseline", warm);
  const stalls: number[] = [];
  for (let i = 0; i < 5; i++) stalls.push(await longestStall(() => planYielding("baseline", warm)));
  stalls.sort((a, b) => a - b);
  // Each step's time, from a converged snapshot (which one dominates).
  const steps: string[] = [];
  const it = planSteps("baseline", warm);
  for (let t = performance.now(); ; t = performance.now()) {
    const r = it.next();
    steps.push((performance.now() - t).toFixed(1));
    if (r.done) break;
  }
  console.log(
    `N=${n}: full plan cold median ${c.median.toFixed(1)} ms (max ${c.max.toFixed(1)}), ` +
      `converged median ${w.median.toFixed(1)} ms (max ${w.max.toFixed(1)}; ${left.writes.length + left.shared.length} writes left), ` +
      `one-namespace plan median ${o.median.toFixed(3)} ms (max ${o.max.toFixed(3)}); ` +
      `planYielding's longest step (converged) median ${stalls[2]!.toFixed(1)} ms; steps ${steps.join(" / ")} ms`,
  );
}
