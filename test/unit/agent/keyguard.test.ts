import { expect } from "chai";
import { decryptionKeys, keysDropped, overwriteRefusal } from "../../../src/agent/keyguard.js";

const config = (providers: string, resources = "[secrets]") => `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: ${resources}
    providers:
${providers}`;

const foreign = config(`      - aesgcm:
          keys:
            - { name: legacy-1, secret: c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTIzNDU2Nzg= }
      - kms: { apiVersion: v2, name: vault, endpoint: unix:///kms.sock }
      - identity: {}`);

const KEY1 = "b3Vyc291cnNvdXJzb3Vyc291cnNvdXJzb3VyczEyMzQ=";
const ours = config(`      - aescbc:
          keys:
            - { name: key-20261123000000, secret: ${KEY1} }
      - identity: {}`);

describe("agent key guard", () => {
  it("lists every key a configuration can decrypt with, by provider", () => {
    expect([...decryptionKeys(foreign)].sort()).to.deep.equal(["aesgcm/legacy-1", "kms/vault"]);
    expect([...decryptionKeys(config("      - identity: {}"))]).to.deep.equal([]);
    expect([...decryptionKeys("not: [valid")]).to.deep.equal([]);
    expect([...decryptionKeys("")]).to.deep.equal([]);
  });

  it("names the keys a replacement would drop, and nothing when it keeps them", () => {
    expect(keysDropped(foreign, ours)).to.deep.equal(["secrets: aesgcm/legacy-1", "secrets: kms/vault"]);
    expect(keysDropped(config("      - identity: {}"), ours)).to.deep.equal([], "plaintext: nothing to lose");
    expect(keysDropped(ours, ours)).to.deep.equal([]);
    // The same name under another provider is another key: objects carry the provider in their prefix.
    const renamed = ours.replace("aescbc", "aesgcm");
    expect(keysDropped(ours, renamed)).to.deep.equal(["secrets: aescbc/key-20261123000000"]);
  });

  it("compares per resource: a resource that leaves the configuration loses every key it had", () => {
    const both = config(
      `      - aescbc:
          keys:
            - { name: key-1, secret: ${KEY1} }
      - identity: {}`,
      "[secrets, configmaps]",
    );
    const secretsOnly = both.replace("[secrets, configmaps]", "[secrets]");
    // Same key names overall, but configmaps stored with key-1 would be read as plaintext: unreadable.
    expect(keysDropped(both, secretsOnly)).to.deep.equal(["configmaps: aescbc/key-1"]);
    // A resource moved to an entry of its own that still holds the key loses nothing.
    const split = `${secretsOnly}
  - resources: [configmaps]
    providers:
      - identity: {}
      - aescbc:
          keys:
            - { name: key-1, secret: ${KEY1} }
`;
    expect(keysDropped(both, split)).to.deep.equal([]);
    // Dropping identity makes plaintext objects of that resource unreadable.
    const noIdentity = secretsOnly.replace(/\n\s+- identity: \{\}/, "");
    expect(keysDropped(secretsOnly, noIdentity)).to.deep.equal(["secrets: identity"]);
    // Wildcards: the first matching entry decides, as in the API server.
    const wildcard = config(
      `      - aescbc:\n          keys:\n            - { name: key-1, secret: ${KEY1} }`,
      "['*.*']",
    );
    expect(keysDropped(wildcard, secretsOnly)).to.include("*.*: aescbc/key-1");
    expect(keysDropped(wildcard, secretsOnly)).to.not.include("secrets: aescbc/key-1");
  });

  it("lets go of exactly what the operator declared retired after a completed rewrite", () => {
    const both = config(
      `      - aescbc:
          keys:
            - { name: key-new, secret: ${KEY1} }
            - { name: key-old, secret: ${KEY1} }
      - identity: {}`,
      "[secrets, configmaps]",
    );
    const after = config(
      `      - aescbc:
          keys:
            - { name: key-new, secret: ${KEY1} }
      - identity: {}`,
    );
    expect(keysDropped(both, after)).to.deep.equal([
      "configmaps: aescbc/key-new",
      "configmaps: aescbc/key-old",
      "secrets: aescbc/key-old",
    ]);
    expect(keysDropped(both, after, { keys: ["aescbc/key-old"], resources: [] })).to.deep.equal([
      "configmaps: aescbc/key-new",
    ]);
    expect(keysDropped(both, after, { keys: ["aescbc/key-old"], resources: ["configmaps"] })).to.deep.equal(
      [],
    );
  });

  it("refuses to replace a malformed file, naming line and column but never its content", () => {
    const secret = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU=";
    const malformed = config(`      - aescbc:
          keys:
            - name: key-1
              secret: ${secret}
           oops: [`);
    const why = overwriteRefusal("/etc/kubernetes/enc.yaml", malformed, ours, undefined);
    expect(why).to.be.a("string");
    expect(why).to.match(/malformed/);
    expect(why).to.match(/line \d+, column \d+/);
    expect(why).to.not.include(secret);
    expect(why).to.not.include("secret:");
    // A well-formed file that keeps every key is replaced; one that would lose keys is not.
    expect(overwriteRefusal("/p", ours, ours, undefined)).to.equal(undefined);
    const refusal = overwriteRefusal("/p", foreign, ours, undefined);
    expect(refusal).to.include("aesgcm/legacy-1");
    expect(refusal).to.not.include("c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTIzNDU2Nzg=");
  });
});
