import { expect } from "chai";
import type { CheckResult } from "../../../src/cis/checks/check.js";
import { controlPlaneReport, withAgentResults } from "../../../src/cis/gather/incluster.js";
import { agentCheckResults, agentReportConfigMap } from "../../../src/evidence/agentreports.js";

const results: CheckResult[] = [
  {
    id: "1.1.1",
    title: "API server pod specification file permissions",
    status: "Fail",
    evidence: "mode 0644",
  },
  {
    id: "1.1.2",
    title: "API server pod specification file ownership",
    status: "Pass",
    evidence: "root:root",
  },
  { id: "4.1.3", title: "proxy kubeconfig permissions", status: "NotApplicable", evidence: "no such file" },
];

describe("agent file-check reports", () => {
  it("round-trips through the node's report ConfigMap and skips malformed entries", () => {
    const apiserver: CheckResult[] = [
      { id: "1.2.28", title: "encryption providers", status: "Fail", evidence: "identity first" },
    ];
    const cm = agentReportConfigMap("cp-1", [], { files: results, apiserver });
    expect(agentCheckResults([cm], "files")).to.deep.equal([{ node: "cp-1", results }]);
    expect(agentCheckResults([cm], "apiserver")).to.deep.equal([{ node: "cp-1", results: apiserver }]);
    const broken = agentReportConfigMap("cp-2", []);
    broken.data = { ...broken.data, "cis-files.json": '[{"id":"1.1.1","status":"Maybe"}, 7]' };
    const noChecks = agentReportConfigMap("cp-3", []);
    expect(agentCheckResults([broken, noChecks], "files")).to.deep.equal([]);
  });

  it("becomes findings on the node and fails ControlPlaneHardened", () => {
    const [agent] = agentCheckResults([agentReportConfigMap("cp-1", [], { files: results })], "files");
    const report = controlPlaneReport(
      { targets: [{ resource: `Node/${agent!.node}`, results: agent!.results }], problems: [], notes: [] },
      undefined,
      new Date("2026-11-23T00:00:00Z"),
    );
    expect(report.findings.map((f) => [f.id, f.resource])).to.deep.equal([["CIS-1.1.1", "Node/cp-1"]]);
    expect(report.condition).to.include({ type: "ControlPlaneHardened", status: "False" });
  });

  it("supersedes the mirror pod's evaluation of the node's API server with the agent's, and adds node files", () => {
    const mirror = {
      resource: "Pod/kube-system/kube-apiserver-cp-1",
      results: [
        { id: "1.2.28", title: "encryption", status: "Unknown" as const, evidence: "needs the agent" },
      ],
    };
    const other = { resource: "Pod/kube-system/kube-apiserver-cp-2", results: mirror.results };
    const apiserver: CheckResult[] = [
      { id: "1.2.28", title: "encryption", status: "Fail", evidence: "identity" },
    ];
    const cm = agentReportConfigMap("cp-1", [], { files: results, apiserver });
    const merged = withAgentResults({ targets: [mirror, other], problems: [], notes: [] }, [cm], true);
    expect(merged.targets.map((t) => [t.resource, t.results[0]?.status])).to.deep.equal([
      ["Pod/kube-system/kube-apiserver-cp-2", "Unknown"],
      ["Node/cp-1", "Fail"],
      ["Pod/kube-system/kube-apiserver-cp-1", "Fail"],
    ]);
    const disabled = withAgentResults({ targets: [], problems: [], notes: [] }, [cm], false);
    expect(disabled.targets.map((t) => t.resource)).to.deep.equal(["Node/cp-1"]);
  });

  it("makes the node the owner of its report when the agent knows the node's uid", () => {
    expect(agentReportConfigMap("cp-1", [], {}, "uid-1").metadata?.ownerReferences).to.deep.equal([
      { apiVersion: "v1", kind: "Node", name: "cp-1", uid: "uid-1" },
    ]);
    expect(agentReportConfigMap("cp-1", []).metadata).to.not.have.property("ownerReferences");
  });
});
