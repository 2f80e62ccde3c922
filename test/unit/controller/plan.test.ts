import { expect } from "chai";
import type { KubernetesObject } from "@kubernetes/client-node";
import { applyPlan } from "../../../src/controller/apply.js";
import { settleBounded } from "../../../src/controller/bounded.js";
import { BLOCKED_RECHECK_MS, describePlan, plan } from "../../../src/controller/plan.js";
import { report } from "../../../src/controller/report.js";
import { ownerReference } from "../../../src/desired/metadata.js";
import { silentLogger } from "../../../src/observability/logger.js";
import { defaultSA, namespace, policy, snapshot } from "../builders/policy.js";

const withRole = policy("p")
  .spec({
    networkPolicies: { defaultDenyIngress: true },
    rbac: {
      roles: [
        {
          name: "reader",
          serviceAccount: "reader-sa",
          rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
        },
      ],
    },
  })
  .build();
const grantable = {
  metadata: { name: "csp-operator-grantable" },
  rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
};
const base = (extra: Parameters<typeof snapshot>[0] = {}) =>
  snapshot({
    policies: [withRole],
    namespaces: [namespace("a"), namespace("b")],
    serviceAccounts: [defaultSA("a"), defaultSA("b")],
    rbac: { clusterRoles: [grantable], clusterRoleBindings: [], roles: [], roleBindings: [] },
    ...extra,
  });

describe("plan (pure)", () => {
  it("plans every missing child, RoleBindings in the phase after their Role and ServiceAccount", () => {
    const p = plan("p", base());
    const kinds = (phase: number) =>
      [...new Set(p.writes.filter((w) => w.phase === phase).map((w) => w.drift.kind))].sort();
    expect(kinds(0)).to.deep.equal(["NetworkPolicy", "Role", "ServiceAccount"]);
    expect(kinds(1)).to.deep.equal(["RoleBinding"]);
    expect(p.writes.every((w) => w.drift.reason === "Missing")).to.equal(true);
    expect(p.reads).to.deep.equal([], "nothing to read live: occupancy comes from the snapshot");
    expect(describePlan(p).some((l) => l.startsWith("apply RoleBinding/a/reader"))).to.equal(true);
  });

  it("plans no write in Audit mode, and still no live read", () => {
    const audit = { ...withRole, spec: { ...withRole.spec, mode: "Audit" as const } };
    const p = plan("p", base({ policies: [audit] }));
    expect(p.writes).to.deep.equal([]);
    expect(p.shared).to.deep.equal([]);
    expect(p.reads).to.deep.equal([]);
    expect(p.remaining.length).to.be.greaterThan(0);
  });

  it("reports an object someone else holds at a child's name from the occupancy cache, without a read", () => {
    const name = plan("p", base()).writes.find(
      (w) => w.drift.kind === "NetworkPolicy" && w.drift.namespace === "a",
    )!.drift.name;
    const foreign: KubernetesObject = {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name, namespace: "a", uid: "theirs" },
    };
    const p = plan(
      "p",
      base({
        occupant: (k, ns, n) => (k === "NetworkPolicy" && ns === "a" && n === name ? foreign : undefined),
      }),
    );
    const at = (x: { kind: string; namespace?: string | undefined; name: string }) =>
      x.kind === "NetworkPolicy" && x.namespace === "a" && x.name === name;
    expect(p.remaining.find(at)?.reason).to.equal("Unowned");
    expect(p.writes.some((w) => at(w.drift))).to.equal(false);
    expect(p.reads).to.deep.equal([]);
    expect(p.requeueAfterMs).to.equal(BLOCKED_RECHECK_MS);
  });

  it("asks for a live read only of an object at a child's name that is the policy's own by identity", () => {
    const name = plan("p", base()).writes.find(
      (w) => w.drift.kind === "ServiceAccount" && w.drift.namespace === "a",
    )!.drift.name;
    const stripped: KubernetesObject = {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name, namespace: "a", uid: "u", ownerReferences: [ownerReference(withRole)] },
    };
    const p = plan(
      "p",
      base({
        occupant: (k, ns, n) => (k === "ServiceAccount" && ns === "a" && n === name ? stripped : undefined),
      }),
    );
    expect(p.reads.map((r) => r.key)).to.deep.equal([`ServiceAccount/a/${name}`]);
    // With the full object read, the plan repairs it in place (its labels are missing).
    const full = { ...stripped, metadata: { ...stripped.metadata } };
    const again = plan("p", base({ occupied: new Map([[`ServiceAccount/a/${name}`, full]]) }));
    const w = again.writes.find((x) => x.key === `ServiceAccount/a/${name}`);
    expect(w?.drift.reason).to.equal("Modified");
  });

  it("in Audit mode, judges a label-stripped child of its own from metadata: no live read, Modified", () => {
    const name = plan("p", base()).writes.find(
      (w) => w.drift.kind === "ServiceAccount" && w.drift.namespace === "a",
    )!.drift.name;
    const stripped: KubernetesObject = {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name, namespace: "a", uid: "u", ownerReferences: [ownerReference(withRole)] },
    };
    const audit = { ...withRole, spec: { ...withRole.spec, mode: "Audit" as const } };
    const p = plan(
      "p",
      base({
        policies: [audit],
        occupant: (k, ns, n) => (k === "ServiceAccount" && ns === "a" && n === name ? stripped : undefined),
      }),
    );
    expect(p.reads).to.deep.equal([]);
    const d = p.remaining.find((x) => x.kind === "ServiceAccount" && x.namespace === "a" && x.name === name);
    expect(d?.reason).to.equal("Modified");
    expect(d?.fields?.every((f) => f.startsWith("metadata.labels."))).to.equal(true);
    expect(d?.message).to.contain("not read (Audit mode)");
  });

  it("plans nothing but shared releases for a policy that is gone", () => {
    const p = plan("gone", base());
    expect(p.policy).to.equal(undefined);
    expect(p.writes).to.deep.equal([]);
  });
});

describe("apply", () => {
  it("runs at most the bound in flight, RoleBindings only after phase 0, and reports every failure", async () => {
    const p = plan("p", base());
    let inFlight = 0;
    let peak = 0;
    const order: string[] = [];
    const write = async <T extends KubernetesObject>(o: T): Promise<T> => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      order.push(o.kind!);
      if (o.kind === "NetworkPolicy") throw Object.assign(new Error("boom"), { code: 500 });
      return o;
    };
    const writer = {
      apply: write,
      create: write,
      replaceOwned: () => Promise.resolve(),
      delete: () => Promise.resolve(),
    };
    const applied = await applyPlan(p, writer, silentLogger(), 2);
    expect(peak).to.equal(2);
    const firstBinding = order.indexOf("RoleBinding");
    expect(order.slice(firstBinding).every((k) => k === "RoleBinding")).to.equal(true);
    // Every NetworkPolicy failed; every other write still happened and counts as corrected.
    const nps = p.writes.filter((w) => w.drift.kind === "NetworkPolicy").length;
    expect(nps).to.be.greaterThan(1);
    expect(applied.failures.filter((f) => f.reason === "ApplyFailed")).to.have.length(nps);
    expect(applied.corrected.map((d) => d.kind)).to.include.members([
      "Role",
      "RoleBinding",
      "ServiceAccount",
    ]);
    expect(applied.remaining.filter((d) => d.kind === "NetworkPolicy")).to.have.length(nps);
    const r = report(p, applied, [], new Date("2026-06-01T00:00:00Z"));
    expect(r.failure?.reason).to.equal("ApplyFailed");
    expect(r.events.map((e) => e.reason)).to.deep.equal(["DriftCorrected", "ApplyFailed"]);
    expect(r.status?.conditions?.find((c) => c.type === "Ready")?.status).to.equal("False");
  });

  it("settleBounded keeps order and never lets one rejection hide the others", async () => {
    const out = await settleBounded([1, 2, 3, 4], 3, async (n) => {
      await new Promise((r) => setImmediate(r));
      if (n === 2) throw new Error("two");
      return n * 10;
    });
    expect(out.map((o) => (o.status === "fulfilled" ? o.value : "x"))).to.deep.equal([10, "x", 30, 40]);
  });
});

describe("plan: remembering children by UID", () => {
  it("remembers the UID marks of the objects at its children's names that are its own, not others'", () => {
    const first = plan("p", base());
    const nps = first.writes.filter((w) => w.drift.kind === "NetworkPolicy");
    const [mine, theirs] = [nps[0]!, nps[1]!];
    const obj = (w: typeof mine, uid: string, own: boolean): KubernetesObject => ({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name: w.drift.name,
        namespace: w.drift.namespace!,
        uid,
        ...(own ? { ownerReferences: [ownerReference(withRole)] } : {}),
      },
    });
    const objs = [
      obj(mine, "11111111-2222-4333-8444-555555555555", true),
      obj(theirs, "99999999-8888-4777-8666-555555555555", false),
    ];
    const p = plan(
      "p",
      base({
        occupant: (k, ns, n) =>
          objs.find((o) => k === "NetworkPolicy" && o.metadata?.namespace === ns && o.metadata?.name === n),
      }),
    );
    expect(p.childUIDs).to.deep.equal(["11111111-2222"]);
  });

  it("keeps the UIDs status remembers while a child is seen nowhere (between the caches as its labels go)", () => {
    const remembering = { ...withRole, status: { childUIDs: ["11111111-2222"] } };
    // Nothing observed at any child's name: a stripped child may be in neither cache at this instant.
    const p = plan("p", base({ policies: [remembering] }));
    expect(p.rememberedKept).to.deep.equal(["11111111-2222"]);
    // What the status write remembers: the kept list with the plan's own marks.
    const r = report(
      p,
      { sharedDone: new Set(), corrected: [], remaining: [], failures: [], written: [], skipped: [] },
      [],
      new Date(),
    );
    expect(r.status?.childUIDs).to.deep.equal(["11111111-2222"]);
  });
});
