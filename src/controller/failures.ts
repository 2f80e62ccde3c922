import { errorMessage } from "../cluster/client.js";
import { ForbiddenError, InvalidError, NotGrantableError } from "../cluster/rest.js";

/** Why part of a reconcile could not be done, in words a user can act on. */
export interface WriteFailure {
  reason: string;
  message: string;
  /** A failure that retrying cannot fix (a spec the API server rejects): no backoff loop. */
  terminal?: boolean;
}

export { GRANTABLE_CLUSTER_ROLE } from "../api/vocabulary.js";
import { GRANTABLE_CLUSTER_ROLE } from "../api/vocabulary.js";

/** A Role beyond what the operator may grant, found by the operator itself or by the API server. */
export function notGrantableFailure(
  object: string,
  field: string | undefined,
  missing: string,
): WriteFailure {
  missing = missing.replace(/\s+/g, " ").trim().slice(0, 600);
  return {
    reason: "RoleNotGrantable",
    message:
      `${field ? `${field} (${object})` : object}: the operator may not grant ${missing || "these permissions"}; ` +
      `what generated Roles may grant is bounded by ClusterRole ${GRANTABLE_CLUSTER_ROLE} (extend it with a ` +
      `ClusterRole labelled security.csp-operator.io/aggregate-to-grantable=true)`,
    // A change to the grantable ClusterRole (aggregation included) re-enqueues every policy with
    // rbac.roles, one to the operator's own grants every policy (cluster/rbacevents.ts): no backoff loop.
    terminal: true,
  };
}

/**
 * Why a write failed, in words a user can act on. `object` is `Kind/namespace/name`; `field` is the spec
 * entry the object comes from, when there is one, so the message points at what to fix in the policy.
 */
export function classify(err: unknown, object: string, field?: string): WriteFailure {
  const text = errorMessage(err);
  if (err instanceof NotGrantableError) return notGrantableFailure(object, field, err.missing);
  const reason =
    err instanceof InvalidError ? "InvalidSpec" : err instanceof ForbiddenError ? "Forbidden" : "ApplyFailed";
  return { reason, message: `${(reason === "InvalidSpec" && field) || object}: ${text}` };
}

/** The failure that names the reconcile's outcome: what the user must fix first. */
export function worstFailure(failures: readonly WriteFailure[]): WriteFailure | undefined {
  return (
    failures.find((f) => f.reason === "InvalidSpec") ??
    failures.find((f) => f.reason === "RoleNotGrantable") ??
    failures.find((f) => f.reason === "Forbidden") ??
    failures[0]
  );
}
