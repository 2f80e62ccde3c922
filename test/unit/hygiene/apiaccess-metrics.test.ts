import { expect } from "chai";
import type { ClusterSecurityPolicy } from "../../../src/api/v1alpha1/policy.js";
import {
  accessCounters,
  AccessRateBoard,
  accessRates,
  keepSamples,
  type AccessSample,
} from "../../../src/hygiene/apiaccess.js";
import { OperatorMetrics, type MetricsSource } from "../../../src/observability/metrics.js";

const policy = (name: string, monitoring: boolean): ClusterSecurityPolicy => ({
  apiVersion: "security.csp-operator.io/v1alpha1",
  kind: "ClusterSecurityPolicy",
  metadata: { name },
  spec: { mode: "Audit", ...(monitoring ? { apiServerMonitoring: { window: "10m" } } : {}) },
});

function source(
  policies: () => ClusterSecurityPolicy[],
  synced = () => true,
  leader = () => true,
): MetricsSource {
  return {
    policies,
    queueDepth: () => 0,
    runningFor: () => [],
    activeWorkers: () => 0,
    maxConcurrentReconciles: () => 1,
    isLeader: leader,
    cacheSynced: synced,
  };
}

/** /metrics text with these counters (401s come from authentication_attempts when present). */
const scrape = (failed: number, forbidden: number) =>
  [
    `apiserver_request_total{code="200",verb="GET"} 5000`,
    `apiserver_request_total{code="403",verb="CREATE"} ${forbidden}`,
    `authentication_attempts{result="failure"} ${failed}`,
    `authentication_attempts{result="success"} 900`,
  ].join("\n");

/** Rates as the area computes them: two readings of one API server 10 minutes apart. */
function ratesFrom(first: [number, number], second: [number, number]) {
  let samples: AccessSample[] = [];
  samples = keepSamples(samples, accessCounters(scrape(...first), 0), 3_600_000);
  samples = keepSamples(samples, accessCounters(scrape(...second), 600_000), 3_600_000);
  return accessRates(samples, 600_000)!;
}

const lines = (text: string, name: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`))
    .sort();

describe("hygiene: API access rates as the operator's own metrics", () => {
  it("exports the rates the area computed, per policy and API server, and follows each reconcile", async () => {
    const board = new AccessRateBoard();
    const m = new OperatorMetrics({ defaultMetrics: false, accessRates: board });
    m.attach(source(() => [policy("access", true)]));
    // 300 failed authentications and 60 403s in 10 minutes on one server; nothing on the other.
    board.set("access", [
      { server: "10.0.0.1:6443", rates: ratesFrom([10, 5], [310, 65]) },
      { server: "10.0.0.2:6443", rates: ratesFrom([4, 4], [4, 4]) },
    ]);
    let text = await m.registry.metrics();
    expect(lines(text, "csp_apiserver_auth_failures_per_minute")).to.deep.equal([
      'csp_apiserver_auth_failures_per_minute{policy="access",server="10.0.0.1:6443"} 30',
      'csp_apiserver_auth_failures_per_minute{policy="access",server="10.0.0.2:6443"} 0',
    ]);
    expect(lines(text, "csp_apiserver_forbidden_per_minute")).to.deep.equal([
      'csp_apiserver_forbidden_per_minute{policy="access",server="10.0.0.1:6443"} 6',
      'csp_apiserver_forbidden_per_minute{policy="access",server="10.0.0.2:6443"} 0',
    ]);
    expect(text).to.contain("# TYPE csp_apiserver_auth_failures_per_minute gauge");

    // The next reconcile: the second server left the `kubernetes` Service (or could not be read).
    board.set("access", [{ server: "10.0.0.1:6443", rates: ratesFrom([310, 65], [370, 65]) }]);
    text = await m.registry.metrics();
    expect(lines(text, "csp_apiserver_auth_failures_per_minute")).to.deep.equal([
      'csp_apiserver_auth_failures_per_minute{policy="access",server="10.0.0.1:6443"} 6',
    ]);
    expect(lines(text, "csp_apiserver_forbidden_per_minute")).to.deep.equal([
      'csp_apiserver_forbidden_per_minute{policy="access",server="10.0.0.1:6443"} 0',
    ]);

    // An invalid spec (the area reports Unknown) leaves no stale figure behind.
    board.set("access", []);
    text = await m.registry.metrics();
    expect(lines(text, "csp_apiserver_auth_failures_per_minute")).to.deep.equal([]);
  });

  it("drops a deleted policy or one no longer using the area, but only with a synced cache", async () => {
    const board = new AccessRateBoard();
    let policies = [policy("a", true), policy("b", true), policy("c", true)];
    let synced = true;
    const m = new OperatorMetrics({ defaultMetrics: false, accessRates: board });
    m.attach(
      source(
        () => (synced ? policies : []),
        () => synced,
      ),
    );
    const rates = ratesFrom([0, 0], [600, 0]);
    for (const p of ["a", "b", "c"]) board.set(p, [{ server: "10.0.0.1:6443", rates }]);
    expect(lines(await m.registry.metrics(), "csp_apiserver_auth_failures_per_minute")).to.have.length(3);

    // While the cache is not synced nothing is exported and nothing forgotten.
    synced = false;
    expect(lines(await m.registry.metrics(), "csp_apiserver_auth_failures_per_minute")).to.deep.equal([]);
    expect(board.policies().sort()).to.deep.equal(["a", "b", "c"]);

    // b deleted, c without spec.apiServerMonitoring: gone from the scrape and from the board.
    synced = true;
    policies = [policy("a", true), policy("c", false)];
    expect(lines(await m.registry.metrics(), "csp_apiserver_auth_failures_per_minute")).to.deep.equal([
      'csp_apiserver_auth_failures_per_minute{policy="a",server="10.0.0.1:6443"} 60',
    ]);
    expect(board.policies()).to.deep.equal(["a"]);
  });

  it("a replica that is not the leader (it lost the Lease) exports no rates", async () => {
    const board = new AccessRateBoard();
    let leader = true;
    const m = new OperatorMetrics({ defaultMetrics: false, accessRates: board });
    m.attach(
      source(
        () => [policy("a", true)],
        () => true,
        () => leader,
      ),
    );
    board.set("a", [{ server: "10.0.0.1:6443", rates: ratesFrom([0, 0], [0, 120]) }]);
    expect(lines(await m.registry.metrics(), "csp_apiserver_forbidden_per_minute")).to.deep.equal([
      'csp_apiserver_forbidden_per_minute{policy="a",server="10.0.0.1:6443"} 12',
    ]);
    leader = false;
    expect(lines(await m.registry.metrics(), "csp_apiserver_forbidden_per_minute")).to.deep.equal([]);
  });
});
