import { expect } from "chai";
import type { LiveReport } from "../../../src/cluster/reports.js";
import { ownerReference, ownershipLabels } from "../../../src/desired/metadata.js";
import { kindsInDiscovery, REPORT_APIS, reportObject, type ReportKind } from "../../../src/reports/kinds.js";
import { policyReports, reportName } from "../../../src/reports/model.js";
import { planKind } from "../../../src/reports/writer.js";
import { policy } from "../builders/policy.js";

const now = new Date("2026-06-01T00:00:00Z");
const [namespacedKind] = kindsInDiscovery(REPORT_APIS[0]!, [
  { name: "reports", kind: "Report", namespaced: true },
]) as [ReportKind];

/** Policy p with one drifted object in each of the given namespaces, and its wanted namespaced reports. */
function wantedFor(namespaces: string[]) {
  const p = {
    ...policy("p").build(),
    status: {
      drift: namespaces.map((ns) => ({
        kind: "NetworkPolicy",
        namespace: ns,
        name: "csp-p-default-deny",
        reason: "Missing" as const,
      })),
      summary: { namespaces: namespaces.length, managedObjects: 0, drifted: namespaces.length, findings: 0 },
    },
  };
  const meta = { name: reportName("p"), labels: ownershipLabels("p"), owner: ownerReference(p) };
  return {
    uid: p.metadata.uid!,
    wanted: policyReports(p, now).namespaced.map((c) => reportObject(namespacedKind, c, meta)),
  };
}

const live = (o: LiveReport, uid: string | undefined): LiveReport => ({
  ...structuredClone(o),
  metadata: {
    ...o.metadata,
    uid: `live-${o.metadata?.namespace}`,
    ownerReferences: uid ? [{ uid, controller: true }] : [],
  },
});

describe("policy reports: publish plan (pure)", () => {
  it("writes only what differs, keeps what is as wanted, deletes only this policy's stale reports", () => {
    const { uid, wanted } = wantedFor(["a", "b", "c"]);
    const [a, b] = wanted as unknown as [LiveReport, LiveReport];
    const changed = live(b, uid);
    changed.summary = { pass: 0, fail: 9, warn: 0, error: 0, skip: 0 };
    const staleOurs = live({ metadata: { name: reportName("p"), namespace: "gone" } }, uid);
    const staleOther = live({ metadata: { name: reportName("p"), namespace: "other" } }, "someone-else");
    const plan = planKind(namespacedKind, wanted, [live(a, uid), changed, staleOurs, staleOther], uid);
    expect(plan.unchanged).to.equal(1);
    expect(plan.apply.map((r) => r.metadata.namespace)).to.deep.equal(["b", "c"]);
    expect(plan.delete.map((r) => r.metadata?.namespace)).to.deep.equal(["gone"]);
    expect(plan.notOurs).to.deep.equal([]);
  });

  it("never writes over a report at one of its names that another owner holds; names it instead", () => {
    const { uid, wanted } = wantedFor(["a", "b"]);
    const foreign = live(wanted[0] as LiveReport, "someone-else");
    const unowned = live(wanted[1] as LiveReport, undefined);
    const plan = planKind(namespacedKind, wanted, [foreign, unowned], uid);
    expect(plan.apply).to.deep.equal([]);
    expect(plan.delete).to.deep.equal([]);
    expect(plan.notOurs).to.deep.equal([
      `Report (openreports.io/v1alpha1) a/${reportName("p")}`,
      `Report (openreports.io/v1alpha1) b/${reportName("p")}`,
    ]);
  });

  it("an empty cluster: every wanted report is written, nothing deleted", () => {
    const { uid, wanted } = wantedFor(["a", "b"]);
    const plan = planKind(namespacedKind, wanted, [], uid);
    expect(plan.apply).to.have.length(2);
    expect(plan).to.deep.include({ delete: [], unchanged: 0, notOurs: [] });
  });
});
