/**
 * `npm run demo`: a local control plane, the operator running against it, the baseline sample applied,
 * one drift corrected in front of you — then it keeps running until Ctrl-C so you can try things.
 */
import { spawn } from "node:child_process";
import { startControlPlane } from "../controlplane/harness.js";

const say = (s: string) => process.stderr.write(`\n\x1b[1m==> ${s}\x1b[0m\n`);

async function main(): Promise<void> {
  say("starting a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager v1.36.3)");
  const cp = await startControlPlane({ name: "demo" });
  const kubectl = async (...args: string[]) => {
    const r = await cp.kubectl(args);
    process.stdout.write(r.stdout);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${r.stderr}`);
    return r.stdout;
  };
  const operator = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "run", "--resync=60"], {
    env: { ...process.env, KUBECONFIG: cp.kubeconfigPath, LOG_LEVEL: process.env["LOG_LEVEL"] ?? "warn" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say("stopping the operator and the control plane");
    operator.kill("SIGTERM");
    await new Promise((r) => (operator.exitCode === null ? operator.once("exit", r) : r(null)));
    await cp.stop();
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  operator.on("exit", (code) => {
    if (!stopping) {
      process.stderr.write(`operator exited unexpectedly (${code})\n`);
      void stop(1);
    }
  });
  try {
    say("installing the ClusterSecurityPolicy CRD");
    await kubectl("apply", "-f", "crds/security.csp-operator.io_clustersecuritypolicies.yaml");
    await kubectl(
      "wait",
      "--for=condition=Established",
      "crd/clustersecuritypolicies.security.csp-operator.io",
    );
    say("creating namespaces shop (selected) and sandbox (not selected)");
    await kubectl("create", "namespace", "shop");
    await kubectl("label", "namespace", "shop", "csp.example.com/tier=web");
    await kubectl("create", "namespace", "sandbox");
    say("kubectl apply -f samples/baseline.yaml");
    await kubectl("apply", "-f", "samples/baseline.yaml");
    await kubectl("wait", "--for=condition=Ready", "csp/baseline", "--timeout=60s");
    say("kubectl get csp");
    await kubectl("get", "csp");
    say("what the operator created or set in namespace shop");
    await kubectl("get", "networkpolicies", "-n", "shop", "-L", "security.csp-operator.io/policy");
    await kubectl("get", "namespace", "shop", "--show-labels");
    await kubectl(
      "get",
      "serviceaccount",
      "default",
      "-n",
      "shop",
      "-o",
      'jsonpath={.metadata.name}: automountServiceAccountToken={.automountServiceAccountToken}{"\\n"}',
    );
    say("drift: deleting NetworkPolicy csp-baseline-default-deny by hand");
    await kubectl("delete", "networkpolicy", "csp-baseline-default-deny", "-n", "shop");
    await kubectl(
      "wait",
      "--for=create",
      "networkpolicy/csp-baseline-default-deny",
      "-n",
      "shop",
      "--timeout=30s",
    );
    say("it is back; the policy's status and events say so");
    await kubectl(
      "get",
      "csp",
      "baseline",
      "-o",
      'jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}) {.message}{"\\n"}{end}',
    );
    await kubectl("get", "events", "-n", "default", "--field-selector", "involvedObject.name=baseline");
    say("the operator keeps running. In another terminal:");
    process.stdout.write(`export KUBECONFIG=${cp.kubeconfigPath}\n`);
    process.stderr.write(
      `  then try: ${cp.kubectlPath} get csp -o wide; label a namespace csp.example.com/tier=db; ...\nPress Ctrl-C to stop everything.\n`,
    );
  } catch (err) {
    process.stderr.write(
      `demo failed: ${err instanceof Error ? err.message : String(err)}\ncomponent logs: ${cp.logs()}\n`,
    );
    await stop(1);
  }
}

await main();
