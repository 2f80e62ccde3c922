import { expect } from "chai";
import { KubeConfig } from "@kubernetes/client-node";
import { Agent, SYNC_STUCK_MS, writeError } from "../../../src/agent/agent.js";
import { silentLogger } from "../../../src/observability/logger.js";

describe("agent: write errors and readiness", () => {
  it("a write error names the target path and the errno, never the temp file", () => {
    const target = "/host/etc/kubernetes/csp-operator/audit-policy.yaml";
    const errno = (code: string, message: string) => Object.assign(new Error(message), { code });
    expect(
      writeError(
        target,
        errno(
          "EROFS",
          "EROFS: read-only file system, open '/host/etc/kubernetes/csp-operator/.audit-policy.yaml.0a1b.tmp'",
        ),
      ),
    ).to.equal(`cannot write ${target}: EROFS (read-only file system)`);
    expect(writeError(target, errno("ENOSPC", "ENOSPC: no space left on device, write"))).to.equal(
      `cannot write ${target}: ENOSPC (no space left on device)`,
    );
    expect(
      writeError(
        target,
        errno("EXDEV", "EXDEV: cross-device link not permitted, rename '/a/.x.tmp' -> '/b/x'"),
      ),
    ).to.equal(`cannot write ${target}: EXDEV (cross-device link not permitted)`);
    expect(writeError(target, new Error("boom"))).to.equal(`cannot write ${target}: boom`);
  });

  it("is not ready before its watches synced and its first sync completed", () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: "https://127.0.0.1:1" }],
      users: [{ name: "u" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const a = new Agent(kc, { node: "n", auditPolicyPath: "/tmp/x.yaml" }, silentLogger());
    expect(a.notReadyReason()).to.equal("the watches of csp-system have not synced yet");
  });

  it("is not live while one sync has been running for more than SYNC_STUCK_MS (10 min)", () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: "https://127.0.0.1:1" }],
      users: [{ name: "u" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    const a = new Agent(kc, { node: "n" }, silentLogger());
    expect(a.syncRunningFor()).to.equal(undefined);
    expect(a.stuckReason()).to.equal(undefined);
    // A sync started at t0 (what syncOnce records) and never finished.
    const t0 = Date.now();
    (a as unknown as { syncStartedAt: number }).syncStartedAt = t0;
    expect(a.syncRunningFor(t0 + 5000)).to.equal(5000);
    expect(a.stuckReason(t0 + SYNC_STUCK_MS)).to.equal(undefined);
    expect(a.stuckReason(t0 + SYNC_STUCK_MS + 1000)).to.equal(
      "a sync has been running for 601 s (limit 600 s)",
    );
  });
});
