import { expect } from "chai";
import { KubeConfig } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../../../src/api/v1alpha1/policy.js";
import { nodeIsolationArea, orphanedOwners, releases } from "../../../src/controller/nodeisolation.js";
import { silentLogger } from "../../../src/observability/logger.js";
import {
  invalidIsolationSpec,
  nodeIsolationManager,
  parseTaint,
  placementFindings,
  policyOfManager,
  tolerates,
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
  tolerations: [],
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
        pod("web", "tolerated", "secure-1", { tolerations: [{ key: "dedicated", operator: "Exists" }] }),
        pod("web", "other-taint", "secure-1", { tolerations: [{ key: "gpu", operator: "Exists" }] }),
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

  it("tolerations match on key, operator, value and effect, as the scheduler matches them", () => {
    const dedicated = parseTaint("dedicated");
    expect(parseTaint("dedicated=secure:NoSchedule")).to.deep.equal({
      key: "dedicated",
      value: "secure",
      effect: "NoSchedule",
    });
    expect(tolerates({ key: "dedicated", operator: "Exists" }, dedicated)).to.equal(true);
    expect(tolerates({ operator: "Exists" }, dedicated)).to.equal(true);
    // The red-team pod: same key, another value, Equal: it does not tolerate the taint.
    expect(tolerates({ key: "dedicated", operator: "Equal", value: "not-secure" }, dedicated)).to.equal(
      false,
    );
    expect(tolerates({ key: "dedicated", value: "" }, dedicated)).to.equal(true);
    const valued = parseTaint("dedicated=secure:NoSchedule");
    expect(tolerates({ key: "dedicated", value: "secure", effect: "NoSchedule" }, valued)).to.equal(true);
    expect(tolerates({ key: "dedicated", value: "secure", effect: "NoExecute" }, valued)).to.equal(false);
    expect(tolerates({ key: "dedicated", value: "other" }, valued)).to.equal(false);
    expect(tolerates({ key: "dedicated", operator: "Bogus" }, valued)).to.equal(false);
    expect(tolerates({ key: "", operator: "Equal" }, valued)).to.equal(false);
    const f = placementFindings({
      selector: { pool: "secure" },
      tolerations: ["dedicated"],
      selected: new Set(),
      nodes,
      pods: [
        pod("web", "decoy", "secure-1", {
          tolerations: [{ key: "dedicated", operator: "Equal", value: "not-secure" }],
        }),
      ],
    });
    expect(f.map((x) => `${x.id} ${x.resource}`)).to.deep.equal(["ISOLATION-FOREIGN-POD Pod/web/decoy"]);
  });

  it("selector keys and values that are not label keys and values are named, never written", () => {
    expect(invalidIsolationSpec({ pool: "secure", "example.com/zone": "a" }, ["dedicated=x:NoSchedule"])).to
      .be.undefined;
    expect(invalidIsolationSpec({ "not a/valid key!": "x" }, [])).to.equal(
      'spec.nodeIsolation.nodeSelector["not a/valid key!"]: the key is not a label key ([prefix/]name)',
    );
    expect(invalidIsolationSpec({ pool: "secure,other=1" }, [])).to.equal(
      'spec.nodeIsolation.nodeSelector["pool"]: "secure,other=1" is not a label value',
    );
    expect(invalidIsolationSpec({ pool: "x,y" }, [])).to.include("nodeSelector");
    expect(invalidIsolationSpec({ pool: "a" }, ["bad key!"])).to.include("spec.nodeIsolation.tolerations[0]");
  });

  it("each policy has its own field manager; the shared one of earlier releases is recognised", () => {
    expect(nodeIsolationManager("pol-a")).to.not.equal(nodeIsolationManager("pol-b"));
    expect(policyOfManager(nodeIsolationManager("pol-a"))).to.equal("pol-a");
    expect(policyOfManager("csp-operator-node-isolation")).to.equal("");
    expect(policyOfManager("csp-operator")).to.be.undefined;
  });
});

describe("hygiene: node isolation releases", () => {
  const ns = (name: string, managers: string[]) => ({
    metadata: {
      name,
      managedFields: managers.map((manager) => ({
        manager,
        operation: "Apply",
        fieldsV1: {
          "f:metadata": { "f:annotations": { "f:scheduler.alpha.kubernetes.io/node-selector": {} } },
        },
      })),
    },
  });
  it("a policy releases its annotation where it no longer selects; deleted policies' and the old shared manager's go too", () => {
    const out = releases(
      "pol-a",
      new Set(["kept"]),
      [
        ns("kept", [nodeIsolationManager("pol-a")]),
        ns("unlabelled", [nodeIsolationManager("pol-a"), "kubectl-edit"]),
        ns("other-policy", [nodeIsolationManager("pol-b")]),
        ns("deleted-policy", [nodeIsolationManager("gone")]),
        ns("legacy", ["csp-operator-node-isolation"]),
        ns("person", ["kubectl-client-side-apply"]),
      ],
      new Set(["pol-a", "pol-b"]),
    );
    expect(out.map((r) => `${r.namespace} ${r.manager}`)).to.deep.equal([
      `unlabelled ${nodeIsolationManager("pol-a")}`,
      `deleted-policy ${nodeIsolationManager("gone")}`,
      "legacy csp-operator-node-isolation",
    ]);
  });

  it("the last policy deleted: its reconcile (no live policy) releases its annotation everywhere", () => {
    const out = releases(
      "last",
      new Set(),
      [ns("a", [nodeIsolationManager("last")]), ns("b", [nodeIsolationManager("last"), "kubectl-edit"])],
      new Set(),
    );
    expect(out.map((r) => `${r.namespace} ${r.manager}`)).to.deep.equal([
      `a ${nodeIsolationManager("last")}`,
      `b ${nodeIsolationManager("last")}`,
    ]);
  });

  it("the policies deleted while no operator ran are found from what their managers still own", () => {
    expect(
      orphanedOwners(
        [
          ns("a", [nodeIsolationManager("gone"), nodeIsolationManager("live")]),
          ns("b", [nodeIsolationManager("gone"), nodeIsolationManager("also-gone")]),
          ns("legacy", ["csp-operator-node-isolation", "kubectl-edit"]),
        ],
        new Set(["live"]),
      ),
    ).to.deep.equal(["also-gone", "gone"]);
  });

  it("the area names them from a snapshot or one namespace; a policy being deleted counts as gone", () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: "https://127.0.0.1:1" }],
      users: [{ name: "u" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const area = nodeIsolationArea()({ kc, log: silentLogger(), enqueue: () => undefined });
    const policy = (name: string, deleting = false) =>
      ({
        metadata: { name, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
        spec: {},
      }) as unknown as ClusterSecurityPolicy;
    expect(
      area.orphans!({
        namespaces: [
          ns("a", [
            nodeIsolationManager("gone"),
            nodeIsolationManager("live"),
            nodeIsolationManager("dying"),
          ]),
        ],
        policies: [policy("live"), policy("dying", true)],
      }),
    ).to.deep.equal(["dying", "gone"]);
  });
});
