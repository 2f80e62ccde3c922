/**
 * Fault suite: the node agent's target directory misbehaves. The agent (src/agent, in this process, on the real
 * API server) delivers the rendered audit Policy to <dir>/audit-policy.yaml while that directory is made
 * read-only (a read-only bind mount: the tests run as root, so chmod alone would not stop a write), a symlink
 * to a file outside is planted at the target path, and the disk is full (a 64 KiB tmpfs filled up). Each time:
 * nothing outside the directory changes, the file on disk is the old one or the new one (never partial),
 * the error is logged, and the file is delivered once the condition is removed.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import winston from "winston";
import { Agent } from "../../src/agent/agent.js";
import { loadKubeConfig } from "../../src/cluster/client.js";
import { auditPolicyConfigMap, renderAuditPolicyYaml } from "../../src/desired/auditpolicy.js";
import { useControlPlane } from "../support/controlplane.js";
import { eventually } from "../support/eventually.js";
import { kubectlOk } from "../support/kubectl.js";
import { measure } from "./support.js";

const NODE = "faults-node";
const sha = (s: string | Buffer) => createHash("sha256").update(s).digest("hex");

/** Every path under `root` (not following symlinks) with its type and content hash: what "unchanged" means. */
function snapshot(root: string, skip: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (p === skip) continue;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.set(p, `dir ${st.mode.toString(8)}`);
        walk(p);
      } else if (st.isSymbolicLink()) out.set(p, "symlink");
      else out.set(p, `file ${st.mode.toString(8)} ${sha(readFileSync(p))}`);
    }
  };
  walk(root);
  return out;
}

describe("faults: the node agent's directory read-only, a planted symlink, the disk full", function () {
  this.timeout(300_000);
  const cp = useControlPlane({ name: "faults-agent", controllerManager: false });
  const ok = kubectlOk(cp);
  let agent: Agent | undefined;
  let log = "";
  let root = "";
  let dir = "";
  let target = "";
  let outside = "";
  let victim = "";
  let revision = 0;
  const mounts: string[] = [];
  let before0 = new Map<string, string>();

  const content = () => `${renderAuditPolicyYaml({})}# revision ${revision}\n`;
  /** Publishes a new revision of the rendered audit Policy; returns its content. */
  const publish = async () => {
    revision++;
    const text = content();
    await ok(["apply", "-f", "-"], JSON.stringify(auditPolicyConfigMap("faults", text)));
    return text;
  };
  const onDisk = () => (existsSync(target) ? readFileSync(target, "utf8") : undefined);
  const delivered = async (text: string) =>
    eventually(
      "the agent to deliver the file",
      () => Promise.resolve(lstatSync(target, { throwIfNoEntry: false })?.isFile() && onDisk() === text),
      120_000,
    );
  /** The agent's report (files.json of ConfigMap csp-system/csp-agent-<node>). */
  const report = async () =>
    (
      JSON.parse(await ok(["get", "configmap", `csp-agent-${NODE}`, "-n", "csp-system", "-o", "json"])) as {
        data?: Record<string, string>;
      }
    ).data?.["files.json"] ?? "";
  const strays = () => readdirSync(dir).filter((n) => n !== "audit-policy.yaml" && n !== "filler");
  const mount = (args: string[], push = true) => {
    execFileSync("mount", args);
    if (push) mounts.push(dir);
  };
  /** Log lines (JSON) since `from` of a failed write naming `code` (one per sync that tried). */
  const failures = (from: number, code: string) =>
    log
      .slice(from)
      .split("\n")
      .filter((l) => l.includes("file not written") && l.includes(code));
  /** The audit-policy entry of the node's report. */
  const auditEntry = async () =>
    (JSON.parse((await report()) || "[]") as { file: string; error?: string; sha256: string }[]).find(
      (f) => f.file === "audit-policy",
    ) ?? { file: "audit-policy", sha256: "" };
  const umount = () => {
    execFileSync("umount", [mounts.pop()!]);
  };

  before(async () => {
    await ok(["create", "namespace", "csp-system"]);
    root = mkdtempSync(join(tmpdir(), "csp-faults-agent-"));
    dir = join(root, "etc/kubernetes/csp-operator");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    target = join(dir, "audit-policy.yaml");
    writeFileSync(join(root, "etc/kubernetes/admin.conf"), "not the agent's\n", { mode: 0o600 });
    outside = mkdtempSync(join(tmpdir(), "csp-faults-outside-"));
    victim = join(outside, "victim.conf");
    writeFileSync(victim, "victim: do not touch\n", { mode: 0o644 });
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        log += chunk.toString();
        cb();
      },
    });
    const logger = winston.createLogger({
      level: "info",
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: sink })],
    });
    await publish();
    agent = new Agent(
      loadKubeConfig(cp().kubeconfigPath),
      { node: NODE, auditPolicyPath: target, resyncMs: 1_000 },
      logger,
    );
    await agent.start();
    await delivered(content());
    before0 = new Map([...snapshot(root, dir), ...snapshot(outside, "")]);
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.error(`agent log:\n${log.slice(-4000)}`);
    while (mounts.length > 0) umount();
  });

  after(async () => {
    await agent?.stop();
    while (mounts.length > 0) umount();
    for (const d of [root, outside]) if (d) rmSync(d, { recursive: true, force: true });
  });

  const nothingOutsideChanged = () =>
    expect(new Map([...snapshot(root, dir), ...snapshot(outside, "")])).to.deep.equal(before0);

  it("read-only directory: the old file stays whole, the error is logged; writable again: delivered", async () => {
    const old = onDisk();
    mount(["--bind", dir, dir]);
    mount(["-o", "remount,bind,ro", dir, dir], false);
    const from = log.length;
    const text = await publish();
    await eventually(
      "the agent to log the read-only file system",
      () => Promise.resolve(failures(from, "EROFS").length > 0),
      60_000,
    );
    // Several resyncs fail meanwhile: each one leaves the file and the directory as they were.
    await eventually(
      "three failed attempts",
      () => Promise.resolve(failures(from, "EROFS").length >= 3),
      30_000,
    );
    expect(onDisk()).to.equal(old);
    expect(strays()).to.deep.equal([]);
    // The node's report names the path and the errno, and still says what is on disk.
    await eventually(
      "the report to name EROFS",
      async () => (await auditEntry()).error?.includes("EROFS") === true,
      30_000,
    );
    const entry = await auditEntry();
    // (the random part of the temp directory's name is redacted like key material; the file's name is not)
    expect(entry.error).to.match(/^cannot write \S*\/audit-policy\.yaml: EROFS \(read-only file system\)$/);
    expect(entry.sha256).to.equal(`sha256:${sha(old ?? "")}`);
    const attempts = failures(from, "EROFS").length;
    const t0 = Date.now();
    umount();
    await delivered(text);
    await eventually(
      "the report to lose the error once delivered",
      async () => {
        const e = await auditEntry();
        return e.error === undefined && e.sha256 === `sha256:${sha(text)}`;
      },
      30_000,
    );
    measure(
      "agent: target directory read-only",
      Date.now() - t0,
      undefined,
      `${attempts} failed syncs logged while read-only`,
    );
    expect(strays()).to.deep.equal([]);
    nothingOutsideChanged();
  });

  it("symlink planted at the target path: replaced by a regular file, its target never written", async () => {
    for (const link of [victim, join(outside, "absent.conf")]) {
      rmSync(target);
      symlinkSync(link, target);
      const t0 = Date.now();
      const text = await publish();
      await delivered(text);
      measure(`agent: symlink to ${link === victim ? "a file" : "a missing file"} planted`, Date.now() - t0);
      expect(lstatSync(target).mode & 0o777).to.equal(0o600);
      expect(existsSync(join(outside, "absent.conf"))).to.equal(false);
      expect(readFileSync(victim, "utf8")).to.equal("victim: do not touch\n");
      expect(strays()).to.deep.equal([]);
      nothingOutsideChanged();
    }
  });

  let straysWhenFull: string[] = [];
  let reportWhileFull = "";

  it("disk full (64 KiB tmpfs): the old file stays whole, ENOSPC is logged; space freed: delivered", async () => {
    mount(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", dir]);
    const old = content();
    await delivered(old); // the agent re-delivers onto the fresh (empty) tmpfs by itself
    try {
      for (;;) writeFileSync(join(dir, "filler"), Buffer.alloc(4096, 1), { flag: "a" });
    } catch (err) {
      expect((err as NodeJS.ErrnoException).code).to.equal("ENOSPC");
    }
    const from = log.length;
    const text = await publish();
    await eventually(
      "the agent to log the full disk",
      () => Promise.resolve(failures(from, "ENOSPC").length > 0),
      60_000,
    );
    await eventually(
      "three failed attempts",
      () => Promise.resolve(failures(from, "ENOSPC").length >= 3),
      30_000,
    );
    expect(onDisk()).to.equal(old);
    straysWhenFull = strays();
    await eventually(
      "the report to name ENOSPC",
      async () => (await auditEntry()).error?.includes("ENOSPC") === true,
      30_000,
    );
    reportWhileFull = await report();
    const attempts = failures(from, "ENOSPC").length;
    const t0 = Date.now();
    // Free the space the agent itself did not leave behind.
    rmSync(join(dir, "filler"));
    await delivered(text);
    measure(
      "agent: disk full",
      Date.now() - t0,
      undefined,
      `${attempts} failed syncs logged while full; ${straysWhenFull.length} temp files left while full`,
    );
    nothingOutsideChanged();
  });

  // writeFileAtomic removes its temp file when the write itself fails too (a full disk).
  it("disk full: no partial temp file is left behind", () => {
    expect(straysWhenFull).to.deep.equal([]);
  });

  // A write that throws (EROFS, ENOSPC) is reported like a refused overwrite: the node's report names the
  // target path and the errno (never the temp file's name), so the operator's status says why.
  it("disk full: the node's report names the write error (path and errno)", () => {
    const entry = (JSON.parse(reportWhileFull) as { file: string; error?: string }[]).find(
      (f) => f.file === "audit-policy",
    );
    expect(entry?.error).to.match(/^cannot write .*audit-policy\.yaml: ENOSPC \(no space left on device\)$/);
    expect(entry?.error).not.to.include(".tmp");
  });
});
