/**
 * PURE: what the kube-apiservers say about themselves, read from their Prometheus `/metrics` text and
 * their identity Leases. Checked against a real v1.36.3 kube-apiserver started with
 * `--encryption-provider-config-automatic-reload=true`:
 *
 *   apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:<sha256 of the
 *     identity Lease name>",hash="sha256:<sha256 of the file's bytes>"} 1
 *   apiserver_storage_transformation_operations_total{resource="secrets",status="OK",
 *     transformation_type="to_storage",transformer_prefix="k8s:enc:aescbc:v1:"} 1
 *
 * The file is polled about once a minute (a rewrite was picked up after 59 s), so every wait for a reload
 * is a requeue, never a sleep. Each API server has an identity Lease in kube-system labelled
 * `apiserver.kubernetes.io/identity=kube-apiserver`; the sha256 of its name is the `apiserver_id_hash`.
 */
import { createHash } from "node:crypto";

/** One sample of a Prometheus text exposition. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the samples of a Prometheus text exposition; comments and malformed lines are skipped. */
export function parseMetrics(text: string, only?: (name: string) => boolean): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const name = m[1]!;
    if (only && !only(name)) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[3] ?? "").matchAll(LABEL))
      labels[k!] = v!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    const value = Number(m[4]);
    if (!Number.isNaN(value)) out.push({ name, labels, value });
  }
  return out;
}

export const LAST_CONFIG_INFO = "apiserver_encryption_config_controller_last_config_info";
export const TRANSFORMATIONS = "apiserver_storage_transformation_operations_total";
export const IDENTITY_LEASE_LABEL = "apiserver.kubernetes.io/identity";

/** What one API server reported loading: its identity hash and the config hash. */
export interface LoadedConfig {
  apiServerIdHash: string;
  hash: string;
}

/** Writes and reads of stored objects by prefix: evidence of which transformer actually runs. */
export interface Transformation {
  resource: string;
  type: "to_storage" | "from_storage";
  prefix: string;
  status: string;
  count: number;
}

export interface EncryptionMetrics {
  loaded: LoadedConfig[];
  transformations: Transformation[];
}

/** The encryption evidence in one API server's metrics text. */
export function encryptionMetrics(text: string): EncryptionMetrics {
  const samples = parseMetrics(text, (n) => n === LAST_CONFIG_INFO || n === TRANSFORMATIONS);
  const loaded: LoadedConfig[] = [];
  const transformations: Transformation[] = [];
  for (const s of samples) {
    if (s.name === LAST_CONFIG_INFO && s.value === 1 && s.labels["hash"]) {
      loaded.push({ apiServerIdHash: s.labels["apiserver_id_hash"] ?? "", hash: s.labels["hash"] });
    } else if (s.name === TRANSFORMATIONS) {
      const type = s.labels["transformation_type"];
      if (type !== "to_storage" && type !== "from_storage") continue;
      transformations.push({
        resource: s.labels["resource"] ?? "",
        type,
        prefix: s.labels["transformer_prefix"] ?? "",
        status: s.labels["status"] ?? "",
        count: s.value,
      });
    }
  }
  return { loaded, transformations };
}

/** `sha256:<hex>` of an API server identity (its Lease name): the `apiserver_id_hash` label. */
export function apiServerIdHash(identity: string): string {
  return `sha256:${createHash("sha256").update(identity, "utf8").digest("hex")}`;
}

/** Whether every API server runs the configuration with `expectedHash`, and who does not. */
export interface LoadJudgement {
  allLoaded: boolean;
  /** API servers known (identity Leases), or those seen in metrics when the Leases are not readable. */
  servers: number;
  loaded: number;
  message: string;
}

/**
 * Judges from the configs each API server reported (accumulated across scrapes, since a scrape through a
 * load balancer reaches one server) whether all of them loaded `expectedHash`. With `identities` (the
 * identity Lease names) an API server never scraped counts as not loaded; without them, the servers seen.
 */
export function judgeLoaded(
  expectedHash: string,
  reported: readonly LoadedConfig[],
  identities?: readonly string[],
): LoadJudgement {
  const byServer = new Map(reported.map((r) => [r.apiServerIdHash, r.hash]));
  const servers = identities ? identities.map(apiServerIdHash) : [...byServer.keys()];
  const loaded = servers.filter((s) => byServer.get(s) === expectedHash).length;
  const allLoaded = servers.length > 0 && loaded === servers.length;
  const short = expectedHash.slice(0, 19);
  const message =
    servers.length === 0
      ? "no API server reports an encryption configuration (is --encryption-provider-config-automatic-reload=true set?)"
      : `${loaded} of ${servers.length} API server(s) loaded configuration ${short}`;
  return { allLoaded, servers: servers.length, loaded, message };
}
