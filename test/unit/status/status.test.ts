import { expect } from "chai";
import { effectiveSpec } from "../../../src/desired/spec.js";
import type { Drift } from "../../../src/drift/checks.js";
import { computeStatus, MAX_LIST, statusChanged } from "../../../src/status/status.js";
import { policy } from "../builders/policy.js";

const now = new Date("2026-06-01T00:00:00Z");
const missing = (i: number): Drift => ({
  kind: "NetworkPolicy",
  namespace: `ns-${String(i).padStart(3, "0")}`,
  name: "x",
  reason: "Missing",
  area: "networkPolicies",
  message: "m",
});

describe("status", () => {
  const p = policy("p").build();
  const spec = effectiveSpec(p);
  const base = {
    policy: p,
    spec,
    namespaces: 2,
    managedObjects: 4,
    drift: [],
    corrected: [],
    findings: [],
    now,
  };

  it("is Ready and Compliant when nothing differs, with per-area conditions", () => {
    const s = computeStatus(base, undefined);
    expect(s.conditions?.map((c) => [c.type, c.status, c.reason])).to.deep.equal([
      ["Ready", "True", "Reconciled"],
      ["Compliant", "True", "Compliant"],
      ["NetworkIsolated", "True", "Compliant"],
      ["LeastPrivilegeRBAC", "True", "Compliant"],
    ]);
    expect(s.summary).to.deep.equal({
      namespaces: 2,
      managedObjects: 4,
      drifted: 0,
      findings: 0,
      // Every severity, 0 included: a merge patch would keep a count that is left out.
      findingsBySeverity: { Critical: 0, High: 0, Medium: 0, Low: 0, Info: 0 },
    });
  });

  it("bounds the findings list but counts every finding by severity", () => {
    const finding = (i: number, severity: "High" | "Low" | "Info") => ({
      id: `X-${i}`,
      severity,
      resource: `ClusterRole/r-${String(i).padStart(3, "0")}`,
      message: "m",
      area: "rbac" as const,
    });
    const findings = [
      ...Array.from({ length: 70 }, (_, i) => finding(i, "High")),
      ...Array.from({ length: 7 }, (_, i) => finding(100 + i, "Low")),
      finding(200, "Info"),
    ];
    const s = computeStatus({ ...base, findings }, undefined);
    expect(s.findings).to.have.length(MAX_LIST);
    expect(s.summary).to.deep.include({
      findings: 77,
      findingsBySeverity: { Critical: 0, High: 70, Medium: 0, Low: 7, Info: 1 },
    });
  });

  it("bounds the drift list but counts everything", () => {
    const drift = Array.from({ length: 120 }, (_, i) => missing(i));
    const s = computeStatus({ ...base, drift }, undefined);
    expect(s.drift).to.have.length(MAX_LIST);
    expect(s.summary?.drifted).to.equal(120);
    expect(s.conditions?.find((c) => c.type === "Compliant")).to.deep.include({
      status: "False",
      reason: "Drifted",
    });
    expect(s.conditions?.find((c) => c.type === "NetworkIsolated")).to.deep.include({
      status: "False",
      reason: "Missing",
    });
  });

  it("is not Compliant, nor its area, while a child is blocked by an object it may not write", () => {
    for (const reason of ["Unowned", "Conflict"] as const) {
      const blocked: Drift = { ...missing(0), reason, message: "controlled by policy q; left untouched" };
      const s = computeStatus({ ...base, drift: [blocked] }, undefined);
      expect(s.conditions?.find((c) => c.type === "Compliant")?.status).to.equal("False", reason);
      expect(s.conditions?.find((c) => c.type === "NetworkIsolated")).to.deep.include({
        status: "False",
        reason,
      });
      expect(s.conditions?.find((c) => c.type === "NetworkIsolated")?.message).to.match(/see status.drift/);
    }
  });

  it("keeps lastTransitionTime when nothing changed, so an idle cluster causes no status write", () => {
    const first = computeStatus(base, undefined);
    const second = computeStatus({ ...base, now: new Date("2026-06-02T00:00:00Z") }, first);
    expect(statusChanged(first, second)).to.equal(false);
    const drifted = computeStatus(
      { ...base, drift: [missing(1)], now: new Date("2026-06-03T00:00:00Z") },
      first,
    );
    expect(statusChanged(first, drifted)).to.equal(true);
    expect(drifted.conditions?.find((c) => c.type === "Ready")?.lastTransitionTime).to.equal(
      "2026-06-01T00:00:00Z",
    );
  });

  it("reports an error as Ready=False with its reason and Compliant=Unknown", () => {
    const s = computeStatus(
      { ...base, error: { reason: "InvalidSpec", message: "spec.networkPolicies.extra[name=x].spec: bad" } },
      undefined,
    );
    expect(s.conditions?.slice(0, 2).map((c) => [c.type, c.status, c.reason])).to.deep.equal([
      ["Ready", "False", "InvalidSpec"],
      ["Compliant", "Unknown", "InvalidSpec"],
    ]);
  });

  it("keeps the conditions areas decided from evidence when the reconcile failed", () => {
    const s = computeStatus(
      {
        ...base,
        error: { reason: "RewriteForbidden", message: "3 object(s) could not be rewritten" },
        areaConditions: [
          { type: "EncryptionAtRest", status: "False", reason: "PlaintextWrites", message: "identity first" },
        ],
      },
      undefined,
    );
    expect(s.conditions?.map((c) => [c.type, c.status, c.reason])).to.deep.equal([
      ["Ready", "False", "RewriteForbidden"],
      ["Compliant", "Unknown", "RewriteForbidden"],
      ["EncryptionAtRest", "False", "PlaintextWrites"],
    ]);
  });

  it("lets an area decide its own condition from evidence: False breaks Compliant, Unknown is named", () => {
    const withEnc = policy("p").build();
    withEnc.spec = { ...withEnc.spec, encryption: { provider: "aescbc" } };
    const encSpec = effectiveSpec(withEnc);
    const unknown = computeStatus(
      {
        ...base,
        policy: withEnc,
        spec: encSpec,
        areaConditions: [
          { type: "EncryptionAtRest", status: "Unknown", reason: "NoEvidence", message: "no metrics" },
        ],
      },
      undefined,
    );
    const compliant = unknown.conditions?.find((c) => c.type === "Compliant");
    expect(compliant).to.deep.include({ status: "True" });
    expect(compliant?.message).to.contain("unverified: EncryptionAtRest");
    expect(unknown.conditions?.find((c) => c.type === "EncryptionAtRest")).to.deep.include({
      status: "Unknown",
      reason: "NoEvidence",
    });
    const failed = computeStatus(
      {
        ...base,
        policy: withEnc,
        spec: encSpec,
        areaConditions: [
          { type: "EncryptionAtRest", status: "False", reason: "NotEncrypted", message: "identity first" },
        ],
      },
      undefined,
    );
    expect(failed.conditions?.find((c) => c.type === "Compliant")).to.deep.include({
      status: "False",
      reason: "RequirementsNotMet",
    });
    expect(failed.conditions?.filter((c) => c.type === "EncryptionAtRest")).to.have.length(1);
  });

  it("lists Info findings without counting them against compliance", () => {
    const info = {
      id: "CIS-1.2.27",
      severity: "Info" as const,
      resource: "Pod/kube-system/kube-apiserver-cp1",
      message: "could not be evaluated: the file needs the node agent",
      area: "networkPolicies",
    };
    const s = computeStatus({ ...base, findings: [info] }, undefined);
    expect(s.findings).to.have.length(1);
    expect(s.summary?.findings).to.equal(0);
    expect(s.conditions?.find((c) => c.type === "Compliant")?.status).to.equal("True");
    const high = { ...info, id: "CIS-1.2.1", severity: "High" as const };
    const t = computeStatus({ ...base, findings: [info, high] }, undefined);
    expect(t.summary?.findings).to.equal(1);
    expect(t.findings?.map((f) => f.id)).to.deep.equal(["CIS-1.2.1", "CIS-1.2.27"]);
    expect(t.conditions?.find((c) => c.type === "NetworkIsolated")).to.deep.include({
      status: "False",
      reason: "FindingsPresent",
    });
  });
});
