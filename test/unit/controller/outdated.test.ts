import type { KubernetesObject } from "@kubernetes/client-node";
import { expect } from "chai";
import type { ClusterSecurityPolicy } from "../../../src/api/v1alpha1/policy.js";
import { WriteLedger } from "../../../src/controller/ledger.js";
import { policyOutdated, reconcile, SKIPPED_RECHECK_MS } from "../../../src/controller/reconcile.js";
import { silentLogger } from "../../../src/observability/logger.js";
import { namespace, policy, snapshot } from "../builders/policy.js";

describe("policyOutdated: whether a full reconcile's plan still holds for the policy the cache holds now", () => {
  const planned = policy("p").build();
  it("the same object and generation (a status change, a label): the plan holds", () => {
    expect(
      policyOutdated(planned, { ...planned, metadata: { ...planned.metadata, labels: { a: "b" } } }),
    ).to.equal(undefined);
  });
  it("gone, being deleted or re-created under the name: policy gone", () => {
    expect(policyOutdated(planned, undefined)).to.equal("policy gone");
    const deleting = { ...planned, metadata: { ...planned.metadata, deletionTimestamp: new Date() } };
    expect(policyOutdated(planned, deleting)).to.equal("policy gone");
    expect(policyOutdated(planned, { ...planned, metadata: { ...planned.metadata, uid: "other" } })).to.equal(
      "policy gone",
    );
  });
  it("a new generation (a switch to Audit among others): policy changed", () => {
    const audit = policy("p").audit().build();
    audit.metadata.generation = 2;
    expect(policyOutdated(planned, audit)).to.equal("policy changed");
  });
});

describe("reconcile: a plan outdated mid-apply writes no more and no status", () => {
  const enforce = policy("p")
    .spec({
      namespaces: { selector: { matchLabels: { team: "a" } } },
      networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: true, allowDNS: false },
    })
    .build();
  const audit = { ...policy("p").audit().build(), metadata: { ...enforce.metadata, generation: 2 } };
  const namespaces = Array.from({ length: 10 }, (_, i) => namespace(`a-${i}`, { team: "a" }));

  /** One reconcile; the cache holds `then` once `after` writes were made. */
  async function run(after: number, then: ClusterSecurityPolicy | undefined) {
    const events: string[] = [];
    const writes: string[] = [];
    const statuses: unknown[] = [];
    const write = <T extends KubernetesObject>(o: T) => {
      writes.push(`${o.kind}/${o.metadata?.namespace}/${o.metadata?.name}`);
      return Promise.resolve(o);
    };
    const result = await reconcile("p", {
      snapshot: () => snapshot({ policies: [enforce], namespaces }),
      log: silentLogger(),
      ledger: new WriteLedger(),
      maxConcurrentWrites: 1,
      currentPolicy: () => (writes.length < after ? enforce : then),
      writer: {
        apply: write,
        create: write,
        replaceOwned: () => Promise.resolve(),
        delete: () => Promise.resolve(),
        read: () => Promise.resolve(undefined),
        patchStatus: (_n, s) => (statuses.push(s), Promise.resolve(true)),
        event: (_p, _t, reason, message) => (events.push(`${reason}: ${message}`), Promise.resolve()),
      },
    });
    return { writes, statuses, result, events };
  }

  it("the policy unchanged: every write and the status", async () => {
    const { writes, statuses } = await run(Infinity, undefined);
    expect(writes.filter((w) => w.startsWith("NetworkPolicy/"))).to.have.length(10);
    expect(statuses).to.have.length(1);
  });

  it("switched to Audit after 3 writes: 3 writes told in one Event, no status, looked at again in 1 s", async () => {
    const { writes, statuses, result, events } = await run(3, audit);
    expect(writes).to.have.length(3);
    expect(statuses).to.deep.equal([]);
    // The new generation runs at once anyway (its event marked the key); the second look sees what the
    // caches had not shown that one yet.
    expect(result).to.deep.equal({ requeueAfterMs: SKIPPED_RECHECK_MS });
    expect(events).to.have.length(1);
    expect(events[0]).to.match(/^DriftCorrected: Corrected 3 object\(s\)/);
  });

  it("deleted after 3 writes: the same", async () => {
    const { writes, statuses, result } = await run(3, undefined);
    expect(writes).to.have.length(3);
    expect(statuses).to.deep.equal([]);
    expect(result).to.deep.equal({ requeueAfterMs: SKIPPED_RECHECK_MS });
  });
});
