import { expect } from "chai";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hostChecks } from "../../../src/agent/hostchecks.js";
import { overwriteRefusal } from "../../../src/agent/keyguard.js";
import {
  agentCheckResults,
  agentReportConfigMap,
  fileReports,
  redactKeyMaterial,
} from "../../../src/evidence/agentreports.js";

// A known key, so every output can be searched for it (and for its base64 alphabet run).
const KEY = Buffer.from("KEYMATERIAL-SHOULD-NEVER-LEAK123").toString("base64");
const MALFORMED = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: key-1
              secret: ${KEY}
           oops: [
`;

describe("key material never leaves a malformed key-bearing file", () => {
  let root = "";
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), "csp-redact-"))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("the agent's report (CIS evidence, file errors) and the findings read from it never quote the file", async () => {
    mkdirSync(join(root, "etc/kubernetes/manifests"), { recursive: true });
    mkdirSync(join(root, "etc/kubernetes/enc"), { recursive: true });
    writeFileSync(join(root, "etc/kubernetes/enc/config.yaml"), MALFORMED);
    writeFileSync(
      join(root, "etc/kubernetes/manifests/kube-apiserver.yaml"),
      "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver}\nspec:\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, --encryption-provider-config=/etc/kubernetes/enc/config.yaml]\n",
    );
    const host = await hostChecks(root);
    const refusal = overwriteRefusal(
      "/etc/kubernetes/enc/config.yaml",
      MALFORMED,
      "resources: []\n",
      undefined,
    )!;
    const report = agentReportConfigMap(
      "cp-1",
      [
        {
          file: "encryption-config",
          source: "Secret/csp-system/csp-p-encryption",
          path: "/etc/kubernetes/enc/config.yaml",
          sha256: "sha256:0",
          writtenAt: "2026-01-01T00:00:00Z",
          node: "cp-1",
          error: refusal,
        },
      ],
      host.checks,
    );
    const text = JSON.stringify(report);
    expect(text).to.include("1.2.28"); // the check ran and reported...
    expect(text).to.not.include(KEY); // ...without the key
    expect(text).to.not.include("secret:");
    const results = agentCheckResults([report], "apiserver").flatMap((n) => n.results);
    const evidence = results.find((r) => r.id === "1.2.28")?.evidence ?? "";
    expect(evidence).to.match(/line \d+, column \d+/);
    expect(JSON.stringify(results)).to.not.include(KEY);
    expect(JSON.stringify(fileReports([report]))).to.not.include(KEY);
    expect(host.problem ?? "").to.not.include(KEY);
  });

  it("redacts code frames and secret values, keeps hashes and names", () => {
    // The yaml library's error message, as src/cis puts it into a check's evidence.
    const message = `file.yaml: the file is not valid YAML: bad at line 10, column 1:\n\n              secret: ${KEY}\n           oops: [\n^\n`;
    expect(redactKeyMaterial(message)).to.equal(
      "file.yaml: the file is not valid YAML: bad at line 10, column 1",
    );
    expect(redactKeyMaterial(`{ name: k, secret: "${KEY}" }`)).to.not.include(KEY);
    const hash = `sha256:${"ab".repeat(32)}`;
    expect(redactKeyMaterial(`hash ${hash} key-20260101000000`)).to.equal(`hash ${hash} key-20260101000000`);
    const path = "/etc/kubernetes/encryptionconfiguration/providers.yaml";
    expect(redactKeyMaterial(path)).to.equal(path);
    expect(redactKeyMaterial(`a 24-byte key ${Buffer.alloc(24, 0xab).toString("base64")}x9Q`)).to.include(
      "<redacted>",
    );
  });
});
