import { expect } from "chai";
import { KubeConfig, RequestContext } from "@kubernetes/client-node";
import { fenceWrites, NotLeaderError } from "../../../src/runtime/writefence.js";

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

describe("fenceWrites", () => {
  const ctx = (method: string, path: string) =>
    new RequestContext(`https://127.0.0.1:1${path}`, method as never);

  it("refuses every mutating request while not allowed; reads and exempt paths pass", async () => {
    const kc = kubeConfig();
    let leader = false;
    fenceWrites(
      kc,
      () => leader,
      (p) => p.startsWith("/apis/coordination.k8s.io/"),
    );
    for (const m of ["POST", "PUT", "PATCH", "DELETE"]) {
      let err: unknown;
      await kc
        .applySecurityAuthentication(ctx(m, "/api/v1/namespaces/a/configmaps/x"))
        .catch((e: unknown) => (err = e));
      expect(err, m).to.be.instanceOf(NotLeaderError);
    }
    await kc.applySecurityAuthentication(ctx("GET", "/api/v1/namespaces"));
    await kc.applySecurityAuthentication(
      ctx("PUT", "/apis/coordination.k8s.io/v1/namespaces/csp-system/leases/l"),
    );
    leader = true;
    const c = ctx("PATCH", "/api/v1/namespaces/a");
    await kc.applySecurityAuthentication(c);
    expect(c.getHeaders()["Authorization"]).to.equal("Bearer t");
  });
});
