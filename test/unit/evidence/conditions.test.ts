import { expect } from "chai";
import { keyFromBytes } from "../../../src/desired/encryption/keys.js";
import {
  agentReportConfigMap,
  fileReports,
  judgeDelivery,
  type FileReport,
} from "../../../src/evidence/agentreports.js";
import { auditPolicyCondition } from "../../../src/evidence/auditpolicy.js";
import {
  auditedEncryptionCondition,
  enforcedEncryptionCondition,
  keyRingEvidence,
  keyRingMissingCondition,
} from "../../../src/evidence/encryption.js";

const report = (over: Partial<FileReport> = {}): FileReport => ({
  file: "audit-policy",
  source: "ConfigMap/csp-system/csp-p-audit-policy",
  path: "/etc/kubernetes/csp-operator/audit-policy.yaml",
  sha256: "sha256:aaa",
  writtenAt: "2026-06-01T00:00:00Z",
  node: "cp-1",
  ...over,
});
const cm = { namespace: "csp-system", name: "csp-p-audit-policy" };

describe("evidence-based conditions", () => {
  it("AuditPolicyApplied is True only when an agent reports the rendered hash", () => {
    const reports = fileReports([agentReportConfigMap("cp-1", [report()])]);
    expect(auditPolicyCondition(cm, "sha256:aaa", reports, true)).to.deep.include({
      status: "True",
      reason: "Delivered",
    });
    const stale = auditPolicyCondition(cm, "sha256:bbb", reports, true);
    expect(stale).to.deep.include({ status: "False", reason: "NotDelivered" });
    const none = auditPolicyCondition(cm, "sha256:aaa", [], true);
    expect(none).to.deep.include({ status: "Unknown", reason: "NotDelivered" });
    expect(none.message).to.include("ConfigMap csp-system/csp-p-audit-policy");
    expect(none.message).to.include("--audit-policy-file");
    expect(none.message).to.include("config/agent");
    expect(auditPolicyCondition(cm, "sha256:aaa", reports, false).message).to.match(/^Audit mode/);
  });

  it("delivery counts every expected control-plane node, not only the agents that reported", () => {
    const src = "Secret/csp-system/csp-p-encryption";
    const r = report({ file: "encryption-config", source: src, node: "cp-1" });
    // cp-2's agent never reported: the file is not proven on cp-2.
    const d = judgeDelivery(src, "sha256:aaa", [r], ["cp-1", "cp-2"]);
    expect(d.delivered).to.equal(false);
    expect(d.message).to.include("cp-2");
    expect(judgeDelivery(src, "sha256:aaa", [r], ["cp-1"]).delivered).to.equal(true);
    // No control-plane node known: nothing is proven.
    expect(judgeDelivery(src, "sha256:aaa", [r], []).delivered).to.equal(false);
  });

  it("a missing key-ring Secret is refused when an agent or the API server shows keys existed", () => {
    const src = "Secret/csp-system/csp-p-encryption";
    const delivered = report({
      file: "encryption-config",
      source: src,
      path: "/etc/kubernetes/csp-operator/encryption-config.yaml",
      keys: ["aescbc/key-1"],
    });
    const enc = {
      resource: "secrets",
      type: "from_storage" as const,
      prefix: "k8s:enc:aescbc:v1:",
      status: "OK",
      count: 3,
    };
    expect(keyRingEvidence(src, [], { loaded: [], transformations: [] }, ["secrets"])).to.deep.equal([]);
    expect(keyRingEvidence(src, [delivered], undefined, ["secrets"])[0]).to.include("aescbc/key-1");
    expect(keyRingEvidence(src, [], { loaded: [], transformations: [enc] }, ["secrets"])).to.have.length(1);
    // Another policy's file, or encryption of a resource this policy does not name, is not this ring.
    expect(
      keyRingEvidence(src, [{ ...delivered, source: "Secret/csp-system/other" }], undefined, ["secrets"]),
    ).to.deep.equal([]);
    expect(keyRingEvidence(src, [], { loaded: [], transformations: [enc] }, ["configmaps"])).to.deep.equal(
      [],
    );
    const c = keyRingMissingCondition("Secret csp-system/csp-p-encryption", ["x"]);
    expect(c).to.deep.include({ status: "False", reason: "KeyRingMissing" });
    expect(c.message).to.match(/backup/);
  });

  it("counts a report's entries only for the node the report belongs to (no speaking for another node)", () => {
    const forged = agentReportConfigMap("cp-1", [report(), report({ node: "cp-2", sha256: "sha256:new" })]);
    expect(fileReports([forged]).map((r) => r.node)).to.deep.equal(["cp-1"]);
  });

  it("ignores malformed agent reports instead of failing", () => {
    const broken = agentReportConfigMap("cp-2", []);
    broken.data = { "files.json": "{not json" };
    expect(fileReports([broken, agentReportConfigMap("cp-1", [report()])])).to.have.length(1);
  });

  it("EncryptionAtRest is Unknown without metrics and True only when loaded with a primary", () => {
    const k = keyFromBytes("aescbc", "key-1", "2026-01-01T00:00:00Z", new Uint8Array(32).fill(1));
    const stable = { phase: "Stable" as const, ring: { primary: "key-1", keys: [k] } };
    const metrics = { ok: true as const, metrics: { loaded: [], transformations: [] } };
    const loaded = {
      allLoaded: true,
      servers: 1,
      loaded: 1,
      message: "1 of 1 API server(s) loaded configuration x",
    };
    expect(
      enforcedEncryptionCondition(stable, { ok: false, why: "forbidden" }, undefined, ""),
    ).to.deep.include({
      status: "Unknown",
      reason: "MetricsUnavailable",
    });
    const ok = enforcedEncryptionCondition(stable, metrics, loaded, "");
    expect(ok).to.deep.include({ status: "True", reason: "Encrypted" });
    expect(ok.message).not.to.include(k.secret);
    expect(
      enforcedEncryptionCondition(stable, metrics, { ...loaded, allLoaded: false, loaded: 0 }, ""),
    ).to.deep.include({ status: "False", reason: "ConfigNotLoaded" });
    expect(
      enforcedEncryptionCondition({ phase: "Stable", ring: { primary: "", keys: [] } }, metrics, loaded, "m"),
    ).to.deep.include({ status: "False", reason: "NotEncrypted" });
  });

  it("Audit mode judges writes: plaintext only counts while no encrypted write was seen", () => {
    const t = (prefix: string) => ({
      resource: "secrets",
      type: "to_storage" as const,
      prefix,
      status: "OK",
      count: 1,
    });
    const view = (
      transformations: ReturnType<typeof t>[],
      loaded = [{ apiServerIdHash: "a", hash: "h" }],
    ) => ({
      ok: true as const,
      metrics: { loaded, transformations },
    });
    expect(auditedEncryptionCondition(["secrets"], view([], [])).reason).to.equal("NotConfigured");
    expect(auditedEncryptionCondition(["secrets"], view([t("")])).reason).to.equal("PlaintextWrites");
    expect(auditedEncryptionCondition(["secrets"], view([t(""), t("k8s:enc:aescbc:v1:")])).status).to.equal(
      "True",
    );
    expect(auditedEncryptionCondition(["secrets"], view([])).status).to.equal("Unknown");
  });
});
