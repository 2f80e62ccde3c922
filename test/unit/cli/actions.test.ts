import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kubeConfig } from "../../../src/cli/actions.js";
import { UsageError } from "../../../src/cli/program.js";
import { loadKubeConfig } from "../../../src/cluster/client.js";

describe("cli/actions: the kubeconfig", () => {
  let dir: string;
  let saved: string | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "csp-kc-"));
    saved = process.env["KUBECONFIG"];
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    if (saved === undefined) delete process.env["KUBECONFIG"];
    else process.env["KUBECONFIG"] = saved;
  });

  function failure(flag: string | undefined): UsageError {
    try {
      kubeConfig(loadKubeConfig, flag);
    } catch (e) {
      expect(e).to.be.instanceOf(UsageError);
      return e as UsageError;
    }
    throw new Error("expected a UsageError");
  }

  it("a missing --kubeconfig file is a usage error naming the flag and the file", () => {
    const e = failure(join(dir, "nope"));
    expect(e.message).to.equal(
      `cannot load --kubeconfig ${join(dir, "nope")}: ENOENT: no such file or directory, open '${join(dir, "nope")}'`,
    );
  });

  it("a malformed file named by $KUBECONFIG names the variable and never echoes the content", () => {
    const file = join(dir, "kc");
    writeFileSync(file, "users:\n- user:\n    token: sk-SECRET-TOKEN-123\n  bad: [\n");
    process.env["KUBECONFIG"] = `${file}:${join(dir, "second")}`;
    const e = failure(undefined);
    expect(e.message).to.match(new RegExp(`^cannot load \\$KUBECONFIG ${file}: `));
    expect(e.message).to.not.contain("SECRET");
    expect(e.message.split("\n")).to.have.length(1);
  });

  it("loads a valid file, the flag winning over $KUBECONFIG", () => {
    const file = join(dir, "kc");
    writeFileSync(
      file,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443'}}]",
        "users: [{name: u, user: {token: t}}]",
        "contexts: [{name: x, context: {cluster: c, user: u}}]",
        "current-context: x",
      ].join("\n"),
    );
    process.env["KUBECONFIG"] = join(dir, "missing");
    expect(kubeConfig(loadKubeConfig, file).getCurrentCluster()?.server).to.equal("https://127.0.0.1:6443");
  });
});
