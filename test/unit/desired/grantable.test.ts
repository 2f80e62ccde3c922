import type { V1ClusterRole, V1PolicyRule } from "@kubernetes/client-node";
import { expect } from "chai";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import {
  breakdown,
  covers,
  describePermissions,
  uncovered,
  type RuleLike,
} from "../../../src/desired/grantable.js";
import { ungrantableRoles } from "../../../src/desired/rbac.js";
import type { KubernetesObject, V1Role } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy } from "../../../src/api/v1alpha1/policy.js";
import { reconcile } from "../../../src/controller/reconcile.js";
import { ownerReference, ownershipLabels } from "../../../src/desired/metadata.js";
import { silentLogger } from "../../../src/observability/logger.js";
import type { Snapshot } from "../../../src/cluster/snapshot.js";
import { namespace, policy, snapshot } from "../builders/policy.js";

const r = (
  verbs: string[],
  apiGroups: string[],
  resources: string[],
  resourceNames?: string[],
): RuleLike => ({ verbs, apiGroups, resources, ...(resourceNames ? { resourceNames } : {}) });

describe("grantable: does a requested rule fall within granting rules (API server Covers semantics)", () => {
  const table: { name: string; granting: RuleLike[]; requested: RuleLike[]; covered: boolean }[] = [
    {
      name: "exact match",
      granting: [r(["get"], [""], ["pods"])],
      requested: [r(["get"], [""], ["pods"])],
      covered: true,
    },
    {
      name: "subset of verbs",
      granting: [r(["get", "list"], [""], ["pods"])],
      requested: [r(["list"], [""], ["pods"])],
      covered: true,
    },
    {
      name: "verb not held",
      granting: [r(["get"], [""], ["pods"])],
      requested: [r(["get", "delete"], [""], ["pods"])],
      covered: false,
    },
    {
      name: "other group",
      granting: [r(["get"], [""], ["pods"])],
      requested: [r(["get"], ["apps"], ["pods"])],
      covered: false,
    },
    {
      name: "other resource",
      granting: [r(["get"], [""], ["pods"])],
      requested: [r(["get"], [""], ["secrets"])],
      covered: false,
    },
    {
      name: "granting * verb",
      granting: [r(["*"], [""], ["pods"])],
      requested: [r(["delete", "escalate"], [""], ["pods"])],
      covered: true,
    },
    {
      name: "granting * group",
      granting: [r(["get"], ["*"], ["pods"])],
      requested: [r(["get"], ["", "apps"], ["pods"])],
      covered: true,
    },
    {
      name: "granting * resource",
      granting: [r(["get"], [""], ["*"])],
      requested: [r(["get"], [""], ["secrets", "pods/log"])],
      covered: true,
    },
    {
      name: "requested * verb needs granting *",
      granting: [
        r(
          ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"],
          [""],
          ["pods"],
        ),
      ],
      requested: [r(["*"], [""], ["pods"])],
      covered: false,
    },
    {
      name: "requested * resource needs granting *",
      granting: [r(["get"], [""], ["pods", "services"])],
      requested: [r(["get"], [""], ["*"])],
      covered: false,
    },
    {
      name: "requested * group needs granting *",
      granting: [r(["get"], ["", "apps"], ["pods"])],
      requested: [r(["get"], ["*"], ["pods"])],
      covered: false,
    },
    {
      name: "resource does not cover its subresource",
      granting: [r(["get"], [""], ["pods"])],
      requested: [r(["get"], [""], ["pods/log"])],
      covered: false,
    },
    {
      name: "subresource does not cover its resource",
      granting: [r(["get"], [""], ["pods/log"])],
      requested: [r(["get"], [""], ["pods"])],
      covered: false,
    },
    {
      name: "exact subresource",
      granting: [r(["get"], [""], ["pods/log"])],
      requested: [r(["get"], [""], ["pods/log"])],
      covered: true,
    },
    {
      name: "*/sub covers that subresource of any resource",
      granting: [r(["get"], [""], ["*/status"])],
      requested: [r(["get"], [""], ["pods/status", "services/status"])],
      covered: true,
    },
    {
      name: "*/sub does not cover another subresource",
      granting: [r(["get"], [""], ["*/status"])],
      requested: [r(["get"], [""], ["pods/log"])],
      covered: false,
    },
    {
      name: "*/sub does not cover the resource",
      granting: [r(["get"], [""], ["*/status"])],
      requested: [r(["get"], [""], ["pods"])],
      covered: false,
    },
    {
      name: "no names covers named",
      granting: [r(["get"], [""], ["configmaps"])],
      requested: [r(["get"], [""], ["configmaps"], ["a", "b"])],
      covered: true,
    },
    {
      name: "named covers the same names",
      granting: [r(["get"], [""], ["configmaps"], ["a", "b"])],
      requested: [r(["get"], [""], ["configmaps"], ["b"])],
      covered: true,
    },
    {
      name: "named does not cover another name",
      granting: [r(["get"], [""], ["configmaps"], ["a"])],
      requested: [r(["get"], [""], ["configmaps"], ["a", "c"])],
      covered: false,
    },
    {
      name: "named does not cover unnamed",
      granting: [r(["get"], [""], ["configmaps"], ["a"])],
      requested: [r(["get"], [""], ["configmaps"])],
      covered: false,
    },
    {
      name: "combinations spread over several granting rules",
      granting: [
        r(["get"], [""], ["pods", "services"]),
        r(["list"], [""], ["pods"]),
        r(["list"], [""], ["services"]),
      ],
      requested: [r(["get", "list"], [""], ["pods", "services"])],
      covered: true,
    },
    {
      name: "one missing combination is enough",
      granting: [r(["get"], [""], ["pods", "services"]), r(["list"], [""], ["pods"])],
      requested: [r(["get", "list"], [""], ["pods", "services"])],
      covered: false,
    },
    {
      name: "verbs are case-sensitive",
      granting: [r(["get"], [""], ["pods"])],
      requested: [r(["GET"], [""], ["pods"])],
      covered: false,
    },
    { name: "nothing grants nothing", granting: [], requested: [r(["get"], [""], ["pods"])], covered: false },
    {
      name: "a rule without groups grants nothing",
      granting: [],
      requested: [{ verbs: ["get"], resources: ["pods"] }],
      covered: true,
    },
    {
      name: "URL covered by prefix *",
      granting: [{ verbs: ["get"], nonResourceURLs: ["/healthz/*"] }],
      requested: [{ verbs: ["get"], nonResourceURLs: ["/healthz/etcd"] }],
      covered: true,
    },
    {
      name: "URL not covered by another URL",
      granting: [{ verbs: ["get"], nonResourceURLs: ["/healthz"] }],
      requested: [{ verbs: ["get"], nonResourceURLs: ["/metrics"] }],
      covered: false,
    },
    {
      name: "resource rules do not cover URLs",
      granting: [r(["*"], ["*"], ["*"])],
      requested: [{ verbs: ["get"], nonResourceURLs: ["/metrics"] }],
      covered: false,
    },
  ];
  for (const t of table)
    it(`${t.name}: ${t.covered ? "covered" : "not covered"}`, () => {
      expect(covers(t.granting, t.requested)).to.equal(t.covered);
    });

  it("the red-team role is not covered by the shipped grantable rules, and names every missing permission", () => {
    const missing = uncovered(shippedGrantableRules(), [
      r(["list", "update"], [""], ["secrets"]),
      r(["create", "update", "patch", "delete"], ["rbac.authorization.k8s.io"], ["roles", "rolebindings"]),
      r(["delete"], ["networking.k8s.io"], ["networkpolicies"]),
    ]);
    expect(missing).to.have.length(2 + 8 + 1);
    expect(describePermissions(missing)).to.equal(
      "secrets [list update], rbac.authorization.k8s.io/roles [create update patch delete], " +
        "rbac.authorization.k8s.io/rolebindings [create update patch delete], " +
        "networking.k8s.io/networkpolicies [delete]",
    );
  });

  it("a pods/services reader is covered by the shipped grantable rules; secrets, configmaps and pod logs are not", () => {
    const shipped = shippedGrantableRules();
    expect(covers(shipped, [r(["get", "list", "watch"], [""], ["pods", "services"])])).to.equal(true);
    expect(covers(shipped, [r(["create", "patch"], [""], ["events"])])).to.equal(true);
    for (const resource of ["secrets", "configmaps", "pods/log", "pods/exec", "serviceaccounts/token"])
      expect(covers(shipped, [r(["get"], [""], [resource])]), resource).to.equal(false);
    expect(covers(shipped, [r(["get"], ["coordination.k8s.io"], ["leases"])])).to.equal(false);
  });

  it("reports each missing permission once, in order", () => {
    const missing = uncovered([], [r(["get"], [""], ["pods"]), r(["get"], [""], ["pods"], undefined)]);
    expect(missing).to.deep.equal([{ verb: "get", apiGroup: "", resource: "pods" }]);
    expect(describePermissions(uncovered([], [r(["get"], [""], ["configmaps"], ["app"])]))).to.equal(
      'configmaps "app" [get]',
    );
    const many = uncovered(
      [],
      [
        r(
          ["get"],
          [""],
          Array.from({ length: 15 }, (_, i) => `r${i}`),
        ),
      ],
    );
    expect(describePermissions(many, 12)).to.match(/, and 3 more$/);
  });

  describe("property: covering is sound against the RBAC authorizer's matching", () => {
    // Small alphabets so that random rules overlap often; includes wildcards, subresources and names.
    const VERBS = ["get", "list", "delete", "*"];
    const GROUPS = ["", "apps", "*"];
    const RESOURCES = ["pods", "secrets", "pods/log", "pods/status", "*/status", "*"];
    const NAMES = ["a", "b"];
    let seed = 0x2545f491;
    const rand = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const subset = (xs: string[]) => {
      const out = xs.filter(() => rand(3) === 0);
      return out.length ? out : [xs[rand(xs.length)]!];
    };
    const randomRule = (): RuleLike =>
      r(subset(VERBS), subset(GROUPS), subset(RESOURCES), rand(3) === 0 ? subset(NAMES) : undefined);
    const randomRules = () => Array.from({ length: 1 + rand(3) }, randomRule);

    /** One request: a verb on a (sub)resource of a group, with or without a name; no wildcards. */
    interface Request {
      verb: string;
      group: string;
      resource: string;
      name?: string;
    }
    const requests: Request[] = [];
    for (const verb of ["get", "list", "delete", "escalate"])
      for (const group of ["", "apps", "batch"])
        for (const resource of ["pods", "secrets", "pods/log", "pods/status", "services/status", "nodes"])
          for (const name of [undefined, "a", "b", "c"])
            requests.push({ verb, group, resource, ...(name ? { name } : {}) });

    /** What the RBAC authorizer (RuleAllows) does with one rule and one request. */
    const allows = (rules: readonly RuleLike[], q: Request) =>
      rules.some((rule) => {
        const has = (xs: readonly string[] | undefined, x: string) =>
          (xs ?? []).some((v) => v === "*" || v === x);
        const sub = q.resource.includes("/") ? `*/${q.resource.split("/")[1]}` : undefined;
        const resource = (rule.resources ?? []).some((v) => v === "*" || v === q.resource || v === sub);
        const names = rule.resourceNames ?? [];
        const name = names.length === 0 || (q.name !== undefined && names.includes(q.name));
        return has(rule.verbs, q.verb) && has(rule.apiGroups, q.group) && resource && name;
      });

    it("whatever a covered rule set allows, the granting rules allow too (2000 random cases)", () => {
      let coveredCases = 0;
      for (let i = 0; i < 2000; i++) {
        const granting = randomRules();
        const requested = randomRules();
        if (!covers(granting, requested)) continue;
        coveredCases++;
        for (const q of requests)
          if (allows(requested, q))
            expect(allows(granting, q), `${JSON.stringify({ granting, requested, q })}`).to.equal(true);
      }
      expect(coveredCases).to.be.greaterThan(100);
    });

    it("every rule set covers itself, and covering distributes over the requested rules", () => {
      for (let i = 0; i < 1000; i++) {
        const a = randomRules();
        const b = randomRules();
        const g = randomRules();
        expect(covers(a, a)).to.equal(true);
        expect(covers(g, [...a, ...b])).to.equal(covers(g, a) && covers(g, b));
        // More granting rules never cover less.
        if (covers(g, a)) expect(covers([...g, ...b], a)).to.equal(true);
      }
    });

    it("each missing permission is really not covered, and each breakdown permission not listed is", () => {
      for (let i = 0; i < 1000; i++) {
        const g = randomRules();
        const req = randomRules();
        const missing = uncovered(g, req);
        for (const m of missing) expect(covers(g, [permissionRule(m)])).to.equal(false);
        const listed = new Set(missing.map((m) => JSON.stringify(m)));
        for (const p of req.flatMap(breakdown))
          if (!listed.has(JSON.stringify(p))) expect(covers(g, [permissionRule(p)])).to.equal(true);
      }
    });
  });
});

describe("ungrantableRoles: spec.rbac.roles entries beyond csp-operator-grantable", () => {
  const grantable = (rules: RuleLike[] | undefined): V1ClusterRole => ({
    metadata: { name: "csp-operator-grantable" },
    ...(rules ? { rules: rules as V1PolicyRule[] } : {}),
  });
  const reader = { name: "reader", rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }] };
  const helper = {
    name: "helper",
    rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["list", "update"] }],
  };

  it("names only the entries not covered, with what they miss", () => {
    const out = ungrantableRoles(
      [reader, helper],
      [grantable(shippedGrantableRules())],
      "csp-operator-grantable",
    );
    expect([...out]).to.deep.equal([["helper", "secrets [list update]"]]);
  });

  it("reads the named ClusterRole only, not another one that grants more", () => {
    const other: V1ClusterRole = {
      metadata: { name: "admin" },
      rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }],
    };
    const out = ungrantableRoles(
      [helper],
      [other, grantable(shippedGrantableRules())],
      "csp-operator-grantable",
    );
    expect(out.has("helper")).to.equal(true);
  });

  it("grants nothing when the ClusterRole is absent or not aggregated yet, and says which", () => {
    const absent = ungrantableRoles([reader], [], "csp-operator-grantable");
    expect(absent.get("reader")).to.equal("pods [get] (ClusterRole csp-operator-grantable does not exist)");
    expect(
      ungrantableRoles([reader], [grantable(undefined)], "csp-operator-grantable").get("reader"),
    ).to.equal("pods [get]");
  });
});

describe("reconcile never writes a generated Role or RoleBinding beyond csp-operator-grantable", () => {
  const roles = [
    {
      name: "reader",
      rules: [{ apiGroups: [""], resources: ["pods", "services"], verbs: ["get", "list", "watch"] }],
    },
    {
      name: "helper",
      rules: [
        { apiGroups: [""], resources: ["secrets"], verbs: ["list", "update"] },
        {
          apiGroups: ["rbac.authorization.k8s.io"],
          resources: ["roles", "rolebindings"],
          verbs: ["create", "update", "patch", "delete"],
        },
      ],
    },
  ];
  const shipped: V1ClusterRole = {
    metadata: { name: "csp-operator-grantable" },
    rules: shippedGrantableRules() as V1PolicyRule[],
  };

  /** Runs one reconcile against a writer that accepts everything, as an API server would for an admin. */
  async function run(p: ClusterSecurityPolicy, extra: Partial<Snapshot> = {}, clusterRoles = [shipped]) {
    const applied: KubernetesObject[] = [];
    const statuses: NonNullable<ClusterSecurityPolicy["status"]>[] = [];
    const snap = snapshot({
      policies: [p],
      namespaces: [namespace("shop"), namespace("web")],
      rbac: { clusterRoles, clusterRoleBindings: [], roles: [], roleBindings: [] },
      ...extra,
    });
    await reconcile(p.metadata.name, {
      snapshot: () => snap,
      log: silentLogger(),
      writer: {
        apply: <T extends KubernetesObject>(o: T) => {
          applied.push(o);
          return Promise.resolve(o);
        },
        create: <T extends KubernetesObject>(o: T) => {
          applied.push(o);
          return Promise.resolve(o);
        },
        replaceOwned: () => Promise.resolve(),
        delete: () => Promise.resolve(),
        read: () => Promise.resolve(undefined),
        patchStatus: (_name, status) => {
          statuses.push(status);
          return Promise.resolve();
        },
        event: () => Promise.resolve(),
      },
    });
    const ready = statuses.at(-1)?.conditions?.find((c) => c.type === "Ready");
    const written = applied.map((o) => `${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`);
    return { ready, written };
  }

  it("applies the covered entry, not the other, and says which and why", async () => {
    const { ready, written } = await run(policy("p").spec({ rbac: { roles } }).build());
    expect(written).to.include.members(["Role/shop/reader", "RoleBinding/shop/reader", "Role/web/reader"]);
    expect(written.filter((w) => /^Role(Binding)?\/.*\/helper$/.test(w))).to.deep.equal([]);
    expect(ready).to.include({ status: "False", reason: "RoleNotGrantable" });
    expect(ready?.message).to.contain("spec.rbac.roles[name=helper] (Role/shop/helper and 1 more)");
    expect(ready?.message).to.contain("secrets [list update]");
    expect(ready?.message).to.contain("csp-operator-grantable");
    expect(ready?.message).to.not.contain("roles[name=reader]");
  });

  it("grants nothing when csp-operator-grantable is not in the cache", async () => {
    const { ready, written } = await run(
      policy("p")
        .spec({ rbac: { roles: [roles[0]!] } })
        .build(),
      {},
      [],
    );
    expect(written.filter((w) => w.startsWith("Role"))).to.deep.equal([]);
    expect(ready?.reason).to.equal("RoleNotGrantable");
    expect(ready?.message).to.contain("ClusterRole csp-operator-grantable does not exist");
  });

  it("still reports a Role beyond it that already exists (left by an earlier version), without rewriting it", async () => {
    const p = policy("p")
      .spec({ rbac: { roles: [roles[1]!] } })
      .build();
    const existing: V1Role = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: {
        name: "helper",
        namespace: "shop",
        labels: ownershipLabels("p"),
        ownerReferences: [ownerReference(p)],
      },
      rules: roles[1]!.rules,
    };
    const { ready, written } = await run(p, { roles: [existing] });
    expect(written.filter((w) => w.startsWith("Role"))).to.deep.equal([]);
    expect(ready).to.include({ status: "False", reason: "RoleNotGrantable" });
  });
});

function permissionRule(p: ReturnType<typeof breakdown>[number]): RuleLike {
  return p.nonResourceURL !== undefined
    ? { verbs: [p.verb], nonResourceURLs: [p.nonResourceURL] }
    : r([p.verb], [p.apiGroup!], [p.resource!], p.resourceName !== undefined ? [p.resourceName] : undefined);
}

/** The rules the aggregation controller puts into csp-operator-grantable from config/rbac as shipped. */
function shippedGrantableRules(): RuleLike[] {
  const docs = parseAllDocuments(readFileSync("config/rbac/grantable_cluster_role.yaml", "utf8"));
  return docs
    .map(
      (d) =>
        d.toJSON() as { kind?: string; metadata?: { labels?: Record<string, string> }; rules?: RuleLike[] },
    )
    .filter(
      (o) =>
        o.kind === "ClusterRole" &&
        o.metadata?.labels?.["security.csp-operator.io/aggregate-to-grantable"] === "true",
    )
    .flatMap((o) => o.rules ?? []);
}
