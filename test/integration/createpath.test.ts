/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * How children are created, proven on a real API server: a create-only server-side apply (a resourceVersion
 * precondition no stored object meets), so a new child belongs to csp-operator's `Apply` entry alone and a
 * field later dropped from the policy disappears from the child with one apply (a POSTed child's fields
 * belong to an `Update` entry that applies never release). An object someone else put at a child's name
 * is refused by that precondition, never taken over.
 */
import { expect } from "chai";
import type { KubernetesObject, V1ManagedFieldsEntry } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { Applier } from "../../src/cluster/applier.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { silentLogger } from "../../src/observability/logger.js";
import { Operator } from "../../src/controller/manager.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { installCrd } from "../support/crd.js";

interface NetPol extends KubernetesObject {
  spec?: { ingress?: unknown[]; policyTypes?: string[] };
}
const CHILD = "csp-creates.web";

function policy(ingress: boolean): string {
  return `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: creates }
spec:
  namespaces: { selector: { matchLabels: { createpath: "yes" } } }
  networkPolicies:
    defaultDenyIngress: false
    defaultDenyEgress: false
    allowDNS: false
    extra:
      - name: web
        spec:
          podSelector: {}
          policyTypes: [Ingress]
${ingress ? "          ingress: [{ from: [{ podSelector: {} }] }]\n" : ""}`;
}

describe("children are created Apply-owned, never taken over (real API server)", function () {
  this.timeout(120_000);
  let cp: ControlPlane;
  let operator: Operator;
  const ok = kubectlOk(() => cp);
  const child = async (ns: string): Promise<NetPol | undefined> => {
    const r = await cp.kubectl([
      "get",
      "networkpolicy",
      CHILD,
      "-n",
      ns,
      "-o",
      "json",
      "--show-managed-fields",
    ]);
    if (r.code !== 0) return undefined;
    return JSON.parse(r.stdout) as NetPol;
  };
  const entriesOf = (o: NetPol | undefined, manager: string): V1ManagedFieldsEntry[] =>
    (o?.metadata?.managedFields ?? []).filter((e) => e.manager === manager);

  /** The operator's requests (verbs) on the child in `ns` since audit event number `from`. */
  const requestsOn = async (ns: string, from: number): Promise<string[]> =>
    (await cp.auditEvents())
      .slice(from)
      .filter((e) => e["stage"] === "ResponseComplete")
      .filter((e) => {
        const ref = e["objectRef"] as { resource?: string; namespace?: string; name?: string } | undefined;
        return ref?.resource === "networkpolicies" && ref.namespace === ns && ref.name === CHILD;
      })
      .filter((e) => (e["user"] as { username?: string }).username === "csp-admin")
      .filter((e) => !String(e["userAgent"]).startsWith("kubectl"))
      .map((e) => String(e["verb"]));

  before(async function () {
    this.timeout(180_000);
    cp = await startControlPlane({ name: "createpath", controllerManager: false });
    await installCrd(cp);
    await ok(["create", "namespace", "cp-a"]);
    await ok(["create", "namespace", "cp-b"]);
    // Someone else's object at the child's name in cp-b, before any policy selects it.
    await ok(
      ["apply", "--server-side", "--field-manager=alice", "-f", "-"],
      JSON.stringify({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: CHILD, namespace: "cp-b", labels: { team: "alice" } },
        spec: { podSelector: {}, policyTypes: ["Egress"] },
      }),
    );
    await ok(["label", "namespace", "cp-a", "cp-b", "createpath=yes"]);
    operator = new Operator(
      loadKubeConfig(cp.kubeconfigPath),
      { workers: 2, resyncMs: 600_000 },
      silentLogger(),
    );
    await operator.start();
  });

  after(async () => {
    await operator?.stop();
    await cp?.stop();
  });

  it("creates a missing child with one apply whose only csp-operator entry is Apply", async () => {
    await ok(["apply", "-f", "-"], policy(true));
    const created = await eventually("the child in cp-a", () => child("cp-a"), 60_000);
    const mine = entriesOf(created, "csp-operator");
    expect(mine.map((e) => e.operation)).to.deep.equal(["Apply"]);
    expect(created.spec?.ingress).to.have.length(1);
  });

  it("drops a field removed from the policy with a single apply: no GET, no update", async () => {
    const before = (await cp.auditEvents()).length;
    await ok(["apply", "-f", "-"], policy(false));
    await eventually("ingress gone from the child", async () => {
      const c = await child("cp-a");
      return c !== undefined && c.spec?.ingress === undefined;
    });
    expect(await requestsOn("cp-a", before)).to.deep.equal(["patch"]);
    expect(entriesOf(await child("cp-a"), "csp-operator").map((e) => e.operation)).to.deep.equal(["Apply"]);
  });

  it("removes a rule another manager added with one apply: no GET, no update, still Apply-owned", async () => {
    const live = (await child("cp-a"))!;
    const before = (await cp.auditEvents()).length;
    // An allow-all ingress rule added by an update under another field manager, as `kubectl edit` does.
    await ok(
      ["replace", "--field-manager=kubectl-edit", "-f", "-"],
      JSON.stringify({
        ...live,
        metadata: { ...live.metadata, managedFields: undefined },
        spec: { ...live.spec, ingress: [{}] },
      }),
    );
    await eventually("the added rule removed", async () => {
      const c = await child("cp-a");
      return (
        c !== undefined &&
        c.spec?.ingress === undefined &&
        c.metadata?.resourceVersion !== live.metadata?.resourceVersion
      );
    });
    expect(await requestsOn("cp-a", before)).to.deep.equal(["patch"]);
    const after = await child("cp-a");
    expect(entriesOf(after, "csp-operator").map((e) => e.operation)).to.deep.equal(["Apply"]);
  });

  it("leaves the object someone else created at the child's name exactly as it was", async () => {
    const theirs = (await child("cp-b"))!;
    expect(entriesOf(theirs, "csp-operator")).to.deep.equal([]);
    expect(theirs.metadata?.labels).to.deep.equal({ team: "alice" });
    expect(theirs.spec?.policyTypes).to.deep.equal(["Egress"]);
    expect(theirs.metadata?.ownerReferences).to.equal(undefined);
  });

  it("the create-only apply is refused (undefined, nothing written) by any object at the name", async () => {
    const applier = new Applier(loadKubeConfig(cp.kubeconfigPath));
    const theirs = (await child("cp-b"))!;
    const result = await applier.create({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name: CHILD,
        namespace: "cp-b",
        labels: { "app.kubernetes.io/managed-by": "csp-operator" },
      },
      spec: { podSelector: {}, policyTypes: ["Ingress"] },
    });
    expect(result).to.equal(undefined);
    const after = (await child("cp-b"))!;
    expect(after.metadata?.resourceVersion).to.equal(theirs.metadata?.resourceVersion);
  });
});
