// -o junit and -o kube-bench: the layouts other pipelines parse.
import { expect } from "chai";
import type { CheckResult } from "../../../src/cis/checks/check.js";
import { renderJunit, renderKubeBench, sectionOf } from "../../../src/cis/output/formats.js";
import { runCheckCommand } from "../../../src/cis/command.js";

const RESULTS: CheckResult[] = [
  {
    id: "1.2.1",
    title: "Ensure that the --anonymous-auth argument is set to false",
    status: "Fail",
    evidence: 'x < y & "z"',
  },
  {
    id: "1.2.20",
    title: "Ensure that the --request-timeout argument is set as appropriate",
    status: "Manual",
    evidence: "60s",
  },
  {
    id: "2.7",
    title: "Ensure that a unique Certificate Authority is used for etcd",
    status: "Unknown",
    evidence: "cannot read",
  },
  {
    id: "4.2.1",
    title: "Ensure that the --anonymous-auth argument is set to false",
    status: "Pass",
    evidence: "ok\u0007",
  },
  {
    id: "4.1.3",
    title: "If proxy kubeconfig file exists ensure permissions are set to 600",
    status: "NotApplicable",
    evidence: "none",
  },
];

interface KbResult {
  test_number: string;
  status: string;
  scored: boolean;
  actual_value: string;
  reason?: string;
  type: string;
}
interface KbGroup {
  section: string;
  pass: number;
  fail: number;
  warn: number;
  info: number;
  results: KbResult[];
}
interface Kb {
  Controls: { id: string; version: string; node_type: string; tests: KbGroup[]; total_fail: number }[];
  Totals: { total_pass: number; total_fail: number; total_warn: number; total_info: number };
}

describe("cis/output formats", () => {
  it("sections: 1.2.6 -> 1.2, 2.7 -> 2", () => {
    expect(sectionOf("1.2.6")).to.equal("1.2");
    expect(sectionOf("2.7")).to.equal("2");
    expect(sectionOf("5.1.13")).to.equal("5.1");
  });

  it("junit: a testsuite per section, a testcase per check, escaped, failure/error/skipped by status", () => {
    const x = renderJunit(RESULTS);
    expect(
      x.startsWith(
        '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="cis-1.12" tests="5" failures="1" errors="1" skipped="2">',
      ),
    ).to.equal(true);
    expect(x.match(/<testcase /g)).to.have.length(5);
    expect(x.match(/<testsuite /g)).to.have.length(4);
    expect(x).to.contain('<failure message="x &lt; y &amp; &quot;z&quot;" type="Fail">');
    expect(x).to.contain('<error message="cannot read" type="Unknown">');
    expect(x).to.contain('<skipped message="Manual: 60s"/>');
    expect(x).to.contain('<skipped message="NotApplicable: none"/>');
    expect(x).to.not.contain("\u0007");
    expect(x.trimEnd().endsWith("</testsuites>")).to.equal(true);
  });

  it("kube-bench: its --json layout with Controls, sections, test_number/status and Totals", () => {
    const kb = JSON.parse(renderKubeBench(RESULTS)) as Kb;
    expect(kb.Controls.map((c) => [c.id, c.node_type])).to.deep.equal([
      ["1", "master"],
      ["2", "etcd"],
      ["4", "node"],
    ]);
    expect(kb.Controls[0]!.version).to.equal("cis-1.12");
    const api = kb.Controls[0]!.tests[0]!;
    expect(api).to.deep.include({ section: "1.2", pass: 0, fail: 1, warn: 1, info: 0 });
    expect(api.results.map((r) => [r.test_number, r.status, r.scored])).to.deep.equal([
      ["1.2.1", "FAIL", false], // the benchmark marks 1.2.1 and 1.2.20 Manual: not scored
      ["1.2.20", "WARN", false],
    ]);
    expect(kb.Controls[1]!.tests[0]!.results[0]).to.deep.include({
      status: "WARN",
      reason: "Unknown: cannot read",
      type: "manual",
      scored: false,
    });
    expect(kb.Totals).to.deep.equal({ total_pass: 1, total_fail: 1, total_warn: 2, total_info: 1 });
    const keys = Object.keys(api.results[0]!);
    for (const k of [
      "test_number",
      "test_desc",
      "audit",
      "AuditEnv",
      "AuditConfig",
      "type",
      "remediation",
      "test_info",
      "status",
      "actual_value",
      "scored",
      "IsMultiple",
      "expected_result",
    ])
      expect(keys).to.include(k);
  });

  it("kube-bench: an undetermined scored check is FAIL (totals agree with the exit code); a manual Pass is WARN", () => {
    const rs: CheckResult[] = [
      { id: "4.2.1", title: "anonymous auth", status: "Unknown", evidence: "cannot read the kubelet config" },
      { id: "2.7", title: "unique CA", status: "Pass", evidence: "own CA" },
    ];
    const kb = JSON.parse(renderKubeBench(rs)) as Kb;
    const all = kb.Controls.flatMap((c) => c.tests.flatMap((t) => t.results)).sort((a, b) =>
      a.test_number.localeCompare(b.test_number),
    );
    expect(all.map((r) => [r.test_number, r.status, r.scored])).to.deep.equal([
      ["2.7", "WARN", false],
      ["4.2.1", "FAIL", true],
    ]);
    expect(all[1]!.reason).to.equal("Unknown: cannot read the kubelet config");
    expect(kb.Totals).to.deep.include({ total_fail: 1, total_warn: 1 });
  });

  it("junit: noncharacters and lone surrogates are written as visible escapes (the XML stays well-formed)", () => {
    const x = renderJunit([
      {
        id: "1.4.2",
        title: "bind address",
        status: "Fail",
        evidence: "--bind-address=127.0.0.1\ufffe\uffff \ud800 x",
      },
    ]);
    expect(x).not.to.match(/[\ufffe\uffff\ud800-\udfff]/);
    expect(x).to.include("127.0.0.1\\ufffe\\uffff \\ud800 x");
  });

  it("the command prints either format, with the same exit code", async () => {
    const fix = new URL("../../fixtures/cis/", import.meta.url).pathname;
    for (const o of ["junit", "kube-bench"]) {
      let stdout = "";
      const code = await runCheckCommand(
        [
          "--etcd-manifest",
          `${fix}components/weak/etcd.yaml`,
          "--host-root",
          `${fix}pkiroot`,
          `--output=${o}`,
        ],
        { stdout: (s) => (stdout += s), stderr: () => undefined },
      );
      expect(code, o).to.equal(1);
      if (o === "junit") expect(stdout.match(/<failure /g), o).to.have.length(7);
      else expect((JSON.parse(stdout) as Kb).Totals.total_fail, o).to.equal(7);
    }
  });
});
