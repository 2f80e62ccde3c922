import { expect } from "chai";
import { applyDefaults } from "../../../src/api/defaults.js";
import { specSchema, type ClusterSecurityPolicySpec } from "../../../src/api/v1alpha1/policy.js";
import {
  DEFAULT_PROFILE_RULES,
  renderAuditPolicy,
  type AuditPolicy,
  type AuditRule,
} from "../../../src/desired/auditpolicy.js";
import {
  AUDIT_INVALID_POLICY,
  AUDIT_LOG_MAXAGE,
  AUDIT_LOG_MAXBACKUP,
  AUDIT_LOG_MAXSIZE,
  AUDIT_NO_CATCH_ALL,
  AUDIT_SECRETS_LOGGED,
  AUDIT_SHADOWED_RULE,
  checkAuditLogRotation,
  lintAuditPolicy,
  ruleCovers,
  validateAuditPolicy,
} from "../../../src/findings/auditpolicy-lint.js";

const REF = "ClusterSecurityPolicy/baseline";
const CATCH_ALL: AuditRule = { level: "Metadata" };

function policy(...rules: AuditRule[]): AuditPolicy {
  return { apiVersion: "audit.k8s.io/v1", kind: "Policy", omitStages: ["RequestReceived"], rules };
}
const ids = (p: AuditPolicy) => lintAuditPolicy(p, REF).map((f) => f.id);
const findingsWith = (p: AuditPolicy, id: string) => lintAuditPolicy(p, REF).filter((f) => f.id === id);

describe("lintAuditPolicy", () => {
  it("the Default profile lints clean (also with the API server's defaults applied)", () => {
    expect(lintAuditPolicy(renderAuditPolicy({}), REF)).to.deep.equal([]);
    const spec = applyDefaults(specSchema.openapi, { auditPolicy: {} }) as ClusterSecurityPolicySpec;
    expect(lintAuditPolicy(renderAuditPolicy(spec.auditPolicy!), REF)).to.deep.equal([]);
    expect(lintAuditPolicy(policy(...DEFAULT_PROFILE_RULES), REF)).to.deep.equal([]);
  });

  it("findings carry the area, the resource and a rule index", () => {
    const [f] = lintAuditPolicy(policy(CATCH_ALL, { level: "None", users: ["bob"] }), REF);
    expect(f).to.include({ id: AUDIT_SHADOWED_RULE, area: "auditPolicy", resource: REF, severity: "Medium" });
    expect(f!.message).to.include("rules[1]").and.include("rules[0]");
  });

  describe(AUDIT_SHADOWED_RULE, () => {
    it("reports a rule after a catch-all", () => {
      expect(
        ids(policy(CATCH_ALL, { level: "None", resources: [{ group: "", resources: ["pods"] }] })),
      ).to.deep.equal([AUDIT_SHADOWED_RULE]);
    });

    it("reports a rule whose match set is a subset of an earlier one", () => {
      const earlier: AuditRule = {
        level: "None",
        users: ["alice", "bob"],
        verbs: ["get", "list"],
        namespaces: ["a", "b"],
        resources: [{ group: "apps" }, { group: "", resources: ["pods/*", "*/status"] }],
      };
      const shadowed: AuditRule[] = [
        {
          level: "Metadata",
          users: ["bob"],
          verbs: ["get"],
          namespaces: ["a"],
          resources: [{ group: "apps", resources: ["deployments"] }],
        },
        {
          level: "Metadata",
          users: ["alice"],
          verbs: ["list"],
          namespaces: ["b"],
          resources: [{ group: "", resources: ["pods", "pods/log"] }],
        },
        {
          level: "Metadata",
          users: ["alice"],
          verbs: ["get"],
          namespaces: ["a"],
          resources: [{ group: "", resources: ["nodes/status"] }],
        },
        {
          level: "Metadata",
          users: ["alice"],
          verbs: ["get"],
          namespaces: ["a"],
          resources: [{ group: "", resources: ["pods"], resourceNames: ["web"] }],
        },
      ];
      for (const rule of shadowed) {
        expect(ids(policy(earlier, rule, CATCH_ALL)), JSON.stringify(rule)).to.deep.equal([
          AUDIT_SHADOWED_RULE,
        ]);
      }
    });

    it("does not report a rule that an earlier rule only partly covers", () => {
      const earlier: AuditRule = {
        level: "None",
        users: ["alice"],
        verbs: ["get"],
        namespaces: ["a"],
        resources: [{ group: "", resources: ["pods"] }],
      };
      const notShadowed: AuditRule[] = [
        {
          level: "Metadata",
          verbs: ["get"],
          namespaces: ["a"],
          resources: [{ group: "", resources: ["pods"] }],
        },
        {
          level: "Metadata",
          users: ["alice"],
          namespaces: ["a"],
          resources: [{ group: "", resources: ["pods"] }],
        },
        {
          level: "Metadata",
          users: ["alice"],
          verbs: ["get"],
          resources: [{ group: "", resources: ["pods"] }],
        },
        {
          level: "Metadata",
          users: ["alice"],
          verbs: ["get"],
          namespaces: ["a"],
          resources: [{ group: "", resources: ["pods/log"] }],
        },
        {
          level: "Metadata",
          users: ["alice"],
          verbs: ["get"],
          namespaces: ["a"],
          resources: [{ group: "apps", resources: ["pods"] }],
        },
        { level: "Metadata", users: ["alice"], verbs: ["get"], namespaces: ["a"] },
        { level: "Metadata", users: ["alice"], verbs: ["get"], nonResourceURLs: ["/metrics"] },
        {
          level: "Metadata",
          userGroups: ["system:masters"],
          verbs: ["get"],
          namespaces: ["a"],
          resources: [{ group: "", resources: ["pods"] }],
        },
      ];
      for (const rule of notShadowed) {
        expect(ids(policy(earlier, rule, CATCH_ALL)), JSON.stringify(rule)).to.deep.equal([]);
      }
    });

    it("understands wildcard groups, resourceNames and non-resource URL prefixes", () => {
      const star: AuditRule = { level: "None", resources: [{ group: "*", resources: ["*"] }] };
      expect(ruleCovers(star, { level: "Metadata", namespaces: ["x"] })).to.equal(true);
      expect(ruleCovers(star, { level: "Metadata", nonResourceURLs: ["/metrics"] })).to.equal(false);
      const named: AuditRule = {
        level: "None",
        resources: [{ group: "", resources: ["configmaps"], resourceNames: ["a", "b"] }],
      };
      expect(
        ruleCovers(named, {
          level: "Metadata",
          resources: [{ group: "", resources: ["configmaps"], resourceNames: ["a"] }],
        }),
      ).to.equal(true);
      expect(
        ruleCovers(named, { level: "Metadata", resources: [{ group: "", resources: ["configmaps"] }] }),
      ).to.equal(false);
      const urls: AuditRule = { level: "None", nonResourceURLs: ["/apis*"] };
      expect(ruleCovers(urls, { level: "Metadata", nonResourceURLs: ["/apis/apps", "/apis/x*"] })).to.equal(
        true,
      );
      expect(ruleCovers(urls, { level: "Metadata", nonResourceURLs: ["/api"] })).to.equal(false);
      expect(ruleCovers(urls, { level: "Metadata", nonResourceURLs: ["*"] })).to.equal(false);
      expect(
        ruleCovers({ level: "None", userGroups: ["a", "b"] }, { level: "Metadata", userGroups: ["a"] }),
      ).to.equal(true);
      expect(ruleCovers({ level: "None", userGroups: ["a"] }, { level: "Metadata", users: ["x"] })).to.equal(
        false,
      );
    });

    it("a user catch-all ahead of the Default profile shadows the profile's rules", () => {
      const p = renderAuditPolicy({ rules: [{ level: "Metadata" }] });
      expect(findingsWith(p, AUDIT_SHADOWED_RULE)).to.have.length(DEFAULT_PROFILE_RULES.length);
    });
  });

  describe(AUDIT_SECRETS_LOGGED, () => {
    it("reports a rule without resources above Metadata: it matches Secrets too", () => {
      const found = findingsWith(policy({ level: "RequestResponse" }), AUDIT_SECRETS_LOGGED);
      expect(found).to.have.length(1);
      expect(found[0]!.severity).to.equal("High");
      expect(found[0]!.message).to.include("Secrets").and.include("ConfigMaps").and.include("TokenReviews");
      expect(ids(policy({ level: "Request", namespaces: ["prod"] }, CATCH_ALL))).to.deep.equal([
        AUDIT_SECRETS_LOGGED,
      ]);
    });

    it("reports Secrets, TokenReviews and serviceaccounts/token logged above Metadata", () => {
      const cases: AuditRule[] = [
        { level: "Request", resources: [{ group: "", resources: ["secrets"] }] },
        { level: "RequestResponse", verbs: ["get"], resources: [{ group: "" }] },
        { level: "RequestResponse", resources: [{ group: "", resources: ["*"] }] },
        {
          level: "Request",
          verbs: ["create"],
          resources: [{ group: "authentication.k8s.io", resources: ["tokenreviews"] }],
        },
        { level: "RequestResponse", resources: [{ group: "", resources: ["serviceaccounts/*"] }] },
        { level: "RequestResponse", resources: [{ group: "", resources: ["*/token"] }] },
        {
          level: "Request",
          users: ["ci"],
          resources: [{ group: "", resources: ["secrets"], resourceNames: ["db"] }],
        },
      ];
      for (const rule of cases) {
        const found = findingsWith(policy(rule, CATCH_ALL), AUDIT_SECRETS_LOGGED);
        expect(found, JSON.stringify(rule)).to.have.length(1);
        expect(found[0]!.severity).to.equal("High");
      }
    });

    it("reports ConfigMaps as Medium", () => {
      const found = findingsWith(
        policy(
          { level: "RequestResponse", resources: [{ group: "", resources: ["configmaps"] }] },
          CATCH_ALL,
        ),
        AUDIT_SECRETS_LOGGED,
      );
      expect(found.map((f) => f.severity)).to.deep.equal(["Medium"]);
    });

    it("does not report levels or verbs that log no credential", () => {
      const clean: AuditRule[] = [
        { level: "Metadata", resources: [{ group: "", resources: ["secrets"] }] },
        {
          level: "Request",
          verbs: ["get", "list", "watch", "delete"],
          resources: [{ group: "", resources: ["secrets"] }],
        },
        { level: "Request", resources: [{ group: "", resources: ["serviceaccounts/token"] }] },
        { level: "RequestResponse", resources: [{ group: "", resources: ["pods", "secrets/x"] }] },
        { level: "RequestResponse", resources: [{ group: "apps" }] },
        { level: "RequestResponse", nonResourceURLs: ["/metrics"] },
      ];
      for (const rule of clean) {
        expect(ids(policy(rule, CATCH_ALL)), JSON.stringify(rule)).to.deep.equal([]);
      }
    });

    it("does not report a rule when an earlier rule already catches those requests at Metadata", () => {
      const guard: AuditRule = {
        level: "Metadata",
        resources: [
          { group: "", resources: ["secrets", "configmaps", "serviceaccounts/token"] },
          { group: "authentication.k8s.io", resources: ["tokenreviews"] },
        ],
      };
      expect(ids(policy(guard, { level: "RequestResponse" }))).to.deep.equal([]);
      expect(
        ids(renderAuditPolicy({ rules: [{ level: "RequestResponse", namespaces: ["prod"] }] })),
      ).to.deep.equal([AUDIT_SECRETS_LOGGED]);
      // A guard that only covers some verbs or names does not count.
      const partial: AuditRule = {
        level: "Metadata",
        verbs: ["get"],
        resources: [{ group: "", resources: ["secrets"] }],
      };
      expect(
        ids(
          policy(
            partial,
            { level: "RequestResponse", resources: [{ group: "", resources: ["secrets"] }] },
            CATCH_ALL,
          ),
        ),
      ).to.deep.equal([AUDIT_SECRETS_LOGGED]);
    });
  });

  describe(AUDIT_NO_CATCH_ALL, () => {
    it("reports a policy without a catch-all", () => {
      const found = findingsWith(
        policy({ level: "Metadata", resources: [{ group: "" }] }),
        AUDIT_NO_CATCH_ALL,
      );
      expect(found).to.have.length(1);
      expect(found[0]!.message).to.include("resource requests").and.include("non-resource requests");
    });

    it("reports a catch-all at None", () => {
      expect(ids(policy({ level: "None" }))).to.deep.equal([AUDIT_NO_CATCH_ALL]);
      expect(
        ids(
          policy(
            { level: "None", nonResourceURLs: ["*"] },
            { level: "Metadata", resources: [{ group: "*" }] },
          ),
        ),
      ).to.deep.equal([AUDIT_NO_CATCH_ALL]);
    });

    it("accepts a catch-all split into resource and non-resource halves", () => {
      expect(
        ids(
          policy(
            { level: "Metadata", nonResourceURLs: ["*"] },
            { level: "Metadata", resources: [{ group: "*" }] },
          ),
        ),
      ).to.deep.equal([]);
    });

    it("a catch-all restricted to some users is not a catch-all", () => {
      expect(ids(policy({ level: "Metadata", users: ["admin"] }))).to.deep.equal([AUDIT_NO_CATCH_ALL]);
    });
  });

  describe(AUDIT_INVALID_POLICY, () => {
    it("reports what the API server refuses to load", () => {
      const bad = policy(
        { level: "Metadata", nonResourceURLs: ["/ok"], namespaces: ["a"] },
        { level: "Metadata", nonResourceURLs: ["no-slash", "/a*b"] },
        { level: "Metadata", resources: [{ group: "apps/v1" }, { group: "", resourceNames: ["x"] }] },
        CATCH_ALL,
      );
      const errors = validateAuditPolicy(bad);
      expect(errors).to.have.length(5);
      expect(findingsWith(bad, AUDIT_INVALID_POLICY).map((f) => f.severity)).to.deep.equal(
        Array(5).fill("High"),
      );
    });

    it("reports a Custom profile without rules (the API server refuses 0 rules)", () => {
      const p = renderAuditPolicy({ profile: "Custom" });
      expect(ids(p)).to.deep.equal([AUDIT_INVALID_POLICY, AUDIT_NO_CATCH_ALL]);
    });

    it("the Default profile is valid", () => {
      expect(validateAuditPolicy(renderAuditPolicy({}))).to.deep.equal([]);
    });
  });
});

describe("checkAuditLogRotation", () => {
  const defaults = { maxAge: 30, maxBackup: 10, maxSize: 100 };

  it("reports every missing flag", () => {
    const found = checkAuditLogRotation({}, defaults);
    expect(found.map((f) => f.id)).to.deep.equal([AUDIT_LOG_MAXAGE, AUDIT_LOG_MAXBACKUP, AUDIT_LOG_MAXSIZE]);
    expect(found[0]!.message).to.include("--audit-log-maxage is not set");
    expect(
      found.every((f) => f.area === "auditPolicy" && f.resource === "Component/kube-apiserver"),
    ).to.equal(true);
  });

  it("accepts flags at or above the minimum and reports those below", () => {
    expect(checkAuditLogRotation({ maxAge: 30, maxBackup: 10, maxSize: 100 }, defaults)).to.deep.equal([]);
    expect(checkAuditLogRotation({ maxAge: 90, maxBackup: 20, maxSize: 500 }, defaults)).to.deep.equal([]);
    const found = checkAuditLogRotation(
      { maxAge: 7, maxBackup: 10, maxSize: 0 },
      defaults,
      "Pod/kube-system/kube-apiserver-cp1",
    );
    expect(found.map((f) => f.id)).to.deep.equal([AUDIT_LOG_MAXAGE, AUDIT_LOG_MAXSIZE]);
    expect(found[0]!.message).to.include("is 7").and.include("at least 30 days");
    expect(found[0]!.resource).to.equal("Pod/kube-system/kube-apiserver-cp1");
  });

  it("uses the policy's minimums, falling back to CIS", () => {
    expect(
      checkAuditLogRotation({ maxAge: 60, maxBackup: 10, maxSize: 100 }, { maxAge: 90 }).map((f) => f.id),
    ).to.deep.equal([AUDIT_LOG_MAXAGE]);
    expect(checkAuditLogRotation({ maxAge: 29, maxBackup: 9, maxSize: 99 }, undefined)).to.have.length(3);
    expect(checkAuditLogRotation({ maxAge: 7, maxBackup: 10, maxSize: 100 }, { maxAge: 7 })).to.deep.equal(
      [],
    );
  });
});
