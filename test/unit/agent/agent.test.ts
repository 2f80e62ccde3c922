import { expect } from "chai";
import { KubeConfig } from "@kubernetes/client-node";
import { Agent, writeError } from "../../../src/agent/agent.js";
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
});
