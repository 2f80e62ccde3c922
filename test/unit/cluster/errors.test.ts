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
import { replacedObjectConflict } from "../../../src/cluster/applier.js";

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

  it("an apply refused because the object was deleted and re-created (422 on metadata.uid only) is a retried conflict, not InvalidSpec", () => {
    const uidOnly = apiError(422, {
      kind: "Status",
      reason: "Invalid",
      message:
        'NetworkPolicy.networking.k8s.io "csp-p.web" is invalid: metadata.uid: Invalid value: "x": field is immutable',
      details: {
        causes: [{ reason: "FieldValueInvalid", message: "field is immutable", field: "metadata.uid" }],
      },
    });
    const mapped = replacedObjectConflict(uidOnly);
    expect(mapped).to.be.instanceOf(ConflictError);
    const f = classify(mapped, "NetworkPolicy/a/csp-p.web", "spec.networkPolicies.extra[name=web].spec");
    expect(f.reason).to.equal("ApplyFailed");
    expect(f.terminal).to.equal(undefined);
    expect(f.message).to.match(/^NetworkPolicy\/a\/csp-p.web: .*deleted and re-created/);
    // Any other 422 (or one naming the spec too) stays the spec's fault.
    const spec = apiError(422, {
      details: {
        causes: [
          { field: "metadata.uid", message: "field is immutable" },
          { field: "spec.podSelector", message: "bad" },
        ],
      },
    });
    expect(replacedObjectConflict(spec)).to.equal(undefined);
    expect(replacedObjectConflict(apiError(422, { details: { causes: [] } }))).to.equal(undefined);
    expect(replacedObjectConflict(apiError(409, {}))).to.equal(undefined);
  });
});
