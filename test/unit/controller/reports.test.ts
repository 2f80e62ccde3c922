import { expect } from "chai";
import fc from "fast-check";
import { reportsCondition } from "../../../src/controller/reports.js";
import { describeKind, kindsInDiscovery, REPORT_APIS, type ReportKind } from "../../../src/reports/kinds.js";
import type { PublishState } from "../../../src/reports/publisher.js";

const ALL: ReportKind[] = REPORT_APIS.flatMap((api) =>
  kindsInDiscovery(api, [
    { name: api.namespaced.plural, kind: api.namespaced.kind, namespaced: true },
    { name: api.cluster.plural, kind: api.cluster.kind, namespaced: false },
  ]),
);
const [report, clusterReport, policyReport] = ALL as [ReportKind, ReportKind, ReportKind, ReportKind];

/** What reportsCondition reads of the publisher: the kinds installed now and the policy's last publish. */
function publisher(kinds: readonly ReportKind[] | undefined, state?: PublishState, detectionError?: string) {
  return { kinds, detectionError, stateOf: (p: string) => (p === "p" ? state : undefined) };
}
const published = (kinds: readonly ReportKind[], reports = 3): PublishState => ({
  state: "Published",
  kinds: kinds.map(describeKind),
  reports,
});

describe("ReportsPublished condition", () => {
  it("True when the last publish covered exactly the kinds installed now", () => {
    const c = reportsCondition(publisher([report, clusterReport], published([report, clusterReport])), "p");
    expect(c).to.deep.include({ status: "True", reason: "Published" });
    expect(c.message).to.equal(
      "3 report(s) in Report (openreports.io/v1alpha1), ClusterReport (openreports.io/v1alpha1)",
    );
  });

  it("Pending, not True, when a report CRD was found after the last publish (its reports do not exist yet)", () => {
    // Discovery saw Report first and the publish landed; then ClusterReport appeared.
    const c = reportsCondition(publisher([report, clusterReport], published([report])), "p");
    expect(c).to.deep.include({ status: "Unknown", reason: "Pending" });
    expect(c.message).to.contain("not yet published to Report (openreports.io/v1alpha1), ClusterReport");
    expect(c.message).to.contain("3 report(s) in Report (openreports.io/v1alpha1) until then");
  });

  it("Pending when a report CRD was removed since the last publish", () => {
    const c = reportsCondition(publisher([report], published([report, clusterReport])), "p");
    expect(c).to.deep.include({ status: "Unknown", reason: "Pending" });
  });

  it("True only when the published kinds are the installed kinds (any subsets)", () => {
    const subset = fc.subarray(ALL);
    fc.assert(
      fc.property(
        subset.filter((s) => s.length > 0),
        subset,
        (now, done) => {
          const c = reportsCondition(publisher(now, published(done)), "p");
          const same =
            now.length === done.length &&
            now.every((k) => done.some((d) => describeKind(d) === describeKind(k)));
          expect(c.status === "True").to.equal(same);
        },
      ),
    );
  });

  it("no state, a failed publish, no CRDs, discovery never answered", () => {
    expect(reportsCondition(publisher([policyReport]), "p")).to.deep.include({
      status: "Unknown",
      reason: "Pending",
    });
    const failed: PublishState = { state: "Failed", reason: "Forbidden", message: "reports is forbidden" };
    expect(reportsCondition(publisher([report], failed), "p")).to.deep.include({
      status: "False",
      reason: "Forbidden",
    });
    expect(reportsCondition(publisher([], published([report])), "p")).to.deep.include({
      status: "False",
      reason: "NoReportCRDs",
    });
    expect(reportsCondition(publisher(undefined, undefined, "connection refused"), "p")).to.deep.include({
      status: "Unknown",
      reason: "DiscoveryFailed",
      message: "which report CRDs are installed is not known yet: connection refused",
    });
  });
});
