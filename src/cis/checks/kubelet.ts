/**
 * CIS Kubernetes Benchmark v1.12 section 4.2 (Kubelet), judged by the setting kubelet v1.36 runs with:
 * a flag given on the command line overrides the config file (cmd/kubelet/app/server.go re-parses the flags
 * over the loaded config), a field absent from a `kubelet.config.k8s.io/v1beta1` file takes the v1beta1
 * default, and a kubelet without any config file has the legacy flag defaults — which differ exactly where
 * it matters (anonymous auth, authorization mode, read-only port). An audit that reads "not set" as "safe"
 * would pass `rotateCertificates` absent from a config file; the effective value there is false.
 *
 * Defaults relied on (k8s.io/kubernetes v1.36.3):
 * - pkg/kubelet/apis/config/v1beta1/defaults.go (config file): authentication.anonymous.enabled=false,
 *   authorization.mode=Webhook, eventRecordQPS=50, streamingConnectionIdleTimeout=4h (0 is replaced by 4h),
 *   makeIPTablesUtilChains=true, podPidsLimit=-1 (absent or negative), seccompDefault=false; readOnlyPort,
 *   rotateCertificates and serverTLSBootstrap are not defaulted, so absent means 0/false/false.
 * - cmd/kubelet/app/options/options.go applyLegacyDefaults (no config file): anonymous auth true,
 *   authorization mode AlwaysAllow, read-only port 10255; the rest as above.
 * - `--seccomp-default` is a KubeletFlags field that the kubelet ORs with the config's seccompDefault
 *   (server.go), so `--seccomp-default=false` cannot turn off `seccompDefault: true`.
 * - pkg/features: RotateKubeletServerCertificate is beta, default true.
 */
import type { CheckOutcome, CisCheck } from "./check.js";
import { fail, manual, pass, unknown, withValue } from "./check.js";
import type { Effective, ParsedFlags } from "../parse/flags.js";
import {
  boolFlag,
  boolMapFlag,
  durationFlag,
  formatDuration,
  intFlag,
  listFlag,
  parseGoDuration,
  stringFlag,
} from "../parse/flags.js";
import type { KubeletInputs } from "../gather/inputs.js";
import { isRecord } from "../parse/yaml.js";
import { judgeCiphers } from "./tls.js";
import { quote } from "../output/text.js";

/** Cipher suites CIS 4.2.12 accepts for the kubelet. */
export const KUBELET_STRONG_CIPHERS: ReadonlySet<string> = new Set([
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
]);

const FOUR_HOURS_NS = 4 * 3600e9;

type Field = { state: "absent" } | { state: "present"; value: unknown } | { state: "error"; reason: string };

function configField(k: KubeletInputs, path: readonly string[]): Field {
  if (k.config.state === "none") return { state: "absent" };
  if (k.config.state === "error") {
    return {
      state: "error",
      reason: `the kubelet config ${k.config.source} cannot be used: ${k.config.reason}`,
    };
  }
  // A struct field the kubelet's decoder meets as a string, number or list is a decode error (the kubelet
  // refuses to start), never "not set": `authentication: "yes"` must not read as the default.
  let v: unknown = k.config.data;
  for (const [i, p] of path.entries()) {
    if (v === undefined || v === null) return { state: "absent" };
    if (!isRecord(v)) {
      return {
        state: "error",
        reason: `${path.slice(0, i).join(".")}: ${typeof v === "object" ? `a ${Array.isArray(v) ? "list" : "tagged value"}` : quote(v)} in ${k.config.source} is not an object; the kubelet cannot decode its config`,
      };
    }
    v = Object.hasOwn(v, p) ? v[p] : undefined;
  }
  return v === undefined || v === null ? { state: "absent" } : { state: "present", value: v };
}

/** How to read one KubeletConfiguration setting and its command-line override. */
export interface KubeletSetting<T> {
  /** Flag that overrides the field, and how to read it (its fallback is irrelevant: only explicit counts). */
  readonly flag?: { readonly name: string; readonly read: (f: ParsedFlags, name: string) => Effective<T> };
  readonly path: readonly string[];
  readonly decode: (v: unknown) => T | undefined;
  readonly expected: string;
  /** Default when a config file is loaded (v1beta1) and when there is none (legacy flag defaults). */
  readonly configDefault: T;
  readonly flagsDefault: T;
  readonly format?: (v: T) => string;
  /** Defaulting the kubelet applies to a value present in the config (e.g. 0s -> 4h). */
  readonly normalize?: (v: T) => { value: T; note: string } | undefined;
}

/**
 * The effective value of a kubelet setting: explicit flag, else config field (type-checked the way the
 * kubelet's decoder would), else the default that applies to this kubelet.
 */
export function kubeletSetting<T>(k: KubeletInputs, s: KubeletSetting<T>): Effective<T> {
  const fmt = s.format ?? ((v: T) => quote(v, 300));
  const fieldName = s.path.join(".");
  const field = configField(k, s.path);
  const src = k.config.state === "none" ? "" : k.config.source;
  if (s.flag !== undefined) {
    const f = s.flag.read(k.flags, s.flag.name);
    if (!f.ok) return f;
    if (f.explicit) {
      const over =
        field.state === "present" ? ` (overrides ${fieldName}: ${quote(field.value)} in ${src})` : "";
      return { ...f, source: `${f.source}${over}` };
    }
  }
  const notFlag = s.flag === undefined ? "" : ` and --${s.flag.name} is not set`;
  if (field.state === "error") {
    const prefix = s.flag === undefined ? "" : `--${s.flag.name} is not set and `;
    return { ok: false, reason: `${prefix}${field.reason}` };
  }
  if (field.state === "present") {
    const v = s.decode(field.value);
    if (v === undefined) {
      return {
        ok: false,
        reason: `${fieldName}: ${quote(field.value)} in ${src} is not a ${s.expected}; the kubelet cannot decode its config`,
      };
    }
    const norm = s.normalize?.(v);
    if (norm !== undefined) {
      return {
        ok: true,
        value: norm.value,
        explicit: true,
        source: `${fieldName}: ${fmt(v)} in ${src} (${norm.note})`,
      };
    }
    return { ok: true, value: v, explicit: true, source: `${fieldName}: ${fmt(v)} in ${src}` };
  }
  if (k.defaults === "configFile") {
    return {
      ok: true,
      value: s.configDefault,
      explicit: false,
      source: `${fieldName} is not set in ${src}${notFlag}; the kubelet.config.k8s.io/v1beta1 default is ${fmt(s.configDefault)}`,
    };
  }
  const where =
    k.config.state === "loaded"
      ? `${fieldName} is not set in ${src}, there is no --config file`
      : "the kubelet has no config file";
  return {
    ok: true,
    value: s.flagsDefault,
    explicit: false,
    source: `${where}${notFlag}; the kubelet's command-line default is ${fmt(s.flagsDefault)}`,
  };
}

const asBool = (v: unknown) => (typeof v === "boolean" ? v : undefined);
const asString = (v: unknown) => (typeof v === "string" ? v : undefined);
const asInt = (bits: 32 | 64) => (v: unknown) =>
  typeof v === "number" && Number.isInteger(v) && Math.abs(v) <= (bits === 32 ? 2 ** 31 : 2 ** 63)
    ? v
    : undefined;
const asStringList = (v: unknown) =>
  Array.isArray(v) && v.every((x) => typeof x === "string") ? v : undefined;

const boolSetting = (
  flag: string,
  path: readonly string[],
  configDefault: boolean,
  flagsDefault = configDefault,
): KubeletSetting<boolean> => ({
  flag: { name: flag, read: (f, n) => boolFlag(f, n, configDefault) },
  path,
  decode: asBool,
  expected: "boolean",
  configDefault,
  flagsDefault,
});

const stringSetting = (
  flag: string,
  path: readonly string[],
  configDefault = "",
  flagsDefault = configDefault,
): KubeletSetting<string> => ({
  flag: { name: flag, read: (f, n) => stringFlag(f, n) },
  path,
  decode: asString,
  expected: "string",
  configDefault,
  flagsDefault,
});

/** The settings the 4.2.x checks read. */
export const KUBELET_SETTINGS = {
  anonymousAuth: boolSetting("anonymous-auth", ["authentication", "anonymous", "enabled"], false, true),
  authorizationMode: stringSetting("authorization-mode", ["authorization", "mode"], "Webhook", "AlwaysAllow"),
  clientCAFile: stringSetting("client-ca-file", ["authentication", "x509", "clientCAFile"]),
  readOnlyPort: {
    flag: { name: "read-only-port", read: (f, n) => intFlag(f, n, 32, 0) },
    path: ["readOnlyPort"],
    decode: asInt(32),
    expected: "32-bit integer",
    configDefault: 0,
    flagsDefault: 10255,
  } satisfies KubeletSetting<number>,
  streamingConnectionIdleTimeout: {
    flag: { name: "streaming-connection-idle-timeout", read: (f, n) => durationFlag(f, n, FOUR_HOURS_NS) },
    path: ["streamingConnectionIdleTimeout"],
    // metav1.Duration decodes a string with time.ParseDuration; a bare number is a decode error.
    decode: (v: unknown) => (typeof v === "string" ? parseGoDuration(v) : undefined),
    expected: "duration string (e.g. 5m)",
    configDefault: FOUR_HOURS_NS,
    flagsDefault: FOUR_HOURS_NS,
    format: formatDuration,
    normalize: (v: number) =>
      v === 0
        ? { value: FOUR_HOURS_NS, note: "the kubelet replaces 0 in its config with the default 4h0m0s" }
        : undefined,
  } satisfies KubeletSetting<number>,
  makeIPTablesUtilChains: boolSetting("make-iptables-util-chains", ["makeIPTablesUtilChains"], true),
  eventRecordQPS: {
    flag: { name: "event-qps", read: (f, n) => intFlag(f, n, 32, 50) },
    path: ["eventRecordQPS"],
    decode: asInt(32),
    expected: "32-bit integer",
    configDefault: 50,
    flagsDefault: 50,
  } satisfies KubeletSetting<number>,
  tlsCertFile: stringSetting("tls-cert-file", ["tlsCertFile"]),
  tlsPrivateKeyFile: stringSetting("tls-private-key-file", ["tlsPrivateKeyFile"]),
  serverTLSBootstrap: boolSetting("rotate-server-certificates", ["serverTLSBootstrap"], false),
  rotateCertificates: boolSetting("rotate-certificates", ["rotateCertificates"], false),
  tlsCipherSuites: {
    flag: { name: "tls-cipher-suites", read: (f, n) => listFlag(f, n, []) },
    path: ["tlsCipherSuites"],
    decode: asStringList,
    expected: "list of strings",
    configDefault: [] as string[],
    flagsDefault: [] as string[],
    format: (v: string[]) => (v.length === 0 ? "[] (Go defaults)" : `[${v.join(", ")}]`),
  } satisfies KubeletSetting<string[]>,
  tlsMinVersion: stringSetting("tls-min-version", ["tlsMinVersion"]),
  podPidsLimit: {
    flag: { name: "pod-max-pids", read: (f, n) => intFlag(f, n, 64, -1) },
    path: ["podPidsLimit"],
    decode: asInt(64),
    expected: "64-bit integer",
    configDefault: -1,
    flagsDefault: -1,
    normalize: (v: number) =>
      v < -1 ? { value: -1, note: "the kubelet replaces negative values with -1" } : undefined,
  } satisfies KubeletSetting<number>,
  seccompDefaultConfig: {
    path: ["seccompDefault"],
    decode: asBool,
    expected: "boolean",
    configDefault: false,
    flagsDefault: false,
  } satisfies KubeletSetting<boolean>,
} as const;

/** A feature gate: `--feature-gates` wins per key over the config's featureGates, else its v1.36 default. */
export function kubeletFeatureGate(k: KubeletInputs, gate: string, dflt: boolean): Effective<boolean> {
  const flag = boolMapFlag(k.flags, "feature-gates");
  if (!flag.ok) return flag;
  const fromFlag = flag.value[gate];
  if (fromFlag !== undefined) {
    return { ok: true, value: fromFlag, explicit: true, source: `${flag.source} sets ${gate}=${fromFlag}` };
  }
  const field = configField(k, ["featureGates", gate]);
  if (field.state === "error") return { ok: false, reason: field.reason };
  if (field.state === "present") {
    const src = k.config.state === "loaded" ? k.config.source : "";
    if (typeof field.value !== "boolean") {
      return {
        ok: false,
        reason: `featureGates.${gate}: ${quote(field.value)} in ${src} is not a boolean; the kubelet cannot decode its config`,
      };
    }
    return {
      ok: true,
      value: field.value,
      explicit: true,
      source: `featureGates.${gate}: ${field.value} in ${src}`,
    };
  }
  return {
    ok: true,
    value: dflt,
    explicit: false,
    source: `feature gate ${gate} is not set; its kubelet v1.36 default is ${dflt}`,
  };
}

/** seccompDefault: the flag and the config field are ORed by the kubelet. */
export function effectiveSeccompDefault(k: KubeletInputs): Effective<boolean> {
  const flag = boolFlag(k.flags, "seccomp-default", false);
  if (!flag.ok) return flag;
  if (flag.value) return flag;
  const cfg = kubeletSetting(k, KUBELET_SETTINGS.seccompDefaultConfig);
  if (!cfg.ok) return cfg;
  if (cfg.value && flag.explicit) {
    return {
      ...cfg,
      source: `${cfg.source} (${flag.source} does not turn it off: the kubelet ORs the flag with the config)`,
    };
  }
  return flag.explicit ? { ...cfg, source: `${flag.source}; ${cfg.source}` } : cfg;
}

function setting<T>(s: KubeletSetting<T>, judge: (v: T, src: string, k: KubeletInputs) => CheckOutcome) {
  return (k: KubeletInputs) => withValue(kubeletSetting(k, s), (v, src) => judge(v, src, k));
}

const S = KUBELET_SETTINGS;

/** The 4.2.x checks, in benchmark order. */
export const KUBELET_CHECKS: readonly CisCheck<KubeletInputs>[] = [
  {
    id: "4.2.1",
    severity: "High",
    reads: ["--anonymous-auth"],
    title: "Ensure that the --anonymous-auth argument is set to false",
    automated: true,
    evaluate: setting(S.anonymousAuth, (v, src) =>
      v ? fail(`${src}: anonymous requests reach the kubelet API`) : pass(src),
    ),
  },
  {
    id: "4.2.2",
    severity: "Critical",
    reads: ["--authorization-mode"],
    title: "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
    automated: true,
    evaluate: setting(S.authorizationMode, (v, src) =>
      v === "AlwaysAllow"
        ? fail(`${src}: every authenticated request to the kubelet API is allowed`)
        : v === "Webhook"
          ? pass(src)
          : unknown(
              `${src}: not a kubelet authorization mode (AlwaysAllow or Webhook); the kubelet refuses to start`,
            ),
    ),
  },
  {
    id: "4.2.3",
    severity: "Medium",
    reads: ["--client-ca-file"],
    title: "Ensure that the --client-ca-file argument is set as appropriate",
    automated: true,
    evaluate: setting(S.clientCAFile, (v, src) =>
      v === "" ? fail(`${src}: client certificates are not verified`) : pass(src),
    ),
  },
  {
    id: "4.2.4",
    severity: "Medium",
    reads: ["--read-only-port"],
    title: "Verify that if defined, the --read-only-port argument is set to 0",
    automated: false,
    evaluate: setting(S.readOnlyPort, (v, src) =>
      v === 0 ? pass(src) : fail(`${src}: the kubelet serves an unauthenticated read-only API on port ${v}`),
    ),
  },
  {
    id: "4.2.5",
    severity: "Low",
    reads: ["--streaming-connection-idle-timeout"],
    title: "Ensure that the --streaming-connection-idle-timeout argument is not set to 0",
    automated: false,
    evaluate: setting(S.streamingConnectionIdleTimeout, (v, src) =>
      v === 0
        ? fail(`${src}: idle streaming connections (exec, attach, port-forward) never time out`)
        : pass(`${src} (effective ${formatDuration(v)})`),
    ),
  },
  {
    id: "4.2.6",
    severity: "Low",
    reads: ["--make-iptables-util-chains"],
    title: "Ensure that the --make-iptables-util-chains argument is set to true",
    automated: true,
    evaluate: setting(S.makeIPTablesUtilChains, (v, src) => (v ? pass(src) : fail(src))),
  },
  {
    id: "4.2.7",
    severity: "Low",
    reads: ["--hostname-override"],
    title: "Ensure that the --hostname-override argument is not set",
    automated: false,
    evaluate: (k) =>
      k.flagsUnavailable !== undefined
        ? unknown(k.flagsUnavailable)
        : withValue(stringFlag(k.flags, "hostname-override"), (v, src) =>
            v === ""
              ? pass(src)
              : manual(
                  `${src}: some cloud providers need it; confirm it matches the node name in the kubelet's TLS certificate`,
                ),
          ),
  },
  {
    id: "4.2.8",
    severity: "Low",
    reads: ["kubelet command line and config"],
    title:
      "Ensure that the eventRecordQPS argument is set to a level which ensures appropriate event capture",
    automated: false,
    evaluate: setting(S.eventRecordQPS, (v, src) =>
      v < 0
        ? unknown(`${src}: negative values are rejected by the kubelet`)
        : manual(
            `${src} (effective ${v} events/s); whether this captures enough events depends on the cluster`,
          ),
    ),
  },
  {
    id: "4.2.9",
    severity: "Medium",
    reads: ["--tls-cert-file", "--tls-private-key-file"],
    title: "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate",
    automated: false,
    evaluate: (k) => {
      const cert = kubeletSetting(k, S.tlsCertFile);
      const key = kubeletSetting(k, S.tlsPrivateKeyFile);
      const boot = kubeletSetting(k, S.serverTLSBootstrap);
      const gate = kubeletFeatureGate(k, "RotateKubeletServerCertificate", true);
      if (!cert.ok) return unknown(cert.reason);
      if (!key.ok) return unknown(key.reason);
      if (!boot.ok) return unknown(boot.reason);
      if (!gate.ok) return unknown(gate.reason);
      if (cert.value !== "" && key.value !== "") return pass(`${cert.source}; ${key.source}`);
      if (boot.value && gate.value) {
        return pass(
          `${boot.source}: the serving certificate is requested from the cluster CA and rotated (${gate.source})`,
        );
      }
      if (cert.value !== "" || key.value !== "")
        return fail(`${cert.source}; ${key.source}: only one of the pair is set`);
      return fail(
        `${cert.source}; ${key.source}; ${boot.source}: the kubelet serves with a self-signed certificate it generates itself`,
      );
    },
  },
  {
    id: "4.2.10",
    severity: "Low",
    reads: ["--rotate-certificates"],
    title: "Ensure that the --rotate-certificates argument is not set to false",
    automated: true,
    evaluate: setting(S.rotateCertificates, (v, src) =>
      v ? pass(src) : fail(`${src}: the kubelet's client certificate is not rotated`),
    ),
  },
  {
    id: "4.2.11",
    severity: "Low",
    reads: ["kubelet command line and config"],
    title: "Verify that the RotateKubeletServerCertificate argument is set to true",
    automated: false,
    evaluate: (k) => {
      const gate = kubeletFeatureGate(k, "RotateKubeletServerCertificate", true);
      if (!gate.ok) return unknown(gate.reason);
      if (!gate.value) return fail(`${gate.source}: serving certificates cannot be rotated`);
      const boot = kubeletSetting(k, S.serverTLSBootstrap);
      if (!boot.ok) return unknown(boot.reason);
      if (boot.value) return pass(`${gate.source}; ${boot.source}`);
      const cert = kubeletSetting(k, S.tlsCertFile);
      if (!cert.ok) return unknown(cert.reason);
      if (cert.value !== "") {
        return manual(
          `${gate.source}, but ${boot.source}: the serving certificate ${cert.value} is static; confirm it is rotated outside the kubelet`,
        );
      }
      return fail(
        `${gate.source}, but ${boot.source}: the gate alone rotates nothing, and the self-signed serving certificate is never renewed`,
      );
    },
  },
  {
    id: "4.2.12",
    severity: "Low",
    reads: ["kubelet command line and config"],
    title: "Ensure that the Kubelet only makes use of Strong Cryptographic Ciphers",
    automated: false,
    evaluate: (k) =>
      judgeCiphers(
        KUBELET_STRONG_CIPHERS,
        "the kubelet",
        kubeletSetting(k, S.tlsCipherSuites),
        kubeletSetting(k, S.tlsMinVersion),
      ),
  },
  {
    id: "4.2.13",
    severity: "Low",
    reads: ["kubelet command line and config"],
    title: "Ensure that a limit is set on pod PIDs",
    automated: false,
    evaluate: setting(S.podPidsLimit, (v, src) =>
      v > 0
        ? pass(`${src} (each pod may run at most ${v} processes)`)
        : fail(`${src}: pods are not limited in the number of processes`),
    ),
  },
  {
    id: "4.2.14",
    severity: "Low",
    reads: ["--seccomp-default"],
    title: "Ensure that the --seccomp-default parameter is set to true",
    automated: false,
    evaluate: (k) =>
      withValue(effectiveSeccompDefault(k), (v, src) =>
        v ? pass(src) : fail(`${src}: containers without a seccomp profile run Unconfined`),
      ),
  },
];
