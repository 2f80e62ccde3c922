import { expect } from "chai";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { hostRootReader, runCheckCommand } from "../../../src/cis/command.js";
import type { FileStat, StatReader } from "../../../src/cis/checks/files.js";
import { DEFAULT_FILE_PATHS, fileCheckPaths, fileChecks } from "../../../src/cis/checks/files.js";
import { cisFindings } from "../../../src/cis/output/findings.js";
import { gatherInputs } from "../../../src/cis/gather/inputs.js";

/** A host root in a temp dir: `files` maps host paths to permissions (directories end with `/`). */
function hostRoot(files: Record<string, number>): string {
  const root = mkdtempSync(join(tmpdir(), "csp-files-"));
  for (const [path, mode] of Object.entries(files)) {
    const onHost = join(root, path);
    if (path.endsWith("/")) mkdirSync(onHost, { recursive: true });
    else {
      mkdirSync(dirname(onHost), { recursive: true });
      writeFileSync(onHost, "x");
    }
    chmodSync(onHost, mode);
  }
  return root;
}

/** An in-memory host: path -> stat; directories list the paths below them. */
function fakeReader(stats: Record<string, Partial<FileStat>>, etc: Record<string, string> = {}): StatReader {
  const full = (s: Partial<FileStat>): FileStat => ({ type: "file", mode: 0o600, uid: 0, gid: 0, ...s });
  return {
    stat: (p) => Promise.resolve(stats[p] === undefined ? undefined : full(stats[p])),
    listAll: (dir) =>
      Promise.resolve(
        Object.keys(stats)
          .filter((p) => p.startsWith(`${dir}/`))
          .map((p) => p.slice(dir.length + 1)),
      ),
    readFile: (p) => (etc[p] === undefined ? Promise.reject(new Error("ENOENT")) : Promise.resolve(etc[p])),
  };
}

const byId = (results: { id: string; status: string; evidence: string }[]) =>
  Object.fromEntries(results.map((r) => [r.id, r]));

const HARDENED_MASTER: Record<string, number> = {
  "/etc/kubernetes/manifests/kube-apiserver.yaml": 0o600,
  "/etc/kubernetes/manifests/kube-controller-manager.yaml": 0o600,
  "/etc/kubernetes/manifests/kube-scheduler.yaml": 0o600,
  "/etc/kubernetes/manifests/etcd.yaml": 0o600,
  "/etc/cni/net.d/10-bridge.conflist": 0o600,
  "/var/lib/etcd/": 0o700,
  "/etc/kubernetes/admin.conf": 0o600,
  "/etc/kubernetes/scheduler.conf": 0o600,
  "/etc/kubernetes/controller-manager.conf": 0o600,
  "/etc/kubernetes/pki/ca.crt": 0o644,
  "/etc/kubernetes/pki/ca.key": 0o600,
  "/etc/kubernetes/pki/etcd/": 0o755,
  "/etc/kubernetes/pki/etcd/server.key": 0o600,
};

describe("cis/files: 1.1.x and 4.1.x file permissions and ownership", () => {
  const roots: string[] = [];
  after(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));
  const root = (files: Record<string, number>) => {
    const r = hostRoot(files);
    roots.push(r);
    return r;
  };

  it("passes permission checks on a hardened host and fails each too-open file with its mode", async () => {
    const good = byId(
      await fileChecks(hostRootReader(root(HARDENED_MASTER)), DEFAULT_FILE_PATHS, {
        master: true,
        node: false,
      }),
    );
    for (const id of [
      "1.1.1",
      "1.1.3",
      "1.1.5",
      "1.1.7",
      "1.1.9",
      "1.1.11",
      "1.1.13",
      "1.1.15",
      "1.1.17",
      "1.1.20",
      "1.1.21",
    ])
      expect(good[id]?.status, `${id}: ${good[id]?.evidence}`).to.equal("Pass");

    const weak = byId(
      await fileChecks(
        hostRootReader(
          root({
            ...HARDENED_MASTER,
            "/etc/kubernetes/manifests/kube-apiserver.yaml": 0o644,
            "/var/lib/etcd/": 0o750,
            "/etc/kubernetes/super-admin.conf": 0o640,
            "/etc/kubernetes/pki/etcd/server.key": 0o640,
            "/etc/kubernetes/pki/front-proxy-ca.crt": 0o664,
          }),
        ),
        DEFAULT_FILE_PATHS,
        { master: true, node: false },
      ),
    );
    expect(weak["1.1.1"]).to.include({ status: "Fail" });
    expect(weak["1.1.1"]!.evidence).to.include("644, more permissive than 600");
    expect(weak["1.1.11"]!.status).to.equal("Fail");
    expect(weak["1.1.13"]!.evidence).to.include("super-admin.conf has permissions 640");
    expect(weak["1.1.21"]!.evidence).to.include("/etc/kubernetes/pki/etcd/server.key has permissions 640");
    expect(weak["1.1.20"]!.status).to.equal("Fail");
    expect(weak["1.1.3"]!.status).to.equal("Pass");
  });

  it("counts setuid/setgid bits as more permissive (kube-bench's bitmask)", async () => {
    const r = byId(
      await fileChecks(
        hostRootReader(root({ ...HARDENED_MASTER, "/etc/kubernetes/scheduler.conf": 0o4600 })),
        DEFAULT_FILE_PATHS,
        { master: true, node: false },
      ),
    );
    expect(r["1.1.15"]!.status).to.equal("Fail");
  });

  it("is Unknown, never Pass, when a required file does not exist; NotApplicable for 'if it exists' files", async () => {
    const r = byId(await fileChecks(hostRootReader(root({ "/etc/": 0o755 }))));
    expect(r["1.1.1"]).to.include({ status: "Unknown" });
    expect(r["1.1.1"]!.evidence).to.include("does not exist");
    expect(r["1.1.13"]!.status).to.equal("Unknown");
    expect(r["1.1.19"]!.status).to.equal("Unknown");
    expect(r["4.1.1"]!.status).to.equal("Unknown");
    expect(r["4.1.3"]!.status).to.equal("NotApplicable");
    expect(r["4.1.9"]!.status).to.equal("NotApplicable");
    expect(Object.values(r).filter((x) => x.status === "Pass")).to.deep.equal([]);
  });

  it("resolves symlinks inside the host root, as the host would", async () => {
    const r0 = root({ "/etc/kubernetes/real/kubelet.conf": 0o644, "/var/lib/kubelet/config.yaml": 0o600 });
    symlinkSync("/etc/kubernetes/real/kubelet.conf", join(r0, "etc/kubernetes/kubelet.conf"));
    const r = byId(await fileChecks(hostRootReader(r0), DEFAULT_FILE_PATHS, { master: false, node: true }));
    expect(r["4.1.5"]!.status).to.equal("Fail");
    expect(r["4.1.5"]!.evidence).to.include("/etc/kubernetes/kubelet.conf has permissions 644");
    expect(r["4.1.9"]!.status).to.equal("Pass");
  });

  it("judges ownership: root:root by id, etcd:etcd through the host's passwd and group", async () => {
    const stats = {
      "/etc/kubernetes/manifests/kube-apiserver.yaml": { uid: 1000, gid: 0 },
      "/etc/kubernetes/manifests/etcd.yaml": {},
      "/var/lib/etcd": { type: "directory" as const, mode: 0o700, uid: 998, gid: 997 },
      "/etc/kubernetes/pki": { type: "directory" as const, mode: 0o755 },
      "/etc/kubernetes/pki/ca.key": { uid: 0, gid: 5 },
    };
    const etc = {
      "/etc/passwd": "root:x:0:0::/root:/bin/sh\netcd:x:998:997::/var/lib/etcd:/sbin/nologin\n",
      "/etc/group": "root:x:0:\ntty:x:5:\netcd:x:997:\n",
    };
    const r = byId(await fileChecks(fakeReader(stats, etc)));
    expect(r["1.1.2"]).to.include({ status: "Fail" });
    expect(r["1.1.2"]!.evidence).to.include("owned by 1000:root, not root:root");
    expect(r["1.1.8"]!.status).to.equal("Pass");
    expect(r["1.1.12"]!.status).to.equal("Pass");
    expect(r["1.1.19"]!.evidence).to.include("/etc/kubernetes/pki/ca.key is owned by root:tty");

    const noPasswd = byId(await fileChecks(fakeReader(stats)));
    expect(noPasswd["1.1.12"]!.status).to.equal("Unknown");
    expect(noPasswd["1.1.8"]!.status).to.equal("Pass");
  });

  it("chowned files in a temp host root fail root:root (needs root to chown)", async function () {
    if (process.getuid?.() !== 0) this.skip();
    const r0 = root({ "/var/lib/kubelet/config.yaml": 0o600 });
    chownSync(join(r0, "var/lib/kubelet/config.yaml"), 1234, 1234);
    const r = byId(await fileChecks(hostRootReader(r0), DEFAULT_FILE_PATHS, { master: false, node: true }));
    expect(r["4.1.10"]!.status).to.equal("Fail");
    expect(r["4.1.9"]!.status).to.equal("Pass");
  });

  it("takes kubelet file paths from its flags and effective client CA", async () => {
    const inputs = await gatherInputs(
      {
        kubelet: {
          argv: ["--kubeconfig=/etc/kubelet/kc.conf", "--config=/etc/kubelet/config.yaml"],
          source: "test",
          config: {
            source: "inline",
            text: "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication: {x509: {clientCAFile: /etc/kubelet/ca.pem}}\n",
          },
        },
      },
      { readFile: () => Promise.reject(new Error("ENOENT")) },
    );
    const paths = fileCheckPaths(inputs);
    expect(paths).to.include({
      kubeletKubeconfig: "/etc/kubelet/kc.conf",
      kubeletConfig: "/etc/kubelet/config.yaml",
      kubeletClientCA: "/etc/kubelet/ca.pem",
    });
    expect(paths.apiServerManifest).to.equal(DEFAULT_FILE_PATHS.apiServerManifest);
  });

  it("maps file results to findings on the node", () => {
    const f = cisFindings([{ id: "1.1.21", title: "t", status: "Fail", evidence: "e" }], {
      node: "Node/cp-1",
    });
    expect(f[0]).to.include({
      id: "CIS-1.1.21",
      severity: "High",
      resource: "Node/cp-1",
      area: "controlPlane",
    });
  });

  it("csp-operator check --file-checks runs them under --host-root, in benchmark order", async () => {
    const r0 = root({ ...HARDENED_MASTER, "/etc/kubernetes/admin.conf": 0o644 });
    let stdout = "";
    let stderr = "";
    const io = { stdout: (s: string) => (stdout += s), stderr: (s: string) => (stderr += s) };
    const code = await runCheckCommand(["--host-root", r0, "--file-checks", "master", "-o", "json"], io);
    expect(stderr).to.equal("");
    expect(code).to.equal(1);
    const report = JSON.parse(stdout) as { results: { id: string; status: string }[] };
    expect(report.results.map((r) => r.id)).to.deep.equal(
      Array.from({ length: 21 }, (_, i) => `1.1.${i + 1}`),
    );
    expect(byId(report.results as never)["1.1.13"]).to.include({ status: "Fail" });

    stderr = "";
    expect(await runCheckCommand(["--file-checks", "everything"], io)).to.equal(2);
    expect(stderr).to.include("--file-checks must be master, node or all");
  });
});
