import { expect } from "chai";
import {
  accessCounters,
  accessFindings,
  accessRates,
  accessWho,
  keepSamples,
  parseWindow,
  type AccessSample,
} from "../../../src/hygiene/apiaccess.js";

const metrics = (a401: number, a403: number, failedAttempts?: number) =>
  [
    "# HELP apiserver_request_total x",
    `apiserver_request_total{code="200",verb="GET"} 1000`,
    `apiserver_request_total{code="401",verb="GET"} ${a401}`,
    `apiserver_request_total{code="403",verb="LIST"} ${a403}`,
    `apiserver_request_total{code="403",verb="GET"} 1`,
    ...(failedAttempts === undefined
      ? []
      : [
          `authentication_attempts{result="failure"} ${failedAttempts}`,
          `authentication_attempts{result="success"} 900`,
        ]),
  ].join("\n");

describe("hygiene: API access monitoring", () => {
  it("parses windows", () => {
    expect(parseWindow(undefined)).to.equal(600_000);
    expect(parseWindow("30s")).to.equal(30_000);
    expect(parseWindow("2h")).to.equal(7_200_000);
    expect(parseWindow("10 m")).to.equal(undefined);
  });

  it("reads 401s, 403s and failed authentication attempts", () => {
    expect(accessCounters(metrics(4, 10), 0)).to.deep.equal({ at: 0, authFailures: 4, forbidden: 11 });
    expect(accessCounters(metrics(4, 10, 7), 0)).to.include({ authFailures: 7 });
  });

  it("a burst raises the rate over the window, and the rate falls once the burst leaves the window", () => {
    const w = 60_000;
    let s: AccessSample[] = [];
    const at = (t: number, f: number) => (s = keepSamples(s, { at: t, authFailures: f, forbidden: 0 }, w));
    at(0, 0);
    expect(accessRates(s, w)).to.equal(undefined);
    at(10_000, 120); // a burst of 120 failures
    const r = accessRates(s, w)!;
    expect(r.authFailuresPerMinute).to.equal(120);
    const f = accessFindings("10.0.0.1:6443", r, w, { authFailuresPerMinute: 30, forbiddenPerMinute: 30 });
    expect(f.map((x) => `${x.severity} ${x.id} ${x.resource}`)).to.deep.equal([
      "High ACCESS-AUTH-FAILURE-RATE APIServer/10.0.0.1:6443",
    ]);
    expect(f[0]!.message).to.include("120 failed").and.include("last 1m").and.include("threshold 30");
    at(40_000, 120);
    at(80_000, 120); // the window now starts at 20 s, after the burst
    expect(accessRates(s, w)!.authFailuresPerMinute).to.equal(0);
  });

  it("a counter reset (restarted API server) counts as an increase from 0: a burst right after it is reported", () => {
    const w = 60_000;
    let s = keepSamples([], { at: 0, authFailures: 500, forbidden: 9 }, w);
    s = keepSamples(s, { at: 10_000, authFailures: 3, forbidden: 0 }, w);
    expect(s).to.have.length(2);
    expect(accessRates(s, w)).to.include({ authFailuresPerMinute: 3, forbiddenPerMinute: 0 });
    // The restarted server then sees a burst of 200: the rate has it, not a negative or dropped figure.
    s = keepSamples(s, { at: 20_000, authFailures: 203, forbidden: 0 }, w);
    expect(accessRates(s, w)!.authFailuresPerMinute).to.equal(203);
    // A clock that went back starts the series again.
    expect(keepSamples(s, { at: 5_000, authFailures: 1, forbidden: 0 }, w)).to.have.length(1);
  });

  it("the findings say who, from the node agents' fresh audit-log breakdowns; stale ones are not quoted", () => {
    const now = new Date("2026-12-05T12:00:00Z");
    const top = (total: number, user: string) => ({
      total,
      users: total ? [{ name: user, count: total }] : [],
      sourceIPs: total ? [{ name: "203.0.113.7", count: total }] : [],
      resources: total ? [{ name: "list secrets in kube-system", count: total }] : [],
    });
    const breakdown = (scannedAt: Date, u: number, f: number) => ({
      version: 1 as const,
      scannedAt: scannedAt.toISOString(),
      path: "/var/log/kubernetes/audit/audit.log",
      windowMs: 600_000,
      unauthorized: top(u, "(unauthenticated)"),
      forbidden: top(f, "system:serviceaccount:web:default"),
    });
    const who = accessWho(
      [
        { node: "cp-1", value: breakdown(new Date(now.getTime() - 60_000), 40, 12) },
        { node: "cp-2", value: breakdown(new Date(now.getTime() - 3_600_000), 99, 99) },
        { node: "cp-3", problem: "not JSON" },
      ],
      now,
    );
    expect(who.authFailures).to.equal(
      "audit log on node cp-1 (/var/log/kubernetes/audit/audit.log): 40 401(s) in the last 10m; users (unauthenticated) (40); source IPs 203.0.113.7 (40); resources list secrets in kube-system (40)",
    );
    expect(who.forbidden).to.include("system:serviceaccount:web:default (12)").and.not.include("cp-2");
    const rates = { authFailuresPerMinute: 50, forbiddenPerMinute: 50, coveredMs: 600_000 };
    const f = accessFindings(
      "10.0.0.1:6443",
      rates,
      600_000,
      { authFailuresPerMinute: 30, forbiddenPerMinute: 30 },
      who,
    );
    expect(f[0]!.message).to.include("source IPs 203.0.113.7 (40)").and.not.include("see the audit log");
    expect(f[1]!.message).to.include("users system:serviceaccount:web:default (12)");
    expect(accessWho([], now)).to.deep.equal({});
  });
});
