import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kubeConfig, MAX_KUBECONFIG_BYTES, type KubeConfigEnv } from "../../../src/cli/actions.js";
import { UsageError } from "../../../src/cli/program.js";

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

  /** An environment with no $KUBECONFIG, an empty home and not in a cluster, unless overridden. */
  const env = (over: Partial<KubeConfigEnv> = {}): KubeConfigEnv => ({
    KUBECONFIG: process.env["KUBECONFIG"],
    home: join(dir, "home"),
    ...over,
  });

  async function failure(flag: string | undefined, e2: KubeConfigEnv = env()): Promise<UsageError> {
    try {
      await kubeConfig(flag, e2);
    } catch (e) {
      expect(e).to.be.instanceOf(UsageError);
      return e as UsageError;
    }
    throw new Error("expected a UsageError");
  }

  it("a missing --kubeconfig file is a usage error naming the flag and the file", async () => {
    const e = await failure(join(dir, "nope"));
    expect(e.message).to.equal(`cannot load --kubeconfig ${join(dir, "nope")}: ENOENT`);
  });

  it("a malformed file named by $KUBECONFIG names the variable and never echoes the content", async () => {
    const file = join(dir, "kc");
    writeFileSync(file, "users:\n- user:\n    token: sk-SECRET-TOKEN-123\n  bad: [\n");
    process.env["KUBECONFIG"] = `${file}:${join(dir, "second")}`;
    const e = await failure(undefined, env({ KUBECONFIG: `${file}:${join(dir, "second")}` }));
    expect(e.message).to.match(new RegExp(`^cannot load \\$KUBECONFIG ${file}: `));
    expect(e.message).to.not.contain("SECRET");
    expect(e.message.split("\n")).to.have.length(1);
  });

  it("loads a valid file, the flag winning over $KUBECONFIG", async () => {
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
    expect((await kubeConfig(file, env())).getCurrentCluster()?.server).to.equal("https://127.0.0.1:6443");
    // An empty first entry of $KUBECONFIG is skipped, as kubectl does.
    const viaEnv = await kubeConfig(undefined, env({ KUBECONFIG: `:${file}` }));
    expect(viaEnv.getCurrentCluster()?.server).to.equal("https://127.0.0.1:6443");
  });

  for (const [what, content, why] of [
    ["{}", "{}\n", /: no current cluster: it sets no current-context$/],
    [
      "no clusters",
      "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
      /: no current cluster: the current-context "x" names no cluster defined in it$/,
    ],
  ] as const)
    it(`a kubeconfig with ${what} is a one-line usage error, never a stack trace or localhost`, async () => {
      const file = join(dir, "kc");
      writeFileSync(file, content);
      const e = await failure(file);
      expect(e.message)
        .to.match(new RegExp(`^cannot load --kubeconfig ${file}`))
        .and.to.match(why);
      expect(e.message.split("\n")).to.have.length(1);
    });

  it("no kubeconfig anywhere and not in a cluster is a usage error, not http://localhost:8080", async () => {
    const e = await failure(undefined, env({ KUBECONFIG: undefined }));
    expect(e.message).to.match(
      /^no kubeconfig: give --kubeconfig, set \$KUBECONFIG or create ~\/\.kube\/config/,
    );
  });

  it("reads ~/.kube/config when neither the flag nor $KUBECONFIG is given", async () => {
    mkdirSync(join(dir, "home", ".kube"), { recursive: true });
    writeFileSync(join(dir, "home", ".kube", "config"), "{}\n");
    const e = await failure(undefined, env({ KUBECONFIG: "" }));
    expect(e.message).to.equal(
      `cannot load kubeconfig ${join(dir, "home", ".kube", "config")}: no current cluster: it sets no current-context`,
    );
  });

  it("refuses /dev/zero and a FIFO at once instead of reading forever", async function () {
    this.timeout(5000);
    const zero = await failure("/dev/zero");
    expect(zero.message).to.equal(
      "cannot load --kubeconfig /dev/zero: is a character device, not a regular file",
    );
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const f = await failure(fifo);
    expect(f.message).to.equal(`cannot load --kubeconfig ${fifo}: is a FIFO, not a regular file`);
  });

  it("refuses a kubeconfig larger than the limit", async () => {
    const file = join(dir, "big");
    writeFileSync(file, `# ${"x".repeat(MAX_KUBECONFIG_BYTES)}\n`);
    const e = await failure(file);
    expect(e.message).to.equal(
      `cannot load --kubeconfig ${file}: is larger than 4 MiB (${MAX_KUBECONFIG_BYTES + 3} bytes)`,
    );
  });
});
