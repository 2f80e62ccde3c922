import { expect } from "chai";
import fc from "fast-check";
import type { KubernetesObject, V1NetworkPolicy } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy, ClusterSecurityPolicySpec } from "../../../src/api/v1alpha1/policy.js";
import { objectKey, type Snapshot } from "../../../src/cluster/snapshot.js";
import { applyPlan, type Applied, type PlanWriter } from "../../../src/controller/apply.js";
import {
  fullReconcileReasons,
  laneKey,
  parseLaneKey,
  planOutdated,
  repairNamespace,
  repairReconciler,
  scopePlan,
  type RepairDeps,
} from "../../../src/controller/lane.js";
import { WriteLedger } from "../../../src/controller/ledger.js";
import { plan, type Plan } from "../../../src/controller/plan.js";
import { uidMark } from "../../../src/drift/ownership.js";
import { silentLogger } from "../../../src/observability/logger.js";
import { WorkQueue } from "../../../src/runtime/workqueue.js";
import { defaultSA, namespace, policy, snapshot } from "../builders/policy.js";

const TIER = "tier";
const grantable = {
  metadata: { name: "csp-operator-grantable" },
  rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
};

/** What ClusterCache.namespaceSnapshot builds from its informers, from a whole-cluster snapshot. */
function oneNamespace(s: Snapshot, ns: string): Snapshot {
  const inNs = <T extends KubernetesObject>(objs: readonly T[]) =>
    objs.filter((o) => o.metadata?.namespace === ns);
  return {
    ...s,
    namespaces: s.namespaces.filter((n) => n.metadata?.name === ns),
    networkPolicies: inNs(s.networkPolicies),
    serviceAccounts: inNs(s.serviceAccounts),
    roles: inNs(s.roles),
    roleBindings: inNs(s.roleBindings),
    configMaps: [],
    ...(s.rbac
      ? {
          rbac: {
            clusterRoles: s.rbac.clusterRoles,
            clusterRoleBindings: [],
            roles: inNs(s.rbac.roles),
            roleBindings: inNs(s.rbac.roleBindings),
          },
        }
      : {}),
    ...(s.wideningNetworkPolicies ? { wideningNetworkPolicies: inNs(s.wideningNetworkPolicies) } : {}),
  };
}

/** A plan's effect as comparable text: writes, shared writes, deletes, drift. */
function effect(p: Plan): string[] {
  return [
    ...p.shared.map((w) => `shared ${JSON.stringify(w)}`),
    ...p.writes.map((w) => `write ${w.key} ${w.action} ${w.drift.reason} ${JSON.stringify(w.object)}`),
    ...p.deletes.map((d) => `delete ${d.key}`),
    ...p.remaining.map((d) => `remaining ${objectKey(d.kind, d.namespace, d.name)} ${d.reason} ${d.message}`),
    ...p.sharedDrift.map((d) => `shared drift ${objectKey(d.kind, d.namespace, d.name)} ${d.reason}`),
    ...p.findings.map((f) => `finding ${f.id} ${f.resource}`),
  ].sort();
}

const specArb: fc.Arbitrary<ClusterSecurityPolicySpec> = fc
  .record({
    mode: fc.constantFrom("Enforce" as const, "Audit" as const),
    namespaces: fc.constant({ selector: { matchExpressions: [{ key: TIER, operator: "Exists" as const }] } }),
    networkPolicies: fc.option(fc.record({ defaultDenyIngress: fc.boolean(), allowDNS: fc.boolean() }), {
      nil: undefined,
    }),
    podSecurity: fc.option(
      fc.record({ enforce: fc.constantFrom("baseline" as const, "restricted" as const) }),
      { nil: undefined },
    ),
    serviceAccounts: fc.option(fc.record({ automountDefaultToken: fc.constant(false) }), { nil: undefined }),
    rbac: fc.option(
      fc.constant({
        roles: [
          {
            name: "reader",
            serviceAccount: "reader-sa",
            rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
          },
        ],
      }),
      { nil: undefined },
    ),
  })
  .map((r) => JSON.parse(JSON.stringify(r)) as ClusterSecurityPolicySpec);

interface Cluster {
  specs: ClusterSecurityPolicySpec[];
  namespaces: { selected: boolean; psa: string | undefined; sa: string; children: string }[];
}

const clusterArb: fc.Arbitrary<Cluster> = fc.record({
  specs: fc.array(specArb, { minLength: 1, maxLength: 2 }),
  namespaces: fc.array(
    fc.record({
      selected: fc.boolean(),
      psa: fc.constantFrom(undefined, "privileged", "baseline", "restricted"),
      sa: fc.constantFrom("none", "unset", "true", "false"),
      /** What happened to the policy's children here since they were written. */
      children: fc.constantFrom("none", "intact", "modified", "deleted-one"),
    }),
    { minLength: 1, maxLength: 5 },
  ),
});

function buildCluster(c: Cluster): Snapshot {
  const policies: ClusterSecurityPolicy[] = c.specs.map((s, i) =>
    policy(`p${i}`)
      .spec(s)
      .createdAt(`2026-01-0${i + 1}T00:00:00Z`)
      .build(),
  );
  const names = c.namespaces.map((_, i) => `ns${i}`);
  const base = snapshot({
    policies,
    namespaces: c.namespaces.map((n, i) =>
      namespace(names[i]!, {
        ...(n.selected ? { [TIER]: "x" } : {}),
        ...(n.psa ? { "pod-security.kubernetes.io/enforce": n.psa } : {}),
      }),
    ),
    serviceAccounts: c.namespaces.flatMap((n, i) =>
      n.sa === "none" ? [] : [defaultSA(names[i]!, n.sa === "unset" ? undefined : n.sa === "true")],
    ),
    rbac: { clusterRoles: [grantable], clusterRoleBindings: [], roles: [], roleBindings: [] },
    configMaps: [],
    wideningNetworkPolicies: [],
  });
  // Children as a first reconcile of the first policy would write them, then changed per namespace.
  const first = plan("p0", base);
  const nps: V1NetworkPolicy[] = [];
  let uid = 0;
  for (const [i, n] of c.namespaces.entries()) {
    if (n.children === "none") continue;
    const here = first.writes.filter(
      (w) => w.object.kind === "NetworkPolicy" && w.key.includes(`/${names[i]}/`),
    );
    for (const [j, w] of here.entries()) {
      if (n.children === "deleted-one" && j === 0) continue;
      const o = structuredClone(w.object) as V1NetworkPolicy;
      o.metadata = { ...o.metadata, uid: `np-${uid++}`, resourceVersion: "5" };
      if (n.children === "modified" && j === 0) o.spec = { podSelector: { matchLabels: { x: "y" } } };
      nps.push(o);
    }
  }
  return { ...base, networkPolicies: nps };
}

describe("repair lane (pure)", () => {
  it("keys are policy/namespace, parsed back; a burst of events for one namespace is one item", () => {
    expect(laneKey("baseline", "team-a")).to.equal("baseline/team-a");
    expect(parseLaneKey("baseline/team-a")).to.deep.equal({ policy: "baseline", namespace: "team-a" });
    expect(parseLaneKey("baseline")).to.equal(undefined);
    expect(parseLaneKey("/x")).to.equal(undefined);
    const q = new WorkQueue();
    for (let i = 0; i < 5; i++) q.add(laneKey("p", "a"));
    q.add(laneKey("p", "b"));
    expect(q.length).to.equal(2);
  });

  it("the plan of one namespace from its own snapshot equals the full plan's part for it (property)", () => {
    fc.assert(
      fc.property(clusterArb, (c) => {
        const cluster = buildCluster(c);
        for (const p of cluster.policies) {
          const full = plan(p.metadata.name, cluster);
          const union: string[] = [];
          for (const ns of cluster.namespaces.map((n) => n.metadata!.name!)) {
            const scoped = scopePlan(plan(p.metadata.name, oneNamespace(cluster, ns)), ns);
            expect(effect(scoped)).to.deep.equal(effect(scopePlan(full, ns)), `${p.metadata.name} in ${ns}`);
            union.push(...effect(scoped));
          }
          // Together the namespaces' plans are the whole plan (the policy-wide findings aside).
          const wide = effect(full).filter((l) => !l.startsWith("finding "));
          expect(union.filter((l) => !l.startsWith("finding ")).sort()).to.deep.equal(wide);
        }
      }),
      { numRuns: 150 },
    );
  });

  describe("when a repair asks for a full reconcile", () => {
    const pol = policy("p")
      .spec({ namespaces: { selector: { matchExpressions: [{ key: TIER, operator: "Exists" }] } } })
      .spec({ networkPolicies: { defaultDenyIngress: true } })
      .build();
    const cluster = (p: ClusterSecurityPolicy) =>
      snapshot({ policies: [p], namespaces: [namespace("a", { [TIER]: "x" }), namespace("b")] });
    const applied = (over: Partial<Applied> = {}): Applied => ({
      sharedDone: new Set(),
      corrected: [],
      remaining: [],
      failures: [],
      written: [],
      skipped: [],
      ...over,
    });
    const scoped = (p: ClusterSecurityPolicy, ns = "a") =>
      scopePlan(plan("p", oneNamespace(cluster(p), ns)), ns);

    it("never, when the repair left nothing and status shows nothing for the namespace", () => {
      const p = scoped(pol);
      const drift = p.writes[0]!.drift;
      expect(fullReconcileReasons(pol, "a", p, applied({ corrected: [drift] }), [])).to.deep.equal([]);
    });

    it("for a namespace the policy does not select", () => {
      expect(fullReconcileReasons(pol, "b", scoped(pol, "b"), applied(), [])).to.deep.equal(["not selected"]);
    });

    it("in Audit mode, when the drift differs from what status lists, and not once status lists it", () => {
      const audit = { ...pol, spec: { ...pol.spec, mode: "Audit" as const } };
      const p = scoped(audit);
      expect(p.writes).to.deep.equal([]);
      const left = applied({ remaining: p.remaining });
      expect(fullReconcileReasons(audit, "a", p, left, [])).to.deep.equal(["drift changed"]);
      const reported = {
        ...audit,
        status: {
          drift: p.remaining.map((d) => ({
            kind: d.kind,
            ...(d.namespace ? { namespace: d.namespace } : {}),
            name: d.name,
            reason: d.reason,
          })),
          summary: { drifted: p.remaining.length },
        },
      } as ClusterSecurityPolicy;
      expect(fullReconcileReasons(reported, "a", p, left, [])).to.deep.equal([]);
      // Healed by hand: status still lists it, so status must change.
      expect(fullReconcileReasons(reported, "a", p, applied(), [])).to.deep.equal(["drift changed"]);
    });

    it("when a write failed, and when a child it created is not remembered in status.childUIDs", () => {
      const p = scoped(pol);
      const failure = { reason: "ApplyFailed" as const, message: "boom", terminal: false };
      const w = p.writes[0]!;
      expect(
        fullReconcileReasons(pol, "a", p, applied({ failures: [failure], remaining: [w.drift] }), []),
      ).to.include.members(["write failed", "drift changed"]);
      const uid = "0123abcd-4567-89ab-cdef-0123456789ab";
      const created = applied({ corrected: [w.drift], written: [uid] });
      expect(fullReconcileReasons(pol, "a", p, created, [])).to.deep.equal(["child not remembered"]);
      const remembered = { ...pol, status: { childUIDs: [uidMark(uid)] } } as ClusterSecurityPolicy;
      expect(fullReconcileReasons(remembered, "a", p, created, [])).to.deep.equal([]);
    });

    it("when the namespace's findings differ from what status lists", () => {
      const p = scoped(pol);
      const f = {
        id: "X",
        severity: "High" as const,
        resource: "Namespace/a",
        message: "m",
        area: "podSecurity",
      };
      expect(fullReconcileReasons(pol, "a", p, applied(), [f])).to.deep.equal(["findings changed"]);
      const listed = {
        ...pol,
        status: {
          findings: [
            { id: "X", severity: "High", resource: "Namespace/a", message: "m", area: "podSecurity" },
          ],
          summary: { findingsBySeverity: { Critical: 0, High: 1, Medium: 0, Low: 0, Info: 0 } },
        },
      } as ClusterSecurityPolicy;
      expect(fullReconcileReasons(listed, "a", p, applied(), [f])).to.deep.equal([]);
    });
  });
});

/** Policy p with a default-deny, and a cluster of one namespace `a` it selects (with its default ServiceAccount). */
function denyInOneNamespace(): { pol: ClusterSecurityPolicy; cluster: Snapshot } {
  const pol = policy("p")
    .spec({ networkPolicies: { defaultDenyIngress: true } })
    .build();
  const cluster = snapshot({
    policies: [pol],
    namespaces: [namespace("a")],
    serviceAccounts: [defaultSA("a")],
  });
  return { pol, cluster };
}

describe("write ledger: the two lanes never repeat each other's write", () => {
  const { pol, cluster } = denyInOneNamespace();
  const recorder = () => {
    const writes: string[] = [];
    let rv = 100;
    const write = <T extends KubernetesObject>(o: T): Promise<T> => {
      writes.push(objectKey(o.kind!, o.metadata?.namespace, o.metadata!.name!));
      return Promise.resolve({
        ...o,
        metadata: { ...o.metadata, uid: `u${rv}`, resourceVersion: `${rv++}` },
      });
    };
    const writer: PlanWriter = {
      apply: write,
      create: write,
      replaceOwned: () => Promise.resolve(),
      delete: () => Promise.resolve(),
    };
    return { writes, writer };
  };

  it("a plan made before the other lane's write skips it; one made later from a stale cache does too", async () => {
    const ledger = new WriteLedger();
    const { writes, writer } = recorder();
    const epochFull = ledger.epoch();
    const fullPlan = plan("p", cluster);
    expect(fullPlan.writes.length).to.be.greaterThan(0);
    // The repair lane writes the child first.
    const lane = await applyPlan(fullPlan, writer, silentLogger(), 8, undefined, {
      ledger,
      epoch: ledger.epoch(),
    });
    const keys = [
      ...fullPlan.shared.map((w) =>
        objectKey(w.object.kind!, w.object.metadata?.namespace, w.object.metadata!.name!),
      ),
      ...fullPlan.writes.map((w) => w.key),
    ].sort();
    expect(writes.slice().sort()).to.deep.equal(keys);
    expect(lane.corrected.length).to.be.greaterThan(0);
    // The full reconcile, planned before that write, applies afterwards: nothing is written twice.
    const full = await applyPlan(fullPlan, writer, silentLogger(), 8, undefined, {
      ledger,
      epoch: epochFull,
    });
    expect(full.skipped).to.deep.equal(keys);
    expect(full.corrected).to.deep.equal([]);
    expect(full.remaining).to.deep.equal([]);
    // A plan made afterwards from a cache that has not seen the write yet: skipped too.
    const later = await applyPlan(plan("p", cluster), writer, silentLogger(), 8, undefined, {
      ledger,
      epoch: ledger.epoch(),
    });
    expect(later.skipped).to.deep.equal(keys);
    expect(writes.slice().sort()).to.deep.equal(keys, "each object written once");
  });

  it("a full reconcile claims its objects ahead: a repair meanwhile leaves them to it", async () => {
    const ledger = new WriteLedger();
    const { writes, writer } = recorder();
    let open = () => {};
    const gate = new Promise<void>((r) => (open = r));
    const slow: PlanWriter = {
      ...writer,
      apply: async (o) => {
        await gate;
        return writer.apply(o);
      },
      create: async (o) => {
        await gate;
        return writer.create(o);
      },
    };
    const p = plan("p", cluster);
    const full = applyPlan(p, slow, silentLogger(), 1, undefined, {
      ledger,
      epoch: ledger.epoch(),
      claimAhead: true,
    });
    const lane = await applyPlan(p, writer, silentLogger(), 8, undefined, { ledger, epoch: ledger.epoch() });
    expect(writes).to.deep.equal([], "the repair wrote nothing the full reconcile is about to write");
    expect(lane.skipped.length).to.equal(p.writes.length + p.shared.length);
    expect(lane.corrected).to.deep.equal([]);
    open();
    const done = await full;
    expect(done.skipped).to.deep.equal([]);
    expect(writes).to.have.length(p.writes.length + p.shared.length);
    // Every claim was released: a later plan may write again.
    expect(ledger.claim(p.writes[0]!.key)).to.equal(true);
  });

  it("forgets a write once the cache shows it, and after its TTL; a newer change is repaired", () => {
    let now = 0;
    const ledger = new WriteLedger(() => now, 1000);
    expect(ledger.claim("k")).to.equal(true);
    expect(ledger.claim("k")).to.equal(false, "in flight in the other lane");
    ledger.release("k", { before: "1", after: "2" });
    const epoch = ledger.epoch();
    expect(ledger.stale("k", "1", epoch)).to.equal(true, "the cache has not seen the write");
    expect(ledger.stale("k", "3", epoch)).to.equal(false, "someone changed it since: repair it");
    expect(ledger.stale("k", "2", epoch)).to.equal(false, "the cache shows the write");
    expect(ledger.size).to.equal(0);
    ledger.release("k", { before: null, after: "5" });
    now = 2000;
    expect(ledger.stale("k", null, ledger.epoch())).to.equal(false, "expired: the watch never told");
    ledger.release("n", { before: "7", after: "7" });
    expect(ledger.size).to.equal(0, "a no-op apply leaves nothing to wait for");
  });

  it("a write the cache passed while in flight (its create seen, then a delete) outdates older plans only", () => {
    const ledger = new WriteLedger();
    const before = ledger.epoch();
    expect(ledger.claim("k")).to.equal(true);
    ledger.observe("k", "257"); // the create's own event, before its response is handled
    ledger.observe("k", "260", true); // someone deletes it at once
    ledger.release("k", { before: null, after: "257" });
    expect(ledger.stale("k", null, ledger.epoch())).to.equal(
      false,
      "the cache shows a delete newer than the write: repair it",
    );
    expect(ledger.stale("k", null, before)).to.equal(true, "a plan from before the write still skips it");
    // Events older than the write, taken in while it was in flight, do not count.
    expect(ledger.claim("m")).to.equal(true);
    ledger.observe("m", "300");
    ledger.release("m", { before: "300", after: "305" });
    expect(ledger.stale("m", "300", ledger.epoch())).to.equal(true, "the cache has not seen 305 yet");
    // A delete whose own event came first: absence is what it wrote, nothing to wait for.
    expect(ledger.claim("d")).to.equal(true);
    ledger.observe("d", "400", true);
    ledger.release("d", { before: "399", after: null });
    expect(ledger.stale("d", "399", ledger.epoch())).to.equal(false);
    // Without events meanwhile, the rule is unchanged: a cache still at `before` is stale.
    expect(ledger.claim("e")).to.equal(true);
    ledger.release("e", { before: null, after: "500" });
    expect(ledger.stale("e", null, ledger.epoch())).to.equal(true);
  });

  it("expires writes from the front as new ones are recorded", () => {
    let now = 0;
    const ledger = new WriteLedger(() => now, 1000);
    for (const k of ["a", "b", "c"]) {
      ledger.release(k, { before: null, after: "1" });
      now += 400;
    }
    expect(ledger.size).to.equal(3);
    now = 1500; // a (t=0) and b (t=400) are past the TTL, c (t=800) is not
    ledger.release("d", { before: null, after: "1" });
    expect(ledger.size).to.equal(2);
    // A write recorded again moves to the back: the expiry from the front does not stop at it.
    now = 1700;
    ledger.release("c", { before: null, after: "2" });
    now = 2600; // d (t=1500) is past the TTL, c (t=1700) is not
    ledger.release("e", { before: null, after: "1" });
    expect(ledger.size).to.equal(2, "c and e left");
  });

  it("children the operator created count as remembered until status remembers them", () => {
    let now = 0;
    const ledger = new WriteLedger(() => now, 30_000, 50_000, 60_000);
    const uid = pol.metadata.uid!;
    ledger.rememberChild(uid, "abcdef01-2345-6789-abcd-ef0123456789");
    ledger.rememberChild(uid, "11111111-2222-3333-4444-555555555555");
    ledger.rememberChild("other-policy", "99999999-2222-3333-4444-555555555555");
    expect(ledger.unrememberedChildren(pol)).to.deep.equal(["abcdef01-2345", "11111111-2222"]);
    const remembering = { ...pol, status: { childUIDs: ["abcdef01-2345"] } };
    expect(ledger.unrememberedChildren(remembering)).to.deep.equal(["11111111-2222"]);
    expect(ledger.unrememberedChildren(pol)).to.deep.equal(["11111111-2222"], "forgotten once remembered");
    now = 61_000;
    expect(ledger.unrememberedChildren(pol)).to.deep.equal([], "and after its TTL");
  });
});

describe("a child the operator just created, its owner rewritten by a namespace user", () => {
  const { cluster: base } = denyInOneNamespace();
  const child = plan("p", base).writes.find((w) => w.key.startsWith("NetworkPolicy/"))!;
  const uid = "abcdef01-2345-6789-abcd-ef0123456789";
  const hijacked = {
    ...child.object,
    metadata: {
      ...child.object.metadata,
      uid,
      resourceVersion: "42",
      ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "mine", uid: "cm", controller: true }],
    },
    spec: { ...(child.object as V1NetworkPolicy).spec, ingress: [{}] },
  } as V1NetworkPolicy;
  const cluster = { ...base, networkPolicies: [hijacked] };

  it("is foreign when nothing remembers it: reported Unowned, not written", () => {
    const p = plan("p", cluster);
    expect(p.writes.map((w) => w.key)).to.not.include(child.key);
    expect(p.remaining.find((d) => objectKey(d.kind, d.namespace, d.name) === child.key)?.reason).to.equal(
      "Unowned",
    );
  });

  it("is reclaimed when the ledger remembers the operator created it; status still learns its UID", () => {
    const p = plan("p", { ...cluster, unrememberedChildren: () => [uidMark(uid)] });
    const w = p.writes.find((x) => x.key === child.key);
    expect(w?.reclaim).to.equal(true);
    expect(p.childUIDs).to.include(uidMark(uid));
    expect(p.policy?.status?.childUIDs ?? []).to.not.include(uidMark(uid), "the policy's status as read");
    const applied: Applied = {
      sharedDone: new Set(),
      corrected: [],
      remaining: [],
      failures: [],
      written: [],
      skipped: [],
    };
    expect(fullReconcileReasons(p.policy!, "a", scopePlan(p, "a"), applied, [])).to.include(
      "child not remembered",
    );
  });
});

describe("repairNamespace (pure but for a fake writer)", () => {
  const pol = policy("p")
    .spec({
      namespaces: { selector: { matchExpressions: [{ key: TIER, operator: "Exists" }] } },
      networkPolicies: { defaultDenyIngress: true },
      podSecurity: { enforce: "restricted" },
    })
    .build();
  const cluster = snapshot({
    policies: [pol],
    namespaces: [namespace("a", { [TIER]: "x" }), namespace("b", { [TIER]: "x" })],
    serviceAccounts: [defaultSA("a"), defaultSA("b")],
  });
  /** A repair's deps over `cluster`: a writer that answers every write with a UID, told of each write and Event. */
  const fakeDeps = (o: {
    onWrite?: (o: KubernetesObject) => void;
    onEvent?: (reason: string, message: string) => void;
    reconcilePolicy?: RepairDeps["reconcilePolicy"];
    ledger?: WriteLedger;
  }): RepairDeps => {
    const write = <T extends KubernetesObject>(obj: T): Promise<T> => {
      o.onWrite?.(obj);
      return Promise.resolve({
        ...obj,
        metadata: { ...obj.metadata, uid: "0123abcd-4567", resourceVersion: "9" },
      });
    };
    return {
      namespaceSnapshot: (ns) => oneNamespace(cluster, ns),
      writer: {
        apply: write,
        create: write,
        replaceOwned: () => Promise.resolve(),
        delete: () => Promise.resolve(),
        event: (_p, _t, reason, message) => {
          o.onEvent?.(reason, message);
          return Promise.resolve();
        },
      },
      log: silentLogger(),
      ledger: o.ledger ?? new WriteLedger(),
      reconcilePolicy: o.reconcilePolicy ?? (() => {}),
    };
  };
  const keyOf = (o: KubernetesObject) => objectKey(o.kind!, o.metadata?.namespace, o.metadata!.name!);

  it("writes only its namespace, records one DriftCorrected Event, and asks for a full reconcile of a new child", async () => {
    const written: string[] = [];
    const events: string[] = [];
    const asked: string[][] = [];
    const deps = fakeDeps({
      onWrite: (o) => written.push(keyOf(o)),
      onEvent: (reason, message) => events.push(`${reason}: ${message}`),
      reconcilePolicy: (_p, reasons) => asked.push(reasons),
    });
    // Selected since the last full reconcile started: covering it is that reconcile's.
    const waiting = await repairNamespace("p", "a", { ...deps, uncovered: (_p, ns) => ns === "a" });
    expect(waiting.fullReconcile).to.deep.equal(["newly selected"]);
    expect(written).to.deep.equal([]);
    expect(asked).to.deep.equal([], "the selection enqueued it already");
    const out = await repairNamespace("p", "a", deps);
    const whole = plan("p", cluster);
    const inA = [
      ...whole.shared.map((w) =>
        objectKey(w.object.kind!, w.object.metadata?.namespace, w.object.metadata!.name!),
      ),
      ...whole.writes.map((w) => w.key),
    ].filter((k) => k === "Namespace/a" || k.includes("/a/"));
    expect(inA.length).to.be.greaterThan(2);
    expect(written.sort()).to.deep.equal(inA.sort(), "namespace a's writes, none of b's");
    expect(events).to.have.length(1);
    expect(events[0]).to.match(/^DriftCorrected: Corrected \d+ object\(s\): .*NetworkPolicy a\//);
    expect(out.fullReconcile).to.deep.equal(["child not remembered"]);
    expect(asked).to.deep.equal([["child not remembered"]]);
  });

  it("stops before the next write once the policy changed, and leaves the rest to a full reconcile", async () => {
    const written: string[] = [];
    const asked: string[][] = [];
    let now: ClusterSecurityPolicy = pol;
    const out = await repairNamespace("p", "a", {
      ...fakeDeps({
        onWrite: (o) => {
          written.push(keyOf(o));
          // The first write is in flight when the policy is switched to Audit.
          now = {
            ...pol,
            metadata: { ...pol.metadata, generation: 2 },
            spec: { ...pol.spec, mode: "Audit" },
          };
        },
        reconcilePolicy: (_p, reasons) => asked.push(reasons),
      }),
      maxConcurrentWrites: 1,
      current: () => ({ policy: now, namespace: cluster.namespaces.find((n) => n.metadata?.name === "a") }),
    });
    expect(written).to.have.length(1, "only the write already in flight");
    expect(out.stopped).to.equal("policy changed");
    expect(out.skipped.length).to.be.greaterThan(0);
    expect(asked).to.deep.equal([["policy changed"]]);
  });

  it("a plan is outdated by the policy's deletion, recreation or change, and by a deselection", () => {
    const ns = cluster.namespaces.find((n) => n.metadata?.name === "a");
    const at = (policy: ClusterSecurityPolicy | undefined, namespace = ns) =>
      planOutdated(pol, "a", { policy, namespace });
    expect(at(pol)).to.equal(undefined);
    expect(at(undefined)).to.equal("policy gone");
    expect(at({ ...pol, metadata: { ...pol.metadata, deletionTimestamp: new Date() } })).to.equal(
      "policy gone",
    );
    expect(at({ ...pol, metadata: { ...pol.metadata, uid: "new" } })).to.equal("policy gone");
    expect(at({ ...pol, metadata: { ...pol.metadata, generation: 7 } })).to.equal("policy changed");
    expect(at(pol, namespace("a"))).to.equal("not selected", "its tier label removed");
    expect(planOutdated(pol, "a", { policy: pol, namespace: undefined })).to.equal("not selected");
  });

  it("a repair that skipped a write (the other lane's in flight) looks again 1 s later", async () => {
    const ledger = new WriteLedger();
    const deps = fakeDeps({ ledger });
    const key = plan("p", cluster).writes.find((w) => w.key.includes("/a/"))!.key;
    expect(ledger.claim(key)).to.equal(true, "the full reconcile claimed it ahead");
    const reconcileOne = repairReconciler(() => deps);
    expect(await reconcileOne(laneKey("p", "a"), "r1")).to.deep.equal({ requeueAfterMs: 1000 });
    ledger.release(key);
    expect(await reconcileOne(laneKey("p", "b"), "r2")).to.equal(undefined, "nothing skipped there");
  });

  it("a repair that left a write to the other lane's claim is woken by its release, once, not polled", async () => {
    const ledger = new WriteLedger();
    const deps = fakeDeps({ ledger });
    const keys = plan("p", cluster)
      .writes.filter((w) => w.key.includes("/a/"))
      .map((w) => w.key);
    for (const k of keys) expect(ledger.claim(k)).to.equal(true, "the full reconcile claimed it ahead");
    const woken: string[] = [];
    const reconcileOne = repairReconciler(
      () => deps,
      (item, claimed) => {
        expect(claimed).to.deep.equal([...keys].sort());
        ledger.whenReleased(claimed, () => woken.push(item));
      },
    );
    expect(await reconcileOne(laneKey("p", "a"), "r1")).to.equal(undefined, "no 1 s recheck");
    for (const k of keys.slice(1)) ledger.release(k, { before: null, after: "20" });
    expect(woken).to.deep.equal([], "one claim still held");
    ledger.release(keys[0]!);
    expect(woken).to.deep.equal([laneKey("p", "a")]);
    expect(ledger.pending).to.deep.equal({ claims: 0, waiters: 0 });
  });
});
