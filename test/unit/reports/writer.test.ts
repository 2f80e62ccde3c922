import { expect } from "chai";
import { KubeConfig } from "@kubernetes/client-node";
import { namespaceGone, ReportClient, type LiveReport } from "../../../src/cluster/reports.js";
import { apiError, RestClient, type RequestOptions } from "../../../src/cluster/rest.js";
import { ownerReference, ownershipLabels } from "../../../src/desired/metadata.js";
import { kindsInDiscovery, REPORT_APIS, reportObject, type ReportKind } from "../../../src/reports/kinds.js";
import { policyReports, reportName } from "../../../src/reports/model.js";
import {
  planKind,
  ReportNotOwnedError,
  ReportWriter,
  ReportWritesFailedError,
} from "../../../src/reports/writer.js";
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

/** The API server's answers to report calls, by method and namespace: an error thrown or a JSON body. */
class ScriptedRest extends RestClient {
  calls: { method: string; path: string; body?: unknown }[] = [];
  constructor(private readonly answer: (method: string, ns: string | undefined) => unknown) {
    super(new KubeConfig());
  }
  // eslint-disable-next-line @typescript-eslint/require-await -- an async answer: a throw is a rejection
  override async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    this.calls.push({ method, path, ...(opts.body !== undefined ? { body: opts.body } : {}) });
    return this.answer(method, /\/namespaces\/([^/]+)\//.exec(path)?.[1]) as T;
  }
}

const terminating = () =>
  apiError(403, {
    kind: "Status",
    reason: "Forbidden",
    message: "unable to create new content in namespace aa because it is being terminated",
    details: {
      name: "x",
      kind: "reports",
      causes: [{ reason: "NamespaceTerminating", field: "metadata.namespace" }],
    },
  });
const notFound = () => apiError(404, { kind: "Status", reason: "NotFound", details: { kind: "reports" } });

function driftPolicy(namespaces: string[]) {
  return {
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
}

describe("policy reports: publish (scripted API answers)", () => {
  it("a namespace being deleted (403 NamespaceTerminating) is like a missing one", async () => {
    expect(namespaceGone(terminating())).to.equal(true);
    expect(namespaceGone(apiError(404, { details: { kind: "namespaces" } }))).to.equal(true);
    expect(namespaceGone(apiError(403, { reason: "Forbidden" }))).to.equal(false);
    expect(namespaceGone(notFound())).to.equal(false);
    const rest = new ScriptedRest((method, ns) => {
      if (method === "GET" && ns === undefined) return { items: [] };
      if (method === "GET") throw notFound();
      if (method === "PATCH" && ns === "aa") throw terminating();
      return {};
    });
    const out = await new ReportWriter(new ReportClient(rest)).publish(
      driftPolicy(["aa", "bb", "cc"]),
      [namespacedKind],
      now,
    );
    expect(out).to.deep.equal({ reports: 2, written: 2, deleted: 0 });
  });

  it("one report failing does not stop the others; the failures are thrown once, at the end", async () => {
    const rest = new ScriptedRest((method, ns) => {
      if (method === "GET" && ns === undefined) return { items: [] };
      if (method === "GET") throw notFound();
      if (method === "PATCH" && (ns === "aa" || ns === "bb"))
        throw apiError(500, { message: `webhook down for ${ns}` });
      return {};
    });
    const err: unknown = await new ReportWriter(new ReportClient(rest))
      .publish(driftPolicy(["aa", "bb", "cc"]), [namespacedKind], now)
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ReportWritesFailedError);
    expect((err as ReportWritesFailedError).errors).to.have.length(2);
    expect((err as ReportWritesFailedError).code).to.equal(500);
    expect((err as Error).message).to.match(/2 report write\(s\) failed: .*aa.*webhook down for aa; .*bb/);
    const patched = rest.calls
      .filter((c) => c.method === "PATCH")
      .map((c) => /namespaces\/(\w+)/.exec(c.path)?.[1]);
    expect(patched).to.deep.equal(["aa", "bb", "cc"]);
  });

  it("a report seen nowhere is created only: one put there after the GET is never taken over", async () => {
    const rest = new ScriptedRest((method, ns) => {
      if (method === "GET" && ns === undefined) return { items: [] };
      if (method === "GET") throw notFound();
      // A rival created a Report at aa's name between our GET and our write.
      if (method === "PATCH" && ns === "aa") throw apiError(409, { reason: "Conflict" });
      return {};
    });
    const err: unknown = await new ReportWriter(new ReportClient(rest))
      .publish(driftPolicy(["aa", "bb"]), [namespacedKind], now)
      .catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ReportNotOwnedError);
    expect((err as Error).message)
      .to.include("aa/")
      .and.include("created meanwhile");
    const writes = rest.calls.filter((c) => c.method === "PATCH");
    expect(writes).to.have.length(2);
    for (const w of writes)
      expect((w.body as { metadata: { resourceVersion?: string } }).metadata.resourceVersion).to.equal("1");
  });

  it("a report of the policy that exists is applied as usual (no create-only precondition)", async () => {
    const { uid, wanted } = wantedFor(["aa"]);
    const mine = live(wanted[0] as LiveReport, uid);
    mine.summary = { pass: 0, fail: 9, warn: 0, error: 0, skip: 0 };
    const rest = new ScriptedRest((method) => (method === "GET" ? { items: [mine] } : {}));
    const p = driftPolicy(["aa"]);
    p.metadata.uid = uid;
    const out = await new ReportWriter(new ReportClient(rest)).publish(p, [namespacedKind], now);
    expect(out.written).to.equal(1);
    const [w] = rest.calls.filter((c) => c.method === "PATCH");
    expect((w!.body as { metadata: { resourceVersion?: string } }).metadata.resourceVersion).to.equal(
      undefined,
    );
  });
});
