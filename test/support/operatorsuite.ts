import type { KubernetesObject } from "@kubernetes/client-node";
import { startControlPlane, type ControlPlane } from "../../controlplane/harness.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { Operator, type OperatorOptions } from "../../src/controller/manager.js";
import { createLogger, silentLogger } from "../../src/observability/logger.js";
import { installCrd } from "./crd.js";
import { installGrantableRole } from "./grantable.js";

/** What a suite run by operatorSuite() reads: valid from its `before` hook on. */
export interface OperatorSuite {
  readonly cp: ControlPlane;
  readonly operator: Operator;
}

/** How operatorSuite() prepares the cluster and the operator. */
export interface OperatorSuiteOptions {
  /** Objects that must exist before the operator starts. */
  setup?: (cp: ControlPlane) => Promise<void>;
  /** Operator options over the suite's defaults (2 workers, no resync within a test). */
  options?: Partial<OperatorOptions>;
  /** Installs csp-operator-grantable (default true). */
  grantable?: boolean;
  /** Called with the operator before it starts (test hooks on its writer). */
  beforeStart?: (operator: Operator) => void;
  /** Called after every test and before the operator stops (release what a test held). */
  cleanup?: () => void;
}

/**
 * Registers the mocha hooks of a suite that runs the operator in process on a local control plane of its
 * own: the control plane, the CRD and csp-operator-grantable, `setup`, then the operator; stopped after the
 * suite; the control plane's logs printed for a failed test. `DBG=1` logs the operator at debug level.
 */
export function operatorSuite(name: string, o: OperatorSuiteOptions = {}): OperatorSuite {
  let cp: ControlPlane | undefined;
  let operator: Operator | undefined;
  before(async function () {
    this.timeout(180_000);
    cp = await startControlPlane({ name });
    await installCrd(cp);
    if (o.grantable !== false) await installGrantableRole(cp);
    await o.setup?.(cp);
    operator = new Operator(
      loadKubeConfig(cp.kubeconfigPath),
      { workers: 2, resyncMs: 600_000, ...o.options },
      process.env["DBG"] ? createLogger("debug") : silentLogger(),
    );
    o.beforeStart?.(operator);
    await operator.start();
  });
  after(async () => {
    o.cleanup?.();
    await operator?.stop();
    await cp?.stop();
  });
  afterEach(function () {
    o.cleanup?.();
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

/**
 * A test hook on the operator's writer: the continuation of the next write `hold` matches, after the API
 * server answered it, waits until `release` (the write's claim stays held meanwhile).
 */
export class HeldWrite {
  /** Writes waiting now. */
  held = 0;
  private match: (o: KubernetesObject) => boolean = () => false;
  private resume = (): void => {};

  hold(match: (o: KubernetesObject) => boolean): void {
    this.match = match;
  }

  /** Lets the waiting write go on, and holds nothing more. */
  release(): void {
    this.match = () => false;
    this.resume();
  }

  /** Called by the wrapped writer once the API server answered `o`. */
  async after(o: KubernetesObject): Promise<void> {
    if (!this.match(o)) return;
    this.match = () => false;
    this.held++;
    await new Promise<void>((resolve) => (this.resume = resolve));
    this.held--;
  }
}

/**
 * The writes an in-process operator made since audit event `from` to URIs `match` accepts, as `verb URI`:
 * the admin user's, minus the controller manager and kubectl that share it.
 */
export async function operatorWritesSince(
  cp: ControlPlane,
  from: number,
  match: (uri: string) => boolean,
): Promise<string[]> {
  return (await cp.auditEvents())
    .slice(from)
    .filter(
      (e) =>
        ["create", "update", "patch", "delete"].includes(String(e["verb"])) &&
        e["stage"] === "ResponseComplete" &&
        (e["user"] as { username?: string }).username === "csp-admin" &&
        !String(e["userAgent"]).startsWith("kube-controller-manager") &&
        !String(e["userAgent"]).startsWith("kubectl") &&
        match(String(e["requestURI"])),
    )
    .map((e) => `${String(e["verb"])} ${String(e["requestURI"])}`);
}
