/** Needs the local control plane (built on first use by controlplane/build.sh). */
import { expect } from "chai";
import type { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { installGrantableRole } from "../support/grantable.js";
import { kubectlOk } from "../support/kubectl.js";
import { ReportClient } from "../../src/cluster/reports.js";
import { kindsInDiscovery, REPORT_APIS, type ReportObject } from "../../src/reports/kinds.js";

interface Summary {
  pass: number;
  fail: number;
  warn: number;
  error: number;
  skip: number;
}
interface Report {
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion: string;
    ownerReferences?: { uid: string; controller?: boolean; kind: string }[];
  };
  source?: string;
  summary: Summary;
  results: {
    rule: string;
    result: string;
    source: string;
    policy: string;
    resources?: { namespace?: string }[];
  }[];
}
interface Policy {
  metadata: { uid: string };
  status?: {
    conditions?: { type: string; status: string; reason: string; message: string }[];
    drift?: { namespace?: string; kind: string; name: string }[];
    findings?: { resource: string }[];
  };
}

const FIXTURES = "test/fixtures/reports";
const OPENREPORTS = [
  `${FIXTURES}/openreports.io_reports.yaml`,
  `${FIXTURES}/openreports.io_clusterreports.yaml`,
];
const WGPOLICY = [
  `${FIXTURES}/wgpolicyk8s.io_policyreports.yaml`,
  `${FIXTURES}/wgpolicyk8s.io_clusterpolicyreports.yaml`,
];

const POLICY = {
  apiVersion: "security.csp-operator.io/v1alpha1",
  kind: "ClusterSecurityPolicy",
  metadata: { name: "reported" },
  spec: {
    mode: "Audit",
    namespaces: { selector: { matchLabels: { team: "reports" } } },
    networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: true, allowDNS: true },
    podSecurity: { enforce: "restricted" },
    serviceAccounts: { automountDefaultToken: false },
    // "rgone" does not exist: its skip result has no report to go to, and that is no publish failure.
    exemptions: [
      {
        findingId: "RBAC-WILDCARD-VERB",
        namespaces: ["rb", "rgone"],
        reason: "vendor chart",
        ticket: "SEC-7",
      },
    ],
  },
};

describe("policy reports (real API server)", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let kc: KubeConfig;
  let operator: Operator | undefined;
  const ok = kubectlOk(() => cp);
  const policy = async () => JSON.parse(await ok(["get", "csp", "reported", "-o", "json"])) as Policy;
  const condition = async (type: string) => (await policy()).status?.conditions?.find((c) => c.type === type);
  const reports = async (resource: string) =>
    (JSON.parse(await ok(["get", resource, "-A", "-o", "json"])) as { items: Report[] }).items;
  const byNamespace = (items: Report[]) => new Map(items.map((r) => [r.metadata.namespace ?? "", r]));
  const installReportCrds = async (files: string[]) => {
    await ok(["apply", ...files.flatMap((f) => ["-f", f])]);
    // kubectl wait fails outright while a new CRD has no status.conditions yet: retry it until it succeeds.
    for (const f of files)
      await eventually(`${f} Established`, async () => {
        const r = await cp.kubectl(["wait", "--for=condition=Established", "-f", f, "--timeout=30s"]);
        return r.code === 0;
      });
  };
  /** What the policy's status says per namespace: drift and findings there ("" = cluster-scoped). */
  const failsFromStatus = (p: Policy): Map<string, number> => {
    const out = new Map<string, number>();
    const add = (ns: string | undefined) => out.set(ns ?? "", (out.get(ns ?? "") ?? 0) + 1);
    for (const d of p.status?.drift ?? []) add(d.namespace);
    for (const f of p.status?.findings ?? [])
      add(f.resource.split("/").length === 3 ? f.resource.split("/")[1] : undefined);
    return out;
  };
  /** The reports of one kind pair agree with the status: one per namespace with results, right fail/skip counts. */
  const expectMatchesStatus = async (namespaced: string, cluster: string) => {
    const p = await policy();
    const fails = failsFromStatus(p);
    const ns = byNamespace(await reports(namespaced));
    const expected = new Set([...fails.keys()].filter((n) => n !== ""));
    expect(expected).to.include.keys("ra", "rb");
    expect([...ns.keys()].sort()).to.deep.equal(
      [...expected, "rb"].filter((n, i, a) => a.indexOf(n) === i).sort(),
    );
    for (const [name, r] of ns) {
      expect(r.summary.fail, `${namespaced} in ${name}`).to.equal(fails.get(name) ?? 0);
      expect(r.summary.fail).to.be.greaterThan(0);
      expect(r.summary.skip).to.equal(name === "rb" ? 1 : 0);
      expect(r.results.every((x) => x.source === "csp-operator" && x.policy === "reported")).to.equal(true);
      expect(r.metadata.ownerReferences).to.deep.equal([
        {
          apiVersion: "security.csp-operator.io/v1alpha1",
          kind: "ClusterSecurityPolicy",
          name: "reported",
          uid: p.metadata.uid,
          controller: true,
        },
      ]);
    }
    const cl = await reports(cluster);
    expect(cl).to.have.length(1);
    const areas = (p.status?.conditions ?? []).filter(
      (c) => !["Ready", "Compliant", "ReportsPublished"].includes(c.type),
    );
    expect(cl[0]!.summary.pass).to.equal(areas.filter((c) => c.status === "True").length);
    expect(cl[0]!.summary.fail).to.equal(
      (fails.get("") ?? 0) + areas.filter((c) => c.status === "False").length,
    );
    return { ns, cluster: cl[0]! };
  };
  const versions = async (...kinds: string[]) => {
    const out: string[] = [];
    for (const k of kinds)
      for (const r of await reports(k))
        out.push(`${k} ${r.metadata.namespace ?? ""}/${r.metadata.name} ${r.metadata.resourceVersion}`);
    return out.sort();
  };

  before(async function () {
    this.timeout(240_000);
    cp = await startControlPlane({ name: "reports" });
    await installCrd(cp);
    await installGrantableRole(cp);
    for (const ns of ["ra", "rb"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "team=reports"]);
    }
    // The operator runs on its own ServiceAccount token under config/rbac: the rules for reports are tested too.
    await ok(["create", "namespace", "csp-system"]);
    await ok(["apply", "-k", "config/rbac"]);
    kc = loadKubeConfig(await cp.serviceAccountKubeconfig("csp-system", "csp-operator"));
    operator = new Operator(
      kc,
      { workers: 2, resyncMs: 600_000, reports: { recheckMs: 300, resyncMs: 1000 } },
      silentLogger(),
    );
    await operator.start();
    await ok(["apply", "-f", "-"], stringify(POLICY));
  });

  after(async () => {
    await operator?.stop();
    await cp?.stop();
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.error(`control plane logs:\n${cp.logs()}`);
  });

  it("without report CRDs: reconciles as usual and says reports are off", async () => {
    const off = await eventually("ReportsPublished=False NoReportCRDs", async () => {
      const c = await condition("ReportsPublished");
      return c?.reason === "NoReportCRDs" && c;
    });
    expect(off.status).to.equal("False");
    expect(off.message).to.contain("openreports.io/v1alpha1");
    expect(await condition("Ready")).to.deep.include({ status: "True", reason: "Evaluated" });
    // Audit mode with missing NetworkPolicies: not compliant because of drift, not because reports are off.
    const compliant = await condition("Compliant");
    expect(compliant).to.deep.include({ status: "False", reason: "Drifted" });
    expect(compliant?.message).to.not.contain("ReportsPublished");
  });

  it("openreports CRDs installed after start: Report per namespace and a ClusterReport, counts from status", async () => {
    await installReportCrds(OPENREPORTS);
    // Discovery may see one CRD before the other: True over Report alone is no sign the ClusterReport
    // exists. The signal is True over both kinds (True only once a publish to every kind seen has landed).
    const published = await eventually("ReportsPublished=True over both openreports kinds", async () => {
      const c = await condition("ReportsPublished");
      return c?.status === "True" && c.message.includes("ClusterReport (openreports.io/v1alpha1)") && c;
    });
    const { ns, cluster } = await expectMatchesStatus(
      "reports.openreports.io",
      "clusterreports.openreports.io",
    );
    expect(published.message).to.equal(
      `${ns.size + 1} report(s) in Report (openreports.io/v1alpha1), ClusterReport (openreports.io/v1alpha1)`,
    );
    expect(cluster.source).to.equal("csp-operator");
    expect(ns.get("rb")!.results.find((r) => r.result === "skip")).to.deep.include({
      rule: "RBAC-WILDCARD-VERB",
    });
    expect(ns.get("ra")!.results.map((r) => r.rule)).to.include("DRIFT-MISSING");
  });

  it("writes nothing while the content is unchanged (resourceVersion stable over full compares)", async () => {
    const kinds = ["reports.openreports.io", "clusterreports.openreports.io"];
    const before = await versions(...kinds);
    const publishes = operator!.reports!.stats.published;
    operator!.controller.resync(); // the policy is reconciled again: its status (and so the reports) unchanged
    await eventually("three more full compares with the cluster", () =>
      Promise.resolve(operator!.reports!.stats.published >= publishes + 3),
    );
    expect(await versions(...kinds)).to.deep.equal(before);
  });

  it("puts back a report deleted by hand", async () => {
    await ok(["delete", "reports.openreports.io", "-n", "ra", "csp-reported"]);
    await eventually("the Report in ra again", async () =>
      byNamespace(await reports("reports.openreports.io")).has("ra"),
    );
  });

  it("says Forbidden when its report rights are taken away, and recovers when they are back", async () => {
    const role = JSON.parse(await ok(["get", "clusterrole", "csp-operator", "-o", "json"])) as {
      metadata: Record<string, unknown>;
      rules: { apiGroups?: string[] }[];
    };
    const { name, labels } = role.metadata;
    const restore = { ...role, metadata: { name, labels } };
    const without = { ...restore, rules: role.rules.filter((r) => !r.apiGroups?.includes("openreports.io")) };
    await ok(["replace", "-f", "-"], JSON.stringify(without));
    try {
      const forbidden = await eventually("ReportsPublished=False Forbidden", async () => {
        const c = await condition("ReportsPublished");
        return c?.reason === "Forbidden" && c;
      });
      expect(forbidden.status).to.equal("False");
      expect(forbidden.message).to.contain("openreports.io");
      expect(await condition("Ready")).to.deep.include({ status: "True" });
    } finally {
      await ok(["replace", "-f", "-"], JSON.stringify(restore));
    }
    await eventually(
      "ReportsPublished=True again",
      async () => (await condition("ReportsPublished"))?.status === "True",
    );
  });

  it("wgpolicyk8s CRDs installed too: both sets, same counts", async () => {
    await installReportCrds(WGPOLICY);
    await eventually("ReportsPublished=True over both APIs", async () => {
      const c = await condition("ReportsPublished");
      return c?.status === "True" && c.message.includes("ClusterPolicyReport (wgpolicyk8s.io/v1alpha2)");
    });
    const wg = await expectMatchesStatus(
      "policyreports.wgpolicyk8s.io",
      "clusterpolicyreports.wgpolicyk8s.io",
    );
    const or = await expectMatchesStatus("reports.openreports.io", "clusterreports.openreports.io");
    expect(wg.cluster.summary).to.deep.equal(or.cluster.summary);
    expect([...wg.ns].map(([n, r]) => [n, r.summary])).to.deep.equal(
      [...or.ns].map(([n, r]) => [n, r.summary]),
    );
    expect(wg.cluster).to.not.have.property("source");
    expect((await condition("ReportsPublished"))?.message).to.match(
      new RegExp(
        `^${2 * (or.ns.size + 1)} report\\(s\\) in Report .*ClusterPolicyReport \\(wgpolicyk8s.io/v1alpha2\\)$`,
      ),
    );
  });

  it("follows the status: a newly selected namespace gets its report", async () => {
    await ok(["create", "namespace", "rc"]);
    await ok(["label", "namespace", "rc", "team=reports"]);
    await eventually(
      "PolicyReport in rc",
      async () => byNamespace(await reports("policyreports.wgpolicyk8s.io")).get("rc")?.summary.fail,
    );
    await eventually(
      "Report in rc",
      async () => byNamespace(await reports("reports.openreports.io")).get("rc")?.summary.fail,
    );
  });

  it("a terminating namespace is skipped like a missing one; a create-only write never takes over a report", async () => {
    const [k] = kindsInDiscovery(REPORT_APIS[0]!, [{ name: "reports", kind: "Report", namespaced: true }]);
    const client = new ReportClient(kc);
    const mine = (await reports("reports.openreports.io")).find((r) => r.metadata.namespace === "ra")!;
    const report = (namespace: string, name: string): ReportObject => ({
      apiVersion: "openreports.io/v1alpha1",
      kind: "Report",
      metadata: { name, namespace, labels: {}, ownerReferences: [] },
      summary: mine.summary,
      results: [],
    });
    // A namespace held in Terminating by a finalizer: NamespaceLifecycle refuses new content with a 403.
    await ok(["create", "namespace", "rterm"]);
    const held = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "hold", namespace: "rterm", finalizers: ["example.com/hold"] },
    };
    await ok(["apply", "-f", "-"], JSON.stringify(held));
    await ok(["delete", "namespace", "rterm", "--wait=false"]);
    try {
      await eventually(
        "rterm Terminating",
        async () => (await ok(["get", "ns", "rterm", "-o", "jsonpath={.status.phase}"])) === "Terminating",
      );
      expect(await client.apply(k!, report("rterm", "x"))).to.equal("namespaceGone");
      expect(await client.apply(k!, report("rterm", "x"), true)).to.equal("namespaceGone");
    } finally {
      await ok([
        "patch",
        "configmap",
        "hold",
        "-n",
        "rterm",
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
      ]);
    }
    // A report someone else created at a name: the create-only apply is refused (409), nothing changes.
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify({
        ...report("ra", "foreign"),
        summary: { pass: 7, fail: 0, warn: 0, error: 0, skip: 0 },
      }),
    );
    const before = JSON.parse(
      await ok(["get", "reports.openreports.io", "foreign", "-n", "ra", "-o", "json"]),
    ) as Report;
    expect(await client.apply(k!, report("ra", "foreign"), true)).to.equal("exists");
    const after = JSON.parse(
      await ok(["get", "reports.openreports.io", "foreign", "-n", "ra", "-o", "json"]),
    ) as Report;
    expect(after.metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
    expect(after.summary.pass).to.equal(7);
    // At a free name it creates.
    expect(await client.apply(k!, report("ra", "fresh"), true)).to.equal("written");
    await ok(["delete", "reports.openreports.io", "foreign", "fresh", "-n", "ra"]);
  });

  it("deleting the policy garbage-collects every report it owns", async () => {
    await ok(["delete", "csp", "reported", "--wait=false"]);
    await eventually(
      "no report left",
      async () => {
        const all = await Promise.all(
          [
            "reports.openreports.io",
            "clusterreports.openreports.io",
            "policyreports.wgpolicyk8s.io",
            "clusterpolicyreports.wgpolicyk8s.io",
          ].map(reports),
        );
        return all.every((items) => items.length === 0);
      },
      60_000,
    );
  });
});
