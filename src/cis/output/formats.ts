/**
 * Output formats other pipelines already read: JUnit XML (one testcase per check, for CI test reports) and
 * kube-bench's own `--json` layout (`{"Controls": [...], "Totals": {...}}`), so a pipeline that parses
 * kube-bench switches without changes. Both keep benchmark order and the same bounded, single-line text
 * as the JSON report.
 */
import type { CheckResult, CheckStatus } from "../checks/check.js";
import { BENCHMARK } from "../checks/check.js";
import { checkDefinition } from "../checks/registry.js";
import { toReport } from "./report.js";

/** Benchmark sections: the part a check id starts with, and its title in the benchmark. */
const SECTIONS: readonly { readonly id: string; readonly text: string }[] = [
  { id: "1.1", text: "Control Plane Node Configuration Files" },
  { id: "1.2", text: "API Server" },
  { id: "1.3", text: "Controller Manager" },
  { id: "1.4", text: "Scheduler" },
  { id: "2", text: "Etcd Node Configuration" },
  { id: "3.1", text: "Authentication and Authorization" },
  { id: "3.2", text: "Logging" },
  { id: "4.1", text: "Worker Node Configuration Files" },
  { id: "4.2", text: "Kubelet" },
  { id: "4.3", text: "kube-proxy" },
  { id: "5.1", text: "RBAC and Service Accounts" },
  { id: "5.2", text: "Pod Security Standards" },
  { id: "5.3", text: "Network Policies and CNI" },
  { id: "5.4", text: "Secrets Management" },
  { id: "5.5", text: "Extensible Admission Control" },
  { id: "5.7", text: "General Policies" },
];

/** kube-bench's top-level controls: one per benchmark part, with its node type. */
const CONTROLS: Readonly<Record<string, { readonly text: string; readonly nodeType: string }>> = {
  "1": { text: "Control Plane Security Configuration", nodeType: "master" },
  "2": { text: "Etcd Node Configuration", nodeType: "etcd" },
  "3": { text: "Control Plane Configuration", nodeType: "controlplane" },
  "4": { text: "Worker Node Security Configuration", nodeType: "node" },
  "5": { text: "Kubernetes Policies", nodeType: "policies" },
};

/** The section a check id belongs to (`1.2.6` -> `1.2`, `2.7` -> `2`). */
export function sectionOf(id: string): string {
  const parts = id.split(".");
  return parts[0] === "2" ? "2" : parts.slice(0, 2).join(".");
}

function sectionText(section: string): string {
  return SECTIONS.find((s) => s.id === section)?.text ?? `Section ${section}`;
}

/** Results grouped by section, sections in the order first met. */
function bySection(results: readonly CheckResult[]): Map<string, CheckResult[]> {
  const groups = new Map<string, CheckResult[]>();
  for (const r of results) {
    const s = sectionOf(r.id);
    const list = groups.get(s) ?? [];
    list.push(r);
    groups.set(s, list);
  }
  return groups;
}

// --- JUnit ---------------------------------------------------------------------------------------------

/**
 * Characters XML 1.0 cannot hold that safeText leaves: U+FFFE, U+FFFF and lone surrogates (C0 controls
 * were already escaped by safeText; any left are caught here too).
 */
const XML_INVALID =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** XML 1.0 text: the five entities escaped, characters XML cannot hold written as a visible `\uXXXX`. */
function xml(s: string): string {
  return s
    .replace(XML_INVALID, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&apos;");
}

/**
 * JUnit XML: a `<testsuite>` per benchmark section and a `<testcase>` per check. Fail is a `<failure>`,
 * Unknown an `<error>` (the check could not be run), Manual and NotApplicable `<skipped>`; the evidence is
 * the message.
 */
export function renderJunit(checked: readonly CheckResult[]): string {
  const results = toReport(checked).results;
  const count = (rs: readonly CheckResult[], s: CheckStatus[]) =>
    rs.filter((r) => s.includes(r.status)).length;
  const totals = (rs: readonly CheckResult[]) =>
    `tests="${rs.length}" failures="${count(rs, ["Fail"])}" errors="${count(rs, ["Unknown"])}" skipped="${count(rs, ["Manual", "NotApplicable"])}"`;
  const lines = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="${BENCHMARK}" ${totals(results)}>`,
  ];
  for (const [section, rs] of bySection(results)) {
    lines.push(`  <testsuite name="${xml(`${section} ${sectionText(section)}`)}" ${totals(rs)}>`);
    for (const r of rs) {
      const head = `    <testcase classname="${xml(`${BENCHMARK}.${section}`)}" name="${xml(`${r.id} ${r.title}`)}"`;
      const msg = xml(r.evidence);
      switch (r.status) {
        case "Pass":
          lines.push(`${head}>`, `      <system-out>${msg}</system-out>`, `    </testcase>`);
          break;
        case "Fail":
          lines.push(
            `${head}>`,
            `      <failure message="${msg}" type="Fail">${msg}</failure>`,
            `    </testcase>`,
          );
          break;
        case "Unknown":
          lines.push(
            `${head}>`,
            `      <error message="${msg}" type="Unknown">${msg}</error>`,
            `    </testcase>`,
          );
          break;
        case "Manual":
        case "NotApplicable":
          lines.push(
            `${head}>`,
            `      <skipped message="${xml(`${r.status}: `)}${msg}"/>`,
            `    </testcase>`,
          );
      }
    }
    lines.push(`  </testsuite>`);
  }
  lines.push(`</testsuites>`);
  return `${lines.join("\n")}\n`;
}

// --- kube-bench --json ---------------------------------------------------------------------------------

type KbState = "PASS" | "FAIL" | "WARN" | "INFO";

/**
 * kube-bench's check states. As kube-bench does: a scored (automated) check that cannot be determined is
 * FAIL (Unknown never hides among the warnings: total_fail agrees with the exit code), a manual check is
 * WARN whatever it found (a person must look) except a Fail, which stays FAIL; NotApplicable is INFO.
 */
function kubeBenchState(r: CheckResult): KbState {
  const automated = checkDefinition(r.id)?.automated ?? true;
  if (r.status === "NotApplicable") return "INFO";
  if (r.status === "Fail") return "FAIL";
  if (!automated) return "WARN";
  if (r.status === "Pass") return "PASS";
  return r.status === "Unknown" ? "FAIL" : "WARN";
}

interface KbSummary {
  total_pass: number;
  total_fail: number;
  total_warn: number;
  total_info: number;
}

function summary(states: readonly string[]): KbSummary {
  const n = (s: string) => states.filter((x) => x === s).length;
  return { total_pass: n("PASS"), total_fail: n("FAIL"), total_warn: n("WARN"), total_info: n("INFO") };
}

/**
 * kube-bench's `--json` document: `Controls` (one per benchmark part: id, version, text, node_type, tests
 * = sections with pass/fail/warn/info counts and results) and `Totals`. Each result has kube-bench's keys
 * (`test_number`, `test_desc`, `status`, `scored`, `actual_value`, `reason`, ...); the evidence is the
 * `actual_value` and, for WARN/INFO, also the `reason`. Audit commands and remediation text are empty:
 * these checks are not shell commands.
 */
export function toKubeBench(checked: readonly CheckResult[]): unknown {
  const results = toReport(checked).results;
  const parts = new Map<string, CheckResult[]>();
  for (const r of results) {
    const p = r.id.split(".")[0] as string;
    parts.set(p, [...(parts.get(p) ?? []), r]);
  }
  const controls = [...parts].map(([part, rs]) => {
    const tests = [...bySection(rs)].map(([section, list]) => {
      const states = list.map((r) => kubeBenchState(r));
      const s = summary(states);
      return {
        section,
        type: "",
        pass: s.total_pass,
        fail: s.total_fail,
        warn: s.total_warn,
        info: s.total_info,
        desc: sectionText(section),
        results: list.map((r) => {
          const state = kubeBenchState(r);
          const automated = checkDefinition(r.id)?.automated ?? true;
          return {
            test_number: r.id,
            test_desc: `${r.title} (${automated ? "Automated" : "Manual"})`,
            audit: "",
            AuditEnv: "",
            AuditConfig: "",
            type: automated ? "" : "manual",
            remediation: "",
            test_info: [r.evidence],
            status: state,
            actual_value: r.evidence,
            scored: automated,
            IsMultiple: false,
            expected_result: "",
            ...(state !== "PASS" && (state !== "FAIL" || r.status !== "Fail")
              ? { reason: `${r.status}: ${r.evidence}` }
              : {}),
          };
        }),
      };
    });
    const meta = CONTROLS[part] ?? { text: `Part ${part}`, nodeType: "" };
    return {
      id: part,
      version: BENCHMARK,
      text: meta.text,
      node_type: meta.nodeType,
      tests,
      ...summary(rs.map((r) => kubeBenchState(r))),
    };
  });
  return { Controls: controls, Totals: summary(results.map((r) => kubeBenchState(r))) };
}

/** {@link toKubeBench} as one JSON line, newline-terminated, as kube-bench prints it. */
export function renderKubeBench(checked: readonly CheckResult[]): string {
  return `${JSON.stringify(toKubeBench(checked))}\n`;
}
