/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * Unlabelled orphans on a real API server: children stripped of their managed-by label and then dropped
 * from the policy are deleted when provably the policy's own (controller ownerReference, csp-operator's
 * apply, the UID status remembers), whatever their content (a narrow NetworkPolicy, a Role, a RoleBinding,
 * a ServiceAccount). Look-alikes namespace users forge (an ownerReference to the policy's UID, even applied
 * server-side as csp-operator) and another policy's stripped children are never deleted. Audit mode
 * reports, never deletes.
 */
import { expect } from "chai";
import type { KubernetesObject } from "@kubernetes/client-node";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { operatorSuite } from "../support/operatorsuite.js";

const MANAGED_BY = "app.kubernetes.io/managed-by";
const NS = "orph-a";

/** The test's namespace users (`edit`, `admin`) are accepted, not findings. */
const EXEMPT = `  exemptions:
    - { findingId: RBAC-ESCALATION, reason: the test's namespace users }
    - { findingId: RBAC-SECRETS-READ, reason: the test's namespace users }
`;

/** keeper: a default-deny, plus (when `full`) a narrow extra NetworkPolicy and a generated Role. */
function keeper(mode: "Enforce" | "Audit", full: boolean): string {
  return `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: keeper }
spec:
  mode: ${mode}
  namespaces: { selector: { matchLabels: { orph: "yes" } } }
  networkPolicies:
    defaultDenyIngress: true
    defaultDenyEgress: false
    allowDNS: false
${
  full
    ? `    extra:
      - name: narrow
        spec:
          podSelector: { matchLabels: { app: web } }
          ingress: [{ ports: [{ port: 8080 }] }]
  rbac:
    roles:
      - name: reader
        rules: [{ apiGroups: [""], resources: [pods], verbs: [get] }]
`
    : ""
}${EXEMPT}`;
}

/** A second policy over the same namespace with one narrow extra NetworkPolicy of its own. */
const second = (mode: "Enforce" | "Audit") => `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: second }
spec:
  mode: ${mode}
  namespaces: { selector: { matchLabels: { orph: "yes" } } }
  networkPolicies:
    defaultDenyIngress: false
    defaultDenyEgress: false
    allowDNS: false
    extra:
      - name: mine
        spec:
          podSelector: { matchLabels: { app: db } }
          ingress: [{ ports: [{ port: 5432 }] }]
${EXEMPT}`;

interface PolicyStatus {
  observedGeneration?: number;
  conditions?: { type: string; status: string }[];
  drift?: { kind: string; namespace?: string; name: string; reason: string }[];
  childUIDs?: string[];
}

describe("unlabelled orphans (real API server)", function () {
  this.timeout(120_000);
  const suite = operatorSuite("orphans", {
    setup: async (cp) => {
      const ok = kubectlOk(() => cp);
      await ok(["create", "namespace", NS]);
      await ok(["label", "namespace", NS, "orph=yes"]);
      await ok(["create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", NS]);
      await ok(["create", "rolebinding", "bob-admin", "--clusterrole=admin", "--user=bob", "-n", NS]);
    },
  });
  const ok = kubectlOk(() => suite.cp);
  const get = async (kind: string, name: string): Promise<KubernetesObject | undefined> => {
    const r = await suite.cp.kubectl(["get", kind, name, "-n", NS, "-o", "json", "--show-managed-fields"]);
    if (r.code !== 0) {
      if (/NotFound/.test(r.stderr)) return undefined;
      throw new Error(r.stderr);
    }
    return JSON.parse(r.stdout) as KubernetesObject;
  };
  const status = async (policy: string) =>
    (JSON.parse(await ok(["get", "csp", policy, "-o", "json"])) as { status?: PolicyStatus }).status ?? {};
  /** The policy's current generation has been reconciled and its status written. */
  const observed = (policy: string) =>
    eventually(`${policy} observed`, async () => {
      const p = JSON.parse(await ok(["get", "csp", policy, "-o", "json"])) as {
        metadata: { generation: number };
        status?: PolicyStatus;
      };
      return p.status?.observedGeneration === p.metadata.generation;
    });
  const uidOf = async (policy: string) =>
    (JSON.parse(await ok(["get", "csp", policy, "-o", "json"])) as { metadata: { uid: string } }).metadata
      .uid;
  /** Every policy reconciled at least once after this call, and the queue drained. */
  const reconciledAgain = async () => {
    const c = suite.operator.controller;
    const target = c.stats.reconciles + (await ok(["get", "csp", "-o", "name"])).trim().split("\n").length;
    c.resync();
    await eventually("every policy reconciled again", () =>
      Promise.resolve(c.stats.reconciles >= target && c.queue.length === 0 && c.queue.inFlight === 0),
    );
  };
  const children: [kind: string, name: string][] = [
    ["networkpolicy", "csp-keeper.narrow"],
    ["role", "reader"],
    ["rolebinding", "reader"],
    ["serviceaccount", "reader"],
  ];
  const uids = new Map<string, string>();

  it("Audit mode reports stripped children it no longer wants as Orphaned and deletes nothing", async () => {
    await ok(["apply", "-f", "-"], keeper("Enforce", true));
    for (const [kind, name] of children) {
      const o = await eventually(`${kind} ${name} created`, () => get(kind, name), 60_000);
      uids.set(kind, o.metadata!.uid!);
    }
    await ok(["apply", "-f", "-"], keeper("Audit", true));
    await observed("keeper");
    // A user with write access strips the managed-by label: the managed caches no longer hold them.
    for (const [kind, name] of children) await ok(["label", kind, name, "-n", NS, `${MANAGED_BY}-`]);
    await ok(["apply", "-f", "-"], keeper("Audit", false));
    await eventually(
      "the four reported Orphaned",
      async () =>
        ((await status("keeper")).drift ?? []).filter((d) => d.reason === "Orphaned" && d.namespace === NS)
          .length === 4,
      60_000,
    );
    await reconciledAgain();
    for (const [kind, name] of children) {
      const o = await get(kind, name);
      expect(o?.metadata?.uid, `${kind} ${name} kept in Audit mode`).to.equal(uids.get(kind));
      expect(o?.metadata?.labels?.[MANAGED_BY]).to.equal(undefined);
    }
  });

  it("Enforce mode deletes them: a narrow NetworkPolicy, a Role, a RoleBinding, a ServiceAccount", async () => {
    await ok(["apply", "-f", "-"], keeper("Enforce", false));
    for (const [kind, name] of children)
      await eventually(`${kind} ${name} deleted`, async () => (await get(kind, name)) === undefined, 60_000);
    // Its default-deny stays; the policy converges.
    await eventually(
      "keeper Compliant",
      async () => (await status("keeper")).conditions?.find((c) => c.type === "Compliant")?.status === "True",
      60_000,
    );
  });

  it("never deletes look-alikes namespace users forged (ownerReference to the policy, applied as csp-operator)", async () => {
    const ref = {
      apiVersion: "security.csp-operator.io/v1alpha1",
      kind: "ClusterSecurityPolicy",
      name: "keeper",
      uid: await uidOf("keeper"),
      controller: true,
    };
    const meta = (name: string) => ({ name, namespace: NS, ownerReferences: [ref] });
    const np = {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: meta("alice-np"),
      spec: { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] },
    };
    const sa = {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: meta("alice-sa"),
      automountServiceAccountToken: false,
    };
    const role = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta("bob-role"),
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
    };
    const binding = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta("bob-role"),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "bob-role" },
      subjects: [{ kind: "ServiceAccount", name: "alice-sa", namespace: NS }],
    };
    const ssa = (who: string, obj: unknown) =>
      ok(
        [`--as=${who}`, "apply", "--server-side", "--field-manager=csp-operator", "-f", "-"],
        JSON.stringify(obj),
      );
    // alice holds `edit` (NetworkPolicies, ServiceAccounts), bob `admin` (Roles and RoleBindings too).
    await ssa("alice", np);
    await ssa("alice", sa);
    await ssa("bob", role);
    await ssa("bob", binding);
    const forged: [string, string][] = [
      ["networkpolicy", "alice-np"],
      ["serviceaccount", "alice-sa"],
      ["role", "bob-role"],
      ["rolebinding", "bob-role"],
    ];
    const before = new Map<string, string>();
    for (const [kind, name] of forged) {
      const o = await get(kind, name);
      expect(o?.metadata?.managedFields?.some((e) => e.manager === "csp-operator" && e.operation === "Apply"))
        .to.be.true;
      before.set(kind, o!.metadata!.uid!);
    }
    await reconciledAgain();
    await reconciledAgain();
    for (const [kind, name] of forged)
      expect((await get(kind, name))?.metadata?.uid, `${kind} ${name} kept`).to.equal(before.get(kind));
    const remembered = (await status("keeper")).childUIDs ?? [];
    for (const uid of before.values()) expect(remembered).to.not.include(uid.slice(0, 13));
  });

  it("never deletes another policy's stripped child in a namespace both select", async () => {
    await ok(["apply", "-f", "-"], second("Enforce"));
    const mine = await eventually(
      "second's NetworkPolicy",
      () => get("networkpolicy", "csp-second.mine"),
      60_000,
    );
    // In Audit mode second's stripped child stays unlabelled (and second still wants it).
    await ok(["apply", "-f", "-"], second("Audit"));
    await observed("second");
    await ok(["label", "networkpolicy", "csp-second.mine", "-n", NS, `${MANAGED_BY}-`]);
    await reconciledAgain();
    await reconciledAgain();
    expect((await get("networkpolicy", "csp-second.mine"))?.metadata?.uid).to.equal(mine.metadata!.uid);
    expect(((await status("keeper")).drift ?? []).filter((d) => d.reason === "Orphaned")).to.deep.equal([]);
  });
});
