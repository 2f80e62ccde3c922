import type { ControlPlane } from "../../controlplane/harness.js";
import { eventually } from "./eventually.js";
import { kubectlOk } from "./kubectl.js";

/**
 * Installs the ClusterRole that bounds what generated Roles may grant (config/rbac), and waits until the
 * aggregation controller has filled it: without it every `spec.rbac.roles` entry is RoleNotGrantable, even
 * for an operator running on an admin token.
 */
export async function installGrantableRole(cp: ControlPlane): Promise<void> {
  const ok = kubectlOk(() => cp);
  await ok(["apply", "-f", "config/rbac/grantable_cluster_role.yaml"]);
  await eventually("grantable role aggregated", async () =>
    (
      await ok(["get", "clusterrole", "csp-operator-grantable", "-o", "jsonpath={.rules[*].resources}"])
    ).includes("pods"),
  );
}
