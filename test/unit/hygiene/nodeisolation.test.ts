import { expect } from "chai";
import {
  placementFindings,
  selectorAnnotation,
  type PodPlacement,
} from "../../../src/hygiene/nodeisolation.js";

const pod = (
  namespace: string,
  name: string,
  nodeName: string,
  extra: Partial<PodPlacement> = {},
): PodPlacement => ({
  namespace,
  name,
  nodeName,
  daemonSet: false,
  tolerates: [],
  ...extra,
});

describe("hygiene: node isolation placement", () => {
  const nodes = [
    { name: "secure-1", labels: { pool: "secure", zone: "a" } },
    { name: "general-1", labels: { pool: "general" } },
  ];
  const selector = { zone: "a", pool: "secure" };

  it("the annotation value is the sorted selector", () => {
    expect(selectorAnnotation(selector)).to.equal("pool=secure,zone=a");
  });

  it("gives exactly the expected findings", () => {
    const f = placementFindings({
      selector,
      tolerations: ["dedicated"],
      selected: new Set(["payments"]),
      nodes,
      pods: [
        pod("payments", "in", "secure-1"),
        pod("payments", "out", "general-1"),
        pod("payments", "ghost", "gone-node"),
        pod("payments", "pending", ""),
        pod("web", "intruder", "secure-1"),
        pod("web", "tolerated", "secure-1", { tolerates: ["dedicated"] }),
        pod("web", "other-taint", "secure-1", { tolerates: ["gpu"] }),
        pod("kube-system", "proxy", "secure-1", { daemonSet: true }),
        pod("web", "elsewhere", "general-1"),
        pod("payments", "in", "secure-1"), // listed twice (namespace and node lists): judged once
      ],
    });
    expect(f.map((x) => `${x.severity} ${x.id} ${x.resource}`)).to.deep.equal([
      "High ISOLATION-POD-OUTSIDE-SELECTOR Pod/payments/ghost",
      "High ISOLATION-POD-OUTSIDE-SELECTOR Pod/payments/out",
      "Medium ISOLATION-FOREIGN-POD Pod/web/intruder",
      "Medium ISOLATION-FOREIGN-POD Pod/web/other-taint",
    ]);
    expect(f[0]!.message).to.include("no such Node object");
    expect(f[2]!.message).to.include("secure-1").and.include("dedicated");
  });

  it("no node with the labels is itself a finding", () => {
    const f = placementFindings({
      selector: { pool: "none" },
      tolerations: [],
      selected: new Set(),
      nodes,
      pods: [],
    });
    expect(f.map((x) => x.id)).to.deep.equal(["ISOLATION-NO-MATCHING-NODES"]);
  });
});
