/**
 * `npm run cluster`: a local control plane in the foreground. Prints one line, `export KUBECONFIG=...`,
 * on stdout; Ctrl-C (or SIGTERM) stops it and removes its state.
 */
import { LocalPlane } from "./localplane.js";

const cp = await LocalPlane.start({ name: "cluster" });
process.stderr.write(`control plane ready at ${cp.server} (kubectl: ${cp.kubectlPath})\n`);
process.stdout.write(`export KUBECONFIG=${cp.kubeconfigPath}\n`);
const stop = () => {
  cp.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
setInterval(() => undefined, 1 << 30);
