/**
 * Shared vocabulary of the CIS checks. Each check is a named pure function of one component's inputs that
 * returns a status and the evidence behind it, so offline and in-cluster runs judge identically and every
 * verdict can be explained to the user.
 */
import type { Severity } from "../../findings/finding.js";
import type { Effective } from "../parse/flags.js";
import { MAX_EVIDENCE_CHARS, safeText } from "../output/text.js";

/** The benchmark these checks implement, as printed in reports. */
export const BENCHMARK = "cis-1.12";

/**
 * `Pass`/`Fail`: the effective setting does / does not meet the recommendation. `Manual`: the benchmark
 * leaves the judgement to a human and the inputs do not settle it. `NotApplicable`: the recommendation has
 * nothing to act on (e.g. log rotation when logging to stdout). `Unknown`: the inputs cannot determine the
 * setting (unreadable file, invalid value the component would reject) — never guessed.
 */
export type CheckStatus = "Pass" | "Fail" | "Manual" | "NotApplicable" | "Unknown";

/** What a check concluded and why. */
export interface CheckOutcome {
  readonly status: CheckStatus;
  readonly evidence: string;
}

/** One benchmark recommendation, evaluated against one component's inputs. */
export interface CisCheck<I> {
  /** CIS Kubernetes Benchmark v1.12 number, e.g. `1.2.6`. */
  readonly id: string;
  readonly title: string;
  /**
   * Severity of the finding when the check fails, judged by what an attacker gains: an authorizer or
   * admission bypass is Critical/High, missing TLS identities and audit are Medium, hardening is Low.
   */
  readonly severity: Severity;
  /** Whether the benchmark marks it Automated (false: Manual). */
  readonly automated: boolean;
  /** The inputs the judgement reads (flags, config fields, files), for documentation and evidence. */
  readonly reads: readonly string[];
  readonly evaluate: (inputs: I) => CheckOutcome;
}

/** A check's outcome with its identity, as reported. */
export interface CheckResult {
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  readonly evidence: string;
  /**
   * The definition's severity. Absent on results that crossed a wire (agent reports): the receiver looks
   * the id up in the registry of definitions.
   */
  readonly severity?: Severity;
}

/** Outcome constructors, to keep check bodies short. */
export const pass = (evidence: string): CheckOutcome => ({ status: "Pass", evidence });
/** @see pass */
export const fail = (evidence: string): CheckOutcome => ({ status: "Fail", evidence });
/** @see pass */
export const manual = (evidence: string): CheckOutcome => ({ status: "Manual", evidence });
/** @see pass */
export const notApplicable = (evidence: string): CheckOutcome => ({ status: "NotApplicable", evidence });
/** @see pass */
export const unknown = (evidence: string): CheckOutcome => ({ status: "Unknown", evidence });

/**
 * Runs `judge` on an effective value, or reports Unknown with the reason it could not be determined —
 * the one place where "cannot tell" turns into a status.
 */
export function withValue<T>(
  e: Effective<T>,
  judge: (value: T, source: string) => CheckOutcome,
): CheckOutcome {
  return e.ok ? judge(e.value, e.source) : unknown(e.reason);
}

/**
 * Evaluates checks in order; a check that throws is reported Unknown rather than aborting the run.
 * Evidence quotes input (flag values, paths), so it is made one safe line of bounded length here, for
 * every consumer (reports, findings).
 */
export function evaluateAll<I>(checks: readonly CisCheck<I>[], inputs: I): CheckResult[] {
  return checks.map((c) => {
    let outcome: CheckOutcome;
    try {
      outcome = c.evaluate(inputs);
    } catch (e) {
      outcome = unknown(`internal error while evaluating: ${(e as Error).message}`);
    }
    return {
      id: c.id,
      title: c.title,
      severity: c.severity,
      status: outcome.status,
      evidence: safeText(outcome.evidence, MAX_EVIDENCE_CHARS),
    };
  });
}
