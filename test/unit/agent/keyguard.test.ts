import { expect } from "chai";
import { decryptionKeys, keysDropped } from "../../../src/agent/keyguard.js";

const config = (providers: string) => `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
${providers}`;

const foreign = config(`      - aesgcm:
          keys:
            - { name: legacy-1, secret: c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTIzNDU2Nzg= }
      - kms: { apiVersion: v2, name: vault, endpoint: unix:///kms.sock }
      - identity: {}`);

describe("agent key guard", () => {
  it("lists every key a configuration can decrypt with, by provider", () => {
    expect([...decryptionKeys(foreign)].sort()).to.deep.equal(["aesgcm/legacy-1", "kms/vault"]);
    expect([...decryptionKeys(config("      - identity: {}"))]).to.deep.equal([]);
    expect([...decryptionKeys("not: [valid")]).to.deep.equal([]);
    expect([...decryptionKeys("")]).to.deep.equal([]);
  });

  it("names the keys a replacement would drop, and nothing when it keeps them", () => {
    const ours = config(`      - aescbc:
          keys:
            - { name: key-20261123000000, secret: b3Vyc291cnNvdXJzb3Vyc291cnNvdXJzb3VyczEyMzQ= }
      - identity: {}`);
    expect(keysDropped(foreign, ours)).to.deep.equal(["aesgcm/legacy-1", "kms/vault"]);
    expect(keysDropped(config("      - identity: {}"), ours)).to.deep.equal([], "plaintext: nothing to lose");
    expect(keysDropped(ours, ours)).to.deep.equal([]);
    // The same name under another provider is another key: objects carry the provider in their prefix.
    const renamed = ours.replace("aescbc", "aesgcm");
    expect(keysDropped(ours, renamed)).to.deep.equal(["aescbc/key-20261123000000"]);
  });
});
