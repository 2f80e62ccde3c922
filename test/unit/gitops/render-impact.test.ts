import { expect } from "chai";
import type { V1NetworkPolicy, V1Pod, V1Service } from "@kubernetes/client-node";
import { describeImpact, egressImpact, trafficImpact } from "../../../src/gitops/impact.js";
import { unifiedDiff } from "../../../src/gitops/diff.js";

const pod = (
  ns: string,
  name: string,
  labels: Record<string, string>,
  ports: { containerPort: number; name?: string }[] = [],
): V1Pod => ({
  metadata: { namespace: ns, name, labels },
  spec: { containers: [{ name: "c", image: "x", ports }] },
  status: { phase: "Running" },
});
const service = (
  ns: string,
  name: string,
  selector: Record<string, string>,
  targetPort: number | string,
): V1Service => ({
  metadata: { namespace: ns, name },
  spec: { selector, ports: [{ port: 80, targetPort: targetPort }] },
});
const np = (ns: string, name: string, spec: Record<string, unknown>): V1NetworkPolicy => ({
  metadata: { namespace: ns, name },
  spec: spec,
});
const deny = np("a", "deny", { podSelector: {}, policyTypes: ["Ingress"] });

describe("diff's traffic preview", () => {
  const pods = [
    pod("a", "web-1", { app: "web" }, [{ containerPort: 8080, name: "http" }]),
    pod("a", "batch", { app: "batch" }),
  ];
  const services = [service("a", "web", { app: "web" }, "http")];

  it("reports a Service's target blocked by a default-deny", () => {
    const impact = trafficImpact({ namespaces: ["a"], pods, services, before: [], after: [deny] });
    expect(impact).to.deep.equal([
      {
        namespace: "a",
        pod: "web-1",
        port: 8080,
        protocol: "TCP",
        via: ["Service web", "containerPort"],
        effect: "blocked",
        from: [],
      },
    ]);
    expect(describeImpact(impact[0]!)).to.equal(
      "a/web-1 port 8080/TCP (Service web, containerPort): no NetworkPolicy would allow ingress any more",
    );
  });

  it("reports egress cut by a default-deny egress, calling out DNS; nothing when egress stays open", () => {
    const denyOut = np("a", "deny-out", { podSelector: {}, policyTypes: ["Egress"] });
    const dnsOnly = np("a", "dns", {
      podSelector: {},
      policyTypes: ["Egress"],
      egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 53, protocol: "UDP" }] }],
    });
    const sameNs = np("a", "same", { podSelector: {}, egress: [{ to: [{ podSelector: {} }] }] });
    const blocked = egressImpact({ namespaces: ["a"], pods, before: [], after: [denyOut] });
    expect(blocked.map(describeImpact)).to.deep.equal([
      "a/batch egress: no NetworkPolicy would allow egress any more (DNS 53/UDP not allowed)",
      "a/web-1 egress: no NetworkPolicy would allow egress any more (DNS 53/UDP not allowed)",
    ]);
    expect(
      egressImpact({ namespaces: ["a"], pods, before: [], after: [denyOut, dnsOnly] }).map(describeImpact),
    ).to.deep.equal([
      "a/batch egress: only to namespaces {} ports 53/UDP",
      "a/web-1 egress: only to namespaces {} ports 53/UDP",
    ]);
    // policyTypes unset with egress rules: isolated for egress; a rule without ports allows 53/UDP (to its peers).
    expect(
      egressImpact({ namespaces: ["a"], pods: pods.slice(0, 1), before: [], after: [sameNs] }).map(
        describeImpact,
      ),
    ).to.deep.equal(["a/web-1 egress: only to pods {} in the same namespace"]);
    // Ingress-only deny, an allow-all egress rule, or egress already isolated before: no egress impact.
    expect(egressImpact({ namespaces: ["a"], pods, before: [], after: [deny] })).to.deep.equal([]);
    const allowAll = np("a", "all", { podSelector: {}, policyTypes: ["Egress"], egress: [{}] });
    expect(egressImpact({ namespaces: ["a"], pods, before: [], after: [denyOut, allowAll] })).to.deep.equal(
      [],
    );
    expect(egressImpact({ namespaces: ["a"], pods, before: [denyOut], after: [denyOut] })).to.deep.equal([]);
    expect(egressImpact({ namespaces: ["b"], pods, before: [], after: [denyOut] })).to.deep.equal([]);
  });

  it("reports restricted when only same-namespace peers remain, nothing when a rule still opens the port", () => {
    const same = np("a", "same", {
      podSelector: {},
      policyTypes: ["Ingress"],
      ingress: [{ from: [{ podSelector: {} }] }],
    });
    const restricted = trafficImpact({ namespaces: ["a"], pods, services, before: [], after: [deny, same] });
    expect(restricted.map((i) => [i.effect, i.from])).to.deep.equal([
      ["restricted", ["pods {} in the same namespace"]],
    ]);
    const open = np("a", "open", {
      podSelector: { matchLabels: { app: "web" } },
      ingress: [{ ports: [{ port: "http" }] }],
    });
    expect(
      trafficImpact({ namespaces: ["a"], pods, services, before: [], after: [deny, open] }),
    ).to.deep.equal([]);
    const wrongPort = np("a", "open", { podSelector: {}, ingress: [{ ports: [{ port: 9090 }] }] });
    expect(
      trafficImpact({ namespaces: ["a"], pods, services, before: [], after: [deny, wrongPort] }),
    ).to.have.length(1);
  });

  it("ignores traffic already cut before, other namespaces and pods with no port in use", () => {
    expect(trafficImpact({ namespaces: ["a"], pods, services, before: [deny], after: [deny] })).to.deep.equal(
      [],
    );
    expect(trafficImpact({ namespaces: ["b"], pods, services, before: [], after: [deny] })).to.deep.equal([]);
    const egressOnly = np("a", "eg", { podSelector: {}, policyTypes: ["Egress"] });
    expect(
      trafficImpact({ namespaces: ["a"], pods, services, before: [], after: [egressOnly] }),
    ).to.deep.equal([]);
  });

  it("prints a unified diff like kubectl diff, and nothing for equal texts", () => {
    expect(unifiedDiff("v1.Namespace..a", "x: 1\n", "x: 1\n")).to.equal("");
    expect(unifiedDiff("v1.Namespace..a", "x: 1\n", "x: 2\n")).to.equal(
      "diff -u -N live/v1.Namespace..a merged/v1.Namespace..a\n--- live/v1.Namespace..a\n+++ merged/v1.Namespace..a\n@@ -1,1 +1,1 @@\n-x: 1\n+x: 2\n",
    );
  });
});
