import { expect } from "chai";
import { readFileSync } from "node:fs";
import { parse } from "yaml";

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rule = parse(readFileSync("config/prometheus/prometheus_rule.yaml", "utf8")) as {
  spec: { groups: { rules: Rule[] }[] };
};
const alerts = rule.spec.groups.flatMap((g) => g.rules);
const readme = readFileSync("README.md", "utf8");
const promtoolTests = parse(readFileSync("test/prometheus/alerts.test.yaml", "utf8")) as {
  tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
};

describe("monitoring bundle (config/prometheus)", () => {
  it("ships the alerts the issue asks for", () => {
    expect(alerts.map((a) => a.alert).sort()).to.deep.equal([
      "CSPDriftNotRepaired",
      "CSPEncryptionRotationStuck",
      "CSPExemptionExpiringSoon",
      "CSPHighSeverityFindings",
      "CSPNoLeader",
      "CSPOperatorDown",
      "CSPPolicyNotReady",
      "CSPReconcileErrors",
      "CSPWatchStale",
    ]);
  });

  for (const a of alerts) {
    it(`${a.alert}: severity, summary, description, a README runbook and promtool cases firing and quiet`, () => {
      expect(a.labels?.["severity"]).to.match(/^(critical|warning|ticket)$/);
      expect(a.annotations?.["summary"]).to.be.a("string").and.not.be.empty;
      expect(a.annotations?.["description"]).to.be.a("string").and.not.be.empty;
      if (/\bpolicy\b/.test(a.expr))
        expect(a.annotations?.["description"]).to.contain("{{ $labels.policy }}");
      const anchor = `runbook-${a.alert.toLowerCase()}`;
      expect(a.annotations?.["runbook_url"]).to.match(new RegExp(`#${anchor}$`));
      expect(readme).to.contain(`#### Runbook: ${a.alert}\n`);
      const cases = promtoolTests.tests
        .flatMap((t) => t.alert_rule_test)
        .filter((c) => c.alertname === a.alert);
      expect(
        cases.some((c) => c.exp_alerts.length > 0),
        "a firing case",
      ).to.equal(true);
      expect(
        cases.some((c) => c.exp_alerts.length === 0),
        "a quiet case",
      ).to.equal(true);
    });
  }

  it("the dashboard is valid Grafana JSON whose every panel has a query", () => {
    const d = JSON.parse(readFileSync("config/prometheus/dashboard.json", "utf8")) as {
      uid: string;
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    expect(d.uid).to.equal("csp-operator");
    for (const p of d.panels) expect(p.targets?.length, p.title).to.be.greaterThan(0);
  });
});
