import { expect } from "chai";
import { parse } from "yaml";
import { applyDefaults } from "../../../src/api/defaults.js";
import { specSchema, type ClusterSecurityPolicySpec } from "../../../src/api/v1alpha1/policy.js";
import {
  AUDIT_POLICY_KEY,
  auditPolicyConfigMap,
  DEFAULT_PROFILE_RULES,
  renderAuditPolicy,
  renderAuditPolicyYaml,
  type AuditPolicySpec,
} from "../../../src/desired/auditpolicy.js";

const customSpec: AuditPolicySpec = {
  profile: "Custom",
  omitManagedFields: true,
  rules: [
    { level: "None", nonResourceURLs: ["/healthz*"] },
    {
      level: "Metadata",
      users: [],
      resources: [
        { resources: ["secrets"] },
        { group: "authentication.k8s.io", resources: ["tokenreviews"] },
      ],
      omitStages: ["ResponseStarted"],
    },
    {
      level: "RequestResponse",
      verbs: ["create", "delete"],
      resources: [{ group: "rbac.authorization.k8s.io" }],
    },
    { level: "Metadata" },
  ],
};

const customYaml = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
  - RequestReceived
omitManagedFields: true
rules:
  - level: None
    nonResourceURLs:
      - /healthz*
  - level: Metadata
    resources:
      - group: ""
        resources:
          - secrets
      - group: authentication.k8s.io
        resources:
          - tokenreviews
    omitStages:
      - ResponseStarted
  - level: RequestResponse
    verbs:
      - create
      - delete
    resources:
      - group: rbac.authorization.k8s.io
  - level: Metadata
`;

function defaulted(spec: ClusterSecurityPolicySpec): AuditPolicySpec {
  return (applyDefaults(specSchema.openapi, spec) as ClusterSecurityPolicySpec).auditPolicy!;
}

describe("renderAuditPolicy", () => {
  it("renders a Custom policy exactly: user rules only, canonical key order, explicit core group, no empty lists", () => {
    expect(renderAuditPolicyYaml(customSpec)).to.equal(customYaml);
  });

  it("is deterministic and does not mutate its input", () => {
    const before = structuredClone(customSpec);
    const a = renderAuditPolicyYaml(customSpec);
    const b = renderAuditPolicyYaml(structuredClone(customSpec));
    expect(a).to.equal(b);
    expect(customSpec).to.deep.equal(before);
    const d1 = renderAuditPolicyYaml(defaulted({ auditPolicy: {} }));
    const d2 = renderAuditPolicyYaml(defaulted({ auditPolicy: {} }));
    expect(d1).to.equal(d2);
    expect(d1).not.to.match(/\d{4}-\d\d-\d\dT/, "no timestamps");
  });

  it("accepts the rendered policy object as well as the spec", () => {
    expect(renderAuditPolicyYaml(renderAuditPolicy(customSpec))).to.equal(customYaml);
  });

  it("Default: user rules first, then the built-in profile ending in a Metadata catch-all", () => {
    const spec = defaulted({
      auditPolicy: { rules: [{ level: "RequestResponse", resources: [{ resources: ["pods"] }] }] },
    });
    const policy = renderAuditPolicy(spec);
    expect(policy.rules).to.have.length(1 + DEFAULT_PROFILE_RULES.length);
    expect(policy.rules[0]).to.deep.equal({
      level: "RequestResponse",
      resources: [{ group: "", resources: ["pods"] }],
    });
    expect(policy.rules.slice(1)).to.deep.equal(DEFAULT_PROFILE_RULES);
    expect(policy.rules.at(-1)).to.deep.equal({ level: "Metadata" });
    expect(policy.omitStages).to.deep.equal(["RequestReceived"]);
    expect(policy.omitManagedFields).to.equal(true);
  });

  it("Default profile: noise at None, credentials at Metadata, RBAC writes at RequestResponse, exec at Metadata", () => {
    const rules = renderAuditPolicy({}).rules;
    const proxy = rules.find((r) => r.users?.includes("system:kube-proxy"));
    expect(proxy).to.include({ level: "None" });
    expect(proxy!.verbs).to.deep.equal(["watch"]);
    const health = rules.find((r) => r.nonResourceURLs?.includes("/healthz*"));
    expect(health).to.include({ level: "None" });
    expect(health!.nonResourceURLs).to.include.members(["/livez*", "/readyz*", "/version"]);

    const secrets = rules.findIndex((r) => r.resources?.some((g) => g.resources?.includes("secrets")));
    expect(rules[secrets]!.level).to.equal("Metadata");
    const sensitive = rules[secrets]!.resources!.flatMap((g) =>
      (g.resources ?? []).map((x) => `${g.group}/${x}`),
    );
    expect(sensitive).to.include.members([
      "/secrets",
      "/configmaps",
      "/serviceaccounts/token",
      "authentication.k8s.io/tokenreviews",
    ]);

    const rbac = rules.find((r) => r.resources?.some((g) => g.group === "rbac.authorization.k8s.io"));
    expect(rbac!.level).to.equal("RequestResponse");
    expect(rbac!.verbs).to.not.include.members(["get", "list", "watch"]);
    expect(rbac!.resources!.find((g) => g.group === "rbac.authorization.k8s.io")!.resources).to.have.members([
      "roles",
      "rolebindings",
      "clusterroles",
      "clusterrolebindings",
    ]);

    const exec = rules.find((r) => r.resources?.some((g) => g.resources?.includes("pods/exec")));
    expect(exec!.level).to.equal("Metadata");
    expect(exec!.resources![0]!.resources).to.have.members(["pods/exec", "pods/attach", "pods/portforward"]);
  });

  it("Custom ignores the profile", () => {
    const policy = renderAuditPolicy({ profile: "Custom", rules: [{ level: "Metadata" }] });
    expect(policy.rules).to.deep.equal([{ level: "Metadata" }]);
  });

  it("policy-level omitStages and omitManagedFields follow the spec; an empty omitStages is left out", () => {
    const p = renderAuditPolicy({ omitStages: ["RequestReceived", "Panic"], omitManagedFields: false });
    expect(p.omitStages).to.deep.equal(["RequestReceived", "Panic"]);
    expect(p.omitManagedFields).to.equal(false);
    const none = renderAuditPolicy({ omitStages: [] });
    expect(none).to.not.have.property("omitStages");
    expect(renderAuditPolicyYaml(none)).to.not.include("omitStages:\n  -");
  });

  it("round-trips through YAML to the same object", () => {
    const policy = renderAuditPolicy(defaulted({ auditPolicy: {} }));
    expect(parse(renderAuditPolicyYaml(policy))).to.deep.equal(policy);
  });
});

describe("auditPolicyConfigMap", () => {
  it("is named per policy in csp-system, labelled, without ownerReferences", () => {
    const cm = auditPolicyConfigMap("baseline", customYaml);
    expect(cm).to.deep.equal({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "csp-baseline-audit-policy",
        namespace: "csp-system",
        labels: {
          "app.kubernetes.io/managed-by": "csp-operator",
          "security.csp-operator.io/policy": "baseline",
        },
      },
      data: { [AUDIT_POLICY_KEY]: customYaml },
    });
    expect(AUDIT_POLICY_KEY).to.equal("audit-policy.yaml");
  });
});
