/**
 * Fault suite: the API server answering 429. A FlowSchema (flowcontrol.apiserver.k8s.io/v1) puts the operator's
 * ServiceAccount, and a noisy neighbour ServiceAccount the test drives, in one PriorityLevelConfiguration of
 * one nominal share that rejects (no queues) what does not fit: the operator runs as a process on a token of the
 * csp-operator ServiceAccount (config/rbac as installed) and keeps getting 429 answers. It must keep converging
 * (slower), not storm the server with retries (its requests and 429s counted from the audit log), not crash,
 * and be back to normal at once when the throttle is removed.
 */
import { expect } from "chai";
import { Agent as HttpsAgent, request } from "node:https";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { installCrd } from "../support/crd.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import {
  OPERATOR_SA,
  OperatorProcess,
  auditCode as code,
  auditOf,
  checkerMatches,
  measure,
  recordClusterTexts,
  recordKubeconfigSecrets,
} from "./support.js";
import { printLogIfFailed } from "../support/operatorprocess.js";

const THROTTLE = "csp-faults-throttle";

const priorityLevel = {
  apiVersion: "flowcontrol.apiserver.k8s.io/v1",
  kind: "PriorityLevelConfiguration",
  metadata: { name: THROTTLE },
  spec: {
    type: "Limited",
    limited: {
      nominalConcurrencyShares: 1,
      lendablePercent: 0,
      borrowingLimitPercent: 0,
      limitResponse: { type: "Reject" },
    },
  },
};

const flowSchema = {
  apiVersion: "flowcontrol.apiserver.k8s.io/v1",
  kind: "FlowSchema",
  metadata: { name: THROTTLE },
  spec: {
    priorityLevelConfiguration: { name: THROTTLE },
    matchingPrecedence: 500,
    distinguisherMethod: { type: "ByUser" },
    rules: [
      {
        subjects: [
          { kind: "ServiceAccount", serviceAccount: { namespace: "csp-system", name: "csp-operator" } },
          { kind: "ServiceAccount", serviceAccount: { namespace: "hog", name: "hog" } },
        ],
        resourceRules: [
          {
            verbs: ["*"],
            apiGroups: ["*"],
            resources: ["*"],
            clusterScope: true,
            namespaces: ["*"],
          },
        ],
        nonResourceRules: [{ verbs: ["*"], nonResourceURLs: ["*"] }],
      },
    ],
  },
};

/** `workers` loops of LIST configmaps (all namespaces) as `kubeconfig`'s user until stopped; counts answers. */
function noisyNeighbour(kubeconfig: string, workers: number) {
  const kc = loadKubeConfig(kubeconfig);
  const cluster = kc.getCurrentCluster()!;
  const url = new URL("/api/v1/configmaps", cluster.server);
  const ca = cluster.caData ? Buffer.from(cluster.caData, "base64") : undefined;
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: workers, ...(ca ? { ca } : {}) });
  const token = kc.getCurrentUser()!.token!;
  const codes = new Map<number, number>();
  let stopped = false;
  const once = () =>
    new Promise<void>((resolve) => {
      const req = request(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on("end", () => {
          codes.set(res.statusCode ?? 0, (codes.get(res.statusCode ?? 0) ?? 0) + 1);
          resolve();
        });
      });
      req.on("error", () => resolve());
      req.end();
    });
  const loops = Array.from({ length: workers }, async () => {
    while (!stopped) await once();
  });
  return {
    codes,
    async stop() {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

describe("faults: API Priority and Fairness throttles the operator (429)", function () {
  this.timeout(300_000);
  let cp: ControlPlane;
  let operator: OperatorProcess;
  let hog: ReturnType<typeof noisyNeighbour> | undefined;
  const ok = kubectlOk(() => cp);
  const matches = async (timeoutMs = 180_000) => (await checkerMatches(cp, { timeoutMs })).ms;

  before(async function () {
    cp = await startControlPlane({ name: "faults-apf" });
    recordKubeconfigSecrets(cp.kubeconfigPath);
    await installCrd(cp);
    await ok(["create", "namespace", "csp-system"]);
    await ok(["apply", "-k", "config/rbac"]);
    for (const ns of ["team-a", "team-b"]) {
      await ok(["create", "namespace", ns]);
      await ok(["label", "namespace", ns, "csp.example.com/tier=web"]);
    }
    await ok(["create", "namespace", "hog"]);
    await ok(["create", "serviceaccount", "hog", "-n", "hog"]);
    await ok(["create", "clusterrolebinding", "hog-view", "--clusterrole=view", "--serviceaccount=hog:hog"]);
    const kubeconfig = await cp.serviceAccountKubeconfig("csp-system", "csp-operator");
    recordKubeconfigSecrets(kubeconfig);
    operator = new OperatorProcess(kubeconfig);
    await ok(["apply", "-f", "samples/baseline.yaml"]);
    await ok(["wait", "--for=condition=Ready", "csp/baseline", "--timeout=90s"]);
    await matches();
  });

  afterEach(function () {
    printLogIfFailed(this.currentTest, operator);
  });

  after(async () => {
    await hog?.stop();
    try {
      if (cp) await recordClusterTexts(cp);
    } finally {
      await operator?.stop();
      await cp?.stop();
    }
  });

  // Was a DEFECT (no 429 retry anywhere: one throttled status patch failed the whole reconcile, whose backoff
  // grew to 60 s, and 4 NetworkPolicies stayed missing for 150-240 s). Now every request retries its 429s.
  it("throttled: keeps converging without a retry storm; throttle removed: back to normal at once", async () => {
    const pid = operator.pid;
    await ok(
      ["apply", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "List", items: [priorityLevel, flowSchema] }),
    );
    const hogKubeconfig = await cp.serviceAccountKubeconfig("hog", "hog");
    recordKubeconfigSecrets(hogKubeconfig);
    hog = noisyNeighbour(hogKubeconfig, 4);
    // The throttle is in force once the neighbour's requests are rejected.
    await eventually(
      "the neighbour to get 429 answers",
      () => Promise.resolve((hog!.codes.get(429) ?? 0) > 0),
      60_000,
    );

    // Work while throttled: six new namespaces to converge and a child deleted.
    const throttledAt = Date.now();
    const namespaces = ["apf-1", "apf-2", "apf-3", "apf-4", "apf-5", "apf-6"];
    for (const ns of namespaces) await ok(["create", "namespace", ns]);
    await ok(["label", "namespace", ...namespaces, "csp.example.com/tier=web"]);
    await ok(["delete", "networkpolicy", "csp-baseline-default-deny", "-n", "team-a"]);
    const convergedMs = await matches(150_000);
    // Stay throttled a while longer: an idle operator must not keep hammering the server either.
    await new Promise((r) => setTimeout(r, Math.max(0, throttledAt + 60_000 - Date.now())));
    const throttledEvents = await auditOf(cp, OPERATOR_SA, throttledAt);
    const throttledFor = (Date.now() - throttledAt) / 1000;
    const rejected = throttledEvents.filter((e) => code(e) === 429).length;
    expect(operator.exit, operator.log.slice(-2000)).to.equal(undefined);
    measure(
      "APF: operator throttled (429), 6 namespaces + 1 child deleted",
      convergedMs,
      throttledEvents.length,
      `${rejected} answered 429 over ${throttledFor.toFixed(0)} s throttled; neighbour ${JSON.stringify(Object.fromEntries(hog.codes))}`,
    );
    expect(rejected, "the operator was actually throttled").to.be.greaterThan(0);
    // No retry storm: well under one request per second on average while throttled.
    expect(throttledEvents.length / throttledFor).to.be.lessThan(5);

    // Throttle removed: drift made at once is repaired as quickly as on an unthrottled server.
    await hog.stop();
    hog = undefined;
    await ok(["delete", "flowschema,prioritylevelconfiguration", THROTTLE]);
    const removedAt = Date.now();
    await ok(["delete", "networkpolicy", "csp-baseline-allow-dns", "-n", "team-b"]);
    const recoveredMs = await matches(120_000);
    const after = await auditOf(cp, OPERATOR_SA, removedAt);
    measure(
      "APF: throttle removed, 1 child deleted",
      recoveredMs,
      after.length,
      `${after.filter((e) => code(e) === 429).length} answered 429 after removal`,
    );
    expect(recoveredMs).to.be.lessThan(30_000);
    expect(operator.pid).to.equal(pid);
    expect(operator.exit).to.equal(undefined);
    expect(operator.log).to.not.match(/unhandled/i);
  });
});
