// Micro-benchmark of the pure plan (not a test): how long one full plan() of the baseline policy takes at
// N namespaces, cold (nothing applied yet) and converged (every write applied); how long the repair lane's
// plan of one namespace takes (from a snapshot built like ClusterCache.namespaceSnapshot: fresh lists,
// the cluster's ClusterRoles); and the longest the event loop is held while the full reconcile's
// computation (planYielding, then the report) runs, seen by a setImmediate probe and by
// monitorEventLoopDelay. Usage: npx tsx bench/plan-micro.ts [N ...]
import { monitorEventLoopDelay } from "node:perf_hooks";
import type {
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1Namespace,
  V1NetworkPolicy,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../src/api/v1alpha1/policy.js";
import { FIELD_MANAGER } from "../src/api/vocabulary.js";
import type { Snapshot } from "../src/cluster/snapshot.js";
import { scopePlan } from "../src/controller/lane.js";
import type { Applied } from "../src/controller/apply.js";
import { plan, planSteps, planYielding, type Plan } from "../src/controller/plan.js";
import * as reports from "../src/controller/report.js";
import { baselinePolicy, SELECTOR_LABEL } from "./lib/desired.js";

const managed = (paths: string[]) => [
  {
    manager: FIELD_MANAGER,
    operation: "Apply",
    fieldsType: "FieldsV1",
    fieldsV1: Object.fromEntries(paths.map((p) => [p, {}])),
  },
];

/** RBAC of a small real cluster (kind has ~70 ClusterRoles, ~55 ClusterRoleBindings): what findings judge. */
function clusterRbac(): { clusterRoles: V1ClusterRole[]; clusterRoleBindings: V1ClusterRoleBinding[] } {
  const clusterRoles: V1ClusterRole[] = [];
  const clusterRoleBindings: V1ClusterRoleBinding[] = [];
  for (let i = 0; i < 80; i++) {
    const name = i === 0 ? "cluster-admin" : `system:controller:c-${i}`;
    clusterRoles.push({
      metadata: { name, uid: `cr-${i}`, labels: { "kubernetes.io/bootstrapping": "rbac-defaults" } },
      rules:
        i === 0
          ? [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }]
          : [
              {
                apiGroups: [""],
                resources: ["pods", "services", "endpoints"],
                verbs: ["get", "list", "watch"],
              },
              { apiGroups: ["apps"], resources: ["deployments", "replicasets"], verbs: ["get", "update"] },
              { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
            ],
    });
    if (i < 60)
      clusterRoleBindings.push({
        metadata: { name, uid: `crb-${i}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
        subjects:
          i === 0
            ? [{ kind: "Group", name: "system:masters", apiGroup: "rbac.authorization.k8s.io" }]
            : [{ kind: "ServiceAccount", name: `c-${i}`, namespace: "kube-system" }],
      });
  }
  return { clusterRoles, clusterRoleBindings };
}

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
    rbac: { ...clusterRbac(), roles: [], roleBindings: [] },
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

/**
 * The longest the event loop was held while `f` ran: the largest gap between ticks of a setImmediate loop,
 * and the largest delay monitorEventLoopDelay saw (1 ms resolution); and f's wall time.
 */
async function longestBlock(
  f: () => Promise<unknown>,
): Promise<{ probe: number; eld: number; wall: number }> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let running = true;
  let last = performance.now();
  let worst = 0;
  const tick = () => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  h.enable();
  setImmediate(tick);
  const t = performance.now();
  await f();
  const wall = performance.now() - t;
  running = false;
  h.disable();
  return { probe: worst, eld: h.max / 1e6, wall };
}

/** CPU time of this thread (GC work done on it included), in ms. */
const threadCpuMs = (): number => {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The report of a full reconcile that wrote nothing: sliced when the code has reportYielding. */
const applied = (p: Plan): Applied => ({
  sharedDone: new Set(),
  corrected: [],
  remaining: p.remaining,
  failures: [],
  written: [],
  skipped: [],
});
const reportOf = async (p: Plan, now: Date): Promise<unknown> => {
  const yielding = (reports as Record<string, unknown>)["reportYielding"] as
    ((...a: Parameters<typeof reports.report>) => Promise<unknown>) | undefined;
  return yielding ? yielding(p, applied(p), [], now) : reports.report(p, applied(p), [], now);
};

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
  // A namespace's snapshot as the cache builds it for each repair: fresh lists around the same objects
  // (the informers index their objects by namespace: nothing per object of other namespaces).
  const ns0 = {
    namespaces: warm.namespaces.slice(0, 1),
    networkPolicies: warm.networkPolicies.filter((o) => o.metadata?.namespace === "ns-0"),
    serviceAccounts: warm.serviceAccounts.slice(0, 1),
  };
  const one = (): Snapshot => ({
    ...warm,
    policies: [...warm.policies],
    namespaces: [...ns0.namespaces],
    networkPolicies: [...ns0.networkPolicies],
    serviceAccounts: [...ns0.serviceAccounts],
    rbac: {
      clusterRoles: [...warm.rbac!.clusterRoles],
      clusterRoleBindings: [],
      roles: [],
      roleBindings: [],
    },
  });
  const c = time(() => plan("baseline", cold), 5);
  const w = time(() => plan("baseline", warm), 5);
  const o = time(() => scopePlan(plan("baseline", one()), "ns-0"), 2000);
  const oneCpu = threadCpuMs();
  for (let i = 0; i < 5000; i++) scopePlan(plan("baseline", one()), "ns-0");
  const oneCpuUs = ((threadCpuMs() - oneCpu) / 5000) * 1000;
  const left = plan("baseline", warm);
  const blocks: { probe: number; eld: number; wall: number }[] = [];
  for (let i = 0; i < 5; i++)
    blocks.push(await longestBlock(async () => reportOf(await planYielding("baseline", warm), warm.now)));
  // Each step's cost (between two yields of planSteps), in main-thread CPU time: on a shared machine the
  // wall clock also counts the time the process was not running at all.
  const steps: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < 5; i++) {
    const it = planSteps("baseline", warm);
    const start = threadCpuMs();
    for (let t = start; ;) {
      const r = it.next();
      const now = threadCpuMs();
      steps.push(now - t);
      t = now;
      if (r.done) break;
    }
    cpu.push(threadCpuMs() - start);
  }
  const r = time(() => reports.report(left, applied(left), [], warm.now), 5);
  console.log(
    `N=${n}: full plan cold median ${c.median.toFixed(1)} ms (max ${c.max.toFixed(1)}), ` +
      `converged median ${w.median.toFixed(1)} ms (max ${w.max.toFixed(1)}; ${left.writes.length + left.shared.length} writes left); ` +
      `report (sync) median ${r.median.toFixed(1)} ms\n` +
      `  one-namespace plan median ${(o.median * 1000).toFixed(1)} us (max ${(o.max * 1000).toFixed(0)} us), ` +
      `${oneCpuUs.toFixed(1)} us of main-thread CPU per plan (mean of 5000)\n` +
      `  full reconcile compute (planYielding + report, converged): wall median ${median(blocks.map((b) => b.wall)).toFixed(1)} ms; ` +
      `longest event-loop block median ${median(blocks.map((b) => b.probe)).toFixed(1)} ms (max ${Math.max(...blocks.map((b) => b.probe)).toFixed(1)}), ` +
      `monitorEventLoopDelay max ${Math.max(...blocks.map((b) => b.eld)).toFixed(1)} ms\n` +
      `  planSteps: ${steps.length / 5} steps (yields), longest ${Math.max(...steps).toFixed(1)} ms of main-thread CPU ` +
      `(its clock ticks every few ms); whole plan ${median(cpu).toFixed(1)} ms of main-thread CPU (median of 5)`,
  );
}
