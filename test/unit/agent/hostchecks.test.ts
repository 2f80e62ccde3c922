import { expect } from "chai";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
    const { checks, problem } = await hostChecks(root);
    expect(problem).to.equal(undefined);
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
});
