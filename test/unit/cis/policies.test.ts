// CIS 5.x from the API: RBAC findings -> 5.1.x, Pod Security labels -> 5.2.x, NetworkPolicies per
// namespace -> 5.3.2, Secrets in env -> 5.4.1 (only when asked), the default namespace -> 5.7.4.
import { expect } from "chai";
import type { PolicyInputs } from "../../../src/cis/checks/policies.js";
import { policyTargets, runPolicyChecks } from "../../../src/cis/checks/policies.js";
import {
  MAX_SECRET_ENV_WORKLOADS,
  MAX_SECRET_ENV_WORKLOADS_PER_NAMESPACE,
  MAX_USES_PER_WORKLOAD,
  SecretEnvCollector,
  scanSecretEnv,
} from "../../../src/cis/parse/podenv.js";
import { cisFindings } from "../../../src/cis/output/findings.js";
import type { Finding } from "../../../src/findings/finding.js";

const f = (id: string, resource: string): Finding => ({
  id,
  severity: "High",
  resource,
  message: "m",
  area: "rbac",
});
const ns = (name: string, enforce?: string) => ({
  name,
  labels: enforce === undefined ? {} : { "pod-security.kubernetes.io/enforce": enforce },
});
const run = (i: PolicyInputs) => Object.fromEntries(runPolicyChecks(i).map((r) => [r.id, r]));

describe("cis/policies 5.x", () => {
  it("5.2.x: an enforce-version older than the control's Pod Security version does not enforce it", () => {
    const pinned = (name: string, version: string) => ({
      name,
      labels: {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": version,
      },
    });
    const r = run({ namespaces: [pinned("default", "v1.7"), pinned("apps", "v1.21")] });
    expect(r["5.2.6"]!.status).to.equal("Fail"); // allowPrivilegeEscalation: restricted from v1.8
    expect(r["5.2.6"]!.evidence)
      .to.contain("default (restricted at v1.7, before v1.8)")
      .and.not.contain("apps");
    for (const id of ["5.2.8", "5.2.9", "5.2.10"]) expect(r[id]!.status, id).to.equal("Fail"); // from v1.22
    for (const id of ["5.2.2", "5.2.5", "5.2.7", "5.2.12"]) expect(r[id]!.status, id).to.equal("Pass");
    const current = run({
      namespaces: [pinned("default", "v1.22"), pinned("apps", "latest"), ns("x", "restricted")],
    });
    for (const id of ["5.2.6", "5.2.8", "5.2.9", "5.2.10"]) expect(current[id]!.status, id).to.equal("Pass");
  });
  it("maps RBAC findings to 5.1.x: Fail naming the objects, Pass when none; review items are Manual", () => {
    const r = run({
      rbacFindings: [
        f("RBAC-WILDCARD", "ClusterRoleBinding/ops"),
        f("RBAC-NODES-PROXY", "ClusterRoleBinding/mon"),
      ],
    });
    expect(r["5.1.3"]).to.deep.include({ status: "Fail" });
    expect(r["5.1.3"]!.evidence).to.contain("ClusterRoleBinding/ops");
    expect(r["5.1.10"]!.status).to.equal("Fail");
    expect(r["5.1.1"]!.status).to.equal("Pass");
    expect(r["5.1.4"]!.status).to.equal("Manual");
  });
  it("is Unknown with the reason when an input was not read, never Pass", () => {
    const r = run({ missing: { rbacFindings: "RBAC is not watched", namespaces: "namespaces: Forbidden" } });
    expect(r["5.1.1"]).to.deep.equal({ ...r["5.1.1"], status: "Unknown", evidence: "RBAC is not watched" });
    expect(r["5.2.2"]!.status).to.equal("Unknown");
    expect(r["5.3.2"]!.status).to.equal("Unknown");
    expect(r["5.7.4"]!.status).to.equal("Unknown");
  });
  it("judges Pod Security enforce labels: baseline for 5.2.2-5.2.5/11-13, restricted for 5.2.6-5.2.10", () => {
    const r = run({ namespaces: [ns("kube-system"), ns("apps", "baseline"), ns("web", "restricted")] });
    expect(r["5.2.1"]!.status).to.equal("Pass");
    expect(r["5.2.2"]!.status).to.equal("Pass");
    expect(r["5.2.7"]!.status).to.equal("Fail");
    expect(r["5.2.7"]!.evidence).to.contain("apps (baseline)").and.not.contain("kube-system");
    const none = run({ namespaces: [ns("apps"), ns("x", "privileged")] });
    expect(none["5.2.1"]!.status).to.equal("Manual");
    expect(none["5.2.5"]!.evidence).to.contain("apps (no enforce label)");
  });
  it("5.3.2 needs a NetworkPolicy in every namespace", () => {
    const nss = [ns("a"), ns("b")];
    expect(run({ namespaces: nss, networkPolicyNamespaces: new Set(["a", "b"]) })["5.3.2"]!.status).to.equal(
      "Pass",
    );
    const r = run({ namespaces: nss, networkPolicyNamespaces: new Set(["a"]) })["5.3.2"]!;
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain(": b");
  });
  it("5.7.4 fails when the default namespace holds user objects", () => {
    expect(run({ defaultNamespaceObjects: [] })["5.7.4"]!.status).to.equal("Pass");
    expect(run({ defaultNamespaceObjects: ["Pod/web-1"] })["5.7.4"]!.status).to.equal("Fail");
  });
  it("5.4.1 only when asked for; finds Secrets taken into env or envFrom, never a value", () => {
    expect(run({})["5.4.1"]).to.equal(undefined);
    expect(run({ missing: { secretEnv: "listing pods: forbidden" } })["5.4.1"]).to.deep.include({
      status: "Unknown",
      evidence: "listing pods: forbidden",
    });
    const rs = (name: string, hash: string) => ({
      namespace: "a",
      name: `${name}-${hash}-x1`,
      labels: { "pod-template-hash": hash },
      ownerReferences: [{ kind: "ReplicaSet", name: `${name}-${hash}`, controller: true }],
    });
    const pods = [
      {
        metadata: rs("web", "5d8f"),
        spec: {
          containers: [
            {
              name: "app",
              env: [
                { name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } },
                { name: "LITERAL", value: "hunter2-literal" },
              ],
            },
          ],
        },
      },
      // A second pod of the same Deployment (another rollout): one workload, two pods.
      {
        metadata: rs("web", "77aa"),
        spec: {
          containers: [
            {
              name: "app",
              env: [{ name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "db", key: "password" } } }],
            },
          ],
        },
      },
      {
        metadata: { namespace: "a", name: "p2" },
        spec: { initContainers: [{ name: "init", envFrom: [{ secretRef: { name: "s" }, prefix: "S_" }] }] },
      },
      {
        metadata: {
          namespace: "b",
          name: "job-1-abc",
          ownerReferences: [{ kind: "Job", name: "job-1", controller: true }],
        },
        spec: {
          containers: [
            { name: "c", env: [{ name: "Y", valueFrom: { configMapKeyRef: { name: "cm", key: "k" } } }] },
          ],
        },
      },
      {
        metadata: { namespace: "a", name: "p3" },
        spec: { containers: [{ env: [{ name: "Y", value: "1" }] }] },
      },
    ];
    const scan = scanSecretEnv(pods);
    expect(scan).to.deep.equal({
      podsScanned: 5,
      morePods: 0,
      workloads: [
        {
          resource: "Deployment/a/web",
          pods: 2,
          uses: ["container app: env DB_PASSWORD from Secret db key password"],
          truncated: false,
        },
        {
          resource: "Pod/a/p2",
          pods: 1,
          uses: ["container init: envFrom Secret s (every key, prefix S_)"],
          truncated: false,
        },
      ],
    });
    expect(JSON.stringify(scan)).to.not.contain("hunter2");
    const r = run({ secretEnv: scan })["5.4.1"]!;
    expect(r.status).to.equal("Fail");
    expect(r.evidence).to.contain("3 of 5 pod(s)").and.contain("Deployment/a/web, Pod/a/p2");
    expect(run({ secretEnv: scanSecretEnv([pods[4]]) })["5.4.1"]!.status).to.equal("Pass");
  });

  it("5.4.1 in the cluster: one finding per workload naming container, variable and Secret", () => {
    const scan = scanSecretEnv([
      {
        metadata: {
          namespace: "a",
          name: "p",
          ownerReferences: [{ kind: "StatefulSet", name: "db", controller: true }],
        },
        spec: {
          containers: [
            { name: "c", env: [{ name: "K", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] },
          ],
        },
      },
    ]);
    const targets = policyTargets({ secretEnv: scan, defaultNamespaceObjects: [] });
    expect(targets.map((t) => t.resource)).to.deep.equal(["Cluster/kubernetes", "StatefulSet/a/db"]);
    expect(targets[0]!.results.map((x) => x.id)).to.not.include("5.4.1");
    const found = cisFindings(targets[1]!.results, { cluster: targets[1]!.resource });
    expect(found).to.have.length(1);
    expect(found[0]).to.deep.include({ id: "CIS-5.4.1", severity: "Low", resource: "StatefulSet/a/db" });
    expect(found[0]!.message).to.contain("container c: env K from Secret s key k");
    // A pass stays one result on the cluster.
    const clean = policyTargets({ secretEnv: scanSecretEnv([]) });
    expect(clean).to.have.length(1);
    expect(clean[0]!.results.find((x) => x.id === "5.4.1")!.status).to.equal("Pass");
  });

  it("5.4.1 bounds what it keeps: uses per workload, workloads counted beyond the bound", () => {
    const c = new SecretEnvCollector();
    const env = Array.from({ length: MAX_USES_PER_WORKLOAD + 5 }, (_, i) => ({
      name: `V${i}`,
      valueFrom: { secretKeyRef: { name: "s", key: `k${i}` } },
    }));
    for (let i = 0; i < MAX_SECRET_ENV_WORKLOADS + 3; i++)
      c.add({
        metadata: { namespace: `n${i % 20}`, name: `p${i}` },
        spec: { containers: [{ name: "c", env }] },
      });
    const scan = c.result();
    expect(scan.workloads).to.have.length(MAX_SECRET_ENV_WORKLOADS);
    expect(scan.morePods).to.equal(3);
    expect(scan.workloads[0]!.uses).to.have.length(MAX_USES_PER_WORKLOAD);
    expect(scan.workloads[0]!.truncated).to.equal(true);
    const targets = policyTargets({ secretEnv: scan });
    expect(targets[0]!.results.find((x) => x.id === "5.4.1")!.evidence).to.contain(
      "3 pod(s) of workloads not listed",
    );
  });

  it("5.4.1 bounds workloads per namespace: one namespace cannot take every slot", () => {
    const c = new SecretEnvCollector();
    const pod = (namespace: string, name: string) => ({
      metadata: { namespace, name },
      spec: {
        containers: [
          { name: "c", env: [{ name: "V", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] },
        ],
      },
    });
    // Listed first (alphabetically), the attacker's namespace fills up before the victim's.
    for (let i = 0; i < MAX_SECRET_ENV_WORKLOADS + 10; i++) c.add(pod("aaa-attacker", `p${i}`));
    c.add(pod("shop", "web"));
    const scan = c.result();
    expect(scan.workloads.filter((w) => w.resource.startsWith("Pod/aaa-attacker/"))).to.have.length(
      MAX_SECRET_ENV_WORKLOADS_PER_NAMESPACE,
    );
    expect(scan.workloads.map((w) => w.resource)).to.include("Pod/shop/web");
    expect(scan.morePods).to.equal(MAX_SECRET_ENV_WORKLOADS + 10 - MAX_SECRET_ENV_WORKLOADS_PER_NAMESPACE);
  });

  it("names a hostile workload or variable name on one line", () => {
    const scan = scanSecretEnv([
      {
        metadata: { namespace: "a", name: "p\nFAKE" },
        spec: {
          containers: [
            {
              name: "c",
              env: [{ name: "X\u001b[2J", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }],
            },
          ],
        },
      },
    ]);
    expect(scan.workloads[0]!.resource).to.equal("Pod/a/p\\nFAKE");
    expect(scan.workloads[0]!.uses[0]).to.contain("X\\x1b[2J");
  });

  it("becomes findings with the CIS id and the definition's severity", () => {
    const found = cisFindings(
      runPolicyChecks({ rbacFindings: [f("RBAC-CLUSTER-ADMIN", "ClusterRoleBinding/x")] }),
    );
    const admin = found.find((x) => x.id === "CIS-5.1.1")!;
    expect(admin).to.deep.include({
      severity: "Critical",
      resource: "Cluster/kubernetes",
      area: "controlPlane",
    });
  });
});
