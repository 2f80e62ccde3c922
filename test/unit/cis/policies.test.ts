// CIS 5.x from the API: RBAC findings -> 5.1.x, Pod Security labels -> 5.2.x, NetworkPolicies per
// namespace -> 5.3.2, Secrets in env -> 5.4.1 (only when asked), the default namespace -> 5.7.4.
import { expect } from "chai";
import type { PolicyInputs } from "../../../src/cis/checks/policies.js";
import { podsWithSecretEnv, runPolicyChecks } from "../../../src/cis/checks/policies.js";
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
  it("5.4.1 only when asked for; finds Secrets taken into env or envFrom", () => {
    expect(run({})["5.4.1"]).to.equal(undefined);
    const pods = [
      {
        metadata: { namespace: "a", name: "p1" },
        spec: {
          containers: [{ env: [{ name: "X", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }] }],
        },
      },
      {
        metadata: { namespace: "a", name: "p2" },
        spec: { initContainers: [{ envFrom: [{ secretRef: { name: "s" } }] }] },
      },
      {
        metadata: { namespace: "a", name: "p3" },
        spec: { containers: [{ env: [{ name: "Y", value: "1" }], volumeMounts: [] }] },
      },
    ];
    expect(podsWithSecretEnv(pods)).to.deep.equal(["a/p1", "a/p2"]);
    expect(run({ secretEnvPods: podsWithSecretEnv(pods) })["5.4.1"]!.status).to.equal("Fail");
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
