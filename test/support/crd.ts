import type { ControlPlane } from "../../controlplane/harness.js";
import { eventually } from "./eventually.js";

export const CRD_FILE = "crds/security.csp-operator.io_clustersecuritypolicies.yaml";

/**
 * Installs the ClusterSecurityPolicy CRD the way a user does (`kubectl apply`) and waits until it is
 * Established. `kubectl wait` fails outright while the CRD has no conditions yet, hence the retry.
 */
export async function installCrd(cp: ControlPlane): Promise<void> {
  const applied = await cp.kubectl(["apply", "-f", CRD_FILE]);
  if (applied.code !== 0) throw new Error(`kubectl apply -f ${CRD_FILE}: ${applied.stderr}`);
  await eventually(
    "the CRD to be Established",
    async () =>
      (
        await cp.kubectl([
          "wait",
          "--for=condition=Established",
          "crd/clustersecuritypolicies.security.csp-operator.io",
          "--timeout=10s",
        ])
      ).code === 0,
  );
}
