import { expect } from "chai";
import type { CheckResult } from "../../../src/cis/check.js";
import { controlPlaneReport } from "../../../src/cis/incluster.js";
import { agentFileChecks, agentReportConfigMap } from "../../../src/evidence/agentreports.js";

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
    const cm = agentReportConfigMap("cp-1", [], results);
    expect(agentFileChecks([cm])).to.deep.equal([{ node: "cp-1", results }]);
    const broken = agentReportConfigMap("cp-2", []);
    broken.data = { ...broken.data, "cis-files.json": '[{"id":"1.1.1","status":"Maybe"}, 7]' };
    const noChecks = agentReportConfigMap("cp-3", []);
    expect(agentFileChecks([broken, noChecks])).to.deep.equal([]);
  });

  it("becomes findings on the node and fails ControlPlaneHardened", () => {
    const [agent] = agentFileChecks([agentReportConfigMap("cp-1", [], results)]);
    const report = controlPlaneReport(
      { targets: [{ resource: `Node/${agent!.node}`, results: agent!.results }], problems: [], notes: [] },
      undefined,
      new Date("2026-11-23T00:00:00Z"),
    );
    expect(report.findings.map((f) => [f.id, f.resource])).to.deep.equal([["CIS-1.1.1", "Node/cp-1"]]);
    expect(report.condition).to.include({ type: "ControlPlaneHardened", status: "False" });
  });
});
