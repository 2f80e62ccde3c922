import { expect } from "chai";
import fc from "fast-check";
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1Namespace,
  V1NetworkPolicy,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import type { ClusterSecurityPolicy, ClusterSecurityPolicySpec } from "../../../src/api/v1alpha1/policy.js";
import {
  FIELD_MANAGER,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  POLICY_LABEL,
} from "../../../src/api/vocabulary.js";
import type { Snapshot } from "../../../src/cluster/snapshot.js";
import type { Applied } from "../../../src/controller/apply.js";
import { plan, planSteps, planYielding, type Plan } from "../../../src/controller/plan.js";
import { report, reportYielding } from "../../../src/controller/report.js";
import { ownerReference } from "../../../src/desired/metadata.js";
import { drain, drainYielding, sortedSteps } from "../../../src/desired/slices.js";
import { effectiveSpec } from "../../../src/desired/spec.js";
import { appliedPaths } from "../../../src/drift/managedfields.js";
import { rbacFindings } from "../../../src/findings/rbac.js";
import { policy as policyBuilder } from "../builders/policy.js";

/** A cluster described as plain data: each build() makes fresh objects from it (no memo shared). */
interface Scenario {
  namespaces: { tier: "a" | "b" | "none"; level?: "baseline" | "restricted"; levelByOperator: boolean }[];
  policies: {
    mode: "Enforce" | "Audit";
    tier: "a" | "b" | "any";
    level?: "privileged" | "baseline" | "restricted";
    denyIngress: boolean;
    denyEgress: boolean;
    noAutomount: boolean;
    role: boolean;
    remembered: number;
  }[];
  /** Per namespace: whether the first policy's default-deny is there, and whether it was edited. */
  children: { present: boolean; edited: boolean }[];
  automount: (boolean | undefined)[];
  adminBinding: boolean;
  written: number;
}

/** A scenario with one policy and nothing else in the cluster but its namespaces. */
function onePolicy(namespaces: Scenario["namespaces"], policy: Scenario["policies"][number]): Scenario {
  return { namespaces, policies: [policy], children: [], automount: [], adminBinding: false, written: 0 };
}

const LEVEL = "pod-security.kubernetes.io/enforce";

function build(sc: Scenario): Snapshot {
  const namespaces: V1Namespace[] = sc.namespaces.map((n, i) => {
    const name = `ns-${String(i).padStart(3, "0")}`;
    const labels: Record<string, string> = { "kubernetes.io/metadata.name": name };
    if (n.tier !== "none") labels["tier"] = n.tier;
    if (n.level) labels[LEVEL] = n.level;
    return {
      metadata: {
        name,
        uid: `ns-uid-${i}`,
        resourceVersion: `${i + 1}`,
        labels,
        ...(n.level
          ? {
              managedFields: [
                {
                  manager: n.levelByOperator ? FIELD_MANAGER : "kubectl",
                  operation: n.levelByOperator ? "Apply" : "Update",
                  fieldsType: "FieldsV1",
                  fieldsV1: { "f:metadata": { "f:labels": { [`f:${LEVEL}`]: {} } } },
                },
              ],
            }
          : {}),
      },
      status: { phase: "Active" },
    };
  });
  const policies: ClusterSecurityPolicy[] = sc.policies.map((p, i) => {
    const spec: ClusterSecurityPolicySpec = {
      mode: p.mode,
      namespaces: {
        selector:
          p.tier === "any"
            ? { matchExpressions: [{ key: "tier", operator: "Exists" }] }
            : { matchLabels: { tier: p.tier } },
      },
      ...(p.level ? { podSecurity: { enforce: p.level } } : {}),
      ...(p.denyIngress || p.denyEgress
        ? { networkPolicies: { defaultDenyIngress: p.denyIngress, defaultDenyEgress: p.denyEgress } }
        : {}),
      ...(p.noAutomount ? { serviceAccounts: { automountDefaultToken: false } } : {}),
      ...(p.role
        ? {
            rbac: {
              roles: [
                {
                  name: "reader",
                  serviceAccount: "reader-sa",
                  rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
                },
              ],
            },
          }
        : {}),
    };
    const built = policyBuilder(`p${i}`)
      .spec(spec)
      .createdAt(`2026-01-0${i + 1}T00:00:00Z`)
      .build();
    const remembered = Array.from({ length: p.remembered }, (_, k) => `np-uid-${k}`.slice(0, 8));
    return remembered.length ? { ...built, status: { childUIDs: remembered } } : built;
  });
  const first = policies[0];
  const networkPolicies: V1NetworkPolicy[] = [];
  sc.children.forEach((c, i) => {
    const ns = namespaces[i];
    if (!c.present || !ns || !first) return;
    networkPolicies.push({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name: `csp-${first.metadata.name}-default-deny`,
        namespace: ns.metadata!.name!,
        uid: `np-uid-${i}`,
        resourceVersion: "7",
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [POLICY_LABEL]: first.metadata.name },
        ownerReferences: [ownerReference(first)],
      },
      spec: { podSelector: c.edited ? { matchLabels: { app: "x" } } : {}, policyTypes: ["Ingress"] },
    });
  });
  const serviceAccounts: V1ServiceAccount[] = namespaces.map((ns, i) => ({
    metadata: { name: "default", namespace: ns.metadata!.name!, uid: `sa-${i}`, resourceVersion: "3" },
    ...(sc.automount[i] === undefined ? {} : { automountServiceAccountToken: sc.automount[i] }),
  }));
  const clusterRoles: V1ClusterRole[] = [
    {
      metadata: { name: "csp-operator-grantable" },
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
    },
    { metadata: { name: "cluster-admin" }, rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] },
  ];
  const clusterRoleBindings: V1ClusterRoleBinding[] = sc.adminBinding
    ? [
        {
          metadata: { name: "alice-admin" },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
          subjects: [{ kind: "User", name: "alice", apiGroup: "rbac.authorization.k8s.io" }],
        },
      ]
    : [];
  return {
    policies,
    namespaces,
    networkPolicies,
    serviceAccounts,
    roles: [],
    roleBindings: [],
    configMaps: [],
    rbac: { clusterRoles, clusterRoleBindings, roles: [], roleBindings: [] },
    wideningNetworkPolicies: [],
    occupant: () => undefined,
    now: new Date("2026-06-01T00:00:00Z"),
  };
}

const scenario: fc.Arbitrary<Scenario> = fc.integer({ min: 0, max: 90 }).chain((n) =>
  fc.record({
    namespaces: fc.array(
      fc.record(
        {
          tier: fc.constantFrom("a" as const, "b" as const, "none" as const),
          level: fc.constantFrom("baseline" as const, "restricted" as const),
          levelByOperator: fc.boolean(),
        },
        { requiredKeys: ["tier", "levelByOperator"] },
      ),
      { minLength: n, maxLength: n },
    ),
    policies: fc.array(
      fc.record(
        {
          mode: fc.constantFrom("Enforce" as const, "Audit" as const),
          tier: fc.constantFrom("a" as const, "b" as const, "any" as const),
          level: fc.constantFrom("privileged" as const, "baseline" as const, "restricted" as const),
          denyIngress: fc.boolean(),
          denyEgress: fc.boolean(),
          noAutomount: fc.boolean(),
          role: fc.boolean(),
          remembered: fc.integer({ min: 0, max: 40 }),
        },
        {
          requiredKeys: ["mode", "tier", "denyIngress", "denyEgress", "noAutomount", "role", "remembered"],
        },
      ),
      { minLength: 1, maxLength: 3 },
    ),
    children: fc.array(fc.record({ present: fc.boolean(), edited: fc.boolean() }), {
      minLength: n,
      maxLength: n,
    }),
    automount: fc.array(fc.option(fc.boolean(), { nil: undefined }), { minLength: n, maxLength: n }),
    adminBinding: fc.boolean(),
    written: fc.integer({ min: 0, max: 5 }),
  }),
);

const appliedOf = (p: Plan, written: number): Applied => ({
  sharedDone: new Set(),
  corrected: p.writes.slice(0, 2).map((w) => w.drift),
  remaining: p.remaining,
  failures: [],
  written: Array.from({ length: written }, (_, i) => `written-uid-${i}`),
  skipped: [],
});

describe("plan and report in time slices", () => {
  it("plan() and planYielding() (yielding at every point) give the same plan, and so do the memos", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (sc) => {
        for (const name of ["p0", "p1", "gone"]) {
          const once = plan(name, build(sc));
          const sliced = await planYielding(name, build(sc), 0);
          expect(sliced).to.deep.equal(once);
          // The same snapshot again: every memo answers this time; nothing may differ.
          const s = build(sc);
          const first = plan(name, s);
          expect(plan(name, s)).to.deep.equal(first);
          expect(first).to.deep.equal(once);
          const r = report(once, appliedOf(once, sc.written), [], s.now);
          expect(await reportYielding(once, appliedOf(once, sc.written), [], s.now, 0)).to.deep.equal(r);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("lets the event loop run during a full plan: a callback queued before it runs before it ends", async () => {
    const sc = onePolicy(
      Array.from({ length: 400 }, () => ({ tier: "a" as const, levelByOperator: false })),
      {
        mode: "Enforce",
        tier: "a",
        level: "restricted",
        denyIngress: true,
        denyEgress: true,
        noAutomount: true,
        role: false,
        remembered: 0,
      },
    );
    const s = build(sc);
    // Hundreds of points where the event loop may run (one per few dozen namespaces or children).
    let points = 0;
    const it = planSteps("p0", s);
    while (!it.next().done) points++;
    expect(points).to.be.greaterThan(100);
    let ran = false;
    setImmediate(() => (ran = true));
    const p = await planYielding("p0", s, 0);
    expect(ran).to.equal(true);
    expect(p.writes.length).to.equal(400 * 2);
    // With the default budget, the sync and the sliced plan are the same too.
    expect(await planYielding("p0", s)).to.deep.equal(plan("p0", s));
  });

  it("sortedSteps sorts exactly as the stable Array.prototype.sort, ties included", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.nat())), (xs) => {
        const byFirst = (a: [number, number], b: [number, number]) => a[0] - b[0];
        expect(drain(sortedSteps(xs, byFirst))).to.deep.equal([...xs].sort(byFirst));
      }),
      { numRuns: 300 },
    );
    const input = ["b", "a"];
    drain(sortedSteps(input, (a, b) => a.localeCompare(b)));
    expect(input).to.deep.equal(["b", "a"], "the input is not sorted in place");
  });

  it("drainYielding returns what drain returns, and a generator's error rejects it", async () => {
    function* steps(n: number) {
      let sum = 0;
      for (let i = 0; i < n; i++) {
        sum += i;
        yield;
      }
      if (n < 0) throw new Error("negative");
      return sum;
    }
    expect(await drainYielding(steps(1000), 0)).to.equal(drain(steps(1000)));
    let caught: unknown;
    await drainYielding(steps(-1), 0).catch((e: unknown) => (caught = e));
    expect((caught as Error).message).to.equal("negative");
  });
});

describe("the per-item memos", () => {
  it("effectiveSpec is computed once per policy object, deep-frozen; the policy itself is never frozen", () => {
    const p = policyBuilder("p")
      .spec({ networkPolicies: { defaultDenyIngress: true, extra: [] } })
      .build();
    const spec = effectiveSpec(p);
    expect(effectiveSpec(p)).to.equal(spec);
    expect(Object.isFrozen(spec)).to.equal(true);
    expect(Object.isFrozen(spec.networkPolicies)).to.equal(true);
    expect(() => {
      (spec as { mode?: string }).mode = "Audit";
    }).to.throw(TypeError);
    expect(() => (spec.networkPolicies!.extra as unknown[]).push({})).to.throw(TypeError);
    expect(Object.isFrozen(p.spec)).to.equal(false);
    expect(Object.isFrozen(p.spec!.networkPolicies)).to.equal(false);
    expect(effectiveSpec(p).mode).to.equal("Enforce");
  });

  it("a changed spec (a new policy object, or a new spec on the same object) gives the new value", () => {
    const p = policyBuilder("p")
      .spec({ networkPolicies: { defaultDenyIngress: true } })
      .build();
    const s = build({
      namespaces: [],
      policies: [],
      children: [],
      automount: [],
      adminBinding: false,
      written: 0,
    });
    const ns = { metadata: { name: "a", labels: {} }, status: { phase: "Active" } };
    const snap = { ...s, policies: [p], namespaces: [ns] };
    expect(plan("p", snap).enforce).to.equal(true);
    const audit = { ...p, spec: { ...p.spec, mode: "Audit" as const } };
    expect(plan("p", { ...snap, policies: [audit] }).enforce).to.equal(false);
    p.spec = { ...p.spec, mode: "Audit" };
    expect(effectiveSpec(p).mode).to.equal("Audit");
    expect(plan("p", snap).writes).to.deep.equal([]);
  });

  it("RBAC findings follow the RBAC caches: a new ClusterRole or binding changes them on the next plan", () => {
    const sc = onePolicy([{ tier: "a", levelByOperator: false }], {
      mode: "Audit",
      tier: "a",
      denyIngress: false,
      denyEgress: false,
      noAutomount: false,
      role: false,
      remembered: 0,
    });
    const s = build(sc);
    const rbac = s.rbac!;
    const ids = (snap: Snapshot) => plan("p0", snap).findings.map((f) => `${f.id} ${f.resource}`);
    expect(ids(s)).to.deep.equal([]);
    // A binding to a ClusterRole that does not exist yet: dangling.
    const binding: V1ClusterRoleBinding = {
      metadata: { name: "bob-ops" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "ops" },
      subjects: [{ kind: "User", name: "bob", apiGroup: "rbac.authorization.k8s.io" }],
    };
    const withBinding = { ...s, rbac: { ...rbac, clusterRoleBindings: [binding] } };
    const dangling = ids(withBinding);
    expect(dangling).to.have.length(1);
    // Same objects in fresh lists (as every repair's snapshot has them): the same findings.
    expect(ids({ ...withBinding, rbac: { ...rbac, clusterRoleBindings: [binding] } })).to.deep.equal(
      dangling,
    );
    // The ClusterRole appears, with a wildcard: the findings change at the next plan.
    const ops: V1ClusterRole = {
      metadata: { name: "ops" },
      rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
    };
    const withRole = {
      ...s,
      rbac: { ...rbac, clusterRoles: [...rbac.clusterRoles, ops], clusterRoleBindings: [binding] },
    };
    const wild = ids(withRole);
    expect(wild).to.not.deep.equal(dangling);
    expect(wild.length).to.be.greaterThan(0);
    // The ClusterRole replaced by a harmless one (a new object, as an informer hands it): findings go.
    const tame: V1ClusterRole = {
      metadata: { name: "ops" },
      rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }],
    };
    const clusterRoles = [...rbac.clusterRoles, tame];
    expect(ids({ ...s, rbac: { ...rbac, clusterRoles, clusterRoleBindings: [binding] } })).to.deep.equal([]);
    // Direct calls agree with a fresh computation whatever the memo holds.
    const audit = { forbidWildcards: true };
    const fresh = structuredClone(withRole.rbac);
    expect(rbacFindings(withRole.rbac, audit)).to.deep.equal(rbacFindings(fresh, audit));
  });

  it("appliedPaths answers from managedFields as they are: a new list, or one grown in place, is read again", () => {
    const entry = (path: string) => ({
      manager: FIELD_MANAGER,
      operation: "Apply",
      fieldsType: "FieldsV1",
      fieldsV1: { "f:metadata": { "f:labels": { [`f:${path}`]: {} } } },
    });
    const obj = { metadata: { managedFields: [entry("x")] } };
    expect([...appliedPaths(obj, FIELD_MANAGER)]).to.include("metadata.labels.x");
    expect(appliedPaths(obj, FIELD_MANAGER)).to.equal(appliedPaths(obj, FIELD_MANAGER));
    expect([...appliedPaths(obj, "other")]).to.deep.equal([]);
    obj.metadata.managedFields.push(entry("y"));
    expect([...appliedPaths(obj, FIELD_MANAGER)]).to.include("metadata.labels.y");
    const next = { metadata: { managedFields: [entry("z")] } };
    expect([...appliedPaths(next, FIELD_MANAGER)]).to.deep.equal([
      "metadata",
      "metadata.labels",
      "metadata.labels.z",
    ]);
  });
});
