/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * Ownership by identity, proven on a real API server with a namespace user holding `edit`: an object is the
 * operator's because it carries the policy's controller ownerReference (or the operator's own server-side
 * apply entries), never because of its labels. A relabelled or stripped child is restored; an object
 * another policy controls is a reported collision; an object a user created is never labelled, adopted or
 * garbage-collected (the `default` ServiceAccount keeps its UID); shared Pod Security labels only tighten
 * and return to their original values when the policy goes.
 */
import { expect } from "chai";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../../src/api/v1alpha1/policy.js";
import { BLOCKED_RECHECK_MS, reconcile, type ReconcileDeps } from "../../src/controller/reconcile.js";
import { silentLogger } from "../../src/observability/logger.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { operatorSuite } from "../support/operatorsuite.js";

const GROUP_LABEL = "security.csp-operator.io/policy";
const MANAGED_BY = "app.kubernetes.io/managed-by";
const PSA = "pod-security.kubernetes.io/";
/** The test's namespace editor (`edit` grants Secrets reads and impersonation) is accepted, not a finding. */
const ACCEPT_EDITOR = `  exemptions:
    - { findingId: RBAC-ESCALATION, reason: the test's namespace editor }
    - { findingId: RBAC-SECRETS-READ, reason: the test's namespace editor }
`;

/** A policy with exactly one NetworkPolicy child per namespace: a default-deny for ingress. */
function denyPolicy(name: string, selector: string): string {
  return `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: ${name} }
spec:
  namespaces: { selector: { matchLabels: { ${selector} } } }
  networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: false, allowDNS: false }
${ACCEPT_EDITOR}`;
}

interface Obj extends KubernetesObject {
  spec?: { ingress?: unknown[] };
  automountServiceAccountToken?: boolean;
}
interface PolicyStatus {
  conditions?: { type: string; status: string; reason: string; message: string }[];
  drift?: { kind: string; namespace?: string; name: string; reason: string; message?: string }[];
  findings?: { id: string; severity: string; resource: string; message: string }[];
}

describe("ownership by identity (real API server, namespace user with edit)", function () {
  this.timeout(120_000);
  const suite = operatorSuite("ownership");
  const ok = kubectlOk(() => suite.cp);
  const alice = (...args: string[]) => ok(["--as=alice", ...args]);
  const get = async (kind: string, ns: string | undefined, name: string): Promise<Obj | undefined> => {
    const r = await suite.cp.kubectl(["get", kind, name, ...(ns ? ["-n", ns] : []), "-o", "json"]);
    if (r.code !== 0) {
      if (/NotFound/.test(r.stderr)) return undefined;
      throw new Error(r.stderr);
    }
    return JSON.parse(r.stdout) as Obj;
  };
  const status = async (policy: string) =>
    (JSON.parse(await ok(["get", "csp", policy, "-o", "json"])) as { status?: PolicyStatus }).status ?? {};
  /** Waits for a condition; on timeout the error carries the policy's status, to see why. */
  const waitFor = async (policy: string, type: string, want = "True", timeoutMs = 60_000) => {
    try {
      await eventually(
        `${type}=${want} on ${policy}`,
        async () => {
          const c = (await status(policy)).conditions?.find((x) => x.type === type);
          return c?.status === want;
        },
        timeoutMs,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; status: ${JSON.stringify(await status(policy))}`, {
        cause: err,
      });
    }
  };
  const uidOf = async (policy: string) =>
    (JSON.parse(await ok(["get", "csp", policy, "-o", "json"])) as { metadata: { uid: string } }).metadata
      .uid;
  const namespaceWithEditUser = async (ns: string) => {
    await ok(["create", "namespace", ns]);
    await ok(["create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", ns]);
  };
  /** The single NetworkPolicy the deny policy keeps in `ns`, found by its controller ownerReference. */
  const denyIn = async (ns: string, policy: string) => {
    const list = JSON.parse(await ok(["get", "networkpolicy", "-n", ns, "-o", "json"])) as { items: Obj[] };
    const uid = await uidOf(policy);
    const owned = list.items.filter((n) =>
      n.metadata?.ownerReferences?.some((r) => r.uid === uid && r.controller),
    );
    return owned.length === 1 ? owned[0] : undefined;
  };
  let denyName = "";
  let denyUid = "";

  it("creates the default-deny under the policy's controller ownerReference", async () => {
    await namespaceWithEditUser("own-a");
    await ok(["label", "namespace", "own-a", "guard=yes"]);
    await ok(["apply", "-f", "-"], denyPolicy("guard", "guard: 'yes'"));
    await ok(["apply", "-f", "-"], denyPolicy("other", "other: 'yes'"));
    await waitFor("guard", "Compliant", "True", 60_000);
    const deny = await eventually("guard's NetworkPolicy", () => denyIn("own-a", "guard"));
    denyName = deny.metadata!.name!;
    denyUid = deny.metadata!.uid!;
    expect(deny.metadata?.labels?.[GROUP_LABEL]).to.equal("guard");
  });

  const restored = async (ns: string) => {
    const guardUid = await uidOf("guard");
    const np = await eventually("restored", async () => {
      const n = await get("networkpolicy", ns, denyName);
      const ours = n?.metadata?.ownerReferences?.some((r) => r.uid === guardUid && r.controller);
      return n && ours && n.metadata?.labels?.[GROUP_LABEL] === "guard" && !n.spec?.ingress?.length
        ? n
        : undefined;
    });
    expect(np.metadata?.labels?.[MANAGED_BY]).to.equal("csp-operator");
    expect(np.metadata?.uid).to.equal(denyUid, "restored in place, never deleted and recreated");
    await waitFor("guard", "Compliant", "True", 60_000);
    await waitFor("guard", "NetworkIsolated", "True", 30_000);
  };

  it("restores a child an edit user relabelled to another policy and opened to all ingress", async () => {
    await alice("label", "--overwrite", "networkpolicy", denyName, "-n", "own-a", `${GROUP_LABEL}=other`);
    await alice(
      "patch",
      "networkpolicy",
      denyName,
      "-n",
      "own-a",
      "--type=merge",
      "-p",
      '{"spec":{"ingress":[{}]}}',
    );
    await restored("own-a");
    const other = await status("other");
    expect(other.drift ?? []).to.deep.equal([], "the other policy never claims guard's object");
  });

  it("restores a child relabelled to a policy that does not exist", async () => {
    await alice("label", "--overwrite", "networkpolicy", denyName, "-n", "own-a", `${GROUP_LABEL}=ghost`);
    await alice(
      "patch",
      "networkpolicy",
      denyName,
      "-n",
      "own-a",
      "--type=merge",
      "-p",
      '{"spec":{"ingress":[{}]}}',
    );
    await restored("own-a");
  });

  it("restores a child whose labels and ownerReferences were stripped (identity from managedFields)", async () => {
    const patched = await alice(
      "patch",
      "networkpolicy",
      denyName,
      "-n",
      "own-a",
      "-o",
      "json",
      "--type=json",
      "-p",
      JSON.stringify([
        { op: "remove", path: "/metadata/labels" },
        { op: "remove", path: "/metadata/ownerReferences" },
        { op: "add", path: "/spec/ingress", value: [{}] },
      ]),
    );
    const stripped = JSON.parse(patched) as Obj;
    expect(stripped.metadata?.ownerReferences ?? []).to.deep.equal([]);
    expect(stripped.metadata?.labels ?? {}).to.deep.equal({});
    await restored("own-a");
  });

  it("restores a child whose ownerReferences and managedFields an edit user rewrote (UID remembered in status)", async () => {
    await eventually("guard remembers its child's UID", async () => {
      const st = (await status("guard")) as PolicyStatus & { childUIDs?: string[] };
      return st.childUIDs?.includes(denyUid.slice(0, 13));
    });
    await alice("create", "configmap", "mine", "-n", "own-a");
    const cm = JSON.parse(await alice("get", "configmap", "mine", "-n", "own-a", "-o", "json")) as Obj;
    const patched = await alice(
      "patch",
      "networkpolicy",
      denyName,
      "-n",
      "own-a",
      "-o",
      "json",
      "--show-managed-fields",
      "--type=json",
      "-p",
      JSON.stringify([
        {
          op: "replace",
          path: "/metadata/ownerReferences",
          value: [
            { apiVersion: "v1", kind: "ConfigMap", name: "mine", uid: cm.metadata!.uid, controller: true },
          ],
        },
        {
          op: "replace",
          path: "/metadata/managedFields",
          value: [
            {
              manager: "alice",
              operation: "Update",
              apiVersion: "networking.k8s.io/v1",
              fieldsType: "FieldsV1",
              fieldsV1: { "f:metadata": { "f:labels": { ".": {} } }, "f:spec": { "f:podSelector": {} } },
            },
          ],
        },
        { op: "add", path: "/spec/ingress", value: [{}] },
      ]),
    );
    const forged = JSON.parse(patched) as Obj;
    expect(forged.metadata?.ownerReferences?.map((r) => r.kind)).to.deep.equal(["ConfigMap"]);
    expect(forged.metadata?.managedFields?.some((e) => e.manager === "csp-operator")).to.equal(false);
    await restored("own-a");
    const after = await get("networkpolicy", "own-a", denyName);
    expect(after?.metadata?.ownerReferences?.map((r) => r.kind)).to.deep.equal(["ClusterSecurityPolicy"]);
  });

  it("reports a user's allow-all NetworkPolicy next to the default-deny, and clears it when removed", async () => {
    const allowAll = {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      // The operator's labels on it change nothing: identity decides what is the policy's.
      metadata: { name: "let-me-in", namespace: "own-a", labels: { [MANAGED_BY]: "csp-operator" } },
      spec: { podSelector: {}, ingress: [{}] },
    };
    await waitFor("guard", "Compliant", "True", 30_000);
    await ok(["--as=alice", "create", "-f", "-"], JSON.stringify(allowAll));
    const s = await eventually("widening reported", async () => {
      const st = await status("guard");
      return st.findings?.some((f) => f.id === "NETPOL-WIDENS-DEFAULT-DENY") ? st : undefined;
    });
    expect(s.findings?.find((f) => f.id === "NETPOL-WIDENS-DEFAULT-DENY")).to.include({
      severity: "Medium",
      resource: "NetworkPolicy/own-a/let-me-in",
    });
    expect(s.conditions?.find((c) => c.type === "NetworkIsolated")?.status).to.equal("False");
    expect(s.conditions?.find((c) => c.type === "Compliant")?.status).to.equal("False");
    expect((await get("networkpolicy", "own-a", "let-me-in"))?.spec?.ingress).to.deep.equal(
      [{}],
      "a user's object is reported, never written",
    );
    await alice("delete", "networkpolicy", "let-me-in", "-n", "own-a");
    await waitFor("guard", "Compliant", "True", 30_000);
  });

  it("prunes an unlabelled allow-all NetworkPolicy an edit user pointed at the policy (forged controller ownerReference)", async () => {
    await waitFor("guard", "Compliant", "True", 30_000);
    const forged = {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name: "owned-by-guard",
        namespace: "own-a",
        ownerReferences: [
          {
            apiVersion: "security.csp-operator.io/v1alpha1",
            kind: "ClusterSecurityPolicy",
            name: "guard",
            uid: await uidOf("guard"),
            controller: true,
          },
        ],
      },
      spec: { podSelector: {}, ingress: [{}] },
    };
    await ok(["--as=alice", "create", "-f", "-"], JSON.stringify(forged));
    // Not one of the policy's children: deleted as the garbage collector would (it was Compliant with it).
    await eventually(
      "the forged allow-all pruned",
      async () => (await get("networkpolicy", "own-a", "owned-by-guard")) === undefined,
      30_000,
    );
    await waitFor("guard", "Compliant", "True", 30_000);
  });

  it("reports an object at its child's name that another policy controls (Conflict) and never writes it", async () => {
    await namespaceWithEditUser("own-d");
    const otherUid = await uidOf("other");
    const foreign = {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name: denyName,
        namespace: "own-d",
        ownerReferences: [
          {
            apiVersion: "security.csp-operator.io/v1alpha1",
            kind: "ClusterSecurityPolicy",
            name: "other",
            uid: otherUid,
            controller: true,
          },
        ],
      },
      // Not allow-all: an unlabelled allow-all object `other` does not want is pruned by `other` (Orphaned).
      spec: { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }], policyTypes: ["Ingress"] },
    };
    await ok(["create", "-f", "-"], JSON.stringify(foreign));
    const before = await get("networkpolicy", "own-d", denyName);
    await ok(["label", "namespace", "own-d", "guard=yes"]);
    const s = await eventually("Conflict reported", async () => {
      const st = await status("guard");
      return st.drift?.some((d) => d.namespace === "own-d" && d.reason === "Conflict") ? st : undefined;
    });
    const d = s.drift!.find((x) => x.namespace === "own-d")!;
    expect(d).to.include({ kind: "NetworkPolicy", name: denyName });
    expect(d.message).to.match(/\bother\b/, "the message names the policy that controls the object");
    expect(s.conditions?.find((c) => c.type === "Compliant")?.status).to.equal("False");
    expect(s.conditions?.find((c) => c.type === "NetworkIsolated")?.status).to.equal("False");
    suite.operator.controller.resync();
    await waitFor("guard", "Compliant", "False", 30_000);
    const after = await get("networkpolicy", "own-d", denyName);
    expect(after?.metadata?.resourceVersion).to.equal(before?.metadata?.resourceVersion, "never written");
    expect(after?.metadata?.labels ?? {}).to.deep.equal({});
    // The collision ends when the other object goes: guard then creates its own at once, told by the
    // occupancy cache's delete event, well before its BLOCKED_RECHECK_MS recheck.
    await ok(["delete", "networkpolicy", denyName, "-n", "own-d"]);
    await eventually("guard's own child in own-d", () => denyIn("own-d", "guard"), BLOCKED_RECHECK_MS / 3);
    await waitFor("guard", "Compliant", "True", 60_000);
  });

  it("a child an edit user points at a second policy wanting the same name stays its policy's: never adopted, never deleted by the second", async () => {
    const twin = (
      name: string,
      withRole: boolean,
      mode = "Enforce",
    ) => `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: ${name} }
spec:
  mode: ${mode}
  namespaces: { selector: { matchLabels: { twin: "yes" } } }
  networkPolicies: { defaultDenyIngress: false, defaultDenyEgress: false, allowDNS: false }
${
  withRole
    ? `  rbac:
    roles:
      - name: reader
        rules: [{ apiGroups: [""], resources: [pods], verbs: [get] }]
`
    : ""
}${ACCEPT_EDITOR}`;
    const full = async (policy: string) =>
      JSON.parse(await ok(["get", "csp", policy, "-o", "json"])) as {
        metadata: { uid: string; generation: number };
        status?: Omit<PolicyStatus, "conditions"> & {
          childUIDs?: string[];
          conditions?: { type: string; status: string; observedGeneration?: number }[];
        };
      };
    const reconciled = (policy: string) =>
      eventually(`${policy} reconciled its spec`, async () => {
        const p = await full(policy);
        const c = p.status?.conditions?.find((x) => x.type === "Ready");
        return c?.observedGeneration === p.metadata.generation ? p : undefined;
      });
    const saCached = (rv: string) =>
      eventually("the operator's cache holds alice's write (or a later one)", () =>
        Promise.resolve(
          suite.operator.cache
            .snapshot()
            .serviceAccounts.some(
              (x) => x.metadata?.name === "reader" && Number(x.metadata.resourceVersion) >= Number(rv),
            ),
        ),
      );
    try {
      await namespaceWithEditUser("own-t");
      await ok(["label", "namespace", "own-t", "twin=yes"]);
      await ok(["apply", "-f", "-"], twin("twin-keeper", true));
      const sa = await eventually("keeper's ServiceAccount reader", () =>
        get("serviceaccount", "own-t", "reader"),
      );
      const uid = sa.metadata!.uid!;
      const mark = uid.slice(0, 13);
      await eventually("keeper remembers it", async () =>
        ((await full("twin-keeper")).status?.childUIDs ?? []).includes(mark),
      );
      // keeper in Audit mode: it reports, never takes its child back, so nothing races what second does.
      await ok(["apply", "-f", "-"], twin("twin-keeper", true, "Audit"));
      await reconciled("twin-keeper");
      await ok(["apply", "-f", "-"], twin("twin-second", true));
      await eventually("second reports a Conflict", async () =>
        ((await full("twin-second")).status?.drift ?? []).some(
          (d) => d.kind === "ServiceAccount" && d.reason === "Conflict",
        ),
      );
      // alice (edit) points the ServiceAccount's controller reference at `twin-second`.
      const secondUid = await uidOf("twin-second");
      const patched = await alice(
        "patch",
        "serviceaccount",
        "reader",
        "-n",
        "own-t",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
        "--type=merge",
        "-p",
        JSON.stringify({
          metadata: {
            ownerReferences: [
              {
                apiVersion: "security.csp-operator.io/v1alpha1",
                kind: "ClusterSecurityPolicy",
                name: "twin-second",
                uid: secondUid,
                controller: true,
              },
            ],
          },
        }),
      );
      await saCached(patched);
      // A full reconcile of every policy (a repair rewrites status only when the drift's reasons change).
      suite.operator.controller.resync();
      // second reports it as keeper's child (keeper's status remembers its UID): never adopts it.
      const conflict = await eventually("second names keeper's remembered child", async () =>
        ((await full("twin-second")).status?.drift ?? []).find(
          (d) =>
            d.kind === "ServiceAccount" &&
            d.reason === "Conflict" &&
            /child of policy twin-keeper/.test(d.message ?? ""),
        ),
      );
      // second's admin drops the entry: second deletes nothing (the old rule deleted it as second's orphan).
      await ok(["apply", "-f", "-"], twin("twin-second", false));
      const second = await reconciled("twin-second");
      expect(second.status?.childUIDs ?? []).to.not.include(mark);
      expect(second.status?.drift ?? []).to.deep.equal([]);
      const still = await get("serviceaccount", "own-t", "reader");
      expect(still?.metadata?.uid).to.equal(uid, "keeper's ServiceAccount is still there");
      expect(still?.metadata?.labels?.[GROUP_LABEL]).to.equal("twin-keeper", "second never adopted it");
      expect(conflict.message).to.contain("its status remembers the object's UID");
      // keeper back in Enforce mode takes its reference back, same object.
      await ok(["apply", "-f", "-"], twin("twin-keeper", true));
      await eventually("keeper restored its reference", async () => {
        const o = await get("serviceaccount", "own-t", "reader");
        return (
          o?.metadata?.uid === uid &&
          o.metadata.ownerReferences?.find((r) => r.controller)?.name === "twin-keeper"
        );
      });
      await waitFor("twin-keeper", "Compliant", "True", 30_000);
    } finally {
      await ok(["delete", "csp", "twin-second", "twin-keeper", "--ignore-not-found"]);
    }
  });

  describe("objects a user created are never adopted, labelled or garbage-collected", () => {
    const GRAB = `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: grab }
spec:
  namespaces: { selector: { matchLabels: { grab: "yes" } } }
  networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: false, allowDNS: false }
  serviceAccounts: { automountDefaultToken: false }
  rbac:
    roles:
      - name: reader
        serviceAccount: reader-sa
        rules: [{ apiGroups: [""], resources: [pods], verbs: [get] }]
${ACCEPT_EDITOR}`;
    let readerUid = "";
    let defaultUid = "";

    it("reports a ServiceAccount an edit user created with forged ownership labels as Unowned", async () => {
      await namespaceWithEditUser("own-e");
      await alice("create", "serviceaccount", "reader-sa", "-n", "own-e");
      await alice(
        "label",
        "serviceaccount",
        "reader-sa",
        "-n",
        "own-e",
        `${MANAGED_BY}=csp-operator`,
        `${GROUP_LABEL}=grab`,
      );
      const sa = await eventually("default ServiceAccount", () => get("serviceaccount", "own-e", "default"));
      await alice("label", "serviceaccount", "default", "-n", "own-e", "team=payments");
      defaultUid = sa.metadata!.uid!;
      readerUid = (await get("serviceaccount", "own-e", "reader-sa"))!.metadata!.uid!;
      await ok(["label", "namespace", "own-e", "grab=yes"]);
      await ok(["apply", "-f", "-"], GRAB);
      const s = await eventually("Unowned reported", async () => {
        const st = await status("grab");
        return st.drift?.some((d) => d.name === "reader-sa" && d.reason === "Unowned") ? st : undefined;
      });
      expect(s.conditions?.find((c) => c.type === "Compliant")?.status).to.equal("False");
      expect(s.conditions?.find((c) => c.type === "LeastPrivilegeRBAC")?.status).to.equal("False");
      const reader = await get("serviceaccount", "own-e", "reader-sa");
      expect(reader?.metadata?.ownerReferences ?? []).to.deep.equal([]);
      expect(reader?.automountServiceAccountToken).to.equal(undefined, "the user's object is untouched");
      // The policy's Role is never bound to the user's ServiceAccount that sits at the generated name.
      await eventually("Role generated", () => get("role", "own-e", "reader"));
      expect(await get("rolebinding", "own-e", "reader")).to.equal(undefined);
      const can = await suite.cp.kubectl([
        "auth",
        "can-i",
        "get",
        "pods",
        "-n",
        "own-e",
        "--as=system:serviceaccount:own-e:reader-sa",
      ]);
      expect(can.stdout.trim()).to.equal("no");
      // The shared field on the default ServiceAccount is set, without taking the object over.
      const def = await eventually("automount off", async () => {
        const d = await get("serviceaccount", "own-e", "default");
        return d?.automountServiceAccountToken === false ? d : undefined;
      });
      expect(def.metadata?.ownerReferences ?? []).to.deep.equal([]);
      expect(def.metadata?.labels).to.deep.equal({ team: "payments" });
    });

    it("never takes over the default ServiceAccount, even when a policy names it (reconcile path)", async () => {
      // Admission refuses `serviceAccount: default`; reconcile must be safe without it. The stored policy
      // is given that spec in the snapshot only, and the status it computes is captured, not written.
      const captured: NonNullable<ClusterSecurityPolicy["status"]>[] = [];
      const deps: ReconcileDeps = {
        snapshot: () => {
          const s = suite.operator.cache.snapshot();
          const policies = s.policies.map((p) =>
            p.metadata.name !== "grab"
              ? p
              : {
                  ...p,
                  spec: {
                    ...p.spec,
                    rbac: {
                      roles: [
                        {
                          name: "reader",
                          serviceAccount: "default",
                          rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }],
                        },
                      ],
                    },
                  },
                },
          );
          return { ...s, policies };
        },
        writer: Object.assign(Object.create(suite.operator.applier) as ReconcileDeps["writer"], {
          patchStatus: (_: string, st: NonNullable<ClusterSecurityPolicy["status"]>) => {
            captured.push(st);
            return Promise.resolve();
          },
          event: () => Promise.resolve(),
        }),
        log: silentLogger(),
      };
      await reconcile("grab", deps).catch(() => undefined);
      await reconcile("grab", deps).catch(() => undefined);
      const def = await get("serviceaccount", "own-e", "default");
      expect(def?.metadata?.ownerReferences ?? []).to.deep.equal([], "no ownerReference on default");
      expect(def?.metadata?.labels).to.deep.equal({ team: "payments" }, "no operator labels on default");
      const last = captured.at(-1);
      expect(last?.drift?.find((d) => d.kind === "ServiceAccount" && d.name === "default")?.reason).to.equal(
        "Unowned",
      );
    });

    it("gives back a default ServiceAccount an earlier version took over (its labels and ownerReference)", async () => {
      // What an earlier version left behind: its labels and a controlling ownerReference on `default`,
      // applied under the operator's field manager.
      const grabUid = await uidOf("grab");
      const takeover = {
        apiVersion: "v1",
        kind: "ServiceAccount",
        metadata: {
          name: "default",
          namespace: "own-e",
          labels: { [MANAGED_BY]: "csp-operator", [GROUP_LABEL]: "grab" },
          ownerReferences: [
            {
              apiVersion: "security.csp-operator.io/v1alpha1",
              kind: "ClusterSecurityPolicy",
              name: "grab",
              uid: grabUid,
              controller: true,
            },
          ],
        },
        automountServiceAccountToken: false,
      };
      await ok(
        ["apply", "--server-side", "--field-manager=csp-operator", "--force-conflicts", "-f", "-"],
        JSON.stringify(takeover),
      );
      suite.operator.controller.resync();
      const def = await eventually("given back", async () => {
        const d = await get("serviceaccount", "own-e", "default");
        return d && !d.metadata?.ownerReferences?.length ? d : undefined;
      });
      expect(def.metadata?.labels).to.deep.equal({ team: "payments" });
      expect(def.metadata?.uid).to.equal(defaultUid);
      expect(def.automountServiceAccountToken).to.equal(false);
    });

    it("never counts a policy ownerReference a user put on the default ServiceAccount as its own: reports it", async () => {
      const grabUid = await uidOf("grab");
      const ref = {
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        name: "grab",
        uid: grabUid,
      };
      await alice(
        "patch",
        "serviceaccount",
        "default",
        "-n",
        "own-e",
        "--type=merge",
        "-p",
        JSON.stringify({ metadata: { ownerReferences: [ref] } }),
      );
      const s = await eventually("reported", async () => {
        const st = await status("grab");
        return st.findings?.some((f) => f.id === "SA-DEFAULT-OWNED-BY-POLICY") ? st : undefined;
      });
      expect(s.findings?.find((f) => f.id === "SA-DEFAULT-OWNED-BY-POLICY")?.resource).to.equal(
        "ServiceAccount/own-e/default",
      );
      const def = JSON.parse(
        await ok(["get", "serviceaccount", "default", "-n", "own-e", "-o", "json", "--show-managed-fields"]),
      ) as Obj;
      expect(def.metadata?.uid).to.equal(defaultUid);
      // The operator's own entry on `default` holds the shared field only, never an ownerReference.
      const mine = (def.metadata?.managedFields ?? []).filter((e) => e.manager === "csp-operator");
      const owned = JSON.stringify(mine.map((e): unknown => e.fieldsV1));
      expect(owned).to.not.contain("ownerReferences");
      expect(owned).to.contain("automountServiceAccountToken");
      // Removed by the user, the finding goes (and the deletion below keeps the ServiceAccount).
      await alice(
        "patch",
        "serviceaccount",
        "default",
        "-n",
        "own-e",
        "--type=json",
        "-p",
        '[{"op":"remove","path":"/metadata/ownerReferences"}]',
      );
      await eventually(
        "finding cleared",
        async () => !(await status("grab")).findings?.some((f) => f.id === "SA-DEFAULT-OWNED-BY-POLICY"),
      );
    });

    it("deleting the policy leaves both ServiceAccounts in place with their UIDs", async () => {
      await ok(["delete", "csp", "grab"]);
      // Everything the policy created is garbage-collected: proof the collector has processed the deletion.
      await eventually(
        "children garbage-collected",
        async () => {
          const left = JSON.parse(
            await ok(["get", "networkpolicy,role,rolebinding", "-n", "own-e", "-o", "json"]),
          ) as { items: Obj[] };
          return left.items.every((o) => !o.metadata?.ownerReferences?.length); // alice-edit stays
        },
        90_000,
      );
      expect((await get("serviceaccount", "own-e", "default"))?.metadata?.uid).to.equal(defaultUid);
      expect((await get("serviceaccount", "own-e", "reader-sa"))?.metadata?.uid).to.equal(readerUid);
    });
  });

  describe("a name someone takes between plan and apply is never written", () => {
    // The controller (both lanes) is stopped: these reconciles, through a writer that lets alice act at
    // the worst moment, are the only ones writing (the caches keep running).
    const RACE = `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: race }
spec:
  namespaces: { selector: { matchLabels: { race: "yes" } } }
  networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: false, allowDNS: false }
${ACCEPT_EDITOR}`;
    const captured: NonNullable<ClusterSecurityPolicy["status"]>[] = [];
    /** The operator's writer, with status captured and `hooks` run before the real writes. */
    const deps = (hooks: Partial<Pick<ReconcileDeps["writer"], "apply" | "create">> = {}): ReconcileDeps => ({
      snapshot: () => suite.operator.cache.snapshot(),
      writer: Object.assign(Object.create(suite.operator.applier) as ReconcileDeps["writer"], {
        patchStatus: (_: string, st: NonNullable<ClusterSecurityPolicy["status"]>) => {
          captured.push(st);
          return Promise.resolve();
        },
        event: () => Promise.resolve(),
        ...hooks,
      }),
      log: silentLogger(),
    });
    const hers = (name: string) =>
      JSON.stringify({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name, namespace: "own-r" },
        spec: { podSelector: {}, ingress: [{}] },
      });
    const cached = (name: string) =>
      suite.operator.cache.snapshot().occupant?.("NetworkPolicy", "own-r", name) as Obj | undefined;
    let childName = "";

    before(async () => {
      await Promise.all([suite.operator.controller.stop(), suite.operator.repairs.stop()]);
      await namespaceWithEditUser("own-r");
      await ok(["apply", "-f", "-"], RACE);
      await ok(["label", "namespace", "own-r", "race=yes"]);
      await eventually("the cache sees own-r selected", () =>
        Promise.resolve(
          suite.operator.cache.snapshot().namespaces.some((n) => n.metadata?.labels?.["race"] === "yes"),
        ),
      );
    });
    after(() => {
      suite.operator.controller.start();
      suite.operator.repairs.start();
    });

    it("a Missing child whose name alice takes just before the create: her object stays hers", async () => {
      let created: Obj | undefined;
      const applier = suite.operator.applier;
      await reconcile(
        "race",
        deps({
          create: async <T extends KubernetesObject>(o: T) => {
            childName = o.metadata!.name!;
            created = JSON.parse(
              await ok(["--as=alice", "create", "-o", "json", "-f", "-"], hers(childName)),
            ) as Obj;
            return applier.create(o);
          },
        }),
      ).catch(() => undefined);
      expect(created, "the writer's create ran").to.not.equal(undefined);
      const now = await get("networkpolicy", "own-r", childName);
      expect(now?.metadata?.resourceVersion).to.equal(created!.metadata!.resourceVersion, "never written");
      expect(now?.metadata?.ownerReferences ?? []).to.deep.equal([]);
      expect(now?.spec?.ingress).to.deep.equal([{}]);
      const st = captured.at(-1) as PolicyStatus & { childUIDs?: string[] };
      expect(st.childUIDs ?? []).to.not.include(created!.metadata!.uid!.slice(0, 13));
      const d = st.drift?.find((x) => x.kind === "NetworkPolicy" && x.name === childName);
      expect(d?.reason).to.equal("Missing");
      expect(d?.message).to.match(/appeared at its name: not written/);
      // Once the cache sees her object, it is reported Unowned, and still never written.
      await eventually("the cache sees her object", () => Promise.resolve(cached(childName)));
      await reconcile("race", deps()).catch(() => undefined);
      const again = (captured.at(-1) as PolicyStatus).drift?.find((x) => x.name === childName);
      expect(again?.reason).to.equal("Unowned");
      const later = await get("networkpolicy", "own-r", childName);
      expect(later?.metadata?.resourceVersion).to.equal(created!.metadata!.resourceVersion);
    });

    it("an existing child alice replaces by a namesake before the repair: the apply and the replace refuse it", async () => {
      await alice("delete", "networkpolicy", childName, "-n", "own-r");
      await eventually("the cache sees it gone", () => Promise.resolve(!cached(childName)));
      await reconcile("race", deps());
      const ours = await eventually("race's own child", () => denyIn("own-r", "race"));
      await alice(
        "patch",
        "networkpolicy",
        childName,
        "-n",
        "own-r",
        "--type=merge",
        "-p",
        '{"spec":{"ingress":[{}]}}',
      );
      await eventually("the cache sees it modified", () =>
        Promise.resolve(
          suite.operator.cache
            .snapshot()
            .networkPolicies.some((n) => n.metadata?.name === childName && (n as Obj).spec?.ingress?.length),
        ),
      );
      let created: Obj | undefined;
      const applier = suite.operator.applier;
      await reconcile(
        "race",
        deps({
          apply: async <T extends KubernetesObject>(o: T, manager?: string) => {
            if (o.kind === "NetworkPolicy") {
              await alice("delete", "networkpolicy", childName, "-n", "own-r");
              created = JSON.parse(
                await ok(["--as=alice", "create", "-o", "json", "-f", "-"], hers(childName)),
              ) as Obj;
            }
            return applier.apply(o, manager);
          },
        }),
      ).catch(() => undefined);
      expect(created, "the writer's apply ran").to.not.equal(undefined);
      const now = await get("networkpolicy", "own-r", childName);
      expect(now?.metadata?.uid).to.equal(created!.metadata!.uid);
      expect(now?.metadata?.resourceVersion).to.equal(created!.metadata!.resourceVersion, "never written");
      expect(now?.metadata?.ownerReferences ?? []).to.deep.equal([]);
      const st = captured.at(-1) as PolicyStatus & { childUIDs?: string[] };
      expect(st.childUIDs ?? []).to.not.include(created!.metadata!.uid!.slice(0, 13));
      expect(st.drift?.find((x) => x.name === childName)?.message).to.match(/write failed/);
      // The PUT path refuses a namesake too.
      // `ours` carries the UID of the object alice deleted: the live one is hers.
      const child = { ...ours, metadata: { ...ours.metadata, uid: ours.metadata!.uid } };
      const replaced = await applier.replaceOwned(child as Parameters<typeof applier.replaceOwned>[0]).then(
        () => "written",
        (err: Error) => err.name + err.message,
      );
      expect(replaced).to.match(/was replaced/);
      const last = await get("networkpolicy", "own-r", childName);
      expect(last?.metadata?.resourceVersion).to.equal(created!.metadata!.resourceVersion, "never written");
      await alice("delete", "networkpolicy", childName, "-n", "own-r");
      await ok(["delete", "csp", "race"]);
    });
  });

  describe("shared Pod Security labels only tighten", () => {
    const PSA_POLICY = `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: psa }
spec:
  namespaces: { selector: { matchLabels: { psa: "yes" } } }
  networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: false, allowDNS: false }
  podSecurity: { enforce: baseline, audit: baseline, warn: baseline, version: latest }
${ACCEPT_EDITOR}`;
    const labels = async (ns: string) => (await get("namespace", undefined, ns))?.metadata?.labels ?? {};

    it("never lowers a namespace's own stricter level, raises a lower one, and says so", async () => {
      await ok(["create", "namespace", "psa-own"]);
      await ok(["label", "namespace", "psa-own", `${PSA}enforce=restricted`, `${PSA}audit=privileged`]);
      await ok(["label", "namespace", "psa-own", "psa=yes"]);
      await ok(["apply", "-f", "-"], PSA_POLICY);
      await eventually("audit raised, warn set", async () => {
        const l = await labels("psa-own");
        return l[`${PSA}audit`] === "baseline" && l[`${PSA}warn`] === "baseline";
      });
      await waitFor("psa", "Compliant", "True", 60_000);
      const l = await labels("psa-own");
      expect(l[`${PSA}enforce`]).to.equal("restricted", "the namespace's own stricter level stays");
      expect(l[`${PSA}warn-version`]).to.equal("latest");
      const s = await status("psa");
      const info = s.findings?.find((f) => f.resource === "Namespace/psa-own");
      expect(info?.severity).to.equal("Info");
      expect(info?.message)
        .to.match(/enforce/)
        .and.match(/restricted/)
        .and.match(/baseline/);
    });

    it("costs zero writes once converged, across a forced resync", async () => {
      await eventually("psa status settled", async () => ((await status("psa")).drift ?? []).length === 0);
      const before = (await suite.cp.auditEvents()).length;
      const nsBefore = (await get("namespace", undefined, "psa-own"))?.metadata?.resourceVersion;
      const c = suite.operator.controller;
      const target = c.stats.reconciles + (await ok(["get", "csp", "-o", "name"])).trim().split("\n").length;
      c.resync();
      await eventually("every policy reconciled again", () =>
        Promise.resolve(c.stats.reconciles >= target && c.queue.length === 0 && c.queue.inFlight === 0),
      );
      await waitFor("psa", "Compliant", "True", 30_000);
      const writes = (await suite.cp.auditEvents())
        .slice(before)
        .filter((e) => ["create", "update", "patch", "delete"].includes(String(e["verb"])))
        .filter((e) => e["stage"] === "ResponseComplete")
        .filter((e) => (e["user"] as { username?: string }).username === "csp-admin")
        .filter((e) => !String(e["userAgent"]).startsWith("kube-controller-manager"))
        .filter((e) => !String((e["objectRef"] as { resource?: string })?.resource).startsWith("leases"))
        .filter((e) => !String(e["userAgent"]).startsWith("kubectl"));
      expect(writes.map((w) => `${String(w["verb"])} ${String(w["requestURI"])}`)).to.deep.equal([]);
      expect((await get("namespace", undefined, "psa-own"))?.metadata?.resourceVersion).to.equal(nsBefore);
    });

    it("deleting the policy restores what was there: own level kept, raised one put back, added ones gone", async () => {
      await ok(["delete", "csp", "psa"]);
      const l = await eventually("released", async () => {
        const x = await labels("psa-own");
        return x[`${PSA}audit`] === "privileged" && x[`${PSA}warn`] === undefined ? x : undefined;
      });
      expect(l[`${PSA}enforce`]).to.equal("restricted");
      expect(l[`${PSA}audit-version`]).to.equal(undefined);
      expect(l[`${PSA}warn-version`]).to.equal(undefined);
      const ann = (await get("namespace", undefined, "psa-own"))?.metadata?.annotations ?? {};
      expect(Object.keys(ann).filter((k) => k.startsWith("security.csp-operator.io/"))).to.deep.equal([]);
    });
  });
});
