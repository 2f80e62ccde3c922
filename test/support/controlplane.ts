import {
  startControlPlane,
  type ControlPlane,
  type ControlPlaneOptions,
} from "../../controlplane/harness.js";

/**
 * Gives the current describe block its own real control plane: started in `before` (up to 120 s, enough for a
 * first-time binary check plus start-up), stopped in `after`. Returns a getter because the control plane only
 * exists once `before` has run. When a test fails, the component log paths are printed so the failure can be
 * diagnosed (run with CSP_KEEP_STATE=1 to keep them after the run).
 */
export function useControlPlane(opts?: ControlPlaneOptions): () => ControlPlane {
  let cp: ControlPlane | undefined;

  before(async function () {
    this.timeout(120_000);
    cp = await startControlPlane(opts);
  });

  afterEach(function () {
    if (cp && this.currentTest?.state === "failed") process.stderr.write(`${cp.logs()}\n`);
  });

  after(async function () {
    this.timeout(30_000);
    await cp?.stop();
    cp = undefined;
  });

  return () => {
    if (!cp) throw new Error("useControlPlane(): the control plane is only available inside hooks and tests");
    return cp;
  };
}
