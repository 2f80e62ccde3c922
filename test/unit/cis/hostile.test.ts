// `csp-operator check` under hostile input: every case here is something a tester fed the command. Inputs
// are built in a temp dir (symlinks out of the host root, FIFOs, alias bombs, oversized files, escape
// sequences, invalid UTF-8); each asserts the exit code, that stderr is one line, and that nothing of the
// input that must stay private (keys, files outside the root) reaches any output.
import { expect } from "chai";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { runCheckCommand } from "../../../src/cis/command.js";
import { parseYamlMapping } from "../../../src/cis/parse/yaml.js";

const FIX = new URL("../../fixtures/cis/", import.meta.url).pathname;
const REPO = new URL("../../../", import.meta.url).pathname;
const KUBELET_FLAGS =
  "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --kubeconfig=/etc/kubernetes/kubelet.conf";
const KUBELET_CONFIG = "var/lib/kubelet/config.yaml";
const KEY = "S0VZLU1BVEVSSUFMLU5FVkVSLUlOLU9VVFBVVA=="; // base64 "KEY-MATERIAL-NEVER-IN-OUTPUT"
const CANARY = "CANARY-OUTSIDE-THE-HOST-ROOT";

interface Report {
  benchmark: string;
  results: { id: string; title: string; status: string; evidence: string }[];
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCheckCommand(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

function byId(stdout: string): Map<string, { status: string; evidence: string }> {
  return new Map((JSON.parse(stdout) as Report).results.map((r) => [r.id, r]));
}

/** Exactly one line, ending in a newline, with no control character in it. */
function expectOneLine(stderr: string): void {
  expect(stderr, stderr).to.match(/\n$/);
  expect(stderr.slice(0, -1), stderr).not.to.include("\n");
  // eslint-disable-next-line no-control-regex
  expect(stderr.slice(0, -1), stderr).not.to.match(/[\u0000-\u001f\u007f-\u009f]/);
}

const manifestWith = (flags: string[]) => `apiVersion: v1
kind: Pod
metadata: { name: kube-apiserver, namespace: kube-system }
spec:
  containers:
    - name: kube-apiserver
      command:
${["kube-apiserver", ...flags].map((f) => `        - ${JSON.stringify(f)}`).join("\n")}
`;

const ALIAS_BOMB = (() => {
  let text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
  let prev = "a";
  for (let i = 0; i < 9; i++) {
    const n = `b${i}`;
    text += `${n}: &${n} [${Array(9).fill(`*${prev}`).join(",")}]\n`;
    prev = n;
  }
  return text;
})();

describe("cis/command under hostile input", () => {
  let dir = "";
  let root = "";
  let outside = "";
  const put = (path: string, content: string | Buffer) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    return path;
  };
  const link = (target: string, path: string) => {
    mkdirSync(dirname(path), { recursive: true });
    rmSync(path, { force: true });
    symlinkSync(target, path);
    return path;
  };
  const fifo = (path: string) => {
    mkdirSync(dirname(path), { recursive: true });
    rmSync(path, { force: true });
    execFileSync("mkfifo", [path]);
    return path;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "cis-hostile-"));
    root = join(dir, "root");
    outside = join(dir, "outside");
    cpSync(`${FIX}hardened/root`, root, { recursive: true });
    mkdirSync(outside);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe("key material and file content never reach the output (5)", () => {
    it("does not echo a malformed EncryptionConfiguration named by an API server flag", async () => {
      put(
        join(root, "etc/kubernetes/config/encryption.yaml"),
        `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
     - aescbc:
        keys:
          - name: key1
            secret: ${KEY}
      bad: [
`,
      );
      for (const output of ["json", "table"]) {
        const { code, stdout, stderr } = await run([
          "--apiserver-manifest",
          `${FIX}hardened/kube-apiserver.yaml`,
          "--host-root",
          root,
          "-o",
          output,
        ]);
        expect(stdout + stderr).not.to.include(KEY);
        expect(stdout + stderr).not.to.include("secret:");
        expect(code).to.equal(3);
        if (output === "json") {
          expect(byId(stdout).get("1.2.28")?.status).to.equal("Unknown");
          expect(byId(stdout).get("1.2.28")?.evidence).to.match(
            /is not valid YAML: .* at line 10, column 1$/,
          );
        }
      }
    });

    it("never names key material standing where a type or provider name belongs", async () => {
      for (const body of [
        `apiVersion: {secret: ${KEY}}\nkind: EncryptionConfiguration\nresources: []\n`,
        `apiVersion: apiserver.config.k8s.io/v1\nkind: ${KEY}\nresources: []\n`,
        `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - ${KEY}: {}\n`,
      ]) {
        put(join(root, "etc/kubernetes/config/encryption.yaml"), body);
        const { stdout, stderr } = await run([
          "--apiserver-manifest",
          `${FIX}hardened/kube-apiserver.yaml`,
          "--host-root",
          root,
          "-o",
          "json",
        ]);
        expect(stdout + stderr, body).not.to.include(KEY);
        expect(byId(stdout).get("1.2.28")?.status, body).to.be.oneOf(["Unknown", "Fail"]);
      }
    });

    it("does not echo a key from an escape sequence or block header the YAML parser quotes", async () => {
      for (const body of [`secret: "${KEY}\\q"\n`, `secret: |${KEY}\n  x\n`, `secret: ${KEY}\n\tx: 1\n`]) {
        const reason = parseYamlMapping(body);
        expect(reason.ok, body).to.equal(false);
        expect(JSON.stringify(reason), body).not.to.include(KEY);
        const path = put(join(dir, "kubelet.yaml"), `apiVersion: kubelet.config.k8s.io/v1beta1\n${body}`);
        const { code, stdout, stderr } = await run(["--kubelet-config", path]);
        expect(code, body).to.equal(2);
        expect(stdout).to.equal("");
        expectOneLine(stderr);
        expect(stderr, body).not.to.include(KEY);
      }
    });

    it("does not echo a malformed manifest or kubelet config", async () => {
      const manifest = put(join(dir, "m.yaml"), `kind: Pod\nspec: {token: ${KEY}\n  x: [\n`);
      const config = put(join(dir, "c.yaml"), `kind: KubeletConfiguration\n  key: ${KEY}\n bad\n`);
      for (const argv of [
        ["--apiserver-manifest", manifest],
        ["--kubelet-config", config],
      ]) {
        const { code, stdout, stderr } = await run(argv);
        expect(code).to.equal(2);
        expect(stdout + stderr).not.to.include(KEY);
        expectOneLine(stderr);
        expect(stderr).to.match(/is not valid YAML: .* at line \d+, column \d+$/m);
      }
    });
  });

  describe("--host-root contains every read (16, 12)", () => {
    const hardenedConfig = () => join(root, KUBELET_CONFIG);

    it("does not follow an absolute symlink out of the root to read a kubelet config", async () => {
      const out = put(
        join(outside, "config.yaml"),
        `# ${CANARY}\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n`,
      );
      link(out, hardenedConfig());
      const { code, stdout, stderr } = await run([
        "--kubelet-flags",
        KUBELET_FLAGS,
        "--host-root",
        root,
        "--file-checks",
        "node",
        "-o",
        "json",
      ]);
      const r = byId(stdout);
      // Inside the root, that absolute path does not exist: stat and read agree.
      expect(r.get("4.1.9")?.status).to.equal("NotApplicable");
      expect(r.get("4.2.1")?.status).to.equal("Unknown");
      expect(r.get("4.2.1")?.evidence).to.include(`ENOENT (read as ${join(root, out)})`);
      expect(stdout + stderr).not.to.include(CANARY);
      expect(code).to.equal(3);
    });

    it("does not let ../ climb out of the root, and does not echo what it would have found", async () => {
      put(join(outside, "config.yaml"), `apiVersion: kubelet.config.k8s.io/v1beta1\n${CANARY}: [\n`);
      link("../../../../outside/config.yaml", hardenedConfig());
      const { stdout, stderr } = await run([
        "--kubelet-flags",
        KUBELET_FLAGS,
        "--host-root",
        root,
        "-o",
        "json",
      ]);
      expect(byId(stdout).get("4.2.1")?.status).to.equal("Unknown");
      expect(byId(stdout).get("4.2.1")?.evidence).to.include(
        `ENOENT (read as ${join(root, "outside/config.yaml")})`,
      );
      expect(stdout + stderr).not.to.include(CANARY);
    });

    it("resolves an absolute symlink inside the root as the host would", async () => {
      cpSync(hardenedConfig(), join(root, "etc/kubelet-real.yaml"));
      link("/etc/kubelet-real.yaml", hardenedConfig());
      const { stdout } = await run(["--kubelet-flags", KUBELET_FLAGS, "--host-root", root, "-o", "json"]);
      expect(byId(stdout).get("4.2.1")).to.deep.equal({
        id: "4.2.1",
        title: "Ensure that the --anonymous-auth argument is set to false",
        status: "Pass",
        evidence: "authentication.anonymous.enabled: false in /var/lib/kubelet/config.yaml",
      });
    });

    it("resolves a symlinked directory component inside the root, for files named by API server flags", async () => {
      const config = join(root, "etc/kubernetes/config");
      cpSync(config, join(outside, "config"), { recursive: true });
      put(join(outside, "config/encryption.yaml"), `${CANARY}: [\n`);
      cpSync(config, join(root, "srv/config"), { recursive: true });
      rmSync(config, { recursive: true });
      link(join(outside, "config"), config); // absolute, out of the root: must not be read
      const escaped = await run([
        "--apiserver-manifest",
        `${FIX}hardened/kube-apiserver.yaml`,
        "--host-root",
        root,
        "-o",
        "json",
      ]);
      expect(escaped.stdout + escaped.stderr).not.to.include(CANARY);
      expect(byId(escaped.stdout).get("1.2.28")?.status).to.equal("Unknown");
      link("/srv/config", config); // absolute, inside the root
      const inside = await run([
        "--apiserver-manifest",
        `${FIX}hardened/kube-apiserver.yaml`,
        "--host-root",
        root,
        "-o",
        "json",
      ]);
      expect(byId(inside.stdout).get("1.2.28")?.status).to.equal("Pass");
    });

    it("reads owner names only from the root's /etc/passwd, never from one a symlink points to outside", async () => {
      const passwd = put(
        join(outside, "passwd"),
        `root:x:0:0::/root:/bin/sh\n${CANARY}:x:${process.getuid?.() ?? 0}:0::/:/bin/sh\n`,
      );
      link(passwd, join(root, "etc/passwd"));
      link(passwd, join(root, "etc/group"));
      mkdirSync(join(root, "var/lib/etcd"), { recursive: true });
      const { stdout, stderr } = await run(["--file-checks", "master", "--host-root", root, "-o", "json"]);
      expect(stdout + stderr).not.to.include(CANARY);
      expect(byId(stdout).get("1.1.12")?.status).to.equal("Unknown");
    });

    it("lists kubelet drop-ins only inside the root", async () => {
      put(
        join(outside, "dropins/10-weak.conf"),
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  anonymous:\n    enabled: true\n",
      );
      link(join(outside, "dropins"), join(root, "etc/kubelet.conf.d"));
      const { stdout } = await run([
        "--kubelet-flags",
        `${KUBELET_FLAGS} --config-dir=/etc/kubelet.conf.d`,
        "--host-root",
        root,
        "-o",
        "json",
      ]);
      const r = byId(stdout).get("4.2.1");
      expect(r?.status).to.equal("Unknown");
      expect(r?.evidence).to.include("ENOENT");
    });
  });

  describe("FIFOs and other non-regular files (17)", () => {
    it("exits 2 at once for a FIFO as --apiserver-manifest or --kubelet-config", async () => {
      const f = fifo(join(dir, "fifo.yaml"));
      for (const option of ["--apiserver-manifest", "--kubelet-config"]) {
        const { code, stdout, stderr } = await run([option, f]);
        expect(code).to.equal(2);
        expect(stdout).to.equal("");
        expectOneLine(stderr);
        expect(stderr).to.equal(
          `csp-operator check: cannot read ${option} ${f}: is a FIFO, not a regular file\n`,
        );
      }
      const d = await run(["--kubelet-config", dir]);
      expect(d.stderr).to.equal(
        `csp-operator check: cannot read --kubelet-config ${dir}: is a directory, not a regular file\n`,
      );
    });

    it("reports Unknown for a FIFO named by the kubelet's --config, an API server flag or /etc/passwd", async () => {
      fifo(join(root, KUBELET_CONFIG));
      fifo(join(root, "etc/kubernetes/config/encryption.yaml"));
      fifo(join(root, "etc/passwd"));
      mkdirSync(join(root, "var/lib/etcd"), { recursive: true });
      const { code, stdout } = await run([
        "--apiserver-manifest",
        `${FIX}hardened/kube-apiserver.yaml`,
        "--kubelet-flags",
        KUBELET_FLAGS,
        "--host-root",
        root,
        "--file-checks",
        "all",
        "-o",
        "json",
      ]);
      const r = byId(stdout);
      expect(r.get("4.2.1")?.status).to.equal("Unknown");
      expect(r.get("4.2.1")?.evidence).to.include("is a FIFO, not a regular file");
      expect(r.get("1.2.28")?.status).to.equal("Unknown");
      expect(r.get("1.2.28")?.evidence).to.include("is a FIFO, not a regular file");
      expect(r.get("1.1.12")?.status).to.equal("Unknown");
      expect(r.get("1.1.12")?.evidence).to.include("is a FIFO");
      expect(code).to.equal(1);
    });
  });

  describe("YAML alias bombs (18)", () => {
    it("exits 2 with one line for an alias bomb as manifest or kubelet config", async () => {
      const bomb = put(join(dir, "bomb.yaml"), ALIAS_BOMB);
      for (const option of ["--apiserver-manifest", "--kubelet-config"]) {
        const { code, stdout, stderr } = await run([option, bomb]);
        expect(code).to.equal(2);
        expect(stdout).to.equal("");
        expect(stderr).to.equal(
          `csp-operator check: ${option} ${bomb} is not valid YAML: too many aliases (a YAML alias bomb?)\n`,
        );
      }
    });

    it("reports Unknown for an alias bomb as the kubelet's --config file", async () => {
      put(join(root, KUBELET_CONFIG), ALIAS_BOMB);
      const { code, stdout } = await run([
        "--kubelet-flags",
        KUBELET_FLAGS,
        "--host-root",
        root,
        "-o",
        "json",
      ]);
      expect(byId(stdout).get("4.2.1")?.evidence).to.include("too many aliases");
      expect(code).to.equal(3);
    });
  });

  describe("a KubeletConfiguration the kubelet could not decode (19)", () => {
    const config = (body: string) =>
      put(
        join(dir, "kubelet.yaml"),
        `apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n${body}`,
      );
    for (const [body, ids] of [
      ['authentication: "yes"\nauthorization: "yes"\n', ["4.2.1", "4.2.2", "4.2.3"]],
      ["authentication: [anonymous]\nauthorization: [Webhook]\n", ["4.2.1", "4.2.2", "4.2.3"]],
      ['authentication:\n  anonymous: "false"\n', ["4.2.1"]],
      ["authentication:\n  anonymous: false\n", ["4.2.1"]],
      ['featureGates: "RotateKubeletServerCertificate=true"\n', ["4.2.11"]],
      ["authentication:\n  anonymous: !!omap [enabled: true]\n", ["4.2.1"]],
      ["authentication: !!binary AAAA\n", ["4.2.1", "4.2.3"]],
    ] as const) {
      it(`never defaults past ${JSON.stringify(body)}`, async () => {
        const { code, stdout } = await run(["--kubelet-config", config(body), "-o", "json"]);
        const r = byId(stdout);
        for (const id of ids) {
          expect(r.get(id)?.status, id).to.equal("Unknown");
          expect(r.get(id)?.evidence, id).to.match(/is not an object; the kubelet cannot decode its config$/);
        }
        expect(code).to.equal(1); // the rest of the config is empty: other checks fail on defaults
      });
    }
  });

  describe("exit codes when checks cannot be evaluated (20)", () => {
    it("exits 3, not 0, when the kubelet's --config file is missing", async () => {
      rmSync(join(root, KUBELET_CONFIG));
      const { code, stdout } = await run([
        "--kubelet-flags",
        KUBELET_FLAGS,
        "--host-root",
        root,
        "-o",
        "json",
      ]);
      const unknown = [...byId(stdout).values()].filter((r) => r.status === "Unknown");
      expect(unknown.length).to.equal(13);
      expect(code).to.equal(3);
    });

    it("exits 3 for file checks on a root that is not a node", async () => {
      const { code } = await run(["--file-checks", "all", "--host-root", outside]);
      expect(code).to.equal(3);
    });

    it("exits 1 when a check fails even if others are Unknown, and 0 only when everything evaluated passes", async () => {
      const { code } = await run([
        "--kubelet-flags",
        `${KUBELET_FLAGS} --anonymous-auth=true`,
        "--apiserver-manifest",
        `${FIX}hardened/kube-apiserver.yaml`,
        "--host-root",
        outside,
      ]);
      expect(code).to.equal(1);
      const ok = await run(["--kubelet-flags", KUBELET_FLAGS, "--host-root", root]);
      expect(ok.code).to.equal(0);
    });
  });

  describe("size limits (21)", () => {
    const big = (n: number) =>
      `apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n# ${"x".repeat(n)}\n`;

    it("exits 2 naming a named input over 1 MiB, without parsing it", async () => {
      const text = big(2 * 1024 * 1024);
      const path = put(join(dir, "big.yaml"), text);
      for (const option of ["--apiserver-manifest", "--kubelet-config"]) {
        const started = Date.now();
        const { code, stdout, stderr } = await run([option, path]);
        expect(code).to.equal(2);
        expect(stdout).to.equal("");
        expect(stderr).to.equal(
          `csp-operator check: cannot read ${option} ${path}: is larger than 1 MiB (${Buffer.byteLength(text)} bytes)\n`,
        );
        expect(Date.now() - started).to.be.below(2000);
      }
    });

    it("reports Unknown for a host file over 1 MiB", async () => {
      put(join(root, KUBELET_CONFIG), big(2 * 1024 * 1024));
      const { code, stdout } = await run([
        "--kubelet-flags",
        KUBELET_FLAGS,
        "--host-root",
        root,
        "-o",
        "json",
      ]);
      expect(byId(stdout).get("4.2.1")?.evidence).to.include("is larger than 1 MiB");
      expect(code).to.equal(3);
    });

    it("parses a 1 MiB config of distinct keys in linear time, and names a duplicate by line", async function () {
      this.timeout(60_000);
      const keys = Array.from({ length: 100_000 }, (_, i) => `k${i}: 1`).join("\n");
      const path = put(join(dir, "keys.yaml"), big(0) + keys + "\n");
      const started = Date.now();
      const { code } = await run(["--kubelet-config", path]);
      expect(code).to.equal(1);
      // yaml's own duplicate check compares every key with every earlier one: minutes here.
      expect(Date.now() - started).to.be.below(30_000);
      writeFileSync(path, `${big(0)}a: 1\nb: 2\na: 3\n`);
      expect((await run(["--kubelet-config", path])).stderr).to.equal(
        `csp-operator check: --kubelet-config ${path} is not valid YAML: a mapping has a duplicate key at line 6, column 1\n`,
      );
    });

    it("refuses a config nested too deeply, in one line", async function () {
      this.timeout(60_000);
      const path = put(join(dir, "deep.yaml"), `${big(0)}x: ${"[".repeat(150_000)}${"]".repeat(150_000)}\n`);
      const { code, stderr } = await run(["--kubelet-config", path]);
      expect(code).to.equal(2);
      expect(stderr).to.match(/is not valid YAML: it is nested too deeply( at line 4, column \d+)?\n$/);
    });

    it("bounds the output of a manifest full of flags", async () => {
      const plugins = Array.from({ length: 20_000 }, (_, i) => `Plugin${i}`).join(",");
      const stray = Array.from({ length: 15_000 }, (_, i) => `stray${i}`);
      const path = put(
        join(dir, "flags.yaml"),
        manifestWith([`--enable-admission-plugins=${plugins}`, `--tls-cipher-suites=${plugins}`, ...stray]),
      );
      const { code, stdout, stderr } = await run([
        "--apiserver-manifest",
        path,
        "--host-root",
        root,
        "-o",
        "json",
      ]);
      expect(code).to.equal(1);
      expect(stderr.split("\n").length).to.be.at.most(22);
      expect(stderr).to.include("warning: and 14980 more command-line problems");
      for (const r of byId(stdout).values()) expect(r.evidence.length).to.be.at.most(2000);
      expect(stdout.length + stderr.length).to.be.below(150_000);
    });
  });

  describe("raw input in messages (22)", () => {
    const ESC = "\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202e";

    it("escapes control characters in one-line errors", async () => {
      const path = put(
        join(dir, "m.yaml"),
        `apiVersion: v1\nkind: ${JSON.stringify(`Pod${ESC}\nforged line`)}\n`,
      );
      const { code, stderr } = await run(["--apiserver-manifest", path]);
      expect(code).to.equal(2);
      expectOneLine(stderr);
      // A type name that is not one is described, never echoed (it may be key material elsewhere).
      expect(stderr).to.include("(kind: a string of");
      expect(stderr).not.to.include("\u001b");
      const named = join(dir, `x${ESC}\n.yaml`);
      const missing = await run(["--kubelet-config", named]);
      expectOneLine(missing.stderr);
      expect(missing.stderr).not.to.include("\u001b");
      expect(missing.stderr).to.include("\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202e\\n.yaml");
    });

    it("escapes control characters in evidence and warnings, in JSON and table output", async () => {
      for (const output of ["json", "table"]) {
        const { stdout, stderr } = await run([
          "--kubelet-flags",
          `--authorization-mode=${ESC} --hostname-override=a${ESC}b stray${ESC}`,
          "-o",
          output,
        ]);
        // eslint-disable-next-line no-control-regex
        expect(stdout + stderr).not.to.match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
        expect(stdout).to.include("\\x1b]0;pwned");
        expectOneLine(stderr);
      }
    });

    it("refuses invalid UTF-8 instead of reading replacement characters", async () => {
      const text = Buffer.concat([
        Buffer.from(manifestWith(["--anonymous-auth=false"]).replace("kube-system", "kube-sys")),
        Buffer.from([0xff, 0xfe, 0x0a]),
      ]);
      const path = put(join(dir, "latin1.yaml"), text);
      const { code, stderr } = await run(["--apiserver-manifest", path]);
      expect(code).to.equal(2);
      expect(stderr).to.equal(
        `csp-operator check: cannot read --apiserver-manifest ${path}: is not valid UTF-8\n`,
      );
      put(join(root, KUBELET_CONFIG), Buffer.from([0x61, 0x3a, 0x20, 0xc3, 0x28, 0x0a]));
      const host = await run(["--kubelet-flags", KUBELET_FLAGS, "--host-root", root, "-o", "json"]);
      expect(byId(host.stdout).get("4.2.1")?.evidence).to.include("is not valid UTF-8");
      expect(host.code).to.equal(3);
    });
  });

  describe("the csp-operator process", function () {
    // Each run starts Node with TypeScript compilation on a shared, loaded machine.
    this.timeout(120_000);

    /** Runs `csp-operator check` as a process; kills its process group if it has not exited in time. */
    function cli(
      argv: string[],
      timeoutMs = 60_000,
    ): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "check", ...argv], {
          cwd: REPO,
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        let timedOut = false;
        child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
        child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
        const timer = setTimeout(() => {
          timedOut = true;
          if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
        }, timeoutMs);
        child.on("error", reject);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr, timedOut });
        });
      });
    }

    it("exits 2 with one line on stderr for a FIFO, an alias bomb and an escape-laden manifest, without hanging", async () => {
      const f = fifo(join(dir, "fifo.yaml"));
      const bomb = put(join(dir, "bomb.yaml"), ALIAS_BOMB);
      const esc = put(join(dir, "esc.yaml"), `kind: "\\e]0;pwned\\a\\e[2J"\n`);
      const runs = await Promise.all([
        cli(["--apiserver-manifest", f]),
        cli(["--kubelet-config", bomb]),
        cli(["--apiserver-manifest", esc]),
      ]);
      for (const r of runs) {
        expect(r.timedOut, r.stderr).to.equal(false);
        expect(r.code, r.stderr).to.equal(2);
        expect(r.stdout).to.equal("");
        expectOneLine(r.stderr);
      }
      expect(runs[0]?.stderr).to.include("is a FIFO, not a regular file");
      expect(runs[1]?.stderr).to.include("too many aliases");
      expect(runs[2]?.stderr).to.include("kind: a string of");
      expect(runs[2]?.stderr).not.to.include("\u001b");
    });

    it("exits 3 when the kubelet's --config cannot be read", async () => {
      rmSync(join(root, KUBELET_CONFIG));
      const r = await cli(["--kubelet-flags", KUBELET_FLAGS, "--host-root", root, "-o", "json"]);
      expect(r.code, r.stderr).to.equal(3);
      expect((JSON.parse(r.stdout) as Report).benchmark).to.equal("cis-1.12");
    });
  });
});
