import { expect } from "chai";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  closeSync,
  openSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acceptEntry, acceptEntryYaml, AcceptError } from "../../../src/agent/accept.js";
import {
  IntegrityMonitor,
  MAX_REMOUNTS_PER_HOUR,
  MAX_REPORTED_CHANGES,
} from "../../../src/agent/integrity.js";
import {
  agentReportConfigMap,
  contentHash,
  integrityReports,
  parseIntegrityReport,
  type IntegrityReport,
} from "../../../src/evidence/agentreports.js";
import {
  accepts,
  describeChange,
  EVENTS_PER_NODE,
  fileIntegrityArea,
  judgeBaseline,
  judgeFileIntegrity,
  type AcceptedChange,
} from "../../../src/controller/fileintegrity.js";
import { eventually } from "../../support/eventually.js";

const MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml";
const KEY = "/etc/kubernetes/pki/apiserver.key";
const KUBECONFIG = "/etc/kubernetes/admin.conf";
const KUBELET = "/var/lib/kubelet/config.yaml";

/** A host root with a kubeadm-like layout of critical files. */
function hostRoot(): string {
  const root = mkdtempSync(join(tmpdir(), "csp-fim-"));
  for (const d of ["etc/kubernetes/manifests", "etc/kubernetes/pki", "var/lib/kubelet"])
    mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, MANIFEST), "kind: Pod\n", { mode: 0o600 });
  writeFileSync(join(root, KEY), "-----BEGIN PRIVATE KEY-----\n", { mode: 0o600 });
  writeFileSync(join(root, KUBECONFIG), "kind: Config\n", { mode: 0o600 });
  writeFileSync(join(root, KUBELET), "kind: KubeletConfiguration\n", { mode: 0o644 });
  return root;
}

/** The report as the operator reads it back from the node's ConfigMap. */
function asConfigMaps(node: string, report: IntegrityReport) {
  return [agentReportConfigMap(node, [], {}, undefined, report)];
}

describe("file integrity monitoring on a host root", () => {
  let root = "";
  const monitors: IntegrityMonitor[] = [];
  const monitor = (onEvent?: () => void) => {
    const m = new IntegrityMonitor(root, onEvent, undefined, undefined, 50);
    monitors.push(m);
    return m;
  };
  beforeEach(() => (root = hostRoot()));
  afterEach(() => {
    for (const m of monitors.splice(0)) m.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("baselines the critical files (hash, mode, owner, size, mtime; never content)", async () => {
    const r = await monitor().scan();
    expect(Object.keys(r.baseline)).to.include.members([MANIFEST, KEY, KUBECONFIG, KUBELET]);
    const e = r.baseline[MANIFEST]!;
    expect(e).to.include({ type: "file", sha256: contentHash("kind: Pod\n"), mode: "0600", size: 10 });
    expect(e.uid).to.be.a("number");
    expect(JSON.stringify(r)).not.to.include("PRIVATE KEY");
    expect(r.changes).to.deep.equal([]);
  });

  it("reports an edited manifest with old and new hash, High", async () => {
    const m = monitor();
    await m.scan();
    writeFileSync(join(root, MANIFEST), "kind: Pod\nspec: {hostPID: true}\n");
    const r = await m.scan(undefined, new Date("2026-01-01T00:00:00Z"));
    expect(r.changes).to.have.length(1);
    const c = r.changes[0]!;
    expect(c.path).to.equal(MANIFEST);
    expect(c.old?.sha256).to.equal(contentHash("kind: Pod\n"));
    expect(c.new?.sha256).to.equal(contentHash("kind: Pod\nspec: {hostPID: true}\n"));
    expect(c.seenAt).to.equal("2026-01-01T00:00:00.000Z");
    const j = judgeFileIntegrity(
      integrityReports(asConfigMaps("cp1", r)),
      [],
      new Date("2026-01-01T00:01:00Z"),
    );
    expect(j.findings).to.have.length(1);
    expect(j.findings[0]).to.include({ id: "FILE-CHANGED", severity: "High", resource: "Node/cp1" });
    expect(j.findings[0]!.message).to.include(MANIFEST).and.include(c.old!.sha256).and.include(c.new!.sha256);
    expect(j.condition).to.include({ type: "FilesUnchanged", status: "False", reason: "FilesChanged" });
  });

  it("reports a key whose mode changed (same content), High; a kubeconfig change is Medium", async () => {
    const m = monitor();
    await m.scan();
    chmodSync(join(root, KEY), 0o644);
    writeFileSync(join(root, KUBECONFIG), "kind: Config\nusers: []\n");
    const r = await m.scan();
    const key = r.changes.find((c) => c.path === KEY)!;
    expect(key.old?.mode).to.equal("0600");
    expect(key.new?.mode).to.equal("0644");
    expect(key.new?.sha256).to.equal(key.old?.sha256);
    const j = judgeFileIntegrity(integrityReports(asConfigMaps("cp1", r)), []);
    const sev = Object.fromEntries(
      j.findings.map((f): [string, string] => [f.message.split(" ")[0] ?? "", f.severity]),
    );
    expect(sev).to.deep.equal({ [KEY]: "High", [KUBECONFIG]: "Medium" });
  });

  it("reports a manifests directory opened to everyone (High); `directory` accepts its new mode", async () => {
    const m = monitor();
    await m.scan();
    chmodSync(join(root, "etc/kubernetes/manifests"), 0o777);
    const r = await m.scan();
    expect(r.changes.map((c) => [c.path, c.old?.mode, c.new?.mode, c.new?.type])).to.deep.equal([
      ["/etc/kubernetes/manifests", r.changes[0]!.old?.mode, "0777", "directory"],
    ]);
    const cms = asConfigMaps("cp1", r);
    const j = judgeFileIntegrity(integrityReports(cms), []);
    expect(j.findings.map((f) => [f.id, f.severity])).to.deep.equal([["FILE-CHANGED", "High"]]);
    const entry = acceptEntry(cms[0], { node: "cp1", path: "/etc/kubernetes/manifests", reason: "lab" });
    expect(entry).to.include({ sha256: "directory", mode: "0777" });
    expect(judgeFileIntegrity(integrityReports(cms), [entry]).findings).to.deep.equal([]);
    // A content hash never accepts a directory.
    const asFile = { ...entry, sha256: contentHash("") };
    expect(judgeFileIntegrity(integrityReports(cms), [asFile]).findings).to.have.length(1);
  });

  it("reports a file replaced by a symlink, without following it", async () => {
    const m = monitor();
    await m.scan();
    // The link points at a file with the very same content: following it would see no change.
    writeFileSync(join(root, "etc/elsewhere.conf"), "kind: Config\n", { mode: 0o600 });
    unlinkSync(join(root, KUBECONFIG));
    symlinkSync("/etc/elsewhere.conf", join(root, KUBECONFIG));
    const r = await m.scan();
    expect(r.changes).to.have.length(1);
    expect(r.changes[0]!.path).to.equal(KUBECONFIG);
    expect(r.changes[0]!.new?.type).to.equal("symlink");
    expect(r.changes[0]!.new?.sha256).not.to.equal(contentHash("kind: Config\n"));
  });

  it("reports a monitored directory replaced by a symlink as its files removed, never reading through it", async () => {
    const m = monitor();
    await m.scan();
    const elsewhere = join(root, "elsewhere");
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, "kube-apiserver.yaml"), "kind: Pod\n", { mode: 0o600 });
    rmSync(join(root, "etc/kubernetes/manifests"), { recursive: true });
    symlinkSync(elsewhere, join(root, "etc/kubernetes/manifests"));
    const r = await m.scan();
    const paths = r.changes.map((c) => `${c.path}:${c.new?.type ?? "absent"}`);
    expect(paths).to.deep.equal(["/etc/kubernetes/manifests:symlink", `${MANIFEST}:absent`]);
  });

  it("a FIFO planted among the manifests is recorded without blocking the scan, and reported", async () => {
    const m = monitor();
    await m.scan();
    execFileSync("mkfifo", [join(root, "etc/kubernetes/manifests/evil.yaml")]);
    const r = await m.scan();
    expect(r.changes.map((c) => [c.path, c.old, c.new?.type])).to.deep.equal([
      ["/etc/kubernetes/manifests/evil.yaml", undefined, "other"],
    ]);
    const cms = asConfigMaps("cp1", r);
    expect(judgeFileIntegrity(integrityReports(cms), []).findings[0]).to.include({ severity: "High" });
    expect(() => acceptEntry(cms[0], { node: "cp1", path: r.changes[0]!.path, reason: "x" })).to.throw(
      AcceptError,
      /not a regular file/,
    );
  });

  it("a file deleted and recreated with the same content and mode is no finding", async () => {
    const m = monitor();
    await m.scan();
    unlinkSync(join(root, MANIFEST));
    const gone = await m.scan();
    expect(gone.changes.map((c) => [c.path, c.new])).to.deep.equal([[MANIFEST, undefined]]);
    writeFileSync(join(root, MANIFEST), "kind: Pod\n", { mode: 0o600 });
    const back = await m.scan();
    expect(back.changes).to.deep.equal([]);
    expect(judgeFileIntegrity(integrityReports(asConfigMaps("cp1", back)), []).condition.status).to.equal(
      "True",
    );
  });

  it("keeps its baseline across a restart: a change made while it was down is seen, a known one keeps its time", async () => {
    const first = monitor();
    await first.scan();
    writeFileSync(join(root, KUBELET), "kind: KubeletConfiguration\nreadOnlyPort: 10255\n");
    const before = await first.scan(undefined, new Date("2026-01-01T00:00:00Z"));
    first.close();
    // The report as stored in the ConfigMap, read back by a new agent.
    const stored = agentReportConfigMap("cp1", [], {}, undefined, before).data!["integrity.json"];
    writeFileSync(join(root, MANIFEST), "kind: Pod\n# edited while the agent was down\n");
    const second = monitor();
    second.restore(stored);
    const after = await second.scan(undefined, new Date("2026-01-02T00:00:00Z"));
    expect(after.baselineAt).to.equal(before.baselineAt);
    expect(after.note).to.equal(undefined);
    expect(after.changes.map((c) => [c.path, c.seenAt])).to.deep.equal([
      [MANIFEST, "2026-01-02T00:00:00.000Z"],
      [KUBELET, "2026-01-01T00:00:00.000Z"],
    ]);
  });

  it("never trusts a stored baseline it cannot read back: retakes one and says so", async () => {
    const m = monitor();
    const stored = JSON.stringify({ version: 1, baselineAt: "2026-01-01T00:00:00Z", baseline: { x: 1 } });
    m.restore(stored);
    const r = await m.scan(undefined, new Date("2026-02-01T00:00:00Z"));
    expect(r.note).to.match(
      /could not be read back \(a malformed baseline entry\); a new baseline was taken at 2026-02-01/,
    );
    expect(r.baselineAt).to.equal("2026-02-01T00:00:00.000Z");
    expect(r.changes).to.deep.equal([]);
    const j = judgeFileIntegrity(
      integrityReports(asConfigMaps("cp1", r)),
      [],
      new Date("2026-02-01T00:01:00Z"),
    );
    expect(j.findings.map((f) => [f.id, f.severity])).to.deep.equal([["FILE-BASELINE-RETAKEN", "Info"]]);
    expect(j.retaken).to.have.length(1);
  });

  it("takes the agent's own writes (at the hash it wrote, mode 0600) into the baseline", async () => {
    const m = monitor();
    await m.scan();
    const audit = "/etc/kubernetes/csp-operator/audit-policy.yaml";
    mkdirSync(join(root, "etc/kubernetes/csp-operator"), { mode: 0o700 }); // as writeFileAtomic creates it
    writeFileSync(join(root, audit), "rules: []\n", { mode: 0o600 });
    const own = new Map([[audit, contentHash("rules: []\n")]]);
    expect((await m.scan(own)).changes).to.deep.equal([]);
    // Someone else edits it afterwards: a change.
    writeFileSync(join(root, audit), "rules: [{level: None}]\n");
    expect((await m.scan(own)).changes.map((c) => c.path)).to.deep.equal([audit]);
  });

  it("sees a change within seconds through the watch, not only at the periodic rescan", async () => {
    let events = 0;
    const m = monitor(() => events++);
    await m.scan();
    expect(m.watchCount()).to.be.greaterThan(0);
    writeFileSync(join(root, "etc/kubernetes/pki/new.key"), "x", { mode: 0o600 });
    await eventually("a watch event", () => Promise.resolve(events > 0), 5_000);
  });

  it("lists at most MAX_REPORTED_CHANGES changes and counts the rest", async () => {
    const m = monitor();
    await m.scan();
    for (let i = 0; i < MAX_REPORTED_CHANGES + 3; i++)
      writeFileSync(join(root, `etc/kubernetes/pki/c${String(i).padStart(3, "0")}.crt`), "c");
    const r = await m.scan();
    expect(r.changes).to.have.length(MAX_REPORTED_CHANGES);
    expect(r.omittedChanges).to.equal(3);
    const j = judgeFileIntegrity(integrityReports(asConfigMaps("cp1", r)), []);
    expect(j.condition.message).to.match(new RegExp(`^${MAX_REPORTED_CHANGES + 3} critical file change`));
  });
});

describe("file integrity report size", () => {
  let root = "";
  beforeEach(() => (root = hostRoot()));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("stays under the admission policy's 512 KiB with long paths: baseline truncated, changes counted", async () => {
    const deep = join(root, "etc/kubernetes/pki", "a".repeat(250), "b".repeat(250));
    mkdirSync(deep, { recursive: true });
    const names = Array.from({ length: 500 }, (_, i) => `${"c".repeat(240)}${String(i).padStart(3, "0")}`);
    for (const n of names) writeFileSync(join(deep, n), "1");
    const m = new IntegrityMonitor(root);
    try {
      const first = await m.scan();
      expect(first.truncated).to.equal(true);
      for (const n of names) writeFileSync(join(deep, n), "2");
      const r = await m.scan();
      const size = JSON.stringify(r).length;
      expect(size).to.be.lessThan(512 * 1024);
      expect(r.changes.length).to.be.greaterThan(10);
      expect(r.omittedChanges).to.be.greaterThan(0);
      expect(r.changes.length + r.omittedChanges!).to.equal(
        Object.keys(r.baseline).filter((p) => p.startsWith("/etc/kubernetes/pki/a") && p.length > 700).length,
      );
    } finally {
      m.close();
    }
  });
});

describe("accepting file changes", () => {
  const change = (over: Partial<IntegrityReport["changes"][number]> = {}): IntegrityReport => {
    const old = {
      type: "file" as const,
      sha256: contentHash("a"),
      mode: "0600",
      uid: 0,
      gid: 0,
      size: 1,
      mtime: "2026-01-01T00:00:00.000Z",
    };
    return {
      version: 1,
      baselineAt: "2026-01-01T00:00:00.000Z",
      baseline: { [MANIFEST]: old },
      changes: [
        {
          path: MANIFEST,
          old,
          new: { ...old, sha256: contentHash("b") },
          seenAt: "2026-01-02T00:00:00.000Z",
          ...over,
        },
      ],
    };
  };
  const judge = (r: IntegrityReport, accepted: AcceptedChange[], node = "cp1") =>
    judgeFileIntegrity(integrityReports(asConfigMaps(node, r)), accepted);

  it("the printed entry clears the finding; it covers only that node, that content, that mode", () => {
    const r = change();
    const entry = acceptEntry(asConfigMaps("cp1", r)[0], {
      node: "cp1",
      path: MANIFEST,
      reason: "upgrade to 1.36",
    });
    expect(entry).to.deep.equal({
      node: "cp1",
      path: MANIFEST,
      sha256: contentHash("b"),
      mode: "0600",
      owner: "0:0",
      reason: "upgrade to 1.36",
    });
    expect(acceptEntryYaml(entry))
      .to.include(`sha256: ${contentHash("b")}`)
      .and.include('mode: "0600"');
    const ok = judge(r, [entry]);
    expect(ok.findings).to.deep.equal([]);
    expect(ok.condition).to.include({ status: "True", reason: "Unchanged" });
    expect(ok.condition.message).to.include("1 accepted change(s)");
    // Another node's identical change is not accepted by a node-scoped entry.
    expect(judge(r, [entry], "cp2").findings).to.have.length(1);
    // A different content is not accepted.
    expect(judge(r, [{ ...entry, sha256: contentHash("c") }]).findings).to.have.length(1);
    // Same content, then a chmod: a change again.
    const chmodded = change({ new: { ...r.changes[0]!.new!, mode: "0666" } });
    expect(judge(chmodded, [entry]).findings).to.have.length(1);
    // Without node: every node.
    const { node: _node, ...anyNode } = entry;
    expect(judge(r, [anyNode], "cp2").findings).to.deep.equal([]);
  });

  it("a removed file is accepted with sha256 absent; an unchanged file has nothing to accept", () => {
    const removed = change();
    delete removed.changes[0]!.new;
    const entry = acceptEntry(asConfigMaps("cp1", removed)[0], {
      node: "cp1",
      path: MANIFEST,
      reason: "decommissioned",
    });
    expect(entry.sha256).to.equal("absent");
    expect(judge(removed, [entry]).findings).to.deep.equal([]);
    const unchanged = { ...change(), changes: [] };
    expect(() =>
      acceptEntry(asConfigMaps("cp1", unchanged)[0], { node: "cp1", path: MANIFEST, reason: "x" }),
    ).to.throw(AcceptError, /matches its baseline/);
    expect(() =>
      acceptEntry(asConfigMaps("cp1", unchanged)[0], { node: "cp1", path: "/etc/x", reason: "x" }),
    ).to.throw(AcceptError, /not a monitored file/);
    expect(() => acceptEntry(undefined, { node: "cp1", path: MANIFEST, reason: "x" })).to.throw(
      AcceptError,
      /no file integrity report/,
    );
    expect(() =>
      acceptEntry(asConfigMaps("cp1", change())[0], { node: "cp1", path: MANIFEST, reason: " " }),
    ).to.throw(AcceptError, /--reason/);
  });

  it("a malformed report is unreadable (Medium finding, condition Unknown)", () => {
    const cm = asConfigMaps("cp1", change())[0]!;
    cm.data!["integrity.json"] = "{";
    const j = judgeFileIntegrity(integrityReports([cm]), []);
    expect(j.findings.map((f) => [f.id, f.severity, f.resource])).to.deep.equal([
      ["FILE-INTEGRITY-UNREADABLE", "Medium", "Node/cp1"],
    ]);
    expect(j.condition).to.include({ status: "Unknown", reason: "ReportUnreadable" });
    expect(
      parseIntegrityReport(
        JSON.stringify({ ...change(), changes: [{ path: "/x", seenAt: "2026-01-01T00:00:00Z" }] }),
      ).ok,
    ).to.equal(false);
    expect(judgeFileIntegrity([], []).condition).to.include({ status: "Unknown", reason: "NoAgentReport" });
  });

  it("a path with control characters cannot forge lines in a finding", () => {
    const r = change({ path: "/etc/kubernetes/a\nFILE-CHANGED fake" });
    const j = judge(r, []);
    expect(j.findings[0]!.message).not.to.include("\n");
    const long = judge(change({ path: `/etc/kubernetes/${"a".repeat(4000)}` }), []);
    expect(long.findings[0]!.message.length).to.be.lessThan(1024);
    expect(long.condition.message.length).to.be.lessThan(1024);
  });
});

describe("file integrity: red-team findings", () => {
  let root = "";
  beforeEach(() => (root = hostRoot()));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** Runs `f` without the power to read others' 0600 files (as uid 65534 when the test runs as root). */
  async function asNobody<T>(f: () => Promise<T>): Promise<T> {
    if (process.getuid?.() !== 0 || !process.seteuid || !process.setegid) return f();
    process.setegid(65534);
    process.seteuid(65534);
    try {
      return await f();
    } finally {
      process.seteuid(0);
      process.setegid(0);
    }
  }
  /** Every directory and file readable by others, so only the file made unreadable is one. */
  function openUp(): void {
    execFileSync("chmod", ["-R", "go+rX", root]);
  }

  it("records a new file it cannot read (unreadable, with mode and owner) and never as absent", async () => {
    openUp();
    const m = new IntegrityMonitor(root);
    try {
      await asNobody(() => m.scan());
      const backdoor = "/etc/kubernetes/manifests/backdoor.yaml";
      writeFileSync(join(root, backdoor), "kind: Pod\n", { mode: 0o600 });
      execFileSync("chown", ["65533:65533", join(root, backdoor)]);
      chmodSync(join(root, backdoor), 0o600);
      // An existing manifest made unreadable and edited.
      writeFileSync(join(root, MANIFEST), "kind: Pod\nspec: {hostPID: true}\n");
      execFileSync("chown", ["65533:65533", join(root, MANIFEST)]);
      chmodSync(join(root, MANIFEST), 0o600);
      const r = await asNobody(() => m.scan());
      const byPath = new Map(r.changes.map((c) => [c.path, c]));
      expect(byPath.get(backdoor)?.new).to.include({
        type: "unreadable",
        sha256: "",
        mode: "0600",
        uid: 65533,
      });
      expect(byPath.get(MANIFEST)?.new).to.include({ type: "unreadable", uid: 65533 });
      expect(m.errors().join()).to.include("EACCES");
      // Still a change at the next scan (its content is unknown), with the time first seen.
      const again = await asNobody(() => m.scan());
      expect(again.changes.find((c) => c.path === backdoor)?.seenAt).to.equal(byPath.get(backdoor)?.seenAt);
      const cms = asConfigMaps("cp1", again);
      const absent: AcceptedChange = { path: MANIFEST, sha256: "absent", reason: "gone" };
      const j = judgeFileIntegrity(integrityReports(cms), [absent]);
      expect(j.findings.map((f) => f.message.split(" ")[0])).to.include.members([backdoor, MANIFEST]);
      expect(j.condition.status).to.equal("False");
      expect(() => acceptEntry(cms[0], { node: "cp1", path: MANIFEST, reason: "x" })).to.throw(
        AcceptError,
        /cannot be read/,
      );
    } finally {
      m.close();
    }
  });

  it("fits the report under the admission limit counted in JSON bytes (control characters), listing what fits", async () => {
    const m = new IntegrityMonitor(root, undefined, ["/etc/kubernetes"]);
    try {
      await m.scan();
      let dir = join(root, "etc/kubernetes");
      for (let i = 0; i < 15; i++) dir = join(dir, "\u0001".repeat(250));
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 40; i++)
        writeFileSync(join(dir, `${String(i).padStart(2, "0")}${"\u0001".repeat(40)}`), "x");
      writeFileSync(join(root, MANIFEST), "kind: Pod\nspec: {hostPID: true}\n");
      const r = await m.scan();
      expect(Buffer.byteLength(JSON.stringify(r))).to.be.at.most(524_288);
      // The manifest edit sorts before the hostile paths and is listed; the rest are counted.
      expect(r.changes.map((c) => c.path)).to.include(MANIFEST);
      expect((r.omittedChanges ?? 0) + r.changes.length).to.be.greaterThan(r.changes.length - 1);
      expect(parseIntegrityReport(JSON.stringify(r)).ok).to.equal(true);
    } finally {
      m.close();
    }
  });

  it("carries scannedAt; a report not refreshed for 15 minutes makes the condition Unknown with a finding", async () => {
    const m = new IntegrityMonitor(root);
    try {
      const t0 = new Date("2026-01-01T00:00:00Z");
      const r = await m.scan(undefined, t0);
      expect(r.scannedAt).to.equal(t0.toISOString());
      // Nothing changed a minute later: the report is the same text (no write); five minutes later it moves.
      expect((await m.scan(undefined, new Date("2026-01-01T00:01:00Z"))).scannedAt).to.equal(
        t0.toISOString(),
      );
      expect((await m.scan(undefined, new Date("2026-01-01T00:05:00Z"))).scannedAt).to.equal(
        "2026-01-01T00:05:00.000Z",
      );
      const nodes = integrityReports(asConfigMaps("cp1", r));
      expect(judgeFileIntegrity(nodes, [], new Date("2026-01-01T00:10:00Z")).condition.status).to.equal(
        "True",
      );
      const late = judgeFileIntegrity(nodes, [], new Date("2026-01-01T00:16:00Z"));
      expect(late.condition).to.include({ status: "Unknown", reason: "ReportStale" });
      expect(late.findings.map((f) => f.id)).to.deep.equal(["FILE-INTEGRITY-STALE"]);
    } finally {
      m.close();
    }
  });

  it("an own write chowned to another user is a change, not a new baseline", async () => {
    const m = new IntegrityMonitor(root);
    try {
      const enc = "/etc/kubernetes/csp-operator/encryption-config.yaml";
      mkdirSync(join(root, "etc/kubernetes/csp-operator"), { mode: 0o700 });
      writeFileSync(join(root, enc), "kind: EncryptionConfiguration\n", { mode: 0o600 });
      const own = new Map([[enc, contentHash("kind: EncryptionConfiguration\n")]]);
      await m.scan(own);
      execFileSync("chown", ["1000:1000", join(root, enc)]);
      const r = await m.scan(own);
      expect(r.changes.map((c) => c.path)).to.deep.equal([enc]);
      expect(r.changes[0]!.new).to.include({ uid: 1000, gid: 1000 });
      expect(r.baseline[enc]).to.include({ uid: 0 });
    } finally {
      m.close();
    }
  });

  it("a single-file mount showing a file the host replaced by a rename is reported stale, not unchanged", async function () {
    const host = join(root, "hostside");
    mkdirSync(host);
    writeFileSync(join(host, "config.yaml"), "kind: KubeletConfiguration\n", { mode: 0o644 });
    try {
      execFileSync("mount", ["--bind", join(host, "config.yaml"), join(root, KUBELET)], { stdio: "ignore" });
    } catch {
      this.skip(); // no bind mounts here (not root, or no CAP_SYS_ADMIN)
    }
    const m = new IntegrityMonitor(root);
    try {
      await m.scan();
      writeFileSync(
        join(host, "config.new"),
        "kind: KubeletConfiguration\nauthentication: {anonymous: {enabled: true}}\n",
      );
      execFileSync("mv", [join(host, "config.new"), join(host, "config.yaml")]);
      const r = await m.scan();
      expect(r.changes.map((c) => [c.path, c.new?.type])).to.deep.equal([[KUBELET, "unreadable"]]);
      expect(m.errors().join()).to.include("ESTALE");
      // Named as a stale mount: the agent exits after reporting it, and its new container mounts the new file.
      expect(m.staleMounts()).to.deep.equal([KUBELET]);
    } finally {
      m.close();
      execFileSync("umount", [join(root, KUBELET)]);
    }
  });

  it("renames of a single-file mount in a loop: a restart recorded in the report (kept across it), at most MAX_REMOUNTS_PER_HOUR an hour", async function () {
    const host = join(root, "hostside");
    mkdirSync(host);
    const CONTENT = "kind: KubeletConfiguration\n";
    writeFileSync(join(host, "config.yaml"), CONTENT, { mode: 0o644 });
    const mount = () =>
      execFileSync("mount", ["--bind", join(host, "config.yaml"), join(root, KUBELET)], { stdio: "ignore" });
    try {
      mount();
    } catch {
      this.skip(); // no bind mounts here (not root, or no CAP_SYS_ADMIN)
    }
    let last: string | undefined;
    const t0 = Date.parse("2026-03-01T00:00:00Z");
    try {
      for (let cycle = 0; cycle <= MAX_REMOUNTS_PER_HOUR; cycle++) {
        const m = new IntegrityMonitor(root);
        try {
          m.restore(last);
          const at = new Date(t0 + cycle * 60_000);
          const started = await m.scan(new Map(), at);
          // What the last restart was for is still in the report after it (no change is left to show it).
          expect(started.changes).to.deep.equal([]);
          expect(started.remounts?.length ?? 0).to.equal(cycle);
          expect(m.remountDecision()).to.equal(undefined);
          // Same bytes, new inode.
          writeFileSync(join(host, "config.new"), CONTENT, { mode: 0o644 });
          execFileSync("mv", [join(host, "config.new"), join(host, "config.yaml")]);
          const r = await m.scan(new Map(), new Date(at.getTime() + 1000));
          expect(r.changes.map((c) => [c.path, c.new?.type])).to.deep.equal([[KUBELET, "unreadable"]]);
          if (cycle < MAX_REMOUNTS_PER_HOUR) {
            expect(m.remountDecision()).to.equal("restart");
            expect(r.remounts?.at(-1)).to.deep.equal({
              at: new Date(at.getTime() + 1000).toISOString(),
              paths: [KUBELET],
            });
          } else {
            // Too many within the hour: the agent stays up, the stale mount stays reported as a change.
            expect(m.remountDecision()).to.equal("stay");
            expect(r.remounts).to.have.length(MAX_REMOUNTS_PER_HOUR);
            // Still stale an hour after the first restart: one is allowed again.
            const later = await m.scan(new Map(), new Date(t0 + 3_601_000));
            expect(m.remountDecision()).to.equal("restart");
            expect(later.remounts).to.have.length(MAX_REMOUNTS_PER_HOUR + 1);
          }
          last = asConfigMaps("cp1", r)[0]!.data!["integrity.json"];
        } finally {
          m.close();
        }
        execFileSync("umount", [join(root, KUBELET)]);
        mount(); // the kubelet starts the container again with a fresh mount
      }
      // An hour later, a restart is allowed again.
      const m = new IntegrityMonitor(root);
      try {
        m.restore(last);
        await m.scan(new Map(), new Date(t0 + 3_700_000));
        writeFileSync(join(host, "config.new"), CONTENT, { mode: 0o644 });
        execFileSync("mv", [join(host, "config.new"), join(host, "config.yaml")]);
        await m.scan(new Map(), new Date(t0 + 3_701_000));
        expect(m.remountDecision()).to.equal("restart");
      } finally {
        m.close();
      }
    } finally {
      execFileSync("umount", [join(root, KUBELET)]);
    }
  });

  it("a symlink's target rewritten (resolved inside the host root) is a change of the link", async () => {
    mkdirSync(join(root, "opt/certs"), { recursive: true });
    writeFileSync(join(root, "opt/certs/ca.crt"), "CA 1\n");
    const link = "/etc/kubernetes/pki/ca.crt";
    symlinkSync("/opt/certs/ca.crt", join(root, link));
    const m = new IntegrityMonitor(root);
    try {
      await m.scan();
      writeFileSync(join(root, "opt/certs/ca.crt"), "CA 2 (the attacker's)\n");
      const r = await m.scan();
      expect(r.changes.map((c) => [c.path, c.new?.type])).to.deep.equal([[link, "symlink"]]);
      expect(JSON.stringify(r)).not.to.include("attacker");
    } finally {
      m.close();
    }
  });

  it("watches a directory again when its path names a new one (mv manifests manifests.old; mkdir manifests)", async () => {
    let events = 0;
    const m = new IntegrityMonitor(root, () => events++, undefined, undefined, 20);
    try {
      await m.scan();
      const dir = join(root, "etc/kubernetes/manifests");
      execFileSync("mv", [dir, `${dir}.old`]);
      mkdirSync(dir);
      // The parent's watch sees the rename (the agent then rescans): wait for it before counting anew.
      await eventually("the rename's event", () => Promise.resolve(events > 0), 5_000);
      await m.scan();
      events = 0;
      writeFileSync(join(dir, "backdoor.yaml"), "kind: Pod\n");
      await eventually("a watch event from the new directory", () => Promise.resolve(events > 0), 5_000);
    } finally {
      m.close();
    }
  });

  it("a baseline patched in the report (not by the agent's own writes) is FILE-BASELINE-CHANGED until restored", async () => {
    const m = new IntegrityMonitor(root);
    try {
      const first = await m.scan();
      const t0 = judgeBaseline("cp1", undefined, first, new Map());
      expect(t0.finding).to.equal(undefined);
      // The agent's own write of the audit policy moves the baseline: trusted.
      const audit = "/etc/kubernetes/csp-operator/audit-policy.yaml";
      mkdirSync(join(root, "etc/kubernetes/csp-operator"), { mode: 0o700 });
      writeFileSync(join(root, audit), "rules: []\n", { mode: 0o600 });
      const hash = contentHash("rules: []\n");
      const second = await m.scan(new Map([[audit, hash]]));
      expect(Object.keys(second.baseline)).to.include(audit);
      const t1 = judgeBaseline("cp1", t0.known, second, new Map([[audit, new Set([hash])]]));
      expect(t1.finding).to.equal(undefined);
      // Someone patches the report: the manifest's baseline entry now says what the edited file hashes to.
      writeFileSync(join(root, MANIFEST), "kind: Pod\nspec: {hostPID: true}\n");
      const third = await m.scan(new Map([[audit, hash]]));
      const forged: IntegrityReport = {
        ...third,
        baseline: { ...third.baseline, [MANIFEST]: third.changes[0]!.new! },
        changes: [],
      };
      const t2 = judgeBaseline("cp1", t1.known, forged, new Map([[audit, new Set([hash])]]));
      expect(t2.finding).to.include({ id: "FILE-BASELINE-CHANGED", severity: "High", resource: "Node/cp1" });
      expect(t2.finding!.message).to.include(MANIFEST);
      // It stays while the forged baseline stays; a forged own-write path with an unknown hash counts too.
      expect(
        judgeBaseline("cp1", t2.known, forged, new Map([[audit, new Set([hash])]])).finding,
      ).to.not.equal(undefined);
      const other = {
        ...third,
        baseline: { ...third.baseline, [audit]: { ...third.baseline[audit]!, sha256: contentHash("x") } },
      };
      expect(
        judgeBaseline("cp1", t1.known, other, new Map([[audit, new Set([hash])]])).finding?.message,
      ).to.include(audit);
      // A baseline retaken with a note is still compared with the trusted one: the forged entry stays
      // FILE-BASELINE-CHANGED (a note is no proof), until its new state is accepted.
      const retaken = { ...forged, baselineAt: "2027-01-01T00:00:00.000Z", note: "retaken" };
      const t3 = judgeBaseline("cp1", t2.known, retaken, new Map([[audit, new Set([hash])]]));
      expect(t3.finding?.message).to.include(MANIFEST);
      const n = forged.baseline[MANIFEST]!;
      const accept = [{ path: MANIFEST, sha256: n.sha256, reason: "upgrade" }];
      const t4 = judgeBaseline("cp1", t3.known, retaken, new Map([[audit, new Set([hash])]]), accept);
      expect(t4.finding).to.equal(undefined);
      expect(t4.known.baselineAt).to.equal("2027-01-01T00:00:00.000Z");
    } finally {
      m.close();
    }
  });

  it("announces at most EVENTS_PER_NODE changes per node and reconcile, the rest in one summary event", async () => {
    const m = new IntegrityMonitor(root);
    try {
      await m.scan();
      for (let i = 0; i < 20; i++) writeFileSync(join(root, `etc/kubernetes/pki/f${i}.crt`), "c");
      const r = await m.scan();
      const area = fileIntegrityArea({} as Parameters<typeof fileIntegrityArea>[0]);
      const input = {
        policy: { metadata: { name: "p" } },
        spec: { controlPlane: { fileIntegrity: {} } },
        snapshot: { configMaps: asConfigMaps("cp1", r) },
        enforce: false,
      } as unknown as Parameters<typeof area.reconcile>[0];
      const out = await area.reconcile(input);
      const events = out.events ?? [];
      expect(events).to.have.length(EVENTS_PER_NODE + 1);
      expect(events.at(-1)!.message).to.equal(
        `${20 - EVENTS_PER_NODE} more critical file change(s) on node cp1 (see the policy's FILE-CHANGED findings)`,
      );
      expect(out.findings!.filter((f) => f.id === "FILE-CHANGED")).to.have.length(20);
      // Already announced: the next reconcile records none.
      expect((await area.reconcile(input)).events).to.deep.equal([]);
    } finally {
      m.close();
    }
  });

  it("lists the files kube-apiserver's flags name outside the monitored paths (Info: not watched)", async () => {
    const m = new IntegrityMonitor(root);
    try {
      m.setNamedFiles(["/etc/kubernetes/config/audit.yaml", "/opt/kms/encryption.yaml", "/srv/authz.yaml"]);
      const r = await m.scan();
      expect(r.unmonitored).to.deep.equal(["/opt/kms/encryption.yaml", "/srv/authz.yaml"]);
      const back = parseIntegrityReport(JSON.stringify(r));
      expect(back.ok && back.value.unmonitored).to.deep.equal(r.unmonitored);
      const j = judgeFileIntegrity(integrityReports(asConfigMaps("cp1", r)), []);
      const f = j.findings.find((x) => x.id === "FILE-NOT-MONITORED");
      expect(f).to.include({ severity: "Info", resource: "Node/cp1" });
      expect(f!.message).to.include("/opt/kms/encryption.yaml").and.include("/srv/authz.yaml");
      expect(j.condition.status).to.equal("True");
    } finally {
      m.close();
    }
  });

  it("an event message about a change does not carry its time (the recorder aggregates repeats)", () => {
    const c = {
      path: MANIFEST,
      new: {
        type: "file" as const,
        sha256: "",
        mode: "0600",
        uid: 0,
        gid: 0,
        size: 1,
        mtime: "2026-01-01T00:00:00Z",
      },
      seenAt: "2026-01-02T00:00:00.000Z",
    };
    expect(describeChange("cp1", c, false)).not.to.include("2026-01-02");
    expect(describeChange("cp1", c)).to.include("2026-01-02");
  });
});

describe("file integrity: hard links and the kubelet's kubeadm flags", () => {
  let root = "";
  const monitors: IntegrityMonitor[] = [];
  const monitor = () => {
    const m = new IntegrityMonitor(root, undefined, undefined, undefined, 50);
    monitors.push(m);
    return m;
  };
  beforeEach(() => (root = hostRoot()));
  afterEach(() => {
    for (const m of monitors.splice(0)) m.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("records each file's link count; a new hard link to a key (from an unwatched path) is a High change", async () => {
    const m = monitor();
    const first = await m.scan();
    expect(first.baseline[KEY]?.nlink).to.equal(1);
    mkdirSync(join(root, "tmp"));
    linkSync(join(root, KEY), join(root, "tmp/.k"));
    const r = await m.scan();
    expect(r.changes.map((c) => [c.path, c.old?.nlink, c.new?.nlink])).to.deep.equal([[KEY, 1, 2]]);
    expect(r.changes[0]!.new?.sha256).to.equal(r.changes[0]!.old?.sha256);
    const j = judgeFileIntegrity(integrityReports(asConfigMaps("cp1", r)), []);
    expect(j.findings).to.have.length(1);
    expect(j.findings[0]).to.include({ id: "FILE-CHANGED", severity: "High" });
    expect(j.findings[0]!.message).to.include("links 2");
    // No accept entry covers a changed link count (the entry has none): the same hash, mode and owner do not.
    const entry = acceptEntry(asConfigMaps("cp1", r)[0], { node: "cp1", path: KEY, reason: "test" });
    expect(judgeFileIntegrity(integrityReports(asConfigMaps("cp1", r)), [entry]).findings).to.have.length(1);
    // The extra link removed: no change any more.
    unlinkSync(join(root, "tmp/.k"));
    expect((await m.scan()).changes).to.deep.equal([]);
  });

  it("a baseline without link counts (an older agent's) takes them on once, with no change; then a link is one", async () => {
    const old = await monitor().scan();
    // What an agent that did not record link counts wrote.
    const stripped: IntegrityReport = {
      ...old,
      baseline: Object.fromEntries(
        Object.entries(old.baseline).map(([p, e]) => {
          const { nlink: _n, ...rest } = e;
          return [p, rest];
        }),
      ),
    };
    const m = monitor();
    m.restore(JSON.stringify(stripped));
    const r = await m.scan();
    expect(r.changes).to.deep.equal([]);
    expect(r.baseline[KEY]?.nlink).to.equal(1);
    // The operator does not count the link counts appearing as a baseline moved by someone else.
    const known = judgeBaseline("cp1", undefined, stripped, new Map());
    expect(judgeBaseline("cp1", known.known, r, new Map()).finding).to.equal(undefined);
    linkSync(join(root, KEY), join(root, "etc/kubernetes/pki/copy.key"));
    const after = await m.scan();
    expect(after.changes.find((c) => c.path === KEY)?.new?.nlink).to.equal(2);
  });

  it("a link count patched in the reported baseline is FILE-BASELINE-CHANGED; a malformed one is unreadable", async () => {
    const r = await monitor().scan();
    const known = judgeBaseline("cp1", undefined, r, new Map()).known;
    const forged: IntegrityReport = {
      ...r,
      baseline: { ...r.baseline, [KEY]: { ...r.baseline[KEY]!, nlink: 2 } },
    };
    expect(judgeBaseline("cp1", known, forged, new Map()).finding?.message).to.include(KEY);
    const bad = JSON.parse(JSON.stringify(r)) as { baseline: Record<string, { nlink?: unknown }> };
    bad.baseline[KEY]!.nlink = -1;
    expect(parseIntegrityReport(JSON.stringify(bad)).ok).to.equal(false);
    bad.baseline[KEY]!.nlink = "2";
    expect(parseIntegrityReport(JSON.stringify(bad)).ok).to.equal(false);
    const back = parseIntegrityReport(JSON.stringify(r));
    expect(back.ok && back.value.baseline[KEY]?.nlink).to.equal(1);
  });

  it("a hard link to a file the agent delivered is a change: the own-write rule takes only a single-link file", async () => {
    const m = monitor();
    await m.scan();
    const enc = "/etc/kubernetes/csp-operator/encryption-config.yaml";
    mkdirSync(join(root, "etc/kubernetes/csp-operator"), { mode: 0o700 });
    writeFileSync(join(root, enc), "kind: EncryptionConfiguration\n", { mode: 0o600 });
    const own = new Map([[enc, contentHash("kind: EncryptionConfiguration\n")]]);
    expect((await m.scan(own)).changes).to.deep.equal([]);
    mkdirSync(join(root, "tmp"));
    linkSync(join(root, enc), join(root, "tmp/keys-copy"));
    const r = await m.scan(own);
    expect(r.changes.map((c) => [c.path, c.old?.nlink, c.new?.nlink])).to.deep.equal([[enc, 1, 2]]);
    expect(r.baseline[enc]?.nlink).to.equal(1);
    // Delivered again while the link is there (a new hash): still a change, never the baseline.
    writeFileSync(join(root, enc), "kind: EncryptionConfiguration # 2\n");
    const again = await m.scan(new Map([[enc, contentHash("kind: EncryptionConfiguration # 2\n")]]));
    expect(again.changes.map((c) => [c.path, c.new?.nlink])).to.deep.equal([[enc, 2]]);
  });

  it("link counts are filled in only on the first scan after restore: a link added later is never absorbed", async () => {
    const old = await monitor().scan();
    const stripped: IntegrityReport = {
      ...old,
      baseline: Object.fromEntries(
        Object.entries(old.baseline).map(([p, e]) => {
          const { nlink: _n, ...rest } = e;
          return [p, rest];
        }),
      ),
    };
    // Edited while the older agent ran: an open change at the upgrade, so it gets no count then.
    writeFileSync(join(root, KEY), "EDITED\n");
    const m = monitor();
    m.restore(JSON.stringify(stripped));
    expect((await m.scan()).baseline[KEY]?.nlink).to.equal(undefined);
    mkdirSync(join(root, "tmp"));
    linkSync(join(root, KEY), join(root, "tmp/ca.key"));
    await m.scan();
    // Reverted in place (the same inode keeps its second name): the link is still a change.
    writeFileSync(join(root, KEY), "-----BEGIN PRIVATE KEY-----\n");
    const r = await m.scan();
    expect(r.changes.map((c) => [c.path, c.old?.nlink, c.new?.nlink])).to.deep.equal([[KEY, undefined, 2]]);
    expect(r.baseline[KEY]?.nlink).to.equal(undefined);
    unlinkSync(join(root, "tmp/ca.key"));
    expect((await m.scan()).changes).to.deep.equal([]);
  });

  it("an accept entry never covers a link count other than the baseline's (1 when it has none)", () => {
    const e = (nlink?: number, sha = "sha256:aa") => ({
      type: "file" as const,
      sha256: sha,
      mode: "0600",
      uid: 0,
      gid: 0,
      size: 1,
      mtime: "2026-01-01T00:00:00.000Z",
      ...(nlink !== undefined ? { nlink } : {}),
    });
    const a = { path: MANIFEST, sha256: "sha256:aa", mode: "0600", owner: "0:0", reason: "ok" };
    const seenAt = "2026-01-01T00:00:00.000Z";
    expect(accepts(a, "n", { path: MANIFEST, new: e(1), seenAt })).to.equal(true);
    expect(accepts(a, "n", { path: MANIFEST, new: e(3), seenAt })).to.equal(false);
    expect(accepts(a, "n", { path: MANIFEST, old: e(1, "sha256:bb"), new: e(3), seenAt })).to.equal(false);
    expect(accepts(a, "n", { path: MANIFEST, old: e(undefined, "sha256:bb"), new: e(3), seenAt })).to.equal(
      false,
    );
    expect(accepts(a, "n", { path: MANIFEST, old: e(undefined, "sha256:bb"), new: e(1), seenAt })).to.equal(
      true,
    );
    expect(accepts(a, "n", { path: MANIFEST, old: e(2, "sha256:bb"), new: e(2), seenAt })).to.equal(true);
  });

  it("a huge sparse file is not read (size, inode and ctime stand for it): the scan stays fast, a write is a change", async () => {
    const big = "/etc/kubernetes/big.conf";
    writeFileSync(join(root, big), "");
    truncateSync(join(root, big), 2 ** 40);
    symlinkSync(big, join(root, "etc/kubernetes/big-link.conf"));
    const m = monitor();
    const t0 = Date.now();
    const first = await m.scan();
    expect(Date.now() - t0).to.be.below(5000);
    expect(first.baseline[big]).to.include({ type: "file", size: 2 ** 40 });
    expect(first.baseline[big]!.sha256).to.match(/^sha256:[0-9a-f]{64}$/);
    const fd = openSync(join(root, big), "r+");
    try {
      writeSync(fd, "x", 0);
    } finally {
      closeSync(fd);
    }
    const r = await m.scan();
    expect(r.changes.map((c) => c.path).sort()).to.deep.equal(["/etc/kubernetes/big-link.conf", big]);
    expect(Date.now() - t0).to.be.below(10_000);
  });

  it("monitors /var/lib/kubelet/kubeadm-flags.env: an edit is a change", async () => {
    const FLAGS = "/var/lib/kubelet/kubeadm-flags.env";
    writeFileSync(join(root, FLAGS), 'KUBELET_KUBEADM_ARGS="--node-ip=10.0.0.1"\n', { mode: 0o644 });
    const m = monitor();
    const first = await m.scan();
    expect(first.baseline[FLAGS]).to.include({ type: "file", mode: "0644", nlink: 1 });
    // The kubelet's other files there (pods/, pki/) are never walked: only the allow-listed files.
    mkdirSync(join(root, "var/lib/kubelet/pods/uid/volumes"), { recursive: true });
    writeFileSync(join(root, "var/lib/kubelet/pods/uid/volumes/token"), "secret\n");
    writeFileSync(join(root, FLAGS), 'KUBELET_KUBEADM_ARGS="--node-ip=10.0.0.1 --anonymous-auth=true"\n');
    const r = await m.scan();
    expect(r.changes.map((c) => c.path)).to.deep.equal([FLAGS]);
    expect(Object.keys(r.baseline).filter((p) => p.includes("/pods"))).to.deep.equal([]);
  });
});
