import { expect } from "chai";
import {
  apiServerIdHash,
  encryptionMetrics,
  judgeLoaded,
  parseMetrics,
} from "../../../src/evidence/apiserver.js";

// Lines as a v1.36.3 kube-apiserver printed them (hashes shortened where irrelevant).
const ID = "apiserver-wlv32tlttr4jl3gtroqexyxapa";
const ID_HASH = "sha256:73095bbbe8f317654631b5a70d7c53951e472e19c3daa5b71a50958a5e82991b";
const TEXT = `# HELP apiserver_encryption_config_controller_last_config_info [ALPHA] Information about the last applied encryption configuration with hash as label, split by apiserver identity.
# TYPE apiserver_encryption_config_controller_last_config_info gauge
apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="${ID_HASH}",hash="sha256:30f2"} 1
# TYPE apiserver_storage_transformation_operations_total counter
apiserver_storage_transformation_operations_total{resource="secrets",status="OK",transformation_type="from_storage",transformer_prefix="k8s:enc:aescbc:v1:"} 2
apiserver_storage_transformation_operations_total{resource="secrets",status="OK",transformation_type="to_storage",transformer_prefix="k8s:enc:aescbc:v1:"} 1
apiserver_storage_transformation_duration_seconds_bucket{transformation_type="to_storage",transformer_prefix="k1:",le="2e-05"} 1
`;

describe("API server evidence", () => {
  it("parses the loaded config and the transformations from real /metrics lines", () => {
    const m = encryptionMetrics(TEXT);
    expect(m.loaded).to.deep.equal([{ apiServerIdHash: ID_HASH, hash: "sha256:30f2" }]);
    expect(m.transformations).to.deep.equal([
      { resource: "secrets", type: "from_storage", prefix: "k8s:enc:aescbc:v1:", status: "OK", count: 2 },
      { resource: "secrets", type: "to_storage", prefix: "k8s:enc:aescbc:v1:", status: "OK", count: 1 },
    ]);
    expect(parseMetrics('x{a="q\\"uote"} 3')).to.deep.equal([
      { name: "x", labels: { a: 'q"uote' }, value: 3 },
    ]);
  });

  it("maps an identity Lease name to its apiserver_id_hash", () => {
    expect(apiServerIdHash(ID)).to.equal(ID_HASH);
  });

  it("counts a server as loaded only with the expected hash, and unseen identities as not loaded", () => {
    const a = { apiServerIdHash: apiServerIdHash("a"), hash: "sha256:new" };
    const b = { apiServerIdHash: apiServerIdHash("b"), hash: "sha256:old" };
    expect(judgeLoaded("sha256:new", [a], { identities: ["a"] }).allLoaded).to.equal(true);
    expect(judgeLoaded("sha256:new", [a, b], { identities: ["a", "b"] })).to.deep.include({
      allLoaded: false,
      loaded: 1,
      servers: 2,
    });
    const unseen = judgeLoaded("sha256:new", [a], { identities: ["a", "c"] });
    expect(unseen.allLoaded).to.equal(false);
    expect(unseen.message).to.include("c (never reported)");
    expect(judgeLoaded("sha256:new", [a, b], { identities: ["a", "b"] }).message).to.include(
      "b (reported sha256:old)",
    );
  });

  it("never counts only the servers that reported: the expected set must be known and complete", () => {
    const a = { apiServerIdHash: apiServerIdHash("a"), hash: "sha256:new" };
    // Identity Leases not readable: the servers seen in /metrics prove nothing about the others.
    const blind = judgeLoaded("sha256:new", [a], {});
    expect(blind.allLoaded).to.equal(false);
    expect(blind.message).to.match(/identity Leases/);
    expect(judgeLoaded("sha256:new", [], {}).allLoaded).to.equal(false);
    // No identity Lease at all: nothing known, nothing proven.
    expect(judgeLoaded("sha256:new", [a], { identities: [] }).allLoaded).to.equal(false);
    // More endpoints behind the kubernetes Service than identities: a server without a Lease is unchecked.
    const hidden = judgeLoaded("sha256:new", [a], { identities: ["a"], endpoints: ["10.0.0.1", "10.0.0.2"] });
    expect(hidden.allLoaded).to.equal(false);
    expect(hidden.message).to.match(/2 endpoint/);
    expect(judgeLoaded("sha256:new", [a], { identities: ["a"], endpoints: ["10.0.0.1"] }).allLoaded).to.equal(
      true,
    );
  });
});
