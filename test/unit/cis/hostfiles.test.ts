// File checks whose target may legitimately be absent: a host kube-proxy's kubeconfig found where
// kube-bench looks (4.1.3/4.1.4), and etcd's files on a node where etcd does not run (1.1.7/8/11/12).
import { expect } from "chai";
import type { FileStat, StatReader } from "../../../src/cis/checks/files.js";
import { DEFAULT_FILE_PATHS, fileChecks, kubeconfigFlagIn } from "../../../src/cis/checks/files.js";

function reader(stats: Record<string, Partial<FileStat>>, texts: Record<string, string> = {}): StatReader {
  const full = (s: Partial<FileStat>): FileStat => ({ type: "file", mode: 0o600, uid: 0, gid: 0, ...s });
  return {
    stat: (p) => Promise.resolve(stats[p] === undefined ? undefined : full(stats[p])),
    listAll: () => Promise.resolve([]),
    readFile: (p) =>
      texts[p] === undefined ? Promise.reject(new Error("ENOENT")) : Promise.resolve(texts[p]),
  };
}

async function results(stats: Record<string, Partial<FileStat>>, texts: Record<string, string> = {}) {
  const out = await fileChecks(reader(stats, texts), DEFAULT_FILE_PATHS, { master: true, node: true });
  return Object.fromEntries(out.map((r) => [r.id, r]));
}

describe("cis/files: kube-proxy kubeconfig where kube-bench looks", () => {
  it("reads --kubeconfig from a unit or manifest line in its usual spellings", () => {
    expect(kubeconfigFlagIn("ExecStart=/usr/bin/kube-proxy --kubeconfig=/etc/kp.conf --v=2")).to.equal(
      "/etc/kp.conf",
    );
    expect(kubeconfigFlagIn("ExecStart=/usr/bin/kube-proxy \\\n  --kubeconfig /etc/kp.conf")).to.equal(
      "/etc/kp.conf",
    );
    expect(kubeconfigFlagIn('    - "--kubeconfig=/var/lib/kp/kubeconfig"')).to.equal(
      "/var/lib/kp/kubeconfig",
    );
    expect(kubeconfigFlagIn("ExecStart=/usr/bin/kube-proxy --config=/etc/kp.yaml")).to.equal(undefined);
  });
  it("judges /etc/kubernetes/proxy.conf when it exists (it was NotApplicable before)", async () => {
    const r = await results({ "/etc/kubernetes/proxy.conf": { mode: 0o644 } });
    expect(r["4.1.3"]).to.deep.include({ status: "Fail" });
    expect(r["4.1.3"]!.evidence).to.contain("/etc/kubernetes/proxy.conf has permissions 644");
    expect(r["4.1.4"]!.status).to.equal("Pass");
  });
  it("follows the --kubeconfig of the kube-proxy unit first", async () => {
    const r = await results(
      { "/srv/kp/kubeconfig": { mode: 0o600, uid: 1000 }, "/etc/kubernetes/proxy.conf": { mode: 0o644 } },
      {
        "/etc/systemd/system/kube-proxy.service":
          "[Service]\nExecStart=/usr/local/bin/kube-proxy --kubeconfig=/srv/kp/kubeconfig\n",
      },
    );
    expect(r["4.1.3"]!.status).to.equal("Pass");
    expect(r["4.1.3"]!.evidence).to.contain(
      "named by --kubeconfig in /etc/systemd/system/kube-proxy.service",
    );
    expect(r["4.1.4"]!.status).to.equal("Fail"); // uid 1000 is not root
  });
  it("is Unknown when the unit names a file that is absent, NotApplicable when there is no kube-proxy at all", async () => {
    const named = await results(
      {},
      { "/lib/systemd/system/kube-proxy.service": "ExecStart=kube-proxy --kubeconfig /nope\n" },
    );
    expect(named["4.1.3"]!.status).to.equal("Unknown");
    const none = await results({});
    expect(none["4.1.3"]!.status).to.equal("NotApplicable");
    expect(none["4.1.3"]!.evidence).to.contain("/etc/kubernetes/proxy.conf");
  });
});

describe("cis/files: etcd's files on a node without etcd", () => {
  it("1.1.7/1.1.8/1.1.11/1.1.12 are NotApplicable with neither the etcd manifest nor its data dir", async () => {
    const r = await results({ "/etc/kubernetes/manifests/kube-apiserver.yaml": {} });
    for (const id of ["1.1.7", "1.1.8", "1.1.11", "1.1.12"]) {
      expect(r[id]!.status, id).to.equal("NotApplicable");
      expect(r[id]!.evidence, id).to.contain("external etcd");
    }
  });
  it("a data dir without a manifest (etcd as a service): the pod spec checks do not apply, the data dir is judged", async () => {
    const r = await results({ "/var/lib/etcd": { type: "directory", mode: 0o755 } });
    expect(r["1.1.7"]!.status).to.equal("NotApplicable");
    expect(r["1.1.11"]!.status).to.equal("Fail");
  });
  it("a manifest without its data dir stays Unknown, never Pass", async () => {
    const r = await results({ "/etc/kubernetes/manifests/etcd.yaml": { mode: 0o600 } });
    expect(r["1.1.7"]!.status).to.equal("Pass");
    expect(r["1.1.11"]!.status).to.equal("Unknown");
  });
});
