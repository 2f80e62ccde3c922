import { expect } from "chai";
import type { ClusterSecurityPolicy, ClusterSecurityPolicyStatus } from "../../../src/api/v1alpha1/policy.js";
import { reportsCondition } from "../../../src/controller/reports.js";
import { effectiveSpec } from "../../../src/desired/spec.js";
import { kindsInDiscovery, REPORT_APIS, reportObject, type ReportKind } from "../../../src/reports/kinds.js";
import {
  MAX_MESSAGE_CHARS,
  MAX_RESULTS_PER_REPORT,
  parseResource,
  policyReports,
  reportName,
} from "../../../src/reports/model.js";
import type { ReportsPublisher } from "../../../src/reports/publisher.js";
import { sameReport } from "../../../src/reports/writer.js";
import { computeStatus } from "../../../src/status/status.js";
import { policy } from "../builders/policy.js";

const now = new Date("2026-06-01T00:00:00Z");
const cond = (type: string, status: string, reason = "R", message = "m") => ({
  type,
  status: status as "True" | "False" | "Unknown",
  reason,
  message,
  lastTransitionTime: "2026-06-01T00:00:00Z",
});
const withStatus = (status: ClusterSecurityPolicyStatus, p = policy("p").build()): ClusterSecurityPolicy => ({
  ...p,
  status,
});

describe("policy reports (pure mapping from status)", () => {
  it("maps findings: severity lower-cased, Info = warn, CIS id as a property, namespaced ones per namespace", () => {
    const r = policyReports(
      withStatus({
        findings: [
          {
            id: "CIS-1.2.5",
            severity: "High",
            resource: "Pod/kube-system/kube-apiserver-a",
            message: "flag",
            area: "controlPlane",
          },
          {
            id: "RBAC-WILDCARD-VERB",
            severity: "Critical",
            resource: "ClusterRole/god",
            message: "wild",
            area: "rbac",
          },
          {
            id: "CIS-4.2.1",
            severity: "Info",
            resource: "Node/n1",
            message: "cannot tell",
            area: "controlPlane",
          },
        ],
        summary: { namespaces: 0, managedObjects: 0, drifted: 0, findings: 2 },
      }),
      now,
    );
    expect(r.namespaced.map((n) => n.namespace)).to.deep.equal(["kube-system"]);
    const ks = r.namespaced[0]!;
    expect(ks.summary).to.deep.equal({ pass: 0, fail: 1, warn: 0, error: 0, skip: 0 });
    expect(ks.results[0]).to.deep.include({
      source: "csp-operator",
      policy: "p",
      rule: "CIS-1.2.5",
      category: "controlPlane",
      severity: "high",
      result: "fail",
      properties: { cisId: "1.2.5" },
      resources: [{ apiVersion: "v1", kind: "Pod", namespace: "kube-system", name: "kube-apiserver-a" }],
    });
    expect(r.cluster.summary).to.deep.equal({ pass: 0, fail: 1, warn: 1, error: 0, skip: 0 });
    expect(r.cluster.results.map((x) => [x.rule, x.result, x.severity])).to.deep.equal([
      ["RBAC-WILDCARD-VERB", "fail", "critical"],
      ["CIS-4.2.1", "warn", "info"],
    ]);
    expect(r.cluster.results[0]!.resources).to.deep.equal([
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", name: "god" },
    ]);
  });

  it("maps drift to fail in the namespace's report, with reason, fields and manager", () => {
    const r = policyReports(
      withStatus({
        drift: [
          { kind: "NetworkPolicy", namespace: "a", name: "csp-p-default-deny", reason: "Missing" },
          {
            kind: "Namespace",
            name: "a",
            reason: "Modified",
            fields: ["metadata.labels.x"],
            manager: "kubectl",
          },
        ],
        summary: { namespaces: 1, managedObjects: 1, drifted: 2, findings: 0 },
      }),
      now,
    );
    expect(r.namespaced).to.have.length(1);
    expect(r.namespaced[0]!.results[0]).to.deep.include({
      rule: "DRIFT-MISSING",
      result: "fail",
      category: "networkPolicies",
      severity: "medium",
      properties: { reason: "Missing" },
    });
    expect(r.cluster.results[0]).to.deep.include({
      rule: "DRIFT-MODIFIED",
      category: "podSecurity",
      properties: { reason: "Modified", fields: "metadata.labels.x", manager: "kubectl" },
      resources: [{ apiVersion: "v1", kind: "Namespace", name: "a" }],
    });
  });

  it("maps area conditions to pass/fail/error on the policy; Ready/Compliant/ReportsPublished are no results", () => {
    const r = policyReports(
      withStatus({
        conditions: [
          cond("Ready", "True"),
          cond("Compliant", "False"),
          cond("ReportsPublished", "False"),
          cond("NetworkIsolated", "True", "Compliant", "ok"),
          cond("PodSecurityEnforced", "False", "Modified"),
          cond("EncryptionAtRest", "Unknown", "Forbidden"),
        ],
      }),
      now,
    );
    expect(r.namespaced).to.deep.equal([]);
    expect(r.cluster.summary).to.deep.equal({ pass: 1, fail: 1, warn: 0, error: 1, skip: 0 });
    expect(r.cluster.results.map((x) => [x.rule, x.result])).to.deep.equal([
      ["PodSecurityEnforced", "fail"],
      ["EncryptionAtRest", "error"],
      ["NetworkIsolated", "pass"],
    ]);
    expect(r.cluster.results[2]!.resources).to.deep.equal([
      {
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        name: "p",
        uid: "uid-p",
      },
    ]);
    const failed = policyReports(
      withStatus({ conditions: [cond("Ready", "False", "InvalidSpec", "spec.x: bad")] }),
      now,
    );
    expect(failed.cluster.results.map((x) => [x.rule, x.result, x.message])).to.deep.equal([
      ["Ready", "error", "InvalidSpec: spec.x: bad"],
    ]);
  });

  it("maps active exemptions to skip (one per namespace), expired ones to nothing", () => {
    const p = policy("p")
      .spec({
        exemptions: [
          { area: "networkPolicies", namespaces: ["legacy", "old"], reason: "migrating", ticket: "SEC-1" },
          { findingId: "RBAC-CLUSTER-ADMIN", resource: "ClusterRoleBinding/ops", reason: "break glass" },
          { findingId: "CIS-1.2.1", reason: "gone", expires: "2026-05-01T00:00:00Z" },
        ],
      })
      .build();
    const r = policyReports(withStatus({}, p), now);
    expect(r.namespaced.map((n) => [n.namespace, n.summary.skip])).to.deep.equal([
      ["legacy", 1],
      ["old", 1],
    ]);
    expect(r.namespaced[0]!.results[0]).to.deep.include({
      rule: "area:networkPolicies",
      result: "skip",
      scored: false,
      message: "exempted: migrating (SEC-1)",
      resources: [{ apiVersion: "v1", kind: "Namespace", name: "legacy" }],
    });
    expect(r.cluster.results.map((x) => [x.rule, x.result])).to.deep.equal([["RBAC-CLUSTER-ADMIN", "skip"]]);
  });

  it("is bounded: at most MAX_RESULTS_PER_REPORT listed, the rest counted; what status could not list is counted", () => {
    const exemptions = Array.from({ length: 300 }, (_, i) => ({
      findingId: `X-${String(i).padStart(3, "0")}`,
      namespaces: ["big"],
      reason: "r".repeat(5000),
    }));
    const p = policy("p").spec({ exemptions }).build();
    const r = policyReports(
      withStatus(
        { summary: { namespaces: 0, managedObjects: 0, drifted: 70, findings: 80 }, drift: [], findings: [] },
        p,
      ),
      now,
    );
    const big = r.namespaced[0]!;
    expect(big.results).to.have.length(MAX_RESULTS_PER_REPORT);
    expect(big.summary.skip).to.equal(300);
    expect(big.omitted).to.equal(300 - MAX_RESULTS_PER_REPORT);
    expect(big.results[0]!.message.length).to.be.at.most(MAX_MESSAGE_CHARS);
    expect(r.cluster.summary.fail).to.equal(150);
    expect(r.cluster.omitted).to.equal(150);
    const kind = { api: REPORT_APIS[0]!, scope: "namespaced", kind: "Report", plural: "reports" } as const;
    const owner = { apiVersion: "v", kind: "K", name: "p", uid: "u", controller: true };
    const obj = reportObject(kind, big, { name: "csp-p", labels: {}, owner });
    expect(Buffer.byteLength(JSON.stringify(obj))).to.be.below(256 * 1024);
    expect(obj.metadata.annotations).to.deep.equal({ "security.csp-operator.io/results-omitted": "200" });
  });

  it("is deterministic: the same status gives the same reports whatever the input order", () => {
    const f = (id: string, resource: string) => ({
      id,
      severity: "Low" as const,
      resource,
      message: id,
      area: "rbac",
    });
    const a = withStatus({ findings: [f("B", "Role/x/r"), f("A", "Role/y/r"), f("A", "Role/x/r")] });
    const b = withStatus({ findings: [f("A", "Role/x/r"), f("A", "Role/y/r"), f("B", "Role/x/r")] });
    expect(policyReports(a, now)).to.deep.equal(policyReports(b, now));
    expect(policyReports(a, now).namespaced.map((n) => n.results.map((x) => x.rule))).to.deep.equal([
      ["A", "B"],
      ["A"],
    ]);
  });

  it("parses resources and builds names within 253 characters", () => {
    expect(parseResource("Pod/ns/n")).to.deep.equal({
      apiVersion: "v1",
      kind: "Pod",
      namespace: "ns",
      name: "n",
    });
    expect(parseResource("Cluster/kubernetes")).to.deep.equal({ kind: "Cluster", name: "kubernetes" });
    expect(parseResource("nonsense")).to.equal(undefined);
    expect(parseResource("a/b/c/d")).to.equal(undefined);
    expect(reportName("baseline")).to.equal("csp-baseline");
    const long = reportName("x".repeat(253));
    expect(long.length).to.be.at.most(253);
    expect(long).to.not.equal(reportName(`${"x".repeat(252)}y`));
  });
});

describe("report kinds and objects", () => {
  const content = policyReports(withStatus({ conditions: [cond("NetworkIsolated", "True")] }), now).cluster;
  const owner = {
    apiVersion: "security.csp-operator.io/v1alpha1",
    kind: "ClusterSecurityPolicy",
    name: "p",
    uid: "u1",
    controller: true,
  };
  const meta = { name: "csp-p", labels: { "app.kubernetes.io/managed-by": "csp-operator" }, owner };

  it("finds report kinds in discovery by plural, kind and scope", () => {
    const [openreports, wg] = REPORT_APIS;
    expect(
      kindsInDiscovery(openreports!, [
        { name: "reports", kind: "Report", namespaced: true },
        { name: "clusterreports", kind: "ClusterReport", namespaced: false },
      ]).map((k) => [k.kind, k.scope]),
    ).to.deep.equal([
      ["Report", "namespaced"],
      ["ClusterReport", "cluster"],
    ]);
    expect(
      kindsInDiscovery(wg!, [{ name: "policyreports", kind: "PolicyReport", namespaced: false }]),
    ).to.deep.equal([]);
  });

  it("writes source on openreports reports only, owned by the policy, and compares content", () => {
    const cluster = (i: number): ReportKind => ({
      api: REPORT_APIS[i]!,
      scope: "cluster",
      ...REPORT_APIS[i]!.cluster,
    });
    const or = reportObject(cluster(0), content, meta);
    const wg = reportObject(cluster(1), content, meta);
    expect(or).to.deep.include({
      apiVersion: "openreports.io/v1alpha1",
      kind: "ClusterReport",
      source: "csp-operator",
    });
    expect(wg).to.not.have.property("source");
    expect(wg.apiVersion).to.equal("wgpolicyk8s.io/v1alpha2");
    expect(or.metadata).to.not.have.property("namespace");
    expect(or.metadata.ownerReferences).to.deep.equal([owner]);
    const live = JSON.parse(JSON.stringify(or)) as typeof or;
    expect(sameReport(live, or)).to.equal(true);
    expect(sameReport({ ...live, summary: { ...live.summary, pass: 9 } }, or)).to.equal(false);
    expect(
      sameReport(
        { ...live, metadata: { ...live.metadata, ownerReferences: [{ ...owner, uid: "old" }] } },
        or,
      ),
    ).to.equal(false);
  });
});

describe("ReportsPublished", () => {
  const fake = (kinds: ReportKind[] | undefined, state?: ReturnType<ReportsPublisher["stateOf"]>) =>
    ({ kinds, detectionError: undefined, stateOf: () => state }) as unknown as ReportsPublisher;
  const kind: ReportKind = { api: REPORT_APIS[0]!, scope: "namespaced", kind: "Report", plural: "reports" };

  it("says why reports are off, pending, published or failed", () => {
    expect(reportsCondition(fake([]), "p")).to.deep.include({ status: "False", reason: "NoReportCRDs" });
    expect(reportsCondition(fake(undefined), "p")).to.deep.include({
      status: "Unknown",
      reason: "DiscoveryFailed",
    });
    expect(reportsCondition(fake([kind]), "p")).to.deep.include({ status: "Unknown", reason: "Pending" });
    expect(
      reportsCondition(
        fake([kind], { state: "Published", kinds: ["Report (openreports.io/v1alpha1)"], reports: 3 }),
        "p",
      ),
    ).to.deep.equal({
      type: "ReportsPublished",
      status: "True",
      reason: "Published",
      message: "3 report(s) in Report (openreports.io/v1alpha1)",
    });
    expect(
      reportsCondition(fake([kind], { state: "Failed", reason: "Forbidden", message: "no" }), "p"),
    ).to.deep.include({ status: "False", reason: "Forbidden" });
  });

  it("never counts against Compliant (it is about the operator's output, not the cluster)", () => {
    const p = policy("p").build();
    const s = computeStatus(
      {
        policy: p,
        spec: effectiveSpec(p),
        namespaces: 0,
        managedObjects: 0,
        drift: [],
        corrected: [],
        findings: [],
        areaConditions: [
          { type: "ReportsPublished", status: "False", reason: "NoReportCRDs", message: "off" },
        ],
        now,
      },
      undefined,
    );
    const compliant = s.conditions?.find((c) => c.type === "Compliant");
    expect(compliant).to.deep.include({ status: "True", message: "the live cluster matches the policy" });
    expect(s.conditions?.find((c) => c.type === "ReportsPublished")).to.deep.include({ status: "False" });
  });
});
