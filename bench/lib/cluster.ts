// One benchmark cluster: a fresh local control plane whose audit log records only the measured identities,
// the CRD, the operator's real RBAC (config/rbac) and ServiceAccount tokens for every actor, so each
// request in the audit log is attributable.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { installCrd } from "../../test/support/crd.js";
import { AuditLog, auditPolicy } from "./audit.js";
import { Kube, pool } from "./kube.js";
import { Observer } from "./observer.js";

export const USERS = {
  operator: "system:serviceaccount:csp-system:csp-operator",
  bare: "system:serviceaccount:csp-bench:bare",
  reflex: "system:serviceaccount:csp-bench:reflex",
  marker: "system:serviceaccount:csp-bench:marker",
};

export interface BenchCluster {
  cp: ControlPlane;
  /** Cluster admin (system:masters, exempt from API Priority and Fairness): setup, observer, faults. */
  admin: Kube;
  kubeconfigs: { operator: string; bare: string; reflex: string; probe: string };
  audit: AuditLog;
  observer: Observer;
  stop(): Promise<void>;
}

export async function startBenchCluster(name: string): Promise<BenchCluster> {
  const cp = await startControlPlane({
    name,
    auditPolicy: auditPolicy([USERS.operator, USERS.bare, USERS.reflex, USERS.marker]),
  });
  try {
    const ok = async (...args: string[]) => {
      const r = await cp.kubectl(args);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
    };
    await installCrd(cp);
    await ok("create", "namespace", "csp-system");
    await ok("create", "namespace", "csp-bench");
    await ok("apply", "-k", "config/rbac");
    for (const sa of ["bare", "reflex", "marker", "probe"]) await ok("create", "sa", sa, "-n", "csp-bench");
    await ok(
      "create",
      "clusterrolebinding",
      "bench-clients",
      "--clusterrole=csp-operator",
      "--serviceaccount=csp-bench:bare",
      "--serviceaccount=csp-bench:reflex",
    );
    await ok(
      "create",
      "clusterrolebinding",
      "bench-readers",
      "--clusterrole=view",
      "--serviceaccount=csp-bench:marker",
      "--serviceaccount=csp-bench:probe",
    );
    const kubeconfigs = {
      operator: await cp.serviceAccountKubeconfig("csp-system", "csp-operator"),
      bare: await cp.serviceAccountKubeconfig("csp-bench", "bare"),
      reflex: await cp.serviceAccountKubeconfig("csp-bench", "reflex"),
      probe: await cp.serviceAccountKubeconfig("csp-bench", "probe"),
    };
    const admin = new Kube(cp.kubeconfigPath);
    const audit = new AuditLog(
      cp.auditLogPath,
      new Kube(await cp.serviceAccountKubeconfig("csp-bench", "marker")),
    );
    const observer = new Observer(admin);
    await observer.start();
    return {
      cp,
      admin,
      kubeconfigs,
      audit,
      observer,
      async stop() {
        await observer.stop();
        await cp.stop();
      },
    };
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

/** Creates namespaces (as admin, 16 at a time) and waits for their `default` ServiceAccounts. */
export async function createNamespaces(
  c: BenchCluster,
  names: readonly string[],
  labels: Record<string, string>,
  waitForServiceAccounts = true,
): Promise<void> {
  await pool(names, 16, async (name) => {
    await c.admin.json("POST", "/api/v1/namespaces", {
      body: { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } },
    });
  });
  if (waitForServiceAccounts) await c.observer.serviceAccountsExist(names, 120_000 + names.length * 100);
}

export function names(prefix: string, from: number, to: number): string[] {
  return Array.from({ length: to - from }, (_, i) => `${prefix}-${String(from + i).padStart(5, "0")}`);
}

export function writeLines(dir: string, file: string, lines: readonly string[]): string {
  const path = join(dir, file);
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}
