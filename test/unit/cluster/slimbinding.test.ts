import { expect } from "chai";
import fc from "fast-check";
import type { V1ClusterRole, V1RoleBinding } from "@kubernetes/client-node";
import { Interner } from "../../../src/cluster/intern.js";
import { slimRoleBinding } from "../../../src/cluster/slimbinding.js";
import { withCompactManagedFields } from "../../../src/drift/managedfields.js";
import { controllingPolicy, writtenByOperator } from "../../../src/drift/ownership.js";
import { bindingFindings, type RoleSource } from "../../../src/findings/rbac.js";
import { mayConcernOperator, type RbacView } from "../../../src/cluster/rbacevents.js";

const GROUP = "rbac.authorization.k8s.io";

/** A RoleBinding as a v1.36 API server lists it, written by kubectl (client-side apply). */
function binding(
  name: string,
  opts: {
    namespace?: string;
    roleRef?: V1RoleBinding["roleRef"];
    subjects?: V1RoleBinding["subjects"];
    labels?: Record<string, string>;
    manager?: string;
    ownerReferences?: unknown[];
  } = {},
): V1RoleBinding {
  const namespace = opts.namespace ?? "team-a";
  const roleRef = opts.roleRef ?? { apiGroup: GROUP, kind: "ClusterRole", name: "view" };
  const subjects = opts.subjects ?? [{ kind: "User", apiGroup: GROUP, name: `user-${name}` }];
  return JSON.parse(
    JSON.stringify({
      apiVersion: `${GROUP}/v1`,
      kind: "RoleBinding",
      metadata: {
        name,
        namespace,
        uid: `uid-${namespace}-${name}`,
        resourceVersion: "4711",
        creationTimestamp: "2026-12-05T12:14:21Z",
        ...(opts.labels ? { labels: opts.labels } : {}),
        annotations: {
          "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({ roleRef, subjects }),
        },
        ...(opts.ownerReferences ? { ownerReferences: opts.ownerReferences } : {}),
        managedFields: [
          {
            manager: opts.manager ?? "kubectl-client-side-apply",
            operation: opts.manager === "csp-operator" ? "Apply" : "Update",
            apiVersion: `${GROUP}/v1`,
            time: "2026-12-05T12:14:21Z",
            fieldsType: "FieldsV1",
            fieldsV1: {
              "f:metadata": {
                "f:annotations": { ".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {} },
              },
              "f:roleRef": {},
              "f:subjects": {},
            },
          },
        ],
      },
      roleRef,
      subjects,
    }),
  ) as V1RoleBinding;
}

const roles: RoleSource = {
  clusterRole: (name) =>
    (
      ({
        "cluster-admin": {
          metadata: { name: "cluster-admin" },
          rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
        },
        view: {
          metadata: { name: "view" },
          rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
        },
      }) as Record<string, V1ClusterRole>
    )[name],
  role: (namespace, name) =>
    name === "secrets"
      ? {
          metadata: { name, namespace },
          rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "list"] }],
        }
      : undefined,
};

/** `b` as the full caches keep it, without what the slim copy drops. */
function expectedSlim(b: V1RoleBinding): unknown {
  const full = JSON.parse(JSON.stringify(withCompactManagedFields(b))) as V1RoleBinding;
  delete full.metadata!.annotations;
  delete full.metadata!.creationTimestamp;
  return full;
}

describe("slimRoleBinding: what the RoleBinding cache keeps", () => {
  it("keeps of another writer's binding what findings, occupancy and ownership read, nothing else", () => {
    const b = binding("readers", { labels: { app: "x" } });
    const slim = slimRoleBinding(b, new Interner());
    expect(JSON.parse(JSON.stringify(slim))).to.deep.equal(expectedSlim(b));
    expect(slim.metadata?.annotations).to.equal(undefined);
    expect(slim.metadata?.creationTimestamp).to.equal(undefined);
  });

  it("keeps the operator's own bindings whole (managed-by or policy label, policy ownerReference, its apply)", () => {
    const owner = {
      apiVersion: "security.csp-operator.io/v1alpha1",
      kind: "ClusterSecurityPolicy",
      name: "baseline",
      uid: "p-uid",
      controller: true,
    };
    const ours = [
      binding("a", { labels: { "app.kubernetes.io/managed-by": "csp-operator" } }),
      binding("b", { labels: { "security.csp-operator.io/policy": "baseline" } }),
      binding("c", { ownerReferences: [owner] }),
      binding("d", { manager: "csp-operator" }),
    ];
    for (const b of ours) {
      const kept = slimRoleBinding(b, new Interner());
      expect(JSON.parse(JSON.stringify(kept)), b.metadata!.name).to.deep.equal(
        JSON.parse(JSON.stringify(withCompactManagedFields(b))),
      );
      expect(kept.metadata?.annotations, b.metadata!.name).to.not.equal(undefined);
    }
    expect(controllingPolicy(slimRoleBinding(ours[2]!, new Interner()))).to.equal("baseline");
    expect(writtenByOperator(slimRoleBinding(ours[3]!, new Interner()), "RoleBinding")).to.equal(true);
  });

  it("puts no subject seen once in the shared tables; shares roleRefs and the strings subjects repeat", () => {
    const interner = new Interner();
    const a = slimRoleBinding(binding("one"), interner);
    const before = interner.sizes;
    const slims = Array.from({ length: 50 }, (_, i) => slimRoleBinding(binding(`b-${i}`), interner));
    // The same roleRef and managedFields: nothing new in the tables; the 50 unique user names neither.
    expect(interner.sizes).to.deep.equal(before);
    expect(slims[7]!.roleRef).to.equal(a.roleRef);
    expect(slims[7]!.metadata?.managedFields).to.equal(a.metadata?.managedFields);
    expect(slims[7]!.subjects?.[0]?.kind).to.equal("User");
    expect(slims[7]!.subjects?.[0]?.name).to.equal("user-b-7");
    expect(Object.isFrozen(slims[7]!.subjects)).to.equal(true);
    expect(Object.isFrozen(slims[7]!.subjects?.[0])).to.equal(true);
  });

  it("never throws on odd input and keeps it as it came", () => {
    const odd = [
      {} as V1RoleBinding,
      { metadata: { name: "x" } } as V1RoleBinding,
      {
        metadata: { name: "x", namespace: "n", deletionTimestamp: "2026-12-05T12:00:00Z" },
      } as unknown as V1RoleBinding,
      { metadata: { name: "x", namespace: "n" }, subjects: [] } as unknown as V1RoleBinding,
      { metadata: { name: "x", namespace: "n" }, subjects: "nobody" } as unknown as V1RoleBinding,
      {
        metadata: { name: "x", namespace: "n" },
        subjects: [null, 7, { kind: 1 }, { kind: "User" }, { kind: "User", name: "a", extra: { x: 1 } }],
      } as unknown as V1RoleBinding,
    ];
    for (const b of odd) {
      const slim = slimRoleBinding(b, new Interner());
      expect(JSON.parse(JSON.stringify(slim))).to.deep.equal(JSON.parse(JSON.stringify(b)));
    }
  });

  it("gives the same RBAC findings and the same answer to 'may this concern the operator?' (property)", () => {
    const subject = fc.oneof(
      fc.record({
        kind: fc.constant("User"),
        apiGroup: fc.constant(GROUP),
        name: fc.constantFrom("alice", "system:anonymous", "system:serviceaccount:csp-system:csp-operator"),
      }),
      fc.record({
        kind: fc.constant("Group"),
        apiGroup: fc.constant(GROUP),
        name: fc.constantFrom("devs", "system:authenticated", "system:serviceaccounts"),
      }),
      fc.record(
        {
          kind: fc.constant("ServiceAccount"),
          name: fc.constantFrom("default", "app"),
          namespace: fc.constantFrom("team-a", "csp-system"),
        },
        { requiredKeys: ["kind", "name"] },
      ),
    );
    const roleRef = fc.oneof(
      fc.record({
        apiGroup: fc.constant(GROUP),
        kind: fc.constant("ClusterRole"),
        name: fc.constantFrom("cluster-admin", "view", "missing"),
      }),
      fc.record({
        apiGroup: fc.constant(GROUP),
        kind: fc.constant("Role"),
        name: fc.constantFrom("secrets", "missing"),
      }),
    );
    fc.assert(
      fc.property(
        fc.array(subject, { maxLength: 4 }),
        roleRef,
        fc.constantFrom("team-a", "csp-system"),
        (subjects, ref, ns) => {
          const b = binding("prop", {
            namespace: ns,
            roleRef: ref,
            subjects: subjects,
          });
          const slim = slimRoleBinding(b, new Interner());
          expect(JSON.parse(JSON.stringify(slim))).to.deep.equal(expectedSlim(b));
          for (const audit of [{}, { forbidClusterAdminBindings: true, forbidWildcards: true }])
            expect(bindingFindings(slim, "RoleBinding", roles, audit)).to.deep.equal(
              bindingFindings(b, "RoleBinding", roles, audit),
            );
          const view = (x: V1RoleBinding): RbacView => ({
            ...roles,
            clusterRoleBinding: () => undefined,
            roleBinding: () => x,
            clusterRoleBindings: () => [],
            roleBindings: () => [x],
          });
          expect(mayConcernOperator(slim, view(slim))).to.equal(mayConcernOperator(b, view(b)));
        },
      ),
    );
  });
});
