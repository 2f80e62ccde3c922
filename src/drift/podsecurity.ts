import type { V1Namespace } from "@kubernetes/client-node";
import type { ClusterSecurityPolicy, PodSecurityLevel } from "../api/v1alpha1/policy.js";
import { FIELD_MANAGER } from "../api/vocabulary.js";
import type { SharedNamespaceState } from "../desired/namespacestate.js";
import { PSA_PREFIX, wantedNamespaceLabels } from "../desired/podsecurity.js";
import { effectiveSpec } from "../desired/spec.js";
import { areaExemptInNamespace } from "../api/exemptions.js";
import type { Finding } from "../findings/finding.js";
import type { Snapshot } from "../cluster/snapshot.js";
import { drain, SLICE, type Steps } from "../desired/slices.js";
import { namespacesByName } from "./checks.js";
import { appliedPaths, fieldPaths } from "./managedfields.js";

/**
 * Pod Security labels on a namespace only tighten. The operator may raise a level
 * (privileged < baseline < restricted), never lower one it did not set, and on release it puts back what was
 * there before it raised it.
 *
 * "Set by the operator" means: the `csp-operator` field manager owns the label through server-side apply
 * (managedFields). A label the namespace's owner set, at or above what the policies want, is left alone and
 * never taken over, so it survives the policy. A lower one is raised, and the value found is recorded in the
 * annotation ORIGINALS_ANNOTATION (JSON: label key -> original value, or null when the label was absent),
 * written in the same apply. The record is kept while the operator holds the label, including when someone
 * lowers it by hand and the operator raises it again, so release always returns to the value from before the
 * operator first raised it. A `<mode>-version` label goes with its level: taken only when the level is.
 */
export const ORIGINALS_ANNOTATION = "security.csp-operator.io/pod-security-originals";

/**
 * The field manager that gives a label back at its original value on release. Applying it (rather than
 * dropping the key from the operator's apply, which would delete the label) transfers the label to a manager
 * that never releases anything: every restore apply carries every label this manager already holds.
 */
export const RESTORE_MANAGER = "csp-operator-restore";

const LEVEL_RANK: Record<PodSecurityLevel, number> = { privileged: 0, baseline: 1, restricted: 2 };
const LEVEL_KEY = /^pod-security\.kubernetes\.io\/(enforce|audit|warn)$/;
const LABELS = "metadata.labels.";
const ANNOTATIONS = "metadata.annotations.";

/**
 * Orders Pod Security versions: `latest` (also what an absent version label means) above every `vMAJOR.MINOR`,
 * and those numerically. Negative when `a` enforces older (weaker) rules than `b`. An unparsable version is
 * the weakest: the admission plugin would not honour it as a newer one.
 */
export function compareVersions(a: string | undefined, b: string | undefined): number {
  const rank = (v: string | undefined): [number, number] => {
    if (v === undefined || v === "latest") return [Infinity, Infinity];
    const m = /^v(\d+)\.(\d+)$/.exec(v);
    return m ? [Number(m[1]), Number(m[2])] : [-1, -1];
  };
  const [a1, a2] = rank(a);
  const [b1, b2] = rank(b);
  return a1 !== b1 ? (a1 < b1 ? -1 : 1) : a2 === b2 ? 0 : a2 < b2 ? -1 : 1;
}

/**
 * Whether the namespace's own setting enforces at least what is wanted: a higher level, or the same level
 * pinned to a version no older than the wanted one (`restricted` pinned to v1.0 admits pods that
 * `restricted` at `latest` refuses).
 */
function holdsAtLeast(
  observed: Record<string, string>,
  key: string,
  want: string,
  wantVersion: string | undefined,
): boolean {
  const have = levelRank(observed[key]);
  if (have !== levelRank(want)) return have > levelRank(want);
  return wantVersion === undefined || compareVersions(observed[`${key}-version`], wantVersion) >= 0;
}

/** Field managers other than the operator's own two that own `key` on the namespace. */
function otherOwners(ns: V1Namespace, key: string): string[] {
  return (ns.metadata?.managedFields ?? [])
    .filter((e) => e.manager !== FIELD_MANAGER && e.manager !== RESTORE_MANAGER)
    .filter((e) => fieldPaths(e.fieldsV1).includes(`${LABELS}${key}`))
    .map((e) => e.manager ?? "");
}

/** Rank of a Pod Security level; -1 for anything else (an unknown value enforces nothing useful). */
export function levelRank(value: string | undefined): number {
  return value === undefined ? -1 : (LEVEL_RANK[value as PodSecurityLevel] ?? -1);
}

export function isLevelKey(key: string): boolean {
  return LEVEL_KEY.test(key);
}

/** `pod-security.kubernetes.io/enforce-version` -> `pod-security.kubernetes.io/enforce`; else undefined. */
export function levelKeyOf(versionKey: string): string | undefined {
  return versionKey.startsWith(PSA_PREFIX) && versionKey.endsWith("-version")
    ? versionKey.slice(0, -"-version".length)
    : undefined;
}

/** The label keys the operator owns on an object (server-side apply under its field manager). */
export function ownedLabelKeys(obj: V1Namespace | undefined, manager = FIELD_MANAGER): ReadonlySet<string> {
  const applied = appliedPaths(obj, manager);
  let keys = labelKeysOf.get(applied);
  if (!keys) {
    keys = new Set(
      [...applied]
        .filter((p) => p.startsWith(LABELS)) // label keys have no children, but may contain dots
        .map((p) => p.slice(LABELS.length)),
    );
    labelKeysOf.set(applied, keys);
  }
  return keys;
}

/** Per set of applied paths (appliedPaths keeps one per object and manager): the label keys in it. */
const labelKeysOf = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();

/** The originals the operator recorded; only trusted while the operator owns the annotation. */
export function recordedOriginals(ns: V1Namespace | undefined): Record<string, string | null> {
  if (!appliedPaths(ns, FIELD_MANAGER).has(`${ANNOTATIONS}${ORIGINALS_ANNOTATION}`)) return {};
  const raw = ns?.metadata?.annotations?.[ORIGINALS_ANNOTATION];
  try {
    const parsed: unknown = JSON.parse(raw ?? "{}");
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return {};
    const out: Record<string, string | null> = {};
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>))
      if (typeof v === "string" || v === null) out[k] = v;
    return out;
  } catch {
    return {};
  }
}

/** What the operator does with a namespace's labels, from the union of enforcing policies' wishes. */
export interface NamespaceLabelPlan {
  /** Every label the operator's apply carries (what it takes or keeps); anything else it owned is dropped. */
  labels: Record<string, string>;
  /** The operator's annotations: the originals record, when there is one. */
  annotations: Record<string, string>;
  /** Labels given back at their original value (RESTORE_MANAGER apply, before the operator's apply). */
  restore: Record<string, string>;
  /** Levels the namespace holds itself at or above what is wanted: left alone, never taken. */
  kept: Record<string, { value: string; wanted: string }>;
}

/** Decides, per label key, whether the operator takes, keeps, gives back or leaves it. Pure. */
export function namespaceLabelPlan(ns: V1Namespace, state: SharedNamespaceState): NamespaceLabelPlan {
  const observed = ns.metadata?.labels ?? {};
  const owned = ownedLabelKeys(ns);
  const recorded = recordedOriginals(ns);
  const labels: Record<string, string> = {};
  const originals: Record<string, string | null> = {};
  const restore: Record<string, string> = {};
  const kept: NamespaceLabelPlan["kept"] = {};
  const take = (key: string, value: string) => {
    labels[key] = value;
    // First raise records what was there; a record survives a hand edit while the operator still wants it.
    originals[key] = key in recorded ? recorded[key]! : owned.has(key) ? null : (observed[key] ?? null);
  };

  const wanted = Object.entries(state.labels).sort(([a], [b]) => a.localeCompare(b));
  for (const [key, want] of wanted) {
    if (!isLevelKey(key)) continue;
    const original = recorded[key];
    if (owned.has(key)) {
      // Never hold a level below the one the namespace had before the operator raised it.
      if (typeof original === "string" && levelRank(original) >= levelRank(want)) continue;
      take(key, want);
    } else if (holdsAtLeast(observed, key, want, state.labels[`${key}-version`])) {
      if (observed[key] !== want) kept[key] = { value: observed[key]!, wanted: want };
    } else take(key, want);
  }
  for (const [key, want] of wanted) {
    if (isLevelKey(key)) continue;
    const level = levelKeyOf(key);
    if (level === undefined || level in labels) {
      // An equal value set by someone else is shared, not recorded: releasing leaves it to them.
      if (!owned.has(key) && observed[key] === want && !(key in recorded)) labels[key] = want;
      else take(key, want);
    }
  }
  for (const key of [...owned].sort()) {
    if (key in labels) continue;
    // A key some policy still wants in Audit mode is frozen as it is (Audit never writes).
    const enforced = key in state.labels;
    if (!enforced && state.retainLabels.has(key) && observed[key] !== undefined) {
      labels[key] = observed[key];
      if (key in recorded) originals[key] = recorded[key]!;
      continue;
    }
    const original = recorded[key];
    // Someone else now declares this label too (GitOps applying the same value, say): it is theirs, and
    // giving back the older original would lower what they declared. Dropping the operator's claim leaves
    // their value in place.
    if (typeof original === "string" && otherOwners(ns, key).length === 0) restore[key] = original;
  }
  const annotations: Record<string, string> = {};
  if (Object.keys(originals).length > 0) annotations[ORIGINALS_ANNOTATION] = stableJson(originals);
  return { labels: sorted(labels), annotations, restore: sorted(restore), kept };
}

function sorted<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

function stableJson(o: Record<string, string | null>): string {
  return JSON.stringify(sorted(o));
}

/**
 * Namespaces whose own Pod Security level (not set by the operator) is stricter than this policy's: left as
 * they are and reported as Info, which does not count against Compliant. Audit mode reports the same.
 */
export function stricterNamespaceFindings(
  policy: ClusterSecurityPolicy,
  namespaces: readonly string[],
  snapshot: Snapshot,
): Finding[] {
  return drain(stricterNamespaceFindingsSteps(policy, namespaces, snapshot));
}

/** stricterNamespaceFindings in steps (see desired/slices.ts). */
export function* stricterNamespaceFindingsSteps(
  policy: ClusterSecurityPolicy,
  namespaces: readonly string[],
  snapshot: Snapshot,
): Steps<Finding[]> {
  const spec = effectiveSpec(policy);
  const wanted = wantedNamespaceLabels(policy);
  const levels = Object.entries(wanted)
    .sort(([a], [b]) => a.localeCompare(b))
    .filter(([key]) => isLevelKey(key));
  const byName = namespacesByName(snapshot.namespaces);
  const out: Finding[] = [];
  let n = 0;
  for (const name of namespaces) {
    if (++n % SLICE === 0) yield;
    // Only a level label the namespace sets above the policy's can be a finding.
    if (levels.length === 0) break;
    if (areaExemptInNamespace(spec.exemptions, "podSecurity", name, snapshot.now)) continue;
    const ns = byName.get(name);
    const owned = ownedLabelKeys(ns);
    for (const [key, want] of levels) {
      const have = ns?.metadata?.labels?.[key];
      if (owned.has(key) || levelRank(have) <= levelRank(want)) continue;
      out.push({
        id: "PSA-NAMESPACE-STRICTER",
        severity: "Info",
        resource: `Namespace/${name}`,
        area: "podSecurity",
        message: `${key}=${have} is the namespace's own setting, stricter than this policy's ${want}; left as is (the operator never lowers a level it did not set)`,
      });
    }
  }
  return out;
}
