import { expect } from "chai";
import { stringify } from "yaml";
import { desiredState } from "../../../src/desired/index.js";
import { selectNamespaces } from "../../../src/desired/namespaces.js";
import { effectiveSpec } from "../../../src/desired/spec.js";
import { namespace, policy, snapshot } from "../builders/policy.js";

describe("desired NetworkPolicies", () => {
  it("renders default-deny + DNS for every selected namespace with ownership metadata", () => {
    const p = policy("base")
      .spec({ networkPolicies: { allowSameNamespace: false } })
      .build();
    const d = desiredState(
      p,
      snapshot({ namespaces: [namespace("team-a"), namespace("kube-system"), namespace("csp-system")] }),
    );
    expect(d.namespaces).to.deep.equal(["team-a"]);
    expect(stringify(d.children)).to.equal(`- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: csp-base-allow-dns
    namespace: team-a
    labels:
      app.kubernetes.io/managed-by: csp-operator
      security.csp-operator.io/policy: base
    ownerReferences:
      - apiVersion: security.csp-operator.io/v1alpha1
        kind: ClusterSecurityPolicy
        name: base
        uid: uid-base
        controller: true
  spec:
    podSelector: {}
    policyTypes:
      - Egress
    egress:
      - to:
          - namespaceSelector:
              matchLabels:
                kubernetes.io/metadata.name: kube-system
            podSelector:
              matchLabels:
                k8s-app: kube-dns
        ports:
          - protocol: UDP
            port: 53
          - protocol: TCP
            port: 53
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata:
    name: csp-base-default-deny
    namespace: team-a
    labels:
      app.kubernetes.io/managed-by: csp-operator
      security.csp-operator.io/policy: base
    ownerReferences:
      - apiVersion: security.csp-operator.io/v1alpha1
        kind: ClusterSecurityPolicy
        name: base
        uid: uid-base
        controller: true
  spec:
    podSelector: {}
    policyTypes:
      - Ingress
      - Egress
`);
  });

  it("creates no DNS allowance when egress is open (it would isolate egress)", () => {
    const p = policy("p")
      .spec({ networkPolicies: { defaultDenyEgress: false, allowDNS: true, allowSameNamespace: true } })
      .build();
    const names = desiredState(p, snapshot({ namespaces: [namespace("a")] })).children.map((c) => [
      c.metadata.name,
      c["spec"],
    ]);
    expect(names).to.deep.equal([
      [
        "csp-p-allow-same-namespace",
        { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: {} }] }] },
      ],
      ["csp-p-default-deny", { podSelector: {}, policyTypes: ["Ingress"] }],
    ]);
  });

  it("stamps extra policies in, defaulting the pod selector", () => {
    const p = policy("p")
      .spec({
        networkPolicies: {
          defaultDenyIngress: false,
          defaultDenyEgress: false,
          extra: [{ name: "allow-web", spec: { ingress: [{ ports: [{ port: 8080 }] }] } }],
        },
      })
      .build();
    const [c] = desiredState(p, snapshot({ namespaces: [namespace("a")] })).children;
    expect(c?.metadata.name).to.equal("csp-p.allow-web");
    expect(c?.["spec"]).to.deep.equal({ podSelector: {}, ingress: [{ ports: [{ port: 8080 }] }] });
  });

  it("selects by label selector and exclude list, never csp-system, never terminating namespaces", () => {
    const spec = effectiveSpec(
      policy("p")
        .spec({
          namespaces: {
            selector: { matchExpressions: [{ key: "tier", operator: "In", values: ["web", "db"] }] },
            exclude: ["b"],
          },
        })
        .build(),
    );
    const nss = [
      namespace("a", { tier: "web" }),
      namespace("b", { tier: "db" }),
      namespace("c", { tier: "cache" }),
      namespace("csp-system", { tier: "web" }),
      { ...namespace("d", { tier: "web" }), status: { phase: "Terminating" } },
    ];
    expect(selectNamespaces(spec, nss)).to.deep.equal(["a"]);
  });

  it("applies the API server's defaults to an empty spec", () => {
    expect(effectiveSpec(policy("p").build())).to.deep.include({
      mode: "Enforce",
      networkPolicies: {
        defaultDenyIngress: true,
        defaultDenyEgress: true,
        allowDNS: true,
        allowSameNamespace: false,
      },
      serviceAccounts: { automountDefaultToken: false },
    });
    expect(effectiveSpec(policy("p").build()).namespaces?.exclude).to.deep.equal([
      "kube-system",
      "kube-public",
      "kube-node-lease",
    ]);
  });
});
