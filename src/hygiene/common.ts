import type { Exemption } from "../api/v1alpha1/policy.js";
import { exempts, isActive } from "../findings/exemptions.js";
import type { Finding } from "../findings/finding.js";
import type { AreaCondition } from "../status/status.js";

export const DAY_MS = 86_400_000;

/** Whole days from `now` to `when` (negative once past), rounded toward zero. */
export function daysUntil(when: Date, now: Date): number {
  return Math.trunc((when.getTime() - now.getTime()) / DAY_MS);
}

/** `2027-06-28` from a Date. */
export function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** "in 12 days" / "today" / "12 days ago". */
export function relativeDays(days: number): string {
  if (days === 0) return "today";
  return days > 0 ? `in ${days} day(s)` : `${-days} day(s) ago`;
}

const MAX_MESSAGE = 1024;

/**
 * A hygiene area's condition from its findings: False when a finding that counts (not Info) is not
 * exempted, True otherwise. Evidence that could not be read is the caller's Unknown, never True.
 */
export function hygieneCondition(
  type: string,
  findings: readonly Finding[],
  exemptions: readonly Exemption[] | undefined,
  now: Date,
  texts: { failReason: string; okReason: string; okMessage: string },
): AreaCondition {
  const active = (exemptions ?? []).filter((e) => isActive(e, now));
  const failing = findings.filter((f) => f.severity !== "Info" && !active.some((e) => exempts(e, f)));
  if (failing.length === 0)
    return { type, status: "True", reason: texts.okReason, message: bound(texts.okMessage) };
  const list = failing.map((f) => `${f.id} on ${f.resource}`);
  return {
    type,
    status: "False",
    reason: texts.failReason,
    message: bound(
      `${failing.length} finding(s): ${list.slice(0, 10).join(", ")}${list.length > 10 ? ", ..." : ""}`,
    ),
  };
}

export function bound(text: string): string {
  return text.length <= MAX_MESSAGE ? text : `${text.slice(0, MAX_MESSAGE - 1)}…`;
}
