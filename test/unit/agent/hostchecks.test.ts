import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostChecks } from "../../../src/agent/hostchecks.js";

describe("agent host checks", () => {
  let root = "";
  const put = (path: string, text: string, mode = 0o600) => {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
    chmodSync(join(root, path), mode);
  };
  const manifest = (flags: string[]) => `apiVersion: v1
kind: Pod
metadata: { name: kube-apiserver, namespace: kube-system }
spec:
  containers:
    - name: kube-apiserver
      command:
${["kube-apiserver", ...flags].map((f) => `        - ${f}`).join("\n")}
`;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), "csp-host-"))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("judges the kube-apiserver from its manifest and the files its flags name, read under the host root", async () => {
    put(
      "etc/kubernetes/manifests/kube-apiserver.yaml",
      manifest(["--anonymous-auth=false", "--encryption-provider-config=/etc/kubernetes/enc/config.yaml"]),
    );
    put(
      "etc/kubernetes/enc/config.yaml",
      "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - identity: {}\n",
    );
    const { checks, problem, namedFiles } = await hostChecks(root);
    expect(problem).to.equal(undefined);
    expect(namedFiles).to.deep.equal(["/etc/kubernetes/enc/config.yaml"]);
    const byId = new Map((checks.apiserver ?? []).map((r) => [r.id, r]));
    expect(byId.get("1.2.1")?.status).to.equal("Pass");
    // The file the mirror-pod path can never read decides this one: identity first means unencrypted.
    expect(byId.get("1.2.28")?.status).to.equal("Fail");
    expect(byId.get("1.2.28")?.evidence).to.contain("identity");
    expect(checks.files?.find((r) => r.id === "1.1.1")?.status).to.equal("Pass");
  });

  it("runs only the file checks on a node without a kube-apiserver manifest, and says when one cannot be parsed", async () => {
    const none = await hostChecks(root);
    expect(none.checks.apiserver).to.equal(undefined);
    expect(none.checks.files?.length).to.be.greaterThan(0);
    put("etc/kubernetes/manifests/kube-apiserver.yaml", "kind: [broken");
    const broken = await hostChecks(root);
    expect(broken.checks.apiserver).to.equal(undefined);
    expect(broken.problem).to.contain("/etc/kubernetes/manifests/kube-apiserver.yaml");
  });

  it("reads the manifest and the files its flags name only inside the host root", async () => {
    const outside = mkdtempSync(join(tmpdir(), "csp-outside-"));
    try {
      writeFileSync(join(outside, "kube-apiserver.yaml"), manifest(["--anonymous-auth=true"]));
      mkdirSync(join(root, "etc/kubernetes/manifests"), { recursive: true });
      symlinkSync(
        join(outside, "kube-apiserver.yaml"),
        join(root, "etc/kubernetes/manifests/kube-apiserver.yaml"),
      );
      const escaped = await hostChecks(root);
      expect(escaped.checks.apiserver).to.equal(undefined); // the link resolves to nothing inside the root
      expect(escaped.problem).to.equal(undefined);

      writeFileSync(join(outside, "enc.yaml"), "CANARY-OUTSIDE: [\n");
      rmSync(join(root, "etc/kubernetes/manifests/kube-apiserver.yaml"));
      put(
        "etc/kubernetes/manifests/kube-apiserver.yaml",
        manifest(["--anonymous-auth=false", "--encryption-provider-config=/etc/kubernetes/enc/config.yaml"]),
      );
      mkdirSync(join(root, "etc/kubernetes/enc"), { recursive: true });
      symlinkSync(join(outside, "enc.yaml"), join(root, "etc/kubernetes/enc/config.yaml"));
      const { checks } = await hostChecks(root);
      const r = checks.apiserver?.find((x) => x.id === "1.2.28");
      expect(r?.status).to.equal("Unknown");
      expect(r?.evidence).to.include("ENOENT");
      expect(JSON.stringify(checks)).not.to.include("CANARY-OUTSIDE");
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it("says, in one line, why a FIFO, oversized or alias-bomb manifest yields no results, without hanging", async () => {
    const path = "etc/kubernetes/manifests/kube-apiserver.yaml";
    mkdirSync(join(root, "etc/kubernetes/manifests"), { recursive: true });
    execFileSync("mkfifo", [join(root, path)]);
    const fifo = await hostChecks(root);
    expect(fifo.checks.apiserver).to.equal(undefined);
    expect(fifo.problem).to.equal(
      `/${path}: cannot read it: is a FIFO, not a regular file (read as ${join(root, path)})`,
    );
    rmSync(join(root, path));
    put(path, `kind: Pod\n# ${"x".repeat(2 * 1024 * 1024)}\n`);
    expect((await hostChecks(root)).problem).to.include("is larger than 1 MiB");
    let bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n';
    for (let i = 0; i < 9; i++)
      bomb += `b${i}: &b${i} [${Array(9)
        .fill(i === 0 ? "*a" : `*b${i - 1}`)
        .join(",")}]\n`;
    put(path, bomb);
    expect((await hostChecks(root)).problem).to.equal(
      `/${path}: is not valid YAML: too many aliases (a YAML alias bomb?)`,
    );
    put(path, 'kind: "\\e[2J"\n');
    expect((await hostChecks(root)).problem).to.equal(
      `/${path}: is not a Pod (kind: a string of 4 characters)`,
    );
  });
});
