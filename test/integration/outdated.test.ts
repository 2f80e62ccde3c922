/**
 * Needs the local control plane (built on first use by controlplane/build.sh).
 * A full reconcile whose plan is outdated while its writes are under way: a switch to Audit (to stop an
 * outage) or a deletion stops its remaining writes, and status is written only to the policy object it
 * was computed for, never to a policy re-created under the same name meanwhile.
 */
import { expect } from "chai";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy, ClusterSecurityPolicyStatus } from "../../src/api/v1alpha1/policy.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import type { AreaFactory } from "../../src/controller/areas.js";
import { nodeIsolationArea } from "../../src/controller/nodeisolation.js";
import { HeldWrite, operatorSuite, operatorWritesSince } from "../support/operatorsuite.js";

const N = 30;
const LABEL = "outdated";

/** Node isolation, its next reconcile of policy `iso` held before it writes when `holdIsolation` is set. */
let holdIsolation = false;
let isolationHeld = 0;
let releaseIsolation = (): void => {};
const heldIsolation: AreaFactory = (ctx) => {
  const area = nodeIsolationArea(1_000)(ctx);
  return {
    ...area,
    reconcile: async (input) => {
      if (holdIsolation && input.policy.metadata.name === "iso") {
        holdIsolation = false;
        isolationHeld++;
        await new Promise<void>((resolve) => (releaseIsolation = resolve));
        isolationHeld--;
      }
      return area.reconcile(input);
    },
  };
};

function policy(name: string, mode: "Enforce" | "Audit", team = name): string {
  return `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: ${name} }
spec:
  mode: ${mode}
  namespaces: { selector: { matchLabels: { ${LABEL}: ${team} } } }
  networkPolicies: { defaultDenyIngress: true, defaultDenyEgress: true, allowDNS: true, allowSameNamespace: true }
`;
}

describe("a full reconcile whose policy changes or goes mid-apply (real API server)", function () {
  this.timeout(120_000);
  /** Every child write the operator made, in order. */
  const writes: string[] = [];
  const hold = new HeldWrite();
  /** A hook before status writes: the next one `holdStatus` matches waits until `releaseStatus`. */
  let holdStatus: ((name: string) => boolean) | undefined;
  let releaseStatus = (): void => {};
  let statusHeld = 0;
  const statusResults: { name: string; uid?: string; written: boolean | void }[] = [];

  const suite = operatorSuite("outdated", {
    grantable: false,
    // One write at a time: holding one write holds the whole apply, so what follows is deterministic.
    options: { repairWorkers: 2, reports: false, maxConcurrentWrites: 1, areas: [heldIsolation] },
    setup: async (cp) => {
      const items = ["aud", "del", "rec", "iso"].flatMap((team) =>
        Array.from({ length: N }, (_, i) => ({
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name: `${team}-${i}`, labels: { [LABEL]: team } },
        })),
      );
      const r = await cp.kubectl(["create", "-f", "-"], {
        input: JSON.stringify({ apiVersion: "v1", kind: "List", items }),
      });
      expect(r.code, r.stderr).to.equal(0);
    },
    beforeStart: (operator) => {
      const a = operator.applier as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
      for (const m of ["apply", "create", "replaceOwned", "delete"] as const) {
        const orig = a[m]!.bind(operator.applier);
        a[m] = async (...args: unknown[]) => {
          const o = args[0] as KubernetesObject;
          const r = await orig(...args);
          if (o.metadata?.namespace) writes.push(`${m} ${o.kind}/${o.metadata.namespace}/${o.metadata.name}`);
          await hold.after(o);
          return r;
        };
      }
      const applier = operator.applier as unknown as {
        patchStatus: (n: string, s: ClusterSecurityPolicyStatus, uid?: string) => Promise<boolean>;
      };
      const patchStatus = applier.patchStatus.bind(operator.applier);
      applier.patchStatus = async (name, status, uid) => {
        if (holdStatus?.(name)) {
          holdStatus = undefined;
          statusHeld++;
          await new Promise<void>((resolve) => (releaseStatus = resolve));
          statusHeld--;
        }
        const written = await patchStatus(name, status, uid);
        statusResults.push({ name, ...(uid ? { uid } : {}), written });
        return written;
      };
    },
    cleanup: () => {
      holdIsolation = false;
      releaseIsolation();
      hold.release();
      holdStatus = undefined;
      releaseStatus();
    },
  });
  const ok = kubectlOk(() => suite.cp);
  const cached = (name: string): ClusterSecurityPolicy | undefined =>
    (
      suite.operator as unknown as { cache: { policy(n: string): ClusterSecurityPolicy | undefined } }
    ).cache.policy(name);
  const idle = () =>
    eventually(
      "both lanes idle",
      () => {
        const { controller, repairs } = suite.operator;
        return Promise.resolve(
          controller.queue.length === 0 &&
            controller.queue.inFlight === 0 &&
            repairs.queue.length === 0 &&
            repairs.queue.inFlight === 0,
        );
      },
      60_000,
    );
  const netpols = async (team: string): Promise<number> => {
    const list = JSON.parse(
      await ok([
        "get",
        "networkpolicy",
        "-A",
        "-l",
        "app.kubernetes.io/managed-by=csp-operator",
        "-o",
        "json",
      ]),
    ) as { items: KubernetesObject[] };
    return list.items.filter((o) => o.metadata?.namespace?.startsWith(`${team}-`)).length;
  };
  /** Holds the 6th write into the team's namespaces: the apply is under way, most of it still to come. */
  const holdMidApply = (team: string) => {
    let n = 0;
    hold.hold((o) => o.metadata?.namespace?.startsWith(`${team}-`) === true && ++n === 6);
  };

  it("a switch to Audit stops the remaining writes: no NetworkPolicy is created after it", async () => {
    holdMidApply("aud");
    await ok(["apply", "-f", "-"], policy("aud", "Enforce"));
    await eventually("a write held mid-apply", () => Promise.resolve(hold.held === 1), 30_000);
    await ok(["apply", "-f", "-"], policy("aud", "Audit"));
    await eventually(
      "the cache holds Audit",
      () => Promise.resolve(cached("aud")?.spec?.mode === "Audit"),
      10_000,
    );
    const before = writes.length;
    const created = await netpols("aud");
    hold.release();
    await idle();
    const after = writes.slice(before).filter((w) => w.includes(" NetworkPolicy/aud-"));
    expect(after, "child writes after the cache held Audit").to.deep.equal([]);
    expect(await netpols("aud"))
      .to.equal(created)
      .and.to.be.lessThan(N * 3);
    // The new generation's reconcile ran at once: Audit's status, not the stopped plan's.
    await eventually(
      "status of generation 2",
      () => Promise.resolve(cached("aud")?.status?.observedGeneration === 2),
      10_000,
    );
    const ready = cached("aud")?.status?.conditions?.find((c) => c.type === "Ready");
    expect(ready?.reason).to.equal("Evaluated");
  });

  it("a deletion stops the remaining writes, and the children go with the policy", async () => {
    holdMidApply("del");
    await ok(["apply", "-f", "-"], policy("del", "Enforce"));
    await eventually("a write held mid-apply", () => Promise.resolve(hold.held === 1), 30_000);
    await ok(["delete", "csp", "del", "--wait=false"]);
    await eventually("the cache holds no policy", () => Promise.resolve(cached("del") === undefined), 10_000);
    const before = writes.length;
    hold.release();
    await idle();
    // The default ServiceAccounts' automount field is given back (a release); no child is written.
    const after = writes
      .slice(before)
      .filter((w) => !w.startsWith("delete ") && w.includes(" NetworkPolicy/del-"));
    expect(after, "NetworkPolicy writes after the deletion").to.deep.equal([]);
    await eventually("no child left", async () => (await netpols("del")) === 0, 30_000);
  });

  it("a status computed for a deleted policy is not written to one re-created under its name", async () => {
    // Held before it is sent: the policy is deleted and re-created (selecting nothing) meanwhile.
    holdStatus = (name) => name === "rec";
    await ok(["apply", "-f", "-"], policy("rec", "Enforce"));
    await eventually("the first status write held", () => Promise.resolve(statusHeld === 1), 60_000);
    const oldUid = cached("rec")!.metadata.uid!;
    await ok(["delete", "csp", "rec", "--wait=false"]);
    await ok(["create", "-f", "-"], policy("rec", "Audit", "nobody"));
    await eventually(
      "the cache holds the new policy",
      () => Promise.resolve((cached("rec")?.metadata.uid ?? oldUid) !== oldUid),
      10_000,
    );
    const newUid = cached("rec")!.metadata.uid!;
    const from = statusResults.length;
    releaseStatus();
    await eventually(
      "the held status write answered",
      () => Promise.resolve(statusResults.length > from),
      10_000,
    );
    expect(statusResults[from]).to.deep.equal({ name: "rec", uid: oldUid, written: false });
    await eventually(
      "the new policy's own status",
      () => Promise.resolve(cached("rec")?.status?.observedGeneration === 1),
      30_000,
    );
    await idle();
    const status = JSON.parse(await ok(["get", "csp", "rec", "-o", "json"])) as ClusterSecurityPolicy;
    expect(status.metadata.uid).to.equal(newUid);
    expect(status.status?.summary?.namespaces).to.equal(0);
    expect(status.status?.childUIDs ?? []).to.deep.equal([]);
  });

  it("a switch to Audit while the areas run stops their writes, and its status is not written", async () => {
    holdIsolation = true;
    await ok(
      ["apply", "-f", "-"],
      `${policy("iso", "Enforce")}  nodeIsolation: { nodeSelector: { pool: secure } }\n`,
    );
    await eventually("node isolation held", () => Promise.resolve(isolationHeld === 1), 60_000);
    await ok(
      ["apply", "-f", "-"],
      `${policy("iso", "Audit")}  nodeIsolation: { nodeSelector: { pool: secure } }\n`,
    );
    await eventually(
      "the cache holds Audit",
      () => Promise.resolve(cached("iso")?.spec?.mode === "Audit"),
      10_000,
    );
    const from = (await suite.cp.auditEvents()).length;
    const statusFrom = statusResults.length;
    releaseIsolation();
    await eventually(
      "status of generation 2",
      () => Promise.resolve(cached("iso")?.status?.observedGeneration === 2),
      30_000,
    );
    await idle();
    const annotated = await operatorWritesSince(suite.cp, from, (uri) =>
      uri.startsWith("/api/v1/namespaces/iso-"),
    );
    expect(annotated, "namespace writes after the cache held Audit").to.deep.equal([]);
    // One status write since: generation 2's (Audit); none for the stopped generation 1.
    expect(statusResults.slice(statusFrom).filter((r) => r.name === "iso")).to.have.length(1);
  });
});
