// `npm run cluster`: a throwaway local control plane in the foreground, for trying the operator by hand.
//
//   eval "$(npm run --silent cluster)" does not work (it never returns); instead, in one terminal:
//     npm run cluster            # prints: export KUBECONFIG=/tmp/csp-cp-cluster-XXXX/admin.kubeconfig
//   and paste that line into another. Ctrl-C stops everything and removes the state (CSP_KEEP_STATE=1 keeps it).
//
// stdout carries exactly that one line so scripts can read it; everything else goes to stderr.
import { startControlPlane, type ControlPlane } from "./harness.js";

let cp: ControlPlane | undefined;
let stopping = false;

function onSignal(signal: NodeJS.Signals): void {
  if (stopping) return;
  stopping = true;
  // Registered before the harness installs its own handlers, so the harness leaves exiting to us.
  if (cp === undefined) process.exit(0); // still starting: the harness's exit hook kills what was started
  process.stderr.write(`[cluster] ${signal}: stopping the control plane\n`);
  cp.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`[cluster] stop failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

try {
  cp = await startControlPlane({ name: "cluster" });
} catch (err) {
  process.stderr.write(`[cluster] ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

process.stdout.write(`export KUBECONFIG=${cp.kubeconfigPath}\n`);
process.stderr.write(
  [
    `[cluster] API server ${cp.server}; kubectl ${cp.kubectlPath} (the one built with it)`,
    `[cluster] logs:\n${cp.logs()}`,
    "[cluster] Ctrl-C to stop",
    "",
  ].join("\n"),
);
// The component child processes keep the event loop (and so this process) alive until a signal arrives.
