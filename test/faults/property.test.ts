/**
 * Fault suite: bad input, generated (fast-check). Every generated policy is either rejected at admission
 * (checked against the real API server for a sample) or, once stored, handled by the pure core
 * (desiredState, childDrift, sharedDrift) without throwing, and reconciled by the running operator to a Ready
 * condition for its generation (True, or False with a reason such as InvalidSpec) without the process dying.
 */
import { expect } from "chai";
import fc from "fast-check";
import type { ClusterSecurityPolicy } from "../../src/api/v1alpha1/policy.js";
import { desiredState } from "../../src/desired/index.js";
import { sharedNamespaceStates } from "../../src/desired/namespacestate.js";
import { childDrift, sharedDrift } from "../../src/drift/checks.js";
import type { Snapshot } from "../../src/cluster/snapshot.js";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { OperatorProcess, measure, recordClusterTexts, recordKubeconfigSecrets } from "./support.js";
import { printLogIfFailed } from "../support/operatorprocess.js";

const name = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
  fc.constantFrom("", "A", "-x", "x".repeat(70), "web.app", "ünï", "default-deny", "a b"),
);
const level = fc.constantFrom("privileged", "baseline", "restricted", "", "Restricted", "none");
const labels = fc.dictionary(fc.constantFrom("team", "tier", "csp.example.com/tier", "bad key!"), name, {
  maxKeys: 2,
});
const requirement = fc.record(
  {
    key: fc.constantFrom("team", "tier", ""),
    operator: fc.constantFrom("In", "NotIn", "Exists", "DoesNotExist", "Equals"),
    values: fc.array(name, { maxLength: 2 }),
  },
  { requiredKeys: ["key", "operator"] },
);
const rule = fc.record(
  {
    apiGroups: fc.array(fc.constantFrom("", "apps", "*"), { maxLength: 2 }),
    resources: fc.array(fc.constantFrom("pods", "services", "secrets", "*", "pods/exec"), { maxLength: 2 }),
    verbs: fc.array(fc.constantFrom("get", "list", "watch", "*", "escalate"), { maxLength: 3 }),
  },
  { requiredKeys: ["verbs"] },
);
/**
 * Policy specs shaped like the schema (its required fields present), with values from the edges (and some
 * outside) of what it allows.
 */
const shapedSpec = fc.record(
  {
    mode: fc.constantFrom("Enforce", "Audit", "enforce", ""),
    namespaces: fc.record(
      {
        selector: fc.record(
          { matchLabels: labels, matchExpressions: fc.array(requirement, { maxLength: 2 }) },
          {
            requiredKeys: [],
          },
        ),
        exclude: fc.array(name, { maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
    networkPolicies: fc.record(
      {
        defaultDenyIngress: fc.boolean(),
        defaultDenyEgress: fc.boolean(),
        allowDNS: fc.boolean(),
        allowSameNamespace: fc.boolean(),
        extra: fc.array(
          fc.record({
            name,
            spec: fc.oneof(
              fc.constant({ podSelector: {} }),
              fc.constant({
                podSelector: {},
                policyTypes: ["Ingress"],
                ingress: [{ from: [{ podSelector: {} }] }],
              }),
              fc.constant({ policyTypes: ["Sideways"] }),
            ),
          }),
          { maxLength: 3 },
        ),
      },
      { requiredKeys: [] },
    ),
    podSecurity: fc.record(
      { enforce: level, audit: level, warn: level, version: fc.constantFrom("latest", "v1.30", "v2") },
      {
        requiredKeys: [],
      },
    ),
    serviceAccounts: fc.record({ automountDefaultToken: fc.boolean() }),
    rbac: fc.record(
      {
        roles: fc.array(
          fc.record(
            { name, rules: fc.array(rule, { maxLength: 2 }), serviceAccount: name },
            {
              requiredKeys: ["name", "rules"],
            },
          ),
          { maxLength: 2 },
        ),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);
/** Anything at all in a top-level field: the wrong type, nulls, deep nesting. */
const wildSpec = fc.dictionary(
  fc.constantFrom(
    "mode",
    "namespaces",
    "networkPolicies",
    "podSecurity",
    "serviceAccounts",
    "rbac",
    "exemptions",
    "bogus",
  ),
  fc.jsonValue({ maxDepth: 3 }),
  { maxKeys: 3 },
);

function asPolicy(spec: unknown, n = 0): ClusterSecurityPolicy {
  return {
    apiVersion: "security.csp-operator.io/v1alpha1",
    kind: "ClusterSecurityPolicy",
    metadata: { name: `gen-${n}`, uid: `uid-${n}`, generation: 1, creationTimestamp: "2026-01-01T00:00:00Z" },
    spec,
  } as ClusterSecurityPolicy;
}

const SNAPSHOT: Snapshot = {
  policies: [],
  namespaces: ["team-a", "team-b", "kube-system", "csp-system"].map((n, i) => ({
    metadata: {
      name: n,
      labels: { "kubernetes.io/metadata.name": n, ...(i % 2 ? { team: "a" } : { tier: "web" }) },
    },
    status: { phase: "Active" },
  })),
  networkPolicies: [],
  serviceAccounts: [{ metadata: { name: "default", namespace: "team-a" } }],
  roles: [],
  roleBindings: [],
  now: new Date("2026-06-01T00:00:00Z"),
};

/** Runs the pure core on one stored policy; throws what it throws. */
function pureCore(policy: ClusterSecurityPolicy): void {
  const snapshot = { ...SNAPSHOT, policies: [policy] };
  const desired = desiredState(policy, snapshot);
  childDrift(policy, desired.children, snapshot);
  sharedDrift(policy, desired.namespaces, snapshot, sharedNamespaceStates(snapshot));
}

describe("faults: generated policies (fast-check)", function () {
  this.timeout(300_000);

  it("the pure core never throws on a schema-shaped spec (2000 runs)", () => {
    fc.assert(
      fc.property(shapedSpec, (spec) => {
        pureCore(asPolicy(spec));
      }),
      { numRuns: 2000, seed: 17 },
    );
  });

  describe("against the real API server", () => {
    let cp: ControlPlane;
    let operator: OperatorProcess;
    const ok = kubectlOk(() => cp);

    before(async function () {
      cp = await startControlPlane({ name: "faults-property" });
      recordKubeconfigSecrets(cp.kubeconfigPath);
      await installCrd(cp);
      for (const [ns, l] of [
        ["team-a", "tier=web"],
        ["team-b", "team=a"],
      ] as const) {
        await ok(["create", "namespace", ns]);
        await ok(["label", "namespace", ns, l]);
      }
      operator = new OperatorProcess(cp.kubeconfigPath);
    });

    afterEach(function () {
      printLogIfFailed(this.currentTest, operator);
    });

    after(async () => {
      try {
        if (cp) await recordClusterTexts(cp);
      } finally {
        await operator?.stop();
        await cp?.stop();
      }
    });

    it("a sample is rejected at admission or stored; every stored one the pure core handles and the operator reports", async () => {
      const t0 = Date.now();
      const samples = [
        ...fc.sample(shapedSpec, { numRuns: 30, seed: 1 }),
        ...fc.sample(wildSpec, { numRuns: 30, seed: 2 }),
      ];
      const stored: { name: string; spec: unknown }[] = [];
      let rejected = 0;
      for (const [i, spec] of samples.entries()) {
        const p = asPolicy(spec, i);
        const body = JSON.stringify({
          apiVersion: p.apiVersion,
          kind: p.kind,
          metadata: { name: p.metadata.name },
          spec,
        });
        const r = await cp.kubectl(["create", "-f", "-", "-o", "json"], { input: body });
        if (r.code !== 0) {
          expect(r.stderr, `sample ${i} rejected without naming a field: ${body}`).to.match(
            /spec|Invalid|invalid/,
          );
          rejected++;
          continue;
        }
        const storedObj = JSON.parse(r.stdout) as ClusterSecurityPolicy;
        // What the API server stored (defaults applied, unknown fields pruned) is what the operator will see.
        expect(
          () => pureCore({ ...storedObj, metadata: { ...storedObj.metadata, uid: "u" } }),
          body,
        ).to.not.throw();
        stored.push({ name: p.metadata.name, spec: storedObj.spec });
      }
      expect(rejected, "some samples must be refused at admission").to.be.greaterThan(0);
      expect(stored.length, "some samples must be stored").to.be.greaterThan(0);
      for (const s of stored) {
        await eventually(
          `${s.name} reconciled or reported (spec ${JSON.stringify(s.spec)})`,
          async () => {
            const o = JSON.parse(await ok(["get", "csp", s.name, "-o", "json"])) as {
              metadata: { generation: number };
              status?: {
                observedGeneration?: number;
                conditions?: { type: string; status: string; reason: string }[];
              };
            };
            const ready = o.status?.conditions?.find((c) => c.type === "Ready");
            return o.status?.observedGeneration === o.metadata.generation && ready !== undefined;
          },
          120_000,
        );
      }
      const reasons = new Map<string, number>();
      for (const s of stored) {
        const ready = (
          JSON.parse(await ok(["get", "csp", s.name, "-o", "json"])) as {
            status?: { conditions?: { type: string; status: string; reason: string }[] };
          }
        ).status?.conditions?.find((c) => c.type === "Ready");
        const k = `${ready?.status}/${ready?.reason}`;
        reasons.set(k, (reasons.get(k) ?? 0) + 1);
      }
      measure(
        "generated policies",
        Date.now() - t0,
        samples.length,
        `${rejected} rejected at admission, ${stored.length} stored; Ready: ${[...reasons].map(([k, v]) => `${k} x${v}`).join(", ")}`,
      );
      expect(operator.exit, operator.log.slice(-2000)).to.equal(undefined);
      expect(operator.log).to.not.match(/unhandled/i);
    });
  });
});
