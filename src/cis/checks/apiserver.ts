/**
 * CIS Kubernetes Benchmark v1.12 section 1.2 (API Server), judged by the setting kube-apiserver v1.36
 * actually runs with: flags parsed like pflag, defaults of v1.36, admission plugins computed from the
 * default-on set plus the enable/disable lists, authorizers taken from `--authorization-config` when that is
 * used, anonymous auth from `--authentication-config` when that configures it. Where a benchmark audit
 * would pass an unsafe effective value (e.g. `--audit-log-path` without an audit policy, which records
 * nothing), the check fails and says why.
 */
import type { CheckOutcome, CisCheck } from "./check.js";
import { fail, manual, notApplicable, pass, unknown, withValue } from "./check.js";
import type { Effective } from "../parse/flags.js";
import {
  arrayFlag,
  boolFlag,
  describeOccurrence,
  durationFlag,
  formatDuration,
  intFlag,
  isFlagSet,
  listFlag,
  stringFlag,
} from "../parse/flags.js";
import type { ApiServerInputs, FileResult } from "../gather/inputs.js";
import type { Parsed } from "../parse/yaml.js";
import { isRecord, parseConfigObject } from "../parse/yaml.js";
import { judgeCiphers } from "./tls.js";
import { quote } from "../output/text.js";

/**
 * Admission plugins on by default in kube-apiserver v1.36 (DefaultOffAdmissionPlugins' default-on set).
 * Notably NodeRestriction, AlwaysPullImages, EventRateLimit and DenyServiceExternalIPs are NOT in it.
 */
export const DEFAULT_ON_ADMISSION_PLUGINS: ReadonlySet<string> = new Set([
  "CertificateApproval",
  "CertificateSigning",
  "CertificateSubjectRestriction",
  "ClusterTrustBundleAttest",
  "DefaultIngressClass",
  "DefaultStorageClass",
  "DefaultTolerationSeconds",
  "JobValidation",
  "LimitRanger",
  "MutatingAdmissionPolicy",
  "MutatingAdmissionWebhook",
  "NamespaceLifecycle",
  "NodeDeclaredFeatureValidator",
  "PersistentVolumeClaimResize",
  "PodGroupProtection",
  "PodGroupWorkloadExists",
  "PodResizeValidator",
  "PodSecurity",
  "PodTopologyLabels",
  "Priority",
  "ResourceQuota",
  "RuntimeClass",
  "ServiceAccount",
  "StorageObjectInUseProtection",
  "TaintNodesByCondition",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionWebhook",
]);

/** The admission plugins kube-apiserver v1.36 registers but leaves off unless enabled. */
const DEFAULT_OFF_ADMISSION_PLUGINS = [
  "AlwaysAdmit",
  "AlwaysDeny",
  "AlwaysPullImages",
  "DenyServiceExternalIPs",
  "EventRateLimit",
  "ExtendedResourceToleration",
  "ImagePolicyWebhook",
  "LimitPodHardAntiAffinityTopology",
  "NamespaceAutoProvision",
  "NamespaceExists",
  "NodeRestriction",
  "OwnerReferencesPermissionEnforcement",
  "PodNodeSelector",
  "PodTolerationRestriction",
];

/** Every admission plugin kube-apiserver v1.36 registers (pkg/kubeapiserver/options/plugins.go). */
export const ADMISSION_PLUGINS: ReadonlySet<string> = new Set([
  ...DEFAULT_ON_ADMISSION_PLUGINS,
  ...DEFAULT_OFF_ADMISSION_PLUGINS,
]);

/** Authorization modes kube-apiserver accepts (pkg/kubeapiserver/authorizer/modes). */
const AUTHORIZATION_MODES: ReadonlySet<string> = new Set([
  "AlwaysAllow",
  "AlwaysDeny",
  "ABAC",
  "Webhook",
  "RBAC",
  "Node",
]);

/** Cipher suites CIS 1.2.29 accepts for the API server. */
export const APISERVER_STRONG_CIPHERS: ReadonlySet<string> = new Set([
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
]);

const APISERVER_CONFIG_VERSIONS = [
  "apiserver.config.k8s.io/v1",
  "apiserver.config.k8s.io/v1beta1",
  "apiserver.config.k8s.io/v1alpha1",
];

/** Reads and parses a flag-referenced config file, or says why it cannot be used. */
function configFile(
  i: ApiServerInputs,
  flag: string,
  kinds: readonly { apiVersion: string; kind: string }[],
): Parsed<{ data: Record<string, unknown>; file: FileResult & { ok: true } }> {
  const file = i.files[flag];
  if (file === undefined) return { ok: false, reason: `the file named by --${flag} was not read` };
  if (!file.ok) return { ok: false, reason: `--${flag}=${file.path}: ${file.reason}` };
  const parsed = parseConfigObject(file.text, kinds);
  if (!parsed.ok) return { ok: false, reason: `--${flag}=${file.path}: the file ${parsed.reason}` };
  return { ok: true, value: { data: parsed.value, file } };
}

const kindsOf = (kind: string) => APISERVER_CONFIG_VERSIONS.map((apiVersion) => ({ apiVersion, kind }));

/**
 * The authorizer chain kube-apiserver builds: the `authorizers[].type` of `--authorization-config`, else
 * `--authorization-mode` (appending across occurrences), else AlwaysAllow. Combinations the server refuses
 * to start with (both given, unknown or repeated modes) are reported as not determinable.
 */
export function effectiveAuthorizers(i: ApiServerInputs): Effective<string[]> {
  const f = i.flags;
  const cfg = stringFlag(f, "authorization-config");
  if (!cfg.ok) return cfg;
  const modes = listFlag(f, "authorization-mode", []);
  if (!modes.ok) return modes;
  if (cfg.value !== "") {
    const legacy = f.occurrences.find(
      (o) => o.name === "authorization-mode" || o.name.startsWith("authorization-webhook-"),
    );
    if (legacy !== undefined) {
      return {
        ok: false,
        reason: `--authorization-config cannot be combined with ${describeOccurrence(legacy)}; kube-apiserver refuses to start`,
      };
    }
    const parsed = configFile(i, "authorization-config", kindsOf("AuthorizationConfiguration"));
    if (!parsed.ok) return parsed;
    const list = parsed.value.data.authorizers;
    if (!Array.isArray(list) || list.length === 0) {
      return {
        ok: false,
        reason: `--authorization-config=${cfg.value} defines no authorizers; kube-apiserver rejects it`,
      };
    }
    const types: string[] = [];
    for (const [n, a] of list.entries()) {
      const type = isRecord(a) ? a.type : undefined;
      if (typeof type !== "string" || !AUTHORIZATION_MODES.has(type)) {
        return {
          ok: false,
          reason: `--authorization-config=${cfg.value}: authorizers[${n}].type ${quote(type ?? null)} is not a valid authorizer type; kube-apiserver rejects it`,
        };
      }
      if (type !== "Webhook" && types.includes(type)) {
        return {
          ok: false,
          reason: `--authorization-config=${cfg.value}: authorizer type ${type} appears twice; kube-apiserver rejects it`,
        };
      }
      types.push(type);
    }
    return {
      ok: true,
      value: types,
      explicit: true,
      source: `authorizers in --authorization-config=${cfg.value}: [${types.join(", ")}]`,
    };
  }
  if (modes.value.length === 0) {
    return {
      ok: true,
      value: ["AlwaysAllow"],
      explicit: modes.explicit,
      source: modes.explicit
        ? `${modes.source} gives an empty list, so kube-apiserver falls back to AlwaysAllow`
        : "neither --authorization-mode nor --authorization-config is set; the kube-apiserver default is AlwaysAllow",
    };
  }
  const bad = modes.value.find((m) => !AUTHORIZATION_MODES.has(m));
  if (bad !== undefined) {
    return {
      ok: false,
      reason: `${modes.source}: ${quote(bad)} is not a valid authorization mode; kube-apiserver refuses to start`,
    };
  }
  if (new Set(modes.value).size !== modes.value.length) {
    return {
      ok: false,
      reason: `${modes.source}: a mode is specified more than once; kube-apiserver refuses to start`,
    };
  }
  return {
    ok: true,
    value: modes.value,
    explicit: true,
    source: `${modes.source} (effective: ${modes.value.join(", ")})`,
  };
}

/** The admission plugins that run, with an explanation; invalid combinations are not determinable. */
export function effectiveAdmissionPlugins(i: ApiServerInputs): Effective<ReadonlySet<string>> {
  const f = i.flags;
  const legacy = listFlag(f, "admission-control", []);
  const enable = listFlag(f, "enable-admission-plugins", []);
  const disable = listFlag(f, "disable-admission-plugins", []);
  if (!legacy.ok) return legacy;
  if (!enable.ok) return enable;
  if (!disable.ok) return disable;
  const legacySet = isFlagSet(f, "admission-control");
  if (legacySet && (isFlagSet(f, "enable-admission-plugins") || isFlagSet(f, "disable-admission-plugins"))) {
    return {
      ok: false,
      reason:
        "--admission-control and --enable-admission-plugins/--disable-admission-plugins are mutually exclusive; kube-apiserver refuses to start",
    };
  }
  for (const [flag, e] of [
    ["admission-control", legacy],
    ["enable-admission-plugins", enable],
    ["disable-admission-plugins", disable],
  ] as const) {
    const unknownName = e.value.find((p) => !ADMISSION_PLUGINS.has(p));
    if (unknownName !== undefined) {
      return {
        ok: false,
        reason: `--${flag} names ${quote(unknownName)}, which is not a kube-apiserver v1.36 admission plugin; kube-apiserver refuses to start`,
      };
    }
  }
  if (legacySet) {
    return {
      ok: true,
      value: new Set(legacy.value),
      explicit: true,
      source: `${legacy.source} (deprecated flag: exactly the listed plugins run, no defaults)`,
    };
  }
  const overlap = enable.value.filter((p) => disable.value.includes(p));
  if (overlap.length > 0) {
    return {
      ok: false,
      reason: `${overlap.join(", ")} in both --enable-admission-plugins and --disable-admission-plugins; kube-apiserver refuses to start`,
    };
  }
  const plugins = new Set([...DEFAULT_ON_ADMISSION_PLUGINS, ...enable.value]);
  for (const p of disable.value) plugins.delete(p);
  const parts = [enable.explicit ? enable.source : "--enable-admission-plugins is not set"];
  if (disable.explicit) parts.push(disable.source);
  return {
    ok: true,
    value: plugins,
    explicit: enable.explicit || disable.explicit,
    source: parts.join("; "),
  };
}

/** Whether one admission plugin runs, with the reason in words. */
function pluginEnabled(i: ApiServerInputs, plugin: string): Effective<boolean> {
  const eff = effectiveAdmissionPlugins(i);
  if (!eff.ok) return eff;
  const on = eff.value.has(plugin);
  let why: string;
  if (isFlagSet(i.flags, "admission-control")) {
    why = `${plugin} is ${on ? "" : "not "}listed in ${eff.source}`;
  } else {
    const enable = listFlag(i.flags, "enable-admission-plugins", []);
    const disable = listFlag(i.flags, "disable-admission-plugins", []);
    const inEnable = enable.ok && enable.value.includes(plugin);
    const inDisable = disable.ok && disable.value.includes(plugin);
    const dflt = DEFAULT_ON_ADMISSION_PLUGINS.has(plugin);
    if (inDisable)
      why = `${plugin} is disabled by ${disable.ok ? disable.source : "--disable-admission-plugins"}`;
    else if (inEnable)
      why = `${plugin} is enabled by ${enable.ok ? enable.source : "--enable-admission-plugins"}`;
    else if (dflt)
      why = `${plugin} is on by default in kube-apiserver v1.36 and not disabled (${eff.source})`;
    else why = `${plugin} is not on by default in kube-apiserver v1.36 and not enabled (${eff.source})`;
  }
  return { ok: true, value: on, explicit: eff.explicit, source: why };
}

/** Anonymous authentication as configured, including the conditions that restrict it to some paths. */
export interface AnonymousAuth {
  readonly enabled: boolean;
  /** Paths anonymous requests are limited to (`--authentication-config` conditions); empty = all paths. */
  readonly paths: readonly string[];
}

/**
 * Anonymous auth as kube-apiserver resolves it: `anonymous` in `--authentication-config` when present
 * (then `--anonymous-auth` must not be given), else `--anonymous-auth` (default true) — which the server
 * resets to false when the AlwaysAllow authorizer is in the `--authorization-mode` list.
 */
export function effectiveAnonymousAuth(i: ApiServerInputs): Effective<AnonymousAuth> {
  const f = i.flags;
  const flag = boolFlag(f, "anonymous-auth", true);
  if (!flag.ok) return flag;
  const authn = stringFlag(f, "authentication-config");
  if (!authn.ok) return authn;
  if (authn.value !== "") {
    const parsed = configFile(i, "authentication-config", kindsOf("AuthenticationConfiguration"));
    if (!parsed.ok) return parsed;
    const anon = parsed.value.data.anonymous;
    if (anon !== undefined && anon !== null) {
      if (isFlagSet(f, "anonymous-auth")) {
        return {
          ok: false,
          reason: `--anonymous-auth cannot be set when ${authn.value} configures anonymous; kube-apiserver refuses to start`,
        };
      }
      if (!isRecord(anon) || (anon.enabled !== undefined && typeof anon.enabled !== "boolean")) {
        return { ok: false, reason: `anonymous in ${authn.value} is malformed; kube-apiserver rejects it` };
      }
      const enabled = anon.enabled === true;
      const paths = Array.isArray(anon.conditions)
        ? anon.conditions.map((c) => (isRecord(c) && typeof c.path === "string" ? c.path : "?"))
        : [];
      const cond = paths.length > 0 ? ` for paths ${paths.join(", ")}` : "";
      return {
        ok: true,
        value: { enabled, paths },
        explicit: true,
        source: `anonymous.enabled=${enabled}${cond} in --authentication-config=${authn.value}`,
      };
    }
  }
  // ApplyAuthorization: with --authorization-mode containing AlwaysAllow (or empty, which means AlwaysAllow)
  // and no --authorization-config, the server stomps the flag value to false.
  const cfg = stringFlag(f, "authorization-config");
  const modes = listFlag(f, "authorization-mode", []);
  if (flag.value && cfg.ok && cfg.value === "" && modes.ok) {
    if (modes.value.length === 0 || modes.value.includes("AlwaysAllow")) {
      return {
        ok: true,
        value: { enabled: false, paths: [] },
        explicit: flag.explicit,
        source: `${flag.source}, but kube-apiserver resets anonymous auth to false because the AlwaysAllow authorizer is used (which is worse: see 1.2.6)`,
      };
    }
  }
  return {
    ok: true,
    value: { enabled: flag.value, paths: [] },
    explicit: flag.explicit,
    source: flag.source,
  };
}

/** Pass when every named flag has a non-empty value. */
function requireFiles(...names: string[]): (i: ApiServerInputs) => CheckOutcome {
  return (i) => {
    const parts: string[] = [];
    const missing: string[] = [];
    for (const n of names) {
      const v = stringFlag(i.flags, n);
      if (!v.ok) return unknown(v.reason);
      if (v.value === "") {
        missing.push(v.explicit ? `${v.source} is empty, which kube-apiserver treats as not set` : v.source);
      } else parts.push(v.source);
    }
    return missing.length > 0 ? fail([...missing, ...parts].join("; ")) : pass(parts.join("; "));
  };
}

function pluginMustBeOn(plugin: string): (i: ApiServerInputs) => CheckOutcome {
  return (i) => withValue(pluginEnabled(i, plugin), (on, why) => (on ? pass(why) : fail(why)));
}

/** For admission plugins CIS marks Manual: Pass when on, otherwise a human decides (status Manual). */
function pluginRecommended(plugin: string, judgement: string): (i: ApiServerInputs) => CheckOutcome {
  return (i) =>
    withValue(pluginEnabled(i, plugin), (on, why) => (on ? pass(why) : manual(`${why}; ${judgement}`)));
}

/** Decodes the audit policy and tells whether it can record anything at all. */
function auditPolicyRecords(i: ApiServerInputs): Effective<number> {
  const parsed = configFile(i, "audit-policy-file", [{ apiVersion: "audit.k8s.io/v1", kind: "Policy" }]);
  if (!parsed.ok) return parsed;
  const rules = parsed.value.data.rules;
  const path = parsed.value.file.path;
  if (!Array.isArray(rules) || rules.length === 0) {
    return { ok: false, reason: `audit policy ${path} has no rules; kube-apiserver refuses to load it` };
  }
  const selectors = ["users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs"];
  for (const r of rules) {
    if (!isRecord(r)) continue;
    if (r.level !== "None") return { ok: true, value: rules.length, explicit: true, source: path };
    const catchAll = selectors.every((s) => r[s] === undefined || (Array.isArray(r[s]) && r[s].length === 0));
    if (catchAll) break;
  }
  return { ok: true, value: 0, explicit: true, source: path };
}

/**
 * The audit log destination: Unknown, Fail when no audit log is written at all (the benchmark scores the
 * retention flags, and fixing 1.2.16 needs them), NotApplicable when the log goes to stdout (rotation flags
 * have no effect there), or the path.
 */
function auditLogFile(i: ApiServerInputs): CheckOutcome | string {
  const p = stringFlag(i.flags, "audit-log-path");
  if (!p.ok) return unknown(p.reason);
  if (p.value === "")
    return fail(
      `${p.source}: no audit log is written (1.2.16 fails), so no retention is in effect; set --audit-log-path and this flag`,
    );
  if (p.value === "-")
    return notApplicable(`${p.source}: the audit log goes to stdout, log rotation flags do not apply`);
  return p.value;
}

function auditRetention(
  flag: string,
  min: number,
  fallback: number,
  zeroMeans: string,
): (i: ApiServerInputs) => CheckOutcome {
  return (i) => {
    const file = auditLogFile(i);
    if (typeof file !== "string") return file;
    return withValue(intFlag(i.flags, flag, 64, fallback), (v, src) => {
      if (v < 0) return unknown(`${src}: a negative value is rejected by kube-apiserver`);
      if (v === 0)
        return zeroMeans === ""
          ? fail(
              `${src}: 0 disables rotation of ${file} (the kube-apiserver help calls this not recommended)`,
            )
          : pass(`${src}: ${zeroMeans}`);
      return v >= min ? pass(src) : fail(`${src}: below ${min}`);
    });
  };
}

const CIS_ENCRYPTION_PROVIDERS = new Set(["aescbc", "kms", "secretbox"]);

/** The provider that encrypts new Secrets (first provider of the first rule covering them). */
/** The EncryptionConfiguration provider types kube-apiserver knows. */
const PROVIDER_TYPES: ReadonlySet<string> = new Set(["aescbc", "aesgcm", "secretbox", "kms", "identity"]);

function secretsWriteProvider(i: ApiServerInputs): Effective<string | undefined> {
  const parsed = configFile(i, "encryption-provider-config", [
    { apiVersion: "apiserver.config.k8s.io/v1", kind: "EncryptionConfiguration" },
    { apiVersion: "v1", kind: "EncryptionConfig" },
  ]);
  if (!parsed.ok) return parsed;
  const path = parsed.value.file.path;
  const rules = parsed.value.data.resources;
  if (!Array.isArray(rules))
    return { ok: false, reason: `${path} has no resources list; kube-apiserver rejects it` };
  for (const r of rules) {
    if (!isRecord(r) || !Array.isArray(r.resources)) continue;
    const covers = r.resources.some((x) => x === "secrets" || x === "*." || x === "*.*");
    if (!covers) continue;
    const first: unknown = Array.isArray(r.providers) ? r.providers[0] : undefined;
    const name = isRecord(first) ? Object.keys(first)[0] : undefined;
    if (name === undefined)
      return {
        ok: false,
        reason: `${path}: the rule covering secrets has no providers; kube-apiserver rejects it`,
      };
    // Only a provider type is ever named: whatever else stands there may be key material.
    if (!PROVIDER_TYPES.has(name))
      return {
        ok: false,
        reason: `${path}: the first provider for secrets is of no known type; kube-apiserver rejects it`,
      };
    return { ok: true, value: name, explicit: true, source: path };
  }
  return { ok: true, value: undefined, explicit: true, source: path };
}

/** Pass when the effective authorizer chain includes `name`. */
function authorizerIncluded(name: string): (i: ApiServerInputs) => CheckOutcome {
  return (i) =>
    withValue(effectiveAuthorizers(i), (m, src) =>
      m.includes(name) ? pass(src) : fail(`${src}: no ${name} authorizer`),
    );
}

/** The 1.2.x checks, in benchmark order. */
export const APISERVER_CHECKS: readonly CisCheck<ApiServerInputs>[] = [
  {
    id: "1.2.1",
    severity: "Medium",
    reads: ["--anonymous-auth"],
    title: "Ensure that the --anonymous-auth argument is set to false",
    automated: false,
    evaluate: (i) =>
      withValue(effectiveAnonymousAuth(i), (a, src) =>
        !a.enabled
          ? pass(src)
          : a.paths.length > 0
            ? manual(
                `${src}: anonymous requests are limited to these paths; confirm they expose nothing sensitive`,
              )
            : fail(`${src}: anonymous requests reach every endpoint as system:anonymous`),
      ),
  },
  {
    id: "1.2.2",
    severity: "Medium",
    reads: ["--token-auth-file"],
    title: "Ensure that the --token-auth-file parameter is not set",
    automated: true,
    evaluate: (i) =>
      withValue(stringFlag(i.flags, "token-auth-file"), (v, src) =>
        v === ""
          ? pass(
              isFlagSet(i.flags, "token-auth-file")
                ? `${src} is empty, so no static token file is used`
                : src,
            )
          : fail(`${src}: static bearer tokens are accepted`),
      ),
  },
  {
    id: "1.2.3",
    severity: "Low",
    reads: ["kube-apiserver command line"],
    title: "Ensure that the --DenyServiceExternalIPs is set",
    automated: false,
    evaluate: pluginRecommended(
      "DenyServiceExternalIPs",
      "enable it unless Services legitimately use spec.externalIPs",
    ),
  },
  {
    id: "1.2.4",
    severity: "Medium",
    reads: ["--kubelet-client-certificate", "--kubelet-client-key"],
    title:
      "Ensure that the --kubelet-client-certificate and --kubelet-client-key arguments are set as appropriate",
    automated: true,
    evaluate: requireFiles("kubelet-client-certificate", "kubelet-client-key"),
  },
  {
    id: "1.2.5",
    severity: "Medium",
    reads: ["--kubelet-certificate-authority"],
    title: "Ensure that the --kubelet-certificate-authority argument is set as appropriate",
    automated: true,
    evaluate: requireFiles("kubelet-certificate-authority"),
  },
  {
    id: "1.2.6",
    severity: "Critical",
    reads: ["--authorization-mode"],
    title: "Ensure that the --authorization-mode argument is not set to AlwaysAllow",
    automated: true,
    evaluate: (i) =>
      withValue(effectiveAuthorizers(i), (modes, src) =>
        modes.includes("AlwaysAllow") ? fail(`${src}: AlwaysAllow authorizes every request`) : pass(src),
      ),
  },
  {
    id: "1.2.7",
    severity: "Medium",
    reads: ["--authorization-mode"],
    title: "Ensure that the --authorization-mode argument includes Node",
    automated: true,
    evaluate: authorizerIncluded("Node"),
  },
  {
    id: "1.2.8",
    severity: "High",
    reads: ["--authorization-mode"],
    title: "Ensure that the --authorization-mode argument includes RBAC",
    automated: true,
    evaluate: authorizerIncluded("RBAC"),
  },
  {
    id: "1.2.9",
    severity: "Low",
    reads: ["kube-apiserver command line"],
    title: "Ensure that the admission control plugin EventRateLimit is set",
    automated: false,
    evaluate: pluginRecommended(
      "EventRateLimit",
      "decide on event rate limits for this cluster and configure them in --admission-control-config-file",
    ),
  },
  {
    id: "1.2.10",
    severity: "High",
    reads: ["kube-apiserver command line"],
    title: "Ensure that the admission control plugin AlwaysAdmit is not set",
    automated: true,
    evaluate: (i) => withValue(pluginEnabled(i, "AlwaysAdmit"), (on, why) => (on ? fail(why) : pass(why))),
  },
  {
    id: "1.2.11",
    severity: "Low",
    reads: ["kube-apiserver command line"],
    title: "Ensure that the admission control plugin AlwaysPullImages is set",
    automated: false,
    evaluate: pluginRecommended(
      "AlwaysPullImages",
      "it costs registry traffic and availability; decide whether multi-tenant image access control needs it",
    ),
  },
  {
    id: "1.2.12",
    severity: "Medium",
    reads: ["kube-apiserver command line"],
    title: "Ensure that the admission control plugin ServiceAccount is set",
    automated: true,
    evaluate: pluginMustBeOn("ServiceAccount"),
  },
  {
    id: "1.2.13",
    severity: "Medium",
    reads: ["kube-apiserver command line"],
    title: "Ensure that the admission control plugin NamespaceLifecycle is set",
    automated: true,
    evaluate: pluginMustBeOn("NamespaceLifecycle"),
  },
  {
    id: "1.2.14",
    severity: "High",
    reads: ["kube-apiserver command line"],
    title: "Ensure that the admission control plugin NodeRestriction is set",
    automated: true,
    evaluate: pluginMustBeOn("NodeRestriction"),
  },
  {
    id: "1.2.15",
    severity: "Low",
    reads: ["--profiling"],
    title: "Ensure that the --profiling argument is set to false",
    automated: true,
    evaluate: (i) =>
      withValue(boolFlag(i.flags, "profiling", true), (v, src) =>
        v ? fail(`${src}: /debug/pprof is served`) : pass(src),
      ),
  },
  {
    id: "1.2.16",
    severity: "Medium",
    reads: ["--audit-log-path"],
    title: "Ensure that the --audit-log-path argument is set",
    automated: true,
    evaluate: (i) => {
      const p = stringFlag(i.flags, "audit-log-path");
      if (!p.ok) return unknown(p.reason);
      if (p.value === "") return fail(`${p.source}: no audit log is written`);
      const policy = stringFlag(i.flags, "audit-policy-file");
      if (!policy.ok) return unknown(policy.reason);
      if (policy.value === "") {
        return fail(
          `${p.source} but ${policy.source}: without an audit policy kube-apiserver records no events to the log`,
        );
      }
      return withValue(auditPolicyRecords(i), (n, src) =>
        n === 0
          ? fail(
              `${p.source} but every request matches level None in the audit policy ${src}: nothing is recorded`,
            )
          : pass(`${p.source}${p.value === "-" ? " (stdout)" : ""} with audit policy ${src}`),
      );
    },
  },
  {
    id: "1.2.17",
    severity: "Low",
    reads: ["--audit-log-maxage"],
    title: "Ensure that the --audit-log-maxage argument is set to 30 or as appropriate",
    automated: true,
    evaluate: auditRetention("audit-log-maxage", 30, 366, "0 keeps old audit logs regardless of age"),
  },
  {
    id: "1.2.18",
    severity: "Low",
    reads: ["--audit-log-maxbackup"],
    title: "Ensure that the --audit-log-maxbackup argument is set to 10 or as appropriate",
    automated: true,
    evaluate: auditRetention("audit-log-maxbackup", 10, 100, "0 keeps every rotated audit log file"),
  },
  {
    id: "1.2.19",
    severity: "Low",
    reads: ["--audit-log-maxsize"],
    title: "Ensure that the --audit-log-maxsize argument is set to 100 or as appropriate",
    automated: true,
    evaluate: auditRetention("audit-log-maxsize", 100, 100, ""),
  },
  {
    id: "1.2.20",
    severity: "Low",
    reads: ["--request-timeout"],
    title: "Ensure that the --request-timeout argument is set as appropriate",
    automated: false,
    evaluate: (i) =>
      withValue(durationFlag(i.flags, "request-timeout", 60e9), (ns, src) =>
        ns < 0
          ? unknown(`${src}: a negative timeout is rejected by kube-apiserver`)
          : manual(
              `${src} (effective ${formatDuration(ns)}); whether this is appropriate depends on the cluster`,
            ),
      ),
  },
  {
    id: "1.2.21",
    severity: "Medium",
    reads: ["--service-account-lookup"],
    title: "Ensure that the --service-account-lookup argument is set to true",
    automated: true,
    evaluate: (i) =>
      withValue(boolFlag(i.flags, "service-account-lookup", true), (v, src) =>
        v ? pass(src) : fail(`${src}: tokens of deleted service accounts stay valid`),
      ),
  },
  {
    id: "1.2.22",
    severity: "Low",
    reads: ["--service-account-key-file"],
    title: "Ensure that the --service-account-key-file argument is set as appropriate",
    automated: true,
    evaluate: (i) =>
      withValue(arrayFlag(i.flags, "service-account-key-file"), (files, src) => {
        if (files.some((f) => f !== "")) return pass(src);
        const ext = stringFlag(i.flags, "service-account-signing-endpoint");
        if (ext.ok && ext.value !== "") {
          return manual(
            `${src}; keys come from the external signer ${ext.source}: verify its key management`,
          );
        }
        return fail(
          `${src}: kube-apiserver falls back to the --tls-private-key-file key, so serving and token keys cannot be rotated separately`,
        );
      }),
  },
  {
    id: "1.2.23",
    severity: "High",
    reads: ["--etcd-certfile", "--etcd-keyfile"],
    title: "Ensure that the --etcd-certfile and --etcd-keyfile arguments are set as appropriate",
    automated: true,
    evaluate: requireFiles("etcd-certfile", "etcd-keyfile"),
  },
  {
    id: "1.2.24",
    severity: "Medium",
    reads: ["--tls-cert-file", "--tls-private-key-file"],
    title: "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate",
    automated: true,
    evaluate: requireFiles("tls-cert-file", "tls-private-key-file"),
  },
  {
    id: "1.2.25",
    severity: "Medium",
    reads: ["--client-ca-file"],
    title: "Ensure that the --client-ca-file argument is set as appropriate",
    automated: true,
    evaluate: requireFiles("client-ca-file"),
  },
  {
    id: "1.2.26",
    severity: "High",
    reads: ["--etcd-cafile"],
    title: "Ensure that the --etcd-cafile argument is set as appropriate",
    automated: true,
    evaluate: requireFiles("etcd-cafile"),
  },
  {
    id: "1.2.27",
    severity: "Medium",
    reads: ["--encryption-provider-config"],
    title: "Ensure that the --encryption-provider-config argument is set as appropriate",
    automated: false,
    evaluate: (i) =>
      withValue(stringFlag(i.flags, "encryption-provider-config"), (v, src) =>
        v === "" ? fail(`${src}: Secrets are stored in etcd unencrypted`) : pass(src),
      ),
  },
  {
    id: "1.2.28",
    severity: "Medium",
    reads: ["kube-apiserver command line"],
    title: "Ensure that encryption providers are appropriately configured",
    automated: false,
    evaluate: (i) => {
      const v = stringFlag(i.flags, "encryption-provider-config");
      if (!v.ok) return unknown(v.reason);
      if (v.value === "") return fail(`${v.source}: no encryption provider is configured`);
      return withValue(secretsWriteProvider(i), (provider, src) => {
        if (provider === undefined)
          return fail(`no rule in ${src} covers secrets: they are stored unencrypted`);
        return CIS_ENCRYPTION_PROVIDERS.has(provider)
          ? pass(`secrets are written with the ${provider} provider (${src})`)
          : fail(
              `secrets are written with the ${provider} provider (${src}); CIS accepts aescbc, kms or secretbox as the first provider${provider === "identity" ? " — identity means no encryption" : ""}`,
            );
      });
    },
  },
  {
    id: "1.2.29",
    severity: "Low",
    reads: ["kube-apiserver command line"],
    title: "Ensure that the API Server only makes use of Strong Cryptographic Ciphers",
    automated: false,
    evaluate: (i) =>
      judgeCiphers(
        APISERVER_STRONG_CIPHERS,
        "kube-apiserver",
        listFlag(i.flags, "tls-cipher-suites", []),
        stringFlag(i.flags, "tls-min-version"),
      ),
  },
  {
    id: "1.2.30",
    severity: "Low",
    reads: ["--service-account-extend-token-expiration"],
    title: "Ensure that the --service-account-extend-token-expiration parameter is set to false",
    automated: true,
    evaluate: (i) =>
      withValue(boolFlag(i.flags, "service-account-extend-token-expiration", true), (v, src) =>
        v ? fail(`${src}: admission-injected tokens are valid for up to a year`) : pass(src),
      ),
  },
];
