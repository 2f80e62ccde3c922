import { expect } from "chai";
import type { ControlPlane } from "../../controlplane/harness.js";

/**
 * `ok(args, stdin?)`: runs the control plane's kubectl as a user would and fails the test, with kubectl's
 * stderr, unless it exits 0; returns stdout. `cp` is a getter because a `useControlPlane` control plane
 * only exists once its `before` hook has run.
 */
export function kubectlOk(cp: () => ControlPlane): (args: string[], input?: string) => Promise<string> {
  return async (args, input) => {
    const r = await cp().kubectl(args, input === undefined ? {} : { input });
    expect(r.code, `kubectl ${args.join(" ")}: ${r.stderr}`).to.equal(0);
    return r.stdout;
  };
}
