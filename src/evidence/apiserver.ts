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
  /** API servers expected (identity Leases); 0 when the expected set is unknown. */
  servers: number;
  loaded: number;
  message: string;
}

/**
 * The API servers that must have loaded a configuration before a rotation may move on, as far as the
 * cluster tells: the names of the live kube-apiserver identity Leases (undefined: not readable), and the
 * distinct addresses behind the `kubernetes` Service (undefined: not readable), which catch a server that
 * runs without an identity Lease.
 */
export interface ExpectedServers {
  identities?: readonly string[] | undefined;
  endpoints?: readonly string[] | undefined;
}

/**
 * Judges from the configs each API server reported (accumulated across scrapes, since a scrape through a
 * load balancer reaches one server) whether all EXPECTED servers loaded `expectedHash`. Never from the
 * servers that happened to report: without the identity Leases, or with more addresses behind the
 * `kubernetes` Service than identities, nothing is proven and the message says what is missing.
 */
export function judgeLoaded(
  expectedHash: string,
  reported: readonly LoadedConfig[],
  expected: ExpectedServers,
): LoadJudgement {
  const byServer = new Map(reported.map((r) => [r.apiServerIdHash, r.hash]));
  const short = (h: string) => h.slice(0, 19);
  const blocked = (message: string): LoadJudgement => ({ allLoaded: false, servers: 0, loaded: 0, message });
  if (expected.identities === undefined)
    return blocked(
      "cannot tell which API servers exist: the kube-apiserver identity Leases in kube-system are not " +
        "readable (grant list on leases in kube-system); a server that never reported may lack the configuration",
    );
  if (expected.identities.length === 0)
    return blocked(
      "no kube-apiserver identity Lease in kube-system (label apiserver.kubernetes.io/identity=kube-apiserver): " +
        "cannot tell which API servers must load the configuration",
    );
  const identities = [...expected.identities].sort();
  const current = identities.filter((id) => byServer.get(apiServerIdHash(id)) === expectedHash);
  const missing = identities
    .filter((id) => !current.includes(id))
    .map((id) => {
      const h = byServer.get(apiServerIdHash(id));
      return h === undefined ? `${id} (never reported)` : `${id} (reported ${short(h)})`;
    });
  const endpoints = expected.endpoints === undefined ? undefined : new Set(expected.endpoints);
  const hidden = endpoints !== undefined && endpoints.size > identities.length;
  let message = `${current.length} of ${identities.length} API server(s) loaded configuration ${short(expectedHash)}`;
  if (missing.length > 0) message += `; missing: ${missing.join(", ")}`;
  if (hidden)
    message +=
      `; Service default/kubernetes has ${endpoints.size} endpoint address(es) but only ${identities.length} ` +
      `identity Lease(s): a server without a Lease cannot be checked`;
  return {
    allLoaded: missing.length === 0 && !hidden,
    servers: identities.length,
    loaded: current.length,
    message,
  };
}
