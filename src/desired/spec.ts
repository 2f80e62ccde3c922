import { applyDefaults } from "../api/defaults.js";
import {
  specSchema,
  type ClusterSecurityPolicy,
  type ClusterSecurityPolicySpec,
} from "../api/v1alpha1/policy.js";

/** Per policy object: the spec it was computed from, and the defaulted spec (frozen). */
const effective = new WeakMap<
  ClusterSecurityPolicy,
  { spec: ClusterSecurityPolicy["spec"]; effective: ClusterSecurityPolicySpec }
>();

/**
 * The policy's spec with every default filled in, exactly as the API server would have defaulted it.
 * Pure code reads specs only through this, so a policy loaded from a file behaves like a stored one.
 *
 * Computed once per policy object (the informer hands the same object until the policy changes, and one
 * plan asks for it many times) and deep-frozen: the value is shared, so a caller that would change it
 * fails at once instead of changing every later answer. A policy whose `spec` is replaced gets a new value.
 */
export function effectiveSpec(policy: ClusterSecurityPolicy): Readonly<ClusterSecurityPolicySpec> {
  const known = effective.get(policy);
  if (known && known.spec === policy.spec) return known.effective;
  // A copy first: defaulting keeps parts it has no schema for (free-form fields) by reference, and
  // freezing must not reach into the policy object itself.
  const value = deepFreeze(
    applyDefaults(specSchema.openapi, structuredClone(policy.spec ?? {})) as ClusterSecurityPolicySpec,
  );
  effective.set(policy, { spec: policy.spec, effective: value });
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export function isEnforcing(policy: ClusterSecurityPolicy): boolean {
  return effectiveSpec(policy).mode !== "Audit";
}

export function isDeleting(policy: ClusterSecurityPolicy): boolean {
  return policy.metadata.deletionTimestamp !== undefined && policy.metadata.deletionTimestamp !== null;
}
