import { expect } from "chai";
import type { CheckResult } from "../../../src/cis/checks/check.js";
import { cisFindings } from "../../../src/cis/output/findings.js";
import { renderJson, renderTable, summarize } from "../../../src/cis/output/report.js";

const RESULTS: CheckResult[] = [
  {
    id: "1.2.6",
    title: "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
    status: "Fail",
    evidence: "default AlwaysAllow",
  },
  {
    id: "1.2.15",
    title: "Ensure that the --profiling argument is set to false",
    status: "Pass",
    evidence: "--profiling=false",
  },
  {
    id: "1.2.16",
    title: "Ensure that the --audit-log-path argument is set",
    status: "Unknown",
    evidence: "cannot read /p.yaml",
  },
  {
    id: "1.2.20",
    title: "Ensure that the --request-timeout argument is set as appropriate",
    status: "Manual",
    evidence: "1m0s",
  },
  {
    id: "1.2.19",
    title: "Ensure that the --audit-log-maxsize argument is set to 100 or as appropriate",
    status: "NotApplicable",
    evidence: "stdout",
  },
  {
    id: "4.2.4",
    title: "Verify that if defined, the --read-only-port argument is set to 0",
    status: "Fail",
    evidence: "10255",
  },
];

describe("cis/report", () => {
  it("renders the JSON document with exactly benchmark and results", () => {
    const doc = JSON.parse(renderJson(RESULTS)) as unknown;
    expect(doc).to.deep.equal({ benchmark: "cis-1.12", results: RESULTS });
  });

  it("renders a table with evidence under each check and a summary", () => {
    const lines = renderTable(RESULTS.slice(0, 2)).split("\n");
    expect(lines).to.deep.equal([
      "CIS Kubernetes Benchmark cis-1.12",
      "ID      STATUS  TITLE",
      "1.2.6   Fail    Ensure that the --authorization-mode argument is not set to AlwaysAllow",
      "                default AlwaysAllow",
      "1.2.15  Pass    Ensure that the --profiling argument is set to false",
      "                --profiling=false",
      "",
      "2 checks: 1 Pass, 1 Fail, 0 Manual, 0 NotApplicable, 0 Unknown",
      "",
    ]);
  });

  it("counts statuses", () => {
    expect(summarize(RESULTS)).to.deep.equal({ Pass: 1, Fail: 2, Manual: 1, NotApplicable: 1, Unknown: 1 });
  });
});

describe("cis/findings", () => {
  it("makes one finding per Fail and an Info finding per Unknown, nothing for the rest", () => {
    expect(cisFindings(RESULTS)).to.deep.equal([
      {
        id: "CIS-1.2.6",
        severity: "Critical",
        resource: "Pod/kube-system/kube-apiserver",
        message:
          "CIS 1.2.6 (Ensure that the --authorization-mode argument is not set to AlwaysAllow) fails: default AlwaysAllow",
        area: "controlPlane",
      },
      {
        id: "CIS-1.2.16",
        severity: "Info",
        resource: "Pod/kube-system/kube-apiserver",
        message:
          "CIS 1.2.16 (Ensure that the --audit-log-path argument is set) could not be evaluated: cannot read /p.yaml",
        area: "controlPlane",
      },
      {
        id: "CIS-4.2.4",
        severity: "Medium",
        resource: "Node/unknown",
        message: "CIS 4.2.4 (Verify that if defined, the --read-only-port argument is set to 0) fails: 10255",
        area: "controlPlane",
      },
    ]);
  });

  it("uses the given targets as resources", () => {
    const f = cisFindings(RESULTS, {
      apiserver: "Pod/kube-system/kube-apiserver-cp1",
      kubelet: "Node/worker-1",
    });
    expect(f.map((x) => x.resource)).to.deep.equal([
      "Pod/kube-system/kube-apiserver-cp1",
      "Pod/kube-system/kube-apiserver-cp1",
      "Node/worker-1",
    ]);
  });
});
