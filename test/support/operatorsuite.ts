import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { Operator } from "../../src/controller/manager.js";
import { createLogger, silentLogger } from "../../src/observability/logger.js";
import { installCrd } from "./crd.js";
import { installGrantableRole } from "./grantable.js";

/** What a suite run by operatorSuite() reads: valid from its `before` hook on. */
export interface OperatorSuite {
  readonly cp: ControlPlane;
  readonly operator: Operator;
}

/**
 * Registers the mocha hooks of a suite that runs the operator in process on a local control plane of its
 * own: the control plane, the CRD and csp-operator-grantable, `setup` (objects that must exist before the
 * operator starts), then the operator (2 workers, no resync within a test); stopped after the suite; the
 * control plane's logs printed for a failed test. `DBG=1` logs the operator at debug level.
 */
export function operatorSuite(name: string, setup?: (cp: ControlPlane) => Promise<void>): OperatorSuite {
  let cp: ControlPlane | undefined;
  let operator: Operator | undefined;
  before(async function () {
    this.timeout(180_000);
    cp = await startControlPlane({ name });
    await installCrd(cp);
    await installGrantableRole(cp);
    await setup?.(cp);
    operator = new Operator(
      loadKubeConfig(cp.kubeconfigPath),
      { workers: 2, resyncMs: 600_000 },
      process.env["DBG"] ? createLogger("debug") : silentLogger(),
    );
    await operator.start();
  });
  after(async () => {
    await operator?.stop();
    await cp?.stop();
  });
  afterEach(function () {
    if (this.currentTest?.state === "failed" && cp) console.error(`control plane logs:\n${cp.logs()}`);
  });
  const started = <T>(what: string, v: T | undefined): T => {
    if (v === undefined) throw new Error(`${what} is not started: read it from a test or hook, not at load`);
    return v;
  };
  return {
    get cp() {
      return started("the control plane", cp);
    },
    get operator() {
      return started("the operator", operator);
    },
  };
}
