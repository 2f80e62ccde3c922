// `npm run bench:rbac-events -- [--namespaces 100] [--bindings 1000]`: the compiled operator's CPU seconds and
// reconciles for a burst of RoleBindings no policy depends on (ClusterRole `view` to a user, in a namespace
// no policy selects), with the baseline policy (which audits RBAC: the CRD defaults spec.rbac.audit to {})
// converged over N selected namespaces. Then one risky binding (cluster-admin in that namespace) to check
// that an RBAC change that moves a finding still reconciles the policy. Needs `npm run build` (dist/) and
// the local control plane (controlplane/build.sh). Prints one JSON object as its last line.
//
// To compare with another version: copy this file into that version's checkout (bench/lib must be there),
// build it, and run it from there (the operator is that checkout's dist/src/main.js).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createNamespaces, names, startBenchCluster } from "./lib/cluster.js";
import { baselinePolicy, POLICY_NAME, SELECTOR_LABEL } from "./lib/desired.js";
import { pool } from "./lib/kube.js";
import { keysOf } from "./lib/observer.js";
import { OperatorProcess, touch } from "./lib/procs.js";

const { values } = parseArgs({
  options: {
    namespaces: { type: "string", default: "100" },
    bindings: { type: "string", default: "1000" },
  },
  strict: true,
});
const n = Number(values.namespaces);
const bindings = Number(values.bindings);
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(bindings) || bindings < 1)
  throw new Error("--namespaces and --bindings must be positive integers");
const logDir = mkdtempSync(join(tmpdir(), "csp-rbacburst-"));
const say = (m: string) =>
  process.stderr.write(`[rbacburst ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

const POLICIES = "/apis/security.csp-operator.io/v1alpha1/clustersecuritypolicies";
const LOAD_NS = "rbac-load";
const c = await startBenchCluster("bench-rbacburst");
const op = new OperatorProcess(c.kubeconfigs.operator, 600, join(logDir, "operator.log"));
// The policy controller's reconciles only (the reports publisher logs "reconcile done" too).
let policyReconciles = 0;
const counting = op.onLine;
op.onLine = (line) => {
  counting(line);
  if (line.includes('"reconcile done"') && !line.includes('"controller"')) policyReconciles++;
};
try {
  await op.synced();
  await c.admin.json("POST", POLICIES, { body: baselinePolicy() });
  await op.reconciled(POLICY_NAME, 1);
  const selected = names("sel", 0, n);
  await createNamespaces(c, selected, { [SELECTOR_LABEL]: "web" });
  await createNamespaces(c, [LOAD_NS], {}, false);
  await c.observer.converged(keysOf(selected), 600_000 + n * 500);
  await touch(c, op, POLICY_NAME);
  say(`converged N=${n}; creating ${bindings} unrelated RoleBindings in ${LOAD_NS}`);

  const cpu0 = await op.cpuSeconds();
  const r0 = policyReconciles;
  const t0 = performance.now();
  await pool(
    Array.from({ length: bindings }, (_, i) => i),
    16,
    async (i) => {
      await c.admin.json("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${LOAD_NS}/rolebindings`, {
        body: {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name: `load-${i}`, namespace: LOAD_NS },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "view" },
          subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: `user-${i}` }],
        },
      });
    },
  );
  const createdMs = performance.now() - t0;
  // The queue has drained once a reconcile that started after this touch completed.
  await touch(c, op, POLICY_NAME);
  const drainedMs = performance.now() - t0;
  const cpuSeconds = (await op.cpuSeconds()) - cpu0;
  // Minus the touch's own reconcile.
  const reconciles = policyReconciles - r0 - 1;
  say(
    `${bindings} bindings in ${(createdMs / 1000).toFixed(1)} s: ${cpuSeconds.toFixed(2)} CPU-s, ${reconciles} reconciles`,
  );

  // A risky binding moves a finding: it must still reconcile the policy.
  const r1 = op.count(POLICY_NAME);
  const t1 = performance.now();
  await c.admin.json("POST", `/apis/rbac.authorization.k8s.io/v1/namespaces/${LOAD_NS}/rolebindings`, {
    body: {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "risky", namespace: LOAD_NS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "mallory" }],
    },
  });
  await op.reconciled(POLICY_NAME, r1 + 1, 60_000);
  const riskyReconcileMs = performance.now() - t1;

  console.log(
    JSON.stringify({
      namespaces: n,
      bindings,
      createSeconds: Math.round(createdMs) / 1000,
      drainedSeconds: Math.round(drainedMs) / 1000,
      operatorCpuSeconds: Math.round(cpuSeconds * 100) / 100,
      cpuMsPerBinding: Math.round((1000 * cpuSeconds * 100) / bindings) / 100,
      reconciles,
      riskyBindingReconciledMs: Math.round(riskyReconcileMs),
      logDir,
    }),
  );
} finally {
  await op.stop();
  await c.stop();
}
process.exit(0);
