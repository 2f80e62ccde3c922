/**
 * Rendering of CIS results: a JSON document with a fixed shape for machines, and a table for people. Both
 * keep benchmark order so two runs can be diffed.
 */
import type { CheckResult, CheckStatus } from "../checks/check.js";
import { BENCHMARK } from "../checks/check.js";
import { MAX_EVIDENCE_CHARS, safeText } from "./text.js";

/** The `-o json` document. */
export interface CisReport {
  readonly benchmark: typeof BENCHMARK;
  readonly results: readonly CheckResult[];
}

/**
 * Builds the report object with exactly the documented keys per result; titles and evidence are single
 * lines with control characters escaped and evidence bounded, whoever produced the results.
 */
export function toReport(results: readonly CheckResult[]): CisReport {
  return {
    benchmark: BENCHMARK,
    results: results.map((r) => ({
      id: safeText(r.id, 40),
      title: safeText(r.title, 300),
      status: r.status,
      evidence: safeText(r.evidence, MAX_EVIDENCE_CHARS),
    })),
  };
}

/** `{"benchmark": "cis-1.12", "results": [...]}`, pretty-printed, newline-terminated. */
export function renderJson(results: readonly CheckResult[]): string {
  return `${JSON.stringify(toReport(results), null, 2)}\n`;
}

const STATUSES: readonly CheckStatus[] = ["Pass", "Fail", "Manual", "NotApplicable", "Unknown"];

/** Counts per status, in a stable order, for summaries. */
export function summarize(results: readonly CheckResult[]): Record<CheckStatus, number> {
  const counts = { Pass: 0, Fail: 0, Manual: 0, NotApplicable: 0, Unknown: 0 };
  for (const r of results) counts[r.status]++;
  return counts;
}

/**
 * A readable table: one line per check (id, status, title) with its evidence indented below, then a
 * summary line.
 */
export function renderTable(checked: readonly CheckResult[]): string {
  const results = toReport(checked).results;
  const idWidth = Math.max(2, ...results.map((r) => r.id.length));
  const statusWidth = Math.max(6, ...results.map((r) => r.status.length));
  const pad = (s: string, n: number) => s + " ".repeat(Math.max(0, n - s.length));
  const lines = [
    `CIS Kubernetes Benchmark ${BENCHMARK}`,
    `${pad("ID", idWidth)}  ${pad("STATUS", statusWidth)}  TITLE`,
  ];
  for (const r of results) {
    lines.push(`${pad(r.id, idWidth)}  ${pad(r.status, statusWidth)}  ${r.title}`);
    lines.push(`${" ".repeat(idWidth + statusWidth + 4)}${r.evidence}`);
  }
  const counts = summarize(results);
  lines.push("");
  lines.push(`${results.length} checks: ${STATUSES.map((s) => `${counts[s]} ${s}`).join(", ")}`);
  return `${lines.join("\n")}\n`;
}
