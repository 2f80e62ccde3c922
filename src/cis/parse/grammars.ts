/**
 * Flag grammars of the control-plane components: which flags are boolean (never consume the next item) and
 * which shorthands exist, per component and version, so argv splits the way the component's own flag
 * parser splits it.
 */
import type { FlagGrammar } from "./flags.js";

/**
 * kube-apiserver v1.36 flag grammar: its boolean flags (taken from `kube-apiserver --help` of v1.36.3, where
 * pflag lists a bool flag without a type) and its shorthands.
 */
export const APISERVER_GRAMMAR: FlagGrammar = {
  component: "kube-apiserver",
  boolFlags: new Set([
    "aggregator-reject-forwarding-redirect",
    "allow-privileged",
    "anonymous-auth",
    "audit-log-batch-throttle-enable",
    "audit-log-compress",
    "audit-log-truncate-enabled",
    "audit-webhook-batch-throttle-enable",
    "audit-webhook-truncate-enabled",
    "contention-profiling",
    "disable-http2-serving",
    "emulation-forward-compatible",
    "enable-aggregator-routing",
    "enable-bootstrap-token-auth",
    "enable-garbage-collector",
    "enable-logs-handler",
    "enable-priority-and-fairness",
    "encryption-provider-config-automatic-reload",
    "help",
    "log-json-split-stream",
    "log-text-split-stream",
    "permit-address-sharing",
    "permit-port-sharing",
    "profiling",
    "runtime-config-emulation-forward-compatible",
    "service-account-extend-token-expiration",
    "service-account-lookup",
    "shutdown-send-retry-after",
    "watch-cache",
  ]),
  optionalValueFlags: new Set(["version"]),
  shorthands: { v: "v", h: "help" },
};

/**
 * kubelet v1.36 flag grammar: boolean flags registered in cmd/kubelet/app/options (BoolVar calls), the
 * cadvisor booleans it re-registers, and its shorthands.
 */
export const KUBELET_GRAMMAR: FlagGrammar = {
  component: "kubelet",
  boolFlags: new Set([
    "anonymous-auth",
    "authentication-token-webhook",
    "cgroups-per-qos",
    "contention-profiling",
    "cpu-cfs-quota",
    "enable-controller-attach-detach",
    "enable-debugging-handlers",
    "enable-load-reader",
    "enable-server",
    "exit-on-lock-contention",
    "experimental-allocatable-ignore-eviction",
    "fail-cgroupv1",
    "fail-swap-on",
    "help",
    "kernel-memcg-notification",
    "local-storage-capacity-isolation",
    "log-cadvisor-usage",
    "make-iptables-util-chains",
    "protect-kernel-defaults",
    "register-node",
    "rotate-certificates",
    "rotate-server-certificates",
    "runonce",
    "seccomp-default",
    "serialize-image-pulls",
    "storage-driver-secure",
    "windows-service",
  ]),
  optionalValueFlags: new Set(["version"]),
  shorthands: { v: "v", h: "help" },
};

/** Flags of the kube-apiserver whose value is a file some check reads. */
export const APISERVER_FILE_FLAGS: readonly string[] = [
  "authorization-config",
  "authentication-config",
  "encryption-provider-config",
  "audit-policy-file",
  "admission-control-config-file",
];

/** Boolean flags every component-base server shares (logging, secure serving, delegated authn/z). */
const COMPONENT_BASE_BOOLS = [
  "authentication-skip-lookup",
  "authentication-tolerate-lookup-failure",
  "contention-profiling",
  "disable-http2-serving",
  "help",
  "leader-elect",
  "log-json-split-stream",
  "log-text-split-stream",
  "permit-address-sharing",
  "permit-port-sharing",
  "profiling",
];

/** kube-controller-manager v1.36 flag grammar (BoolVar flags of cmd/kube-controller-manager/app/options). */
export const CONTROLLER_MANAGER_GRAMMAR: FlagGrammar = {
  component: "kube-controller-manager",
  boolFlags: new Set([
    ...COMPONENT_BASE_BOOLS,
    "allocate-node-cidrs",
    "configure-cloud-routes",
    "enable-dynamic-provisioning",
    "enable-garbage-collector",
    "enable-hostpath-provisioner",
    "enable-leader-migration",
    "use-service-account-credentials",
  ]),
  optionalValueFlags: new Set(["version"]),
  shorthands: { v: "v", h: "help" },
};

/** kube-scheduler v1.36 flag grammar. */
export const SCHEDULER_GRAMMAR: FlagGrammar = {
  component: "kube-scheduler",
  boolFlags: new Set(COMPONENT_BASE_BOOLS),
  optionalValueFlags: new Set(["version"]),
  shorthands: { v: "v", h: "help" },
};

/**
 * etcd v3.6 flag grammar: its boolean flags. etcd parses with Go's `flag` package, where a boolean takes
 * its value only as `--flag=value` (a separate `true` is a stray argument etcd refuses), like pflag here.
 */
export const ETCD_GRAMMAR: FlagGrammar = {
  component: "etcd",
  boolFlags: new Set([
    "auto-tls",
    "client-cert-auth",
    "enable-grpc-gateway",
    "enable-log-rotation",
    "enable-pprof",
    "force-new-cluster",
    "help",
    "peer-auto-tls",
    "peer-client-cert-auth",
    "pre-vote",
    "strict-reconfig-check",
    "version",
  ]),
  optionalValueFlags: new Set(),
  shorthands: {},
  style: "go",
};
