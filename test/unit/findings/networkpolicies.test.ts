import { expect } from "chai";
import { slimNetworkPolicy } from "../../../src/cluster/cache.js";
import { plan } from "../../../src/controller/plan.js";
import { report } from "../../../src/controller/report.js";
import { applyPlan } from "../../../src/controller/apply.js";
import {
  NETPOL_WIDENS_DEFAULT_DENY,
  wideningDirections,
  type NetworkPolicyJson,
} from "../../../src/findings/networkpolicies.js";
import { silentLogger } from "../../../src/observability/logger.js";
import { defaultSA, namespace, policy, snapshot } from "../builders/policy.js";

const np = (
  name: string,
  ns: string,
  spec: NonNullable<NetworkPolicyJson["spec"]>,
  extra: object = {},
): NetworkPolicyJson => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name, namespace: ns, uid: `uid-${name}`, labels: { app: "x" }, ...extra },
  spec,
});

describe("NetworkPolicies that widen a default-deny (pure)", () => {
  it("tells allow-all rules from narrow ones, per direction, with the API server's policyTypes", () => {
    const cases: [NonNullable<NetworkPolicyJson["spec"]>, string[]][] = [
      [{ ingress: [{}] }, ["Ingress"]], // allow-all ingress, policyTypes unset
      [{ policyTypes: ["Ingress", "Egress"], ingress: [{}], egress: [{}] }, ["Ingress", "Egress"]],
      [{ egress: [{}] }, ["Egress"]], // policyTypes unset: Egress because there are egress rules
      [{ policyTypes: ["Ingress"] }, []], // a deny
      [{ ingress: [{ from: [{ podSelector: {} }] }] }, []], // same namespace only
      [{ ingress: [{ from: [{ namespaceSelector: {} }] }] }, ["Ingress"]], // every pod everywhere
      [{ ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { a: "b" } } }] }] }, []],
      [{ ingress: [{ from: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }] }, ["Ingress"]],
      [{ ingress: [{ from: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] } }] }] }, []],
      [{ ingress: [{ ports: [{ port: 443 }] }] }, []], // every peer, one port
      [{ ingress: [{ ports: [{ protocol: "TCP" }] }] }, ["Ingress"]], // every TCP port
      [{ ingress: [{ ports: [{ port: 1, endPort: 65535 }] }] }, ["Ingress"]],
      [{ policyTypes: ["Egress"], ingress: [{}] }, []], // ingress rules not in force
    ];
    for (const [spec, want] of cases)
      expect(wideningDirections(np("n", "a", spec)), JSON.stringify(spec)).to.deep.equal(want);
  });

  it("the cache keeps a summary: identity, ownerReferences and directions, no rules or labels", () => {
    const s = slimNetworkPolicy(np("open", "a", { ingress: [{}] }));
    expect(s).to.deep.equal({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "open", namespace: "a", uid: "uid-open" },
      widens: ["Ingress"],
    });
    expect(slimNetworkPolicy(np("closed", "a", { policyTypes: ["Ingress"] }))).to.not.have.property("widens");
  });

  const ref = (name: string) => ({
    ownerReferences: [
      {
        apiVersion: "security.csp-operator.io/v1alpha1",
        kind: "ClusterSecurityPolicy",
        name,
        uid: `uid-${name}`,
        controller: true,
      },
    ],
  });
  const MANAGED = { "app.kubernetes.io/managed-by": "csp-operator" };
  const open = { podSelector: {}, ingress: [{}] };
  const p = policy("p")
    .spec({
      networkPolicies: {
        defaultDenyIngress: true,
        defaultDenyEgress: false,
        extra: [{ name: "extra", spec: open }],
      },
    })
    .build();
  // Another policy with an allow-all extra in the same namespace.
  const q = policy("q")
    .spec({ networkPolicies: { defaultDenyIngress: false, extra: [{ name: "open", spec: open }] } })
    .build();
  // The operator's own allow-all children: labelled managed (the managed cache holds them).
  const ownExtra = np("csp-p.extra", "a", { ingress: [{}] }, { ...ref("p"), labels: MANAGED });
  const qExtra = np("csp-q.open", "a", { ingress: [{}] }, { ...ref("q"), labels: MANAGED });
  const snap = (extra: Parameters<typeof snapshot>[0] = {}) =>
    snapshot({
      policies: [p, q],
      namespaces: [namespace("a"), namespace("kube-system")],
      serviceAccounts: [defaultSA("a")],
      networkPolicies: [ownExtra, qExtra],
      wideningNetworkPolicies: [
        slimNetworkPolicy(np("user-allow-all", "a", { ingress: [{}] })),
        slimNetworkPolicy(np("egress-open", "a", { egress: [{}] })), // egress is not closed by p
        slimNetworkPolicy(np("elsewhere", "kube-system", { ingress: [{}] })), // not selected
        slimNetworkPolicy(ownExtra),
        slimNetworkPolicy(qExtra),
        // The operator's labels on a user's object change nothing.
        slimNetworkPolicy(np("disguised", "a", { ingress: [{}] }, { labels: MANAGED })),
      ],
      ...extra,
    });

  it("reports a user's allow-all next to the default-deny (Medium, NetworkIsolated False, not Compliant)", async () => {
    const pl = plan("p", snap());
    const found = pl.findings.filter((f) => f.id === NETPOL_WIDENS_DEFAULT_DENY);
    expect(found.map((f) => [f.resource, f.severity])).to.deep.equal([
      ["NetworkPolicy/a/disguised", "Medium"],
      ["NetworkPolicy/a/user-allow-all", "Medium"],
    ]);
    const applied = await applyPlan({ ...pl, writes: [], shared: [] }, noWriter, silentLogger(), 1);
    const r = report(pl, applied, [], new Date("2026-06-01T00:00:00Z"));
    const cond = (t: string) => r.status?.conditions?.find((c) => c.type === t)?.status;
    expect(cond("NetworkIsolated")).to.equal("False");
    expect(cond("Compliant")).to.equal("False");
  });

  it("reports an allow-all NetworkPolicy whose controller reference to a policy a namespace user forged", () => {
    const unlabelled = (name: string, owner = "p") =>
      slimNetworkPolicy(np(name, "a", { ingress: [{}] }, ref(owner)));
    const findings = (s: ReturnType<typeof snap>, pol = "p") =>
      plan(pol, s)
        .findings.filter((f) => f.id === NETPOL_WIDENS_DEFAULT_DENY)
        .map((f) => f.resource);
    // Not one of the policy's children: reported (it was skipped on the controller reference alone).
    expect(findings(snap({ wideningNetworkPolicies: [unlabelled("sneaky")] }))).to.deep.equal([
      "NetworkPolicy/a/sneaky",
    ]);
    // Not one of the other policy's children either.
    expect(findings(snap({ wideningNetworkPolicies: [unlabelled("sneaky", "q")] }))).to.deep.equal([
      "NetworkPolicy/a/sneaky",
    ]);
    // At a child's name, unlabelled and not remembered in status: reported; remembered: the policy's.
    const atChildName = snap({ networkPolicies: [], wideningNetworkPolicies: [unlabelled("csp-p.extra")] });
    expect(findings(atChildName)).to.deep.equal(["NetworkPolicy/a/csp-p.extra"]);
    const remembering = { ...p, status: { childUIDs: ["uid-csp-p.extra".slice(0, 13)] } };
    expect(findings({ ...atChildName, policies: [remembering, q] })).to.deep.equal([]);
    // The other policy's child likewise: labelled or remembered by that policy.
    const qUnlabelled = snap({
      networkPolicies: [],
      wideningNetworkPolicies: [unlabelled("csp-q.open", "q")],
    });
    expect(findings(qUnlabelled)).to.deep.equal(["NetworkPolicy/a/csp-q.open"]);
    const qRemembering = { ...q, status: { childUIDs: ["uid-csp-q.open".slice(0, 13)] } };
    expect(findings({ ...qUnlabelled, policies: [p, qRemembering] })).to.deep.equal([]);
  });

  it("is exemptible like every finding (by id and namespace)", async () => {
    const exempted = policy("p")
      .spec({
        networkPolicies: p.spec?.networkPolicies ?? {},
        exemptions: [{ findingId: NETPOL_WIDENS_DEFAULT_DENY, namespaces: ["a"], reason: "ingress gateway" }],
      })
      .build();
    const pl = plan("p", snap({ policies: [exempted, q] }));
    expect(pl.findings.filter((f) => f.id === NETPOL_WIDENS_DEFAULT_DENY)).to.have.length(2);
    const applied = await applyPlan({ ...pl, writes: [], shared: [] }, noWriter, silentLogger(), 1);
    const r = report(pl, applied, [], new Date("2026-06-01T00:00:00Z"));
    expect((r.status?.findings ?? []).filter((f) => f.id === NETPOL_WIDENS_DEFAULT_DENY)).to.deep.equal([]);
  });
});

const noWriter = {
  apply: () => Promise.reject(new Error("no write expected")),
  delete: () => Promise.reject(new Error("no write expected")),
} as never;
