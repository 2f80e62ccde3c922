/**
 * Shared by the fault suite: the operator as a real process (so "recovers without a restart of its own" is a
 * pid that never exits), measurements collected for docs/reliability.md, and a record of every secret the
 * suite generated and every text the operator produced, checked by zz-secrets.test.ts after the suite.
 */
import { readFileSync } from "node:fs";
import type { ControlPlane } from "../../controlplane/harness.js";
import { onOperatorStopped } from "../support/operatorprocess.js";

export { OperatorProcess, auditCode, auditOf, checkerMatches } from "../support/operatorprocess.js";

// Every operator log is checked for secrets after the suite.
onOperatorStopped((p) => recordText(`operator log (${p.name})`, p.log));

// ---------------------------------------------------------------------------------------------------------
// Secrets and texts, checked after the whole suite.

const secrets = new Map<string, string>();
const texts: { what: string; text: string }[] = [];

/** A value that must never appear in anything the operator says (a token, a private key). */
export function recordSecret(what: string, value: string): void {
  const v = value.trim();
  if (v.length >= 16) secrets.set(v, what);
}

/** The admin client key and every bearer token of a kubeconfig file. */
export function recordKubeconfigSecrets(path: string): void {
  const text = readFileSync(path, "utf8");
  for (const m of text.matchAll(/(client-key-data|token):\s*(\S+)/g)) {
    recordSecret(`${m[1]} of ${path}`, m[2]!);
    if (m[1] === "client-key-data") {
      const pem = Buffer.from(m[2]!, "base64").toString("utf8");
      for (const line of pem.split("\n"))
        if (!line.startsWith("-----")) recordSecret(`key line of ${path}`, line);
    }
  }
}

export function recordText(what: string, text: string): void {
  texts.push({ what, text });
}

/** Events, policy status and the operator log of a control plane, before it stops. */
export async function recordClusterTexts(cp: ControlPlane, operatorLog = ""): Promise<void> {
  for (const args of [
    ["get", "events", "-A", "-o", "json"],
    ["get", "csp", "-o", "json"],
  ]) {
    const r = await cp.kubectl(args);
    recordText(`${cp.dir}: kubectl ${args.join(" ")}`, r.stdout);
  }
  if (operatorLog) recordText("operator log", operatorLog);
}

export function leaks(): { secret: string; where: string }[] {
  const out: { secret: string; where: string }[] = [];
  for (const { what, text } of texts)
    for (const [value, secret] of secrets) if (text.includes(value)) out.push({ secret, where: what });
  return out;
}

export function recordedCounts(): { secrets: number; texts: number; bytes: number } {
  return { secrets: secrets.size, texts: texts.length, bytes: texts.reduce((n, t) => n + t.text.length, 0) };
}

// ---------------------------------------------------------------------------------------------------------
// Measurements for docs/reliability.md: printed at the end of the suite.

const measurements: { fault: string; recoveryMs: number; requests?: number; note?: string }[] = [];

export function measure(fault: string, recoveryMs: number, requests?: number, note?: string): void {
  measurements.push({
    fault,
    recoveryMs,
    ...(requests !== undefined ? { requests } : {}),
    ...(note ? { note } : {}),
  });
  process.stderr.write(
    `[faults] ${fault}: recovered in ${(recoveryMs / 1000).toFixed(1)} s` +
      (requests !== undefined ? `, ${requests} requests` : "") +
      (note ? ` (${note})` : "") +
      "\n",
  );
}

export function allMeasurements(): typeof measurements {
  return measurements;
}

export const ADMIN = "csp-admin";
export const OPERATOR_SA = "system:serviceaccount:csp-system:csp-operator";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? NaN
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
