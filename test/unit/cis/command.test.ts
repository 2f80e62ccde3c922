import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCheckCommand } from "../../../src/cis/command.js";

const FIX = new URL("../../fixtures/cis/", import.meta.url).pathname;
const KUBELET_FLAGS =
  "/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml --kubeconfig=/etc/kubernetes/kubelet.conf";

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runCheckCommand(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

interface Report {
  benchmark: string;
  results: { id: string; title: string; status: string; evidence: string }[];
}

function statuses(r: Report): Record<string, string> {
  return Object.fromEntries(r.results.map((x) => [x.id, x.status]));
}

describe("cis/command: csp-operator check", () => {
  it("exits 0 on the hardened fixtures and prints the JSON report", async () => {
    const { code, stdout, stderr } = await run([
      "--apiserver-manifest",
      `${FIX}hardened/kube-apiserver.yaml`,
      "--kubelet-flags",
      KUBELET_FLAGS,
      "--host-root",
      `${FIX}hardened/root`,
      "-o",
      "json",
    ]);
    expect(stderr).to.equal("");
    expect(code).to.equal(0);
    const report = JSON.parse(stdout) as Report;
    expect(Object.keys(report)).to.deep.equal(["benchmark", "results"]);
    expect(report.benchmark).to.equal("cis-1.12");
    expect(report.results).to.have.length(46);
    for (const r of report.results)
      expect(Object.keys(r)).to.deep.equal(["id", "title", "status", "evidence"]);
    expect(report.results[5]).to.deep.equal({
      id: "1.2.6",
      title: "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
      status: "Pass",
      evidence:
        "authorizers in --authorization-config=/etc/kubernetes/config/authorization.yaml: [Node, RBAC]",
    });
    const s = statuses(report);
    const notPass = Object.entries(s).filter(([, v]) => v !== "Pass");
    expect(notPass).to.deep.equal([
      ["1.2.20", "Manual"],
      ["4.2.8", "Manual"],
    ]);
  });

  it("exits 1 on the weak fixtures, failing what a regex audit would pass", async () => {
    const { code, stdout } = await run([
      `--apiserver-manifest=${FIX}weak/kube-apiserver.yaml`,
      `--kubelet-flags=${KUBELET_FLAGS}`,
      `--host-root=${FIX}weak/root`,
      "-o=json",
    ]);
    expect(code).to.equal(1);
    const s = statuses(JSON.parse(stdout) as Report);
    expect(s).to.deep.include({
      "1.2.1": "Fail", // --anonymous-auth=false then --anonymous-auth=true: the last wins
      "1.2.5": "Fail",
      "1.2.6": "Pass",
      "1.2.12": "Pass",
      "1.2.14": "Pass",
      "1.2.15": "Fail",
      "1.2.16": "Fail", // --audit-log-path without --audit-policy-file records nothing
      "1.2.17": "Fail", // --audit-log-maxage=030 is octal 24
      "1.2.18": "Pass",
      "1.2.27": "Pass",
      "1.2.28": "Fail", // identity first
      "1.2.29": "Fail",
      "1.2.30": "Fail",
      "4.2.1": "Fail",
      "4.2.2": "Pass",
      "4.2.4": "Fail",
      "4.2.5": "Pass", // 0s in the config means the 4h default
      "4.2.10": "Fail", // absent from the config file: default false
      "4.2.13": "Fail",
      "4.2.14": "Fail",
    });
  });

  it("reports Unknown (never a guess) and exits 3 when the files flags name are missing under --host-root", async () => {
    const empty = mkdtempSync(join(tmpdir(), "cis-root-"));
    try {
      const { code, stdout } = await run([
        "--apiserver-manifest",
        `${FIX}hardened/kube-apiserver.yaml`,
        "--kubelet-flags",
        KUBELET_FLAGS,
        "--host-root",
        empty,
        "-o",
        "json",
      ]);
      expect(code).to.equal(3);
      const report = JSON.parse(stdout) as Report;
      const unknown = report.results.filter((r) => r.status === "Unknown").map((r) => r.id);
      expect(unknown).to.deep.equal([
        "1.2.6",
        "1.2.7",
        "1.2.8",
        "1.2.16",
        "1.2.28",
        "3.2.1",
        "3.2.2",
        "4.2.1",
        "4.2.2",
        "4.2.3",
        "4.2.4",
        "4.2.5",
        "4.2.6",
        "4.2.8",
        "4.2.9",
        "4.2.10",
        "4.2.11",
        "4.2.12",
        "4.2.13",
        "4.2.14",
      ]);
      expect(report.results.find((r) => r.id === "1.2.6")?.evidence).to.equal(
        `--authorization-config=/etc/kubernetes/config/authorization.yaml: cannot read /etc/kubernetes/config/authorization.yaml: ENOENT (read as ${join(empty, "etc/kubernetes/config/authorization.yaml")})`,
      );
      expect(report.results.find((r) => r.id === "4.2.1")?.evidence).to.equal(
        `--anonymous-auth is not set and the kubelet config /var/lib/kubelet/config.yaml cannot be used: cannot read /var/lib/kubelet/config.yaml: ENOENT (read as ${join(empty, "var/lib/kubelet/config.yaml")})`,
      );
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("prints a table by default and warns about a command line the kubelet would reject", async () => {
    const { code, stdout, stderr } = await run([
      "--kubelet-flags",
      "--kubeconfig=/etc/kubernetes/kubelet.conf --anonymous-auth false",
    ]);
    expect(code).to.equal(1);
    expect(stdout.split("\n").slice(0, 3)).to.deep.equal([
      "CIS Kubernetes Benchmark cis-1.12",
      "ID      STATUS  TITLE",
      "4.2.1   Fail    Ensure that the --anonymous-auth argument is set to false",
    ]);
    expect(stdout).to.contain("\n14 checks: ");
    expect(stderr).to.equal(
      'warning: kubelet: stray argument "false" at position 2 (the kubelet would refuse to start)\n',
    );
  });

  it("checks a kubelet config given directly, without flags", async () => {
    const { code, stdout } = await run([
      "--kubelet-config",
      `${FIX}hardened/root/var/lib/kubelet/config.yaml`,
      "-o",
      "json",
    ]);
    expect(code).to.equal(0);
    expect((JSON.parse(stdout) as Report).results.map((r) => r.id)[0]).to.equal("4.2.1");
  });

  it("exits 2 with a message naming the problem on bad input", async () => {
    const cases: [string[], string][] = [
      [["--frobnicate"], "unknown option '--frobnicate'"],
      [["--apiserver-manifest"], "option '--apiserver-manifest <file>' argument missing"],
      [["--apiserver-manifest", ""], "it needs a file name"],
      [["--etcd-manifest"], "option '--etcd-manifest <file>' argument missing"],
      [
        ["--apiserver-manifest", `${FIX}does-not-exist.yaml`],
        `cannot read --apiserver-manifest ${FIX}does-not-exist.yaml: ENOENT`,
      ],
      [
        ["--apiserver-manifest", `${FIX}not-a-pod.yaml`],
        `--apiserver-manifest ${FIX}not-a-pod.yaml is not a Pod (kind: "Deployment")`,
      ],
      [
        ["--kubelet-config", `${FIX}weak/kube-apiserver.yaml`],
        'has apiVersion "v1" kind "Pod", expected kubelet.config.k8s.io/v1beta1',
      ],
      [["--kubelet-flags", "--config='/x"], "--kubelet-flags: unterminated single quote"],
      [["--kubelet-flags", "", "-o", "yaml"], "-o must be one of table, json, junit, kube-bench"],
      [["-o", "json"], "nothing to check"],
      [["--kubelet-flags", "", "--host-root", `${FIX}nope`], `--host-root ${FIX}nope is not a directory`],
      [["--kubelet-flags", "", "--kubelet-flags", ""], "the option is given more than once"],
      [["stray"], "too many arguments"],
      [["--secret-environment-variables"], "--secret-environment-variables needs --kubeconfig"],
      [["--kubeconfig", `${FIX}nope.kubeconfig`], `cannot load --kubeconfig ${FIX}nope.kubeconfig: ENOENT`],
      [["--kubeconfig", "/dev/zero"], "cannot load --kubeconfig /dev/zero: is a character device"],
    ];
    for (const [argv, message] of cases) {
      const { code, stdout, stderr } = await run(argv);
      expect(code, argv.join(" ")).to.equal(2);
      expect(stdout, argv.join(" ")).to.equal("");
      expect(stderr, argv.join(" ")).to.contain(message);
      expect(stderr, argv.join(" ")).to.match(/^csp-operator check: /);
    }
  });

  it("prints usage for --help and exits 0", async () => {
    const { code, stdout } = await run(["--help"]);
    expect(code).to.equal(0);
    expect(stdout).to.contain("Usage: csp-operator check");
  });
});
