import { expect } from "chai";
import {
  apiError,
  ApiError,
  ConflictError,
  ForbiddenError,
  InvalidError,
  NotFoundError,
  NotGrantableError,
  ThrottledError,
} from "../../../src/cluster/rest.js";
import { classify } from "../../../src/controller/failures.js";

describe("typed API errors", () => {
  it("maps each status to its class, keeping the code for callers that need it", () => {
    expect(apiError(404, {})).to.be.instanceOf(NotFoundError);
    expect(apiError(409, {})).to.be.instanceOf(ConflictError);
    expect(apiError(403, { message: "no" }))
      .to.be.instanceOf(ForbiddenError)
      .and.not.instanceOf(NotGrantableError);
    expect(apiError(422, {})).to.be.instanceOf(InvalidError);
    expect(apiError(400, {})).to.be.instanceOf(InvalidError);
    expect(apiError(429, {})).to.be.instanceOf(ThrottledError);
    const other = apiError(500, { message: "etcd" });
    expect(other).to.be.instanceOf(ApiError).and.not.instanceOf(NotFoundError);
    expect(other.code).to.equal(500);
  });

  it("tells RBAC's escalation refusal apart from any other 403 and names what is missing", () => {
    const err = apiError(403, {
      message:
        'roles.rbac "r" is forbidden: attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}',
    });
    expect(err).to.be.instanceOf(NotGrantableError);
    expect((err as NotGrantableError).missing).to.contain("secrets");
    const f = classify(err, "Role/a/r", "spec.rbac.roles[name=r]");
    expect(f.reason).to.equal("RoleNotGrantable");
    expect(f.message).to.contain("secrets").and.contain("spec.rbac.roles[name=r]");
    expect(
      classify(
        apiError(422, { message: "bad port" }),
        "NetworkPolicy/a/x",
        "spec.networkPolicies.extra[name=x].spec",
      ),
    ).to.deep.include({
      reason: "InvalidSpec",
      message: "spec.networkPolicies.extra[name=x].spec: bad port",
    });
    expect(classify(apiError(403, { message: "denied" }), "Role/a/r").reason).to.equal("Forbidden");
    expect(classify(new Error("socket hang up"), "Role/a/r").reason).to.equal("ApplyFailed");
  });
});
