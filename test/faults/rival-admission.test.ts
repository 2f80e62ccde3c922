/**
 * Fault suite: a rival writer that keeps reverting a managed object (writes bounded, drift names the rival
 * manager, recovery once it stops), and a ValidatingAdmissionPolicy that denies NetworkPolicies in one
 * namespace (the others converge, the failure is reported for that namespace, request count bounded). Request
 * counts come from the API server's audit log.
 */
import { expect } from "chai";
import { request as httpsRequest } from "node:https";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { check } from "../support/checker.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import {
  ADMIN,
  OperatorProcess,
  auditOf,
  measure,
  recordClusterTexts,
  recordKubeconfigSecrets,
} from "./support.js";
import { freezeNetworkPoliciesManifest, printLogIfFailed } from "../support/operatorprocess.js";

interface DriftEntry {
  kind: string;
  namespace?: string;
  name: string;
  reason: string;
  manager?: string;
  fields?: string[];
}
interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

const RIVAL_UA = "rival-controller/1.0";
const RIVAL_OR_KUBECTL = /^(kubectl|rival-controller\/1\.0$)/;

describe("faults: a rival writer and an admission denial (operator as a process)", function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let operator: OperatorProcess;
  const ok = kubectlOk(() => cp);

  const status = async (name: string) =>
    (
      JSON.parse(await ok(["get", "csp", name, "-o", "json"])) as {
        status?: { conditions?: Condition[]; drift?: DriftEntry[] };
      }
    ).status ?? {};
  /** Operator requests (admin user, not kubectl, not the rival) matching the filter, from the audit log. */
  const operatorRequests = async (since: number, match: (e: Record<string, unknown>) => boolean) =>
    (await auditOf(cp, ADMIN, since, { excludeUserAgents: RIVAL_OR_KUBECTL })).filter(match);
  const ref = (e: Record<string, unknown>) =>
    (e["objectRef"] as { resource?: string; namespace?: string; name?: string } | undefined) ?? {};
  const isWrite = (e: Record<string, unknown>) =>
    ["create", "update", "patch", "delete"].includes(String(e["verb"]));

  /** A server-side apply by another controller (its own field manager, forcing), with the admin's client cert. */
  const rivalApply = (namespace: string, name: string, body: object): Promise<number> => {
    const kc = cp.kubeConfig();
    const cluster = kc.getCurrentCluster()!;
    const user = kc.getCurrentUser()!;
    const url = new URL(
      `/apis/networking.k8s.io/v1/namespaces/${namespace}/networkpolicies/${name}?fieldManager=rival&force=true`,
      cluster.server,
    );
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        url,
        {
          method: "PATCH",
          ca: Buffer.from(cluster.caData!, "base64"),
          cert: Buffer.from(user.certData!, "base64"),
          key: Buffer.from(user.keyData!, "base64"),
          headers: { "content-type": "application/apply-patch+yaml", "user-agent": RIVAL_UA },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  };

  before(async function () {
    cp = await startControlPlane({ name: "faults-rival" });
    recordKubeconfigSecrets(cp.kubeconfigPath);
    await installCrd(cp);
    for (const ns of ["team-a", "team-b"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    }
    operator = new OperatorProcess(cp.kubeconfigPath);
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=90s"]);
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

  describe("a rival writer reverting csp-baseline-default-deny 4 times a second for 60 s", () => {
    let rivalWrites = 0;
    let operatorWrites: Record<string, unknown>[] = [];
    let sawRivalInStatus: DriftEntry | undefined;
    let rivalStoppedAt = 0;

    before(async function () {
      const since = Date.now();
      const end = since + 60_000;
      const body = {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "csp-baseline-default-deny", namespace: "team-a" },
        spec: { podSelector: {}, policyTypes: ["Ingress"] },
      };
      const watcher = (async () => {
        while (Date.now() < end) {
          const drift = (await status("baseline")).drift ?? [];
          sawRivalInStatus ??= drift.find((d) => d.manager === "rival");
          const events = await ok([
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=baseline",
            "-o",
            "json",
          ]);
          if (!sawRivalInStatus && /\brival\b/.test(events))
            sawRivalInStatus = { kind: "Event", namespace: "team-a", name: "baseline", reason: "event" };
          await new Promise((r) => setTimeout(r, 1000));
        }
      })();
      while (Date.now() < end) {
        const code = await rivalApply("team-a", "csp-baseline-default-deny", body);
        if (code === 200 || code === 201) rivalWrites++;
        await new Promise((r) => setTimeout(r, 250));
      }
      rivalStoppedAt = Date.now();
      await watcher;
      operatorWrites = await operatorRequests(
        since,
        (e) =>
          isWrite(e) && ref(e).resource === "networkpolicies" && ref(e).name === "csp-baseline-default-deny",
      );
    });

    // Corrections that keep being reverted become `Contested` drift naming the other field manager
    // (src/controller/corrections.ts), and the DriftCorrected / DriftContested Events name it too.
    it("the drift reason names the rival's field manager", () => {
      expect(sawRivalInStatus, "a drift entry naming manager 'rival' while the rival wrote").to.not.equal(
        undefined,
      );
      expect(sawRivalInStatus!.namespace).to.equal("team-a");
    });

    it("recovers once the rival stops: the checker matches, Compliant again", async () => {
      await eventually(
        "the checker to match",
        async () => {
          const r = await check(cp);
          if (!r.matches) throw new Error(r.differences.join("; "));
          return true;
        },
        120_000,
      );
      const ms = Date.now() - rivalStoppedAt;
      measure(
        "rival writer stopped",
        ms,
        operatorWrites.length,
        `operator writes to the object during 60 s of ${rivalWrites} rival writes`,
      );
      await ok(["wait", "--for=condition=Compliant", "csp/baseline", "--timeout=90s"]);
      expect(operator.exit).to.equal(undefined);
    });

    // Per object: a burst of 5 corrections, then holds doubling from 5 s to 30 s (at most ~9 corrections in
    // the first minute, each an apply plus possibly a replace of fields another manager added).
    it("writes to the contested object stay bounded: at most 30 in a minute", () => {
      expect(rivalWrites).to.be.greaterThan(100);
      expect(operatorWrites.length).to.be.at.most(30);
    });
  });

  describe("a ValidatingAdmissionPolicy denying NetworkPolicies in one namespace", () => {
    before(async () => {
      await ok(["apply", "-f", "-"], freezeNetworkPoliciesManifest("frozen"));
      for (const ns of ["open-1", "open-2", "frozen"]) {
        await ok(["create", "namespace", ns]);
        await ok(["label", "namespace", ns, "zone=edge"]);
      }
      await eventually("the admission policy in force", async () => {
        const r = await cp.kubectl(["create", "-n", "frozen", "-f", "-", "--dry-run=server"], {
          input:
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: { name: probe }\nspec: { podSelector: {} }\n",
        });
        return r.code !== 0 && /frozen in this namespace/.test(r.stderr);
      });
    });

    it("the other namespaces converge, the denial is reported for that namespace, requests bounded", async () => {
      const since = Date.now();
      await ok(
        ["apply", "-f", "-"],
        `apiVersion: security.csp-operator.io/v1alpha1
kind: ClusterSecurityPolicy
metadata: { name: edge }
spec:
  namespaces: { selector: { matchLabels: { zone: edge } } }
`,
      );
      await eventually(
        "every namespace but frozen converged",
        async () => {
          const r = await check(cp);
          const rest = r.differences.filter((d) => !d.includes(" frozen/") && !d.includes(" frozen:"));
          if (rest.length) throw new Error(rest.join("; "));
          return true;
        },
        60_000,
      );
      const converged = Date.now() - since;
      const reported = await eventually(
        "the failure reported, naming the namespace",
        async () => {
          const s = await status("edge");
          const text = JSON.stringify(s);
          return /frozen/.test(text) && /frozen in this namespace|denied|Forbidden|Invalid/i.test(text)
            ? s
            : undefined;
        },
        60_000,
      );
      const ready = reported.conditions?.find((c) => c.type === "Ready");
      // Watch the retries for a minute from the policy's creation.
      await new Promise((r) => setTimeout(r, Math.max(0, since + 60_000 - Date.now())));
      const denied = await operatorRequests(
        since,
        (e) => isWrite(e) && ref(e).resource === "networkpolicies" && ref(e).namespace === "frozen",
      );
      measure(
        "admission denial in one namespace",
        converged,
        denied.length,
        `others converged; denied writes in 60 s; Ready=${ready?.status}/${ready?.reason}: ${ready?.message?.slice(0, 200)}`,
      );
      expect(denied.length, "writes into the frozen namespace in the first minute").to.be.at.most(40);
      expect(denied.length).to.be.greaterThan(0);
      expect(ready?.status).to.not.equal("True");
      expect(operator.exit).to.equal(undefined);
    });
  });
});
