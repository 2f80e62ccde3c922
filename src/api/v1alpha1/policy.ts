/**
 * ClusterSecurityPolicy v1alpha1 — the single source of truth for the CRD schema and the TypeScript
 * types. `crds/` is generated from this file (`npm run crds`) and a unit test fails when they differ.
 * Field names are the public contract (shared/design/API.md): extend, never rename.
 */
import type { V1NetworkPolicySpec } from "@kubernetes/client-node";
import { arrayOf, bool, enumOf, int, mapOf, obj, opaque, str, type Static } from "../schema.js";

export const GROUP = "security.csp-operator.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "ClusterSecurityPolicy";
export const PLURAL = "clustersecuritypolicies";

const DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/**
 * Suffixes of the NetworkPolicies the operator builds in itself (`csp-<policy>-<suffix>`). An extra
 * NetworkPolicy may not take one of these names: two objects called default-deny in one namespace, one
 * denying and one allowing, would be unreadable even though their names differ.
 */
export const BUILT_IN_NETWORK_POLICIES = ["default-deny", "allow-dns", "allow-same-namespace"] as const;

/** CEL: the ServiceAccount a `spec.rbac.roles` entry `r` generates. */
/** A label key as CEL sees it: an optional DNS-subdomain prefix and `/`, then a name of at most 63. */
const LABEL_KEY =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$";
const roleServiceAccount = (r: string) => `(has(${r}.serviceAccount) ? ${r}.serviceAccount : ${r}.name)`;
/** CEL, on the roles list: `value` of every entry whose ServiceAccount another entry generates too. */
const sharing = (value: string) =>
  `self.map(r, self.exists(o, o.name != r.name && ${roleServiceAccount("o")} == ${roleServiceAccount("r")}), ${value})`;

const labelSelector = obj(
  {
    matchLabels: mapOf(str({ description: "Label value.", maxLength: 63 }), {
      description: "Namespaces whose labels contain all of these key/value pairs.",
    }),
    matchExpressions: arrayOf(
      obj(
        {
          key: str({ description: "The label key the expression applies to.", minLength: 1, maxLength: 317 }),
          operator: enumOf(["In", "NotIn", "Exists", "DoesNotExist"] as const, {
            description: "How the key relates to the values.",
          }),
          values: arrayOf(str({ description: "A label value.", maxLength: 63 }), {
            description: "Values for In and NotIn; must be empty for Exists and DoesNotExist.",
            maxItems: 64,
          }),
        },
        {
          description: "A label selector requirement.",
          required: ["key", "operator"],
          rules: [
            {
              rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
              message: "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
            },
          ],
        },
      ),
      { description: "Label selector requirements; all must match.", maxItems: 16 },
    ),
  },
  { description: "A standard Kubernetes label selector. Empty selects every namespace." },
);

const policyRule = obj(
  {
    apiGroups: arrayOf(str({ description: 'An API group; "" is the core group.', maxLength: 253 }), {
      description: "API groups of the resources.",
      maxItems: 32,
    }),
    resources: arrayOf(
      str({ description: "A resource, optionally with a subresource (pods/log).", maxLength: 253 }),
      {
        description: "Resources this rule applies to.",
        maxItems: 64,
      },
    ),
    resourceNames: arrayOf(str({ description: "An object name.", maxLength: 253 }), {
      description: "Restricts the rule to these object names.",
      maxItems: 64,
    }),
    verbs: arrayOf(str({ description: "A verb such as get, list, watch, create.", maxLength: 64 }), {
      description: "Verbs allowed on the resources.",
      minItems: 1,
      maxItems: 16,
    }),
  },
  {
    description: "An rbac.authorization.k8s.io/v1 PolicyRule (namespaced: no nonResourceURLs).",
    required: ["verbs"],
  },
);

const riskyRule =
  "self.rules.exists(r, r.verbs.exists(v, v in ['*', 'escalate', 'bind', 'impersonate']) || (has(r.resources) && r.resources.exists(x, x == '*' || x.startsWith('*/'))) || (has(r.apiGroups) && '*' in r.apiGroups))";

const generatedRole = obj(
  {
    name: str({
      description:
        "Name of the Role and RoleBinding (DNS-1123 label), and of the ServiceAccount unless serviceAccount is set.",
      pattern: DNS_LABEL,
      maxLength: 63,
    }),
    rules: arrayOf(policyRule, {
      description: "Exactly the permissions the Role grants.",
      minItems: 1,
      maxItems: 32,
    }),
    serviceAccount: str({
      description:
        "Dedicated ServiceAccount bound to the Role; defaults to the role's name. Never `default`, and never " +
        "the ServiceAccount of another entry.",
      pattern: DNS_LABEL,
      maxLength: 63,
    }),
    riskAcceptance: obj(
      {
        reason: str({ description: "Why this role needs wildcards or escalation verbs.", minLength: 1 }),
        ticket: str({ description: "Reference to the approval (ticket, review)." }),
      },
      {
        description:
          "Explicitly allows wildcards and escalate/bind/impersonate verbs in this role, with a reason.",
        required: ["reason"],
      },
    ),
  },
  {
    description:
      "A least-privilege Role, a dedicated ServiceAccount and a RoleBinding in each selected namespace.",
    required: ["name", "rules"],
    rules: [
      {
        rule: `has(self.riskAcceptance) || !(${riskyRule})`,
        message: "wildcards ('*') and the verbs escalate, bind and impersonate need riskAcceptance.reason",
        fieldPath: ".rules",
      },
      {
        rule: "!has(self.serviceAccount) || self.serviceAccount != 'default'",
        message:
          "serviceAccount must not be 'default': the namespace's default ServiceAccount is shared by every pod " +
          "and is not the policy's to own or bind; name a dedicated one",
        fieldPath: ".serviceAccount",
      },
      {
        rule: "has(self.serviceAccount) || self.name != 'default'",
        message:
          "a role named 'default' would generate the namespace's default ServiceAccount: set serviceAccount " +
          "to a dedicated name",
        fieldPath: ".name",
      },
    ],
  },
);

const subject = obj(
  {
    kind: enumOf(["User", "Group", "ServiceAccount"] as const, { description: "Subject kind." }),
    name: str({ description: "Subject name.", minLength: 1 }),
    namespace: str({ description: "Namespace, for ServiceAccounts." }),
  },
  {
    description: "An RBAC subject.",
    required: ["kind", "name"],
    rules: [
      {
        rule: "self.kind != 'ServiceAccount' || has(self.namespace)",
        message: "ServiceAccount subjects need a namespace",
      },
    ],
  },
);

const auditLevel = enumOf(["None", "Metadata", "Request", "RequestResponse"] as const, {
  description: "How much of a matching request is logged.",
});
const auditStage = enumOf(["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"] as const, {
  description: "An audit stage.",
});

const auditRule = obj(
  {
    level: auditLevel,
    users: arrayOf(str({ description: "A user name." }), { description: "Users this rule applies to." }),
    userGroups: arrayOf(str({ description: "A group." }), { description: "Groups this rule applies to." }),
    verbs: arrayOf(str({ description: "A verb." }), { description: "Verbs this rule applies to." }),
    resources: arrayOf(
      obj(
        {
          group: str({ description: "API group; empty is core." }),
          resources: arrayOf(str({ description: "A resource." }), { description: "Resources." }),
          resourceNames: arrayOf(str({ description: "A name." }), { description: "Object names." }),
        },
        { description: "A group of resources." },
      ),
      { description: "Resources this rule applies to." },
    ),
    namespaces: arrayOf(str({ description: "A namespace." }), { description: "Namespaces." }),
    nonResourceURLs: arrayOf(str({ description: "A URL path, * as suffix wildcard." }), {
      description: "Non-resource URLs.",
    }),
    omitStages: arrayOf(auditStage, { description: "Stages not logged for this rule." }),
  },
  { description: "An audit.k8s.io/v1 PolicyRule.", required: ["level"] },
);

export const exemptionSchema = obj(
  {
    findingId: str({ description: "Exempt findings with this id (e.g. RBAC-CLUSTER-ADMIN or CIS-1.2.6)." }),
    area: enumOf(
      [
        "networkPolicies",
        "podSecurity",
        "serviceAccounts",
        "rbac",
        "auditPolicy",
        "encryption",
        "controlPlane",
        "clusterVersion",
        "credentials",
        "nodeIsolation",
        "apiServerMonitoring",
      ] as const,
      { description: "Exempt a whole area." },
    ),
    namespaces: arrayOf(str({ description: "A namespace name." }), {
      description: "Limit to these namespaces.",
    }),
    resource: str({ description: "Limit to one resource, written Kind/namespace/name or Kind/name." }),
    reason: str({ description: "Why the exemption is acceptable. Required.", minLength: 1 }),
    ticket: str({ description: "Reference to the approval." }),
    expires: str({
      description: "RFC 3339 time after which the exemption stops applying and is itself reported.",
      format: "date-time",
    }),
  },
  {
    description: "An accepted deviation, with a reason and an optional expiry.",
    required: ["reason"],
    rules: [
      { rule: "has(self.findingId) || has(self.area)", message: "an exemption names a findingId or an area" },
    ],
  },
);

export const specSchema = obj(
  {
    mode: enumOf(["Enforce", "Audit"] as const, {
      description: "Enforce corrects drift; Audit only reports it and never writes a child object.",
      default: "Enforce",
    }),
    namespaces: obj(
      {
        selector: labelSelector,
        exclude: arrayOf(str({ description: "A namespace name.", pattern: DNS_LABEL, maxLength: 63 }), {
          description: "Namespaces never touched, by name. csp-system is always excluded.",
          default: ["kube-system", "kube-public", "kube-node-lease"],
          listType: "set",
        }),
      },
      { description: "Which namespaces the policy applies to.", default: {} },
    ),
    networkPolicies: obj(
      {
        defaultDenyIngress: bool({
          description: "Deny all ingress not allowed by another policy.",
          default: true,
        }),
        defaultDenyEgress: bool({
          description: "Deny all egress not allowed by another policy.",
          default: true,
        }),
        allowDNS: bool({ description: "Allow egress to cluster DNS on 53/UDP and 53/TCP.", default: true }),
        allowSameNamespace: bool({
          description: "Allow traffic between pods of the same namespace.",
          default: false,
        }),
        extra: arrayOf(
          obj(
            {
              name: str({
                description:
                  "The NetworkPolicy is named csp-<policy>.<name> (DNS-1123 label; not default-deny, allow-dns " +
                  "or allow-same-namespace, the built-in NetworkPolicies' names).",
                pattern: DNS_LABEL,
                maxLength: 40,
              }),
              spec: opaque<V1NetworkPolicySpec>({
                description:
                  "A networking.k8s.io/v1 NetworkPolicySpec, stamped into every selected namespace.",
              }),
            },
            {
              description: "An extra NetworkPolicy.",
              required: ["name", "spec"],
              rules: [
                {
                  rule: `!(self.name in ${JSON.stringify(BUILT_IN_NETWORK_POLICIES).replaceAll('"', "'")})`,
                  message:
                    "name must not be default-deny, allow-dns or allow-same-namespace: those are the built-in " +
                    "NetworkPolicies' names",
                  fieldPath: ".name",
                },
              ],
            },
          ),
          {
            description: "Extra NetworkPolicies stamped into every selected namespace.",
            listType: "map",
            mapKeys: ["name"],
            maxItems: 32,
          },
        ),
      },
      { description: "Network isolation for selected namespaces.", default: {} },
    ),
    podSecurity: obj(
      {
        enforce: enumOf(["privileged", "baseline", "restricted"] as const, {
          description: "pod-security.kubernetes.io/enforce level.",
        }),
        audit: enumOf(["privileged", "baseline", "restricted"] as const, {
          description: "pod-security.kubernetes.io/audit level.",
        }),
        warn: enumOf(["privileged", "baseline", "restricted"] as const, {
          description: "pod-security.kubernetes.io/warn level.",
        }),
        version: str({
          description: "Policy version for all modes: latest or v1.N.",
          pattern: "^(latest|v1\\.[0-9]+)$",
        }),
      },
      {
        description:
          "Pod Security Admission labels set on selected namespaces; an unset level is left alone.",
      },
    ),
    serviceAccounts: obj(
      {
        automountDefaultToken: bool({
          description: "automountServiceAccountToken of each selected namespace's default ServiceAccount.",
          default: false,
        }),
      },
      { description: "ServiceAccount hardening.", default: {} },
    ),
    rbac: obj(
      {
        roles: arrayOf(generatedRole, {
          description:
            "Generated least-privilege access per selected namespace. Each entry has its own ServiceAccount: " +
            "put every rule one workload needs into one entry.",
          listType: "map",
          mapKeys: ["name"],
          maxItems: 64,
          rules: [
            {
              // Role and RoleBinding names are unique (the list is keyed by name); the ServiceAccount is not
              // unless this holds. Two entries on one ServiceAccount would each claim the same object.
              rule: `self.all(r, !self.exists(o, o.name != r.name && ${roleServiceAccount("o")} == ${roleServiceAccount("r")}))`,
              message: "two entries generate the same ServiceAccount: give each entry its own serviceAccount",
              // Names the first two such entries. map(r, predicate, value) keeps the strings' maxLength for the
              // API server's cost estimate, where filter() and join() lose it and the CRD would be refused.
              messageExpression:
                `'entries name=' + ${sharing("r.name")}[0] + ' and name=' + ${sharing("r.name")}[1] + ` +
                `' generate the same ServiceAccount ' + ${sharing(roleServiceAccount("r"))}[0] + ` +
                `': give each entry its own serviceAccount'`,
            },
          ],
        }),
        audit: obj(
          {
            forbidWildcards: bool({
              description: "Report roles with '*' verbs, resources or groups where bound.",
              default: true,
            }),
            forbidClusterAdminBindings: bool({
              description:
                "Report cluster-admin (or equivalent) granted outside allowedClusterAdminSubjects.",
              default: true,
            }),
            allowedClusterAdminSubjects: arrayOf(subject, {
              description: "Subjects that may hold cluster-admin.",
            }),
          },
          { description: "Findings about RBAC that already exists in the cluster.", default: {} },
        ),
      },
      { description: "Least-privilege RBAC.", default: {} },
    ),
    auditPolicy: obj(
      {
        profile: enumOf(["Default", "Custom"] as const, {
          description: "Default renders the built-in profile; Custom uses rules only.",
          default: "Default",
        }),
        rules: arrayOf(auditRule, {
          description: "Rules placed before the profile's rules (first match wins).",
        }),
        omitStages: arrayOf(auditStage, { description: "Stages omitted for every rule." }),
        omitManagedFields: bool({ description: "Leave managedFields out of logged objects.", default: true }),
        logRotation: obj(
          {
            maxAge: int({ description: "--audit-log-maxage (days).", minimum: 0, default: 30 }),
            maxBackup: int({ description: "--audit-log-maxbackup (files).", minimum: 0, default: 10 }),
            maxSize: int({ description: "--audit-log-maxsize (MB).", minimum: 0, default: 100 }),
          },
          {
            description: "Desired kube-apiserver audit log rotation, checked against its flags.",
            default: {},
          },
        ),
      },
      { description: "The API server's audit Policy, rendered and delivered by the operator." },
    ),
    encryption: obj(
      {
        provider: enumOf(["aescbc", "aesgcm", "secretbox", "kms"] as const, {
          description: "Provider placed first; identity always comes last.",
          default: "aescbc",
        }),
        resources: arrayOf(str({ description: "A resource, e.g. secrets or configmaps." }), {
          description: "Resources encrypted at rest.",
          default: ["secrets"],
          listType: "set",
        }),
        kms: obj(
          {
            name: str({ description: "KMS plugin name.", minLength: 1 }),
            endpoint: str({
              description: "unix:///path of the KMS v2 plugin socket.",
              pattern: "^unix:///.+",
            }),
          },
          { description: "KMS v2 settings, required when provider is kms.", required: ["name", "endpoint"] },
        ),
        rotation: obj(
          {
            period: str({
              description: "Rotate keys older than this Go duration (e.g. 2160h).",
              pattern: "^([0-9]+(h|m|s))+$",
            }),
            trigger: str({ description: "Change this value to rotate once, now." }),
          },
          { description: "Key rotation." },
        ),
      },
      {
        description: "The API server's EncryptionConfiguration for resources at rest.",
        rules: [
          {
            rule: "self.provider != 'kms' || has(self.kms)",
            message: "provider kms needs spec.encryption.kms",
          },
        ],
      },
    ),
    controlPlane: obj(
      {
        apiServer: obj(
          { enabled: bool({ description: "Run the kube-apiserver checks.", default: true }) },
          { description: "kube-apiserver CIS 1.2.x checks.", default: {} },
        ),
        kubelet: obj(
          { enabled: bool({ description: "Run the kubelet CIS 4.2.x checks.", default: true }) },
          { description: "kubelet CIS 4.2.x checks.", default: {} },
        ),
        controllerManager: obj(
          { enabled: bool({ description: "Run the kube-controller-manager checks.", default: true }) },
          { description: "kube-controller-manager CIS 1.3.x checks (from its mirror pod).", default: {} },
        ),
        scheduler: obj(
          { enabled: bool({ description: "Run the kube-scheduler checks.", default: true }) },
          { description: "kube-scheduler CIS 1.4.x checks (from its mirror pod).", default: {} },
        ),
        etcd: obj(
          { enabled: bool({ description: "Run the etcd checks.", default: true }) },
          { description: "etcd CIS 2.x checks (from its mirror pod).", default: {} },
        ),
        policies: obj(
          {
            enabled: bool({
              description:
                "Also report the CIS 5.x results from the API (5.1.x from the RBAC findings, 5.2.x from Pod Security labels, 5.3.2 NetworkPolicy per namespace, 5.7.4 the default namespace) on Cluster/kubernetes. Off by default: they restate the rbac, podSecurity and networkPolicies areas' own findings with CIS ids.",
              default: false,
            }),
            secretEnvironmentVariables: bool({
              description:
                "Also run CIS 5.4.1 (Secrets as environment variables): a paged LIST of every Pod on each recheck (never a watch), reporting one finding per workload that takes a Secret into its environment, naming the namespace, workload, container and variable, never a value. Needs enabled: true and the operator's list on pods (config/rbac). Off by default: it reads every Pod spec.",
              default: false,
            }),
          },
          {
            description: "CIS 5.x checks of cluster policies, from the API.",
            default: {},
            rules: [
              {
                rule: "!has(self.secretEnvironmentVariables) || !self.secretEnvironmentVariables || (has(self.enabled) && self.enabled)",
                message: "secretEnvironmentVariables needs spec.controlPlane.policies.enabled: true",
              },
            ],
          },
        ),
        fileIntegrity: obj(
          {
            accept: arrayOf(
              obj(
                {
                  node: str({
                    description: "The node the change was seen on; unset: accepted on every node.",
                    minLength: 1,
                    maxLength: 253,
                  }),
                  path: str({
                    description: "The file's absolute path on the host, as the agent reports it.",
                    pattern: "^/",
                    maxLength: 4096,
                  }),
                  sha256: str({
                    description:
                      "The accepted new content, `sha256:<64 hex>` as the agent reports it (`csp-operator integrity accept` prints it), `absent` to accept the file's removal, or `directory` for a directory's mode and owner.",
                    pattern: "^(sha256:[0-9a-f]{64}|absent|directory)$",
                  }),
                  mode: str({
                    description:
                      "The accepted new permission bits (octal, e.g. 0600); unset: the baseline's mode is still expected.",
                    pattern: "^0[0-7]{3,4}$",
                  }),
                  owner: str({
                    description:
                      "The accepted new owner `uid:gid`; unset: the baseline's owner is still expected.",
                    pattern: "^[0-9]{1,10}:[0-9]{1,10}$",
                  }),
                  reason: str({
                    description: "Why the change is expected (audit trail).",
                    minLength: 1,
                    maxLength: 1024,
                  }),
                },
                {
                  description: "A file change accepted: its new state becomes the expected one.",
                  required: ["path", "sha256", "reason"],
                },
              ),
              { description: "Accepted file changes.", maxItems: 512 },
            ),
            trustBaseline: arrayOf(
              obj(
                {
                  node: str({
                    description: "The node whose baseline is trusted anew.",
                    minLength: 1,
                    maxLength: 253,
                  }),
                  baselineAt: str({
                    description:
                      "The `baselineAt` of the node's report whose baseline becomes the trusted one (as FILE-BASELINE-CHANGED names it); a report with another baselineAt is still judged against the trusted baseline.",
                    minLength: 1,
                    maxLength: 64,
                  }),
                  reason: str({
                    description: "Why the node's baseline is trusted anew (audit trail).",
                    minLength: 1,
                    maxLength: 1024,
                  }),
                },
                {
                  description:
                    "A reset of the baseline the operator trusts for a node (a reinstalled node, a retake after an upgrade).",
                  required: ["node", "baselineAt", "reason"],
                },
              ),
              { description: "Nodes whose reported baseline is trusted anew, once.", maxItems: 64 },
            ),
          },
          {
            description:
              "File integrity monitoring of the control-plane files by the node agent (needs the agent with --host-root); `{}` turns it on.",
          },
        ),
      },
      {
        description: "CIS Kubernetes Benchmark checks of control-plane settings, judged by effective values.",
      },
    ),
    clusterVersion: obj(
      {
        warnDays: int({
          description:
            "Report a minor release whose end of life is this many days away or closer (default 60).",
          minimum: 0,
          maximum: 3650,
        }),
        tableConfigMap: str({
          description:
            "A ConfigMap in csp-system whose key `releases.json` replaces the release table shipped with the operator (air-gapped updates).",
          maxLength: 253,
          pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        }),
        warnBeforeEndOfLifeDays: int({
          description: "Deprecated alias of warnDays; warnDays wins when both are set.",
          minimum: 0,
          maximum: 3650,
        }),
      },
      { description: "Report API server and kubelet versions past or near end of life, and version skew." },
    ),
    credentials: obj(
      {
        expiryWarningDays: int({
          description: "Report certificates expiring within this many days (default 30).",
          minimum: 1,
          maximum: 3650,
        }),
        legacyTokenSecrets: bool({
          description: "Report legacy ServiceAccount token Secrets.",
          default: true,
        }),
        certificateExpiryWarningDays: int({
          description: "Deprecated alias of expiryWarningDays; expiryWarningDays wins when both are set.",
          minimum: 1,
          maximum: 3650,
        }),
      },
      { description: "Credentials due for rotation." },
    ),
    nodeIsolation: obj(
      {
        nodeSelector: mapOf(
          str({
            description: "Label value.",
            maxLength: 63,
            pattern: "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
          }),
          {
            description:
              "Node labels the selected namespaces' pods must run on (PodNodeSelector annotation); keys are label keys, values label values.",
            maxProperties: 16,
            rules: [
              {
                rule: `self.all(k, size(k) <= 317 && k.matches('${LABEL_KEY}'))`,
                message: "nodeSelector keys must be label keys: [prefix/]name",
              },
            ],
          },
        ),
        tolerations: arrayOf(
          str({
            description: "A taint: key, key=value, key:effect or key=value:effect.",
            maxLength: 316,
          }),
          {
            description:
              "Taints (key[=value][:effect]): a pod of another namespace on an isolated node is accepted when it tolerates one of them, matched on key, operator, value and effect as the scheduler matches them.",
            maxItems: 32,
          },
        ),
      },
      { description: "Node isolation for selected namespaces." },
    ),
    apiServerMonitoring: obj(
      {
        authFailuresPerMinute: int({
          description:
            "Report when failed authentications (401) exceed this many per minute over the window; also the 403 threshold unless forbiddenPerMinute is set.",
          minimum: 1,
          default: 30,
        }),
        forbiddenPerMinute: int({
          description: "Report when 403 (forbidden) responses exceed this many per minute over the window.",
          minimum: 1,
        }),
        window: str({
          description:
            "The window rates are computed over, a Go duration in s, m or h (default 10m, at least 1m).",
          pattern: "^[0-9]{1,5}(s|m|h)$",
          rules: [
            {
              rule: "int(self.substring(0, size(self) - 1)) >= (self.endsWith('s') ? 60 : 1)",
              message: "window must be at least 1m",
            },
          ],
        }),
      },
      { description: "Authentication failure rates from the API server's /metrics." },
    ),
    exemptions: arrayOf(exemptionSchema, { description: "Accepted deviations.", maxItems: 256 }),
  },
  { description: "The desired security posture of the cluster.", default: {} },
);

const condition = obj(
  {
    type: str({ description: "Condition type.", maxLength: 316 }),
    status: enumOf(["True", "False", "Unknown"] as const, { description: "Condition status." }),
    observedGeneration: int({ description: "Generation the condition was computed for.", minimum: 0 }),
    lastTransitionTime: str({ description: "When the status last changed.", format: "date-time" }),
    reason: str({ description: "CamelCase reason.", maxLength: 1024 }),
    message: str({ description: "Human-readable detail.", maxLength: 32768 }),
  },
  {
    description: "A metav1.Condition.",
    required: ["type", "status", "lastTransitionTime", "reason", "message"],
  },
);

export const driftSchema = obj(
  {
    kind: str({ description: "Kind of the object." }),
    namespace: str({ description: "Namespace of the object." }),
    name: str({ description: "Name of the object." }),
    reason: str({ description: "Missing, Modified, Unowned, Conflict, Orphaned." }),
    fields: arrayOf(str({ description: "A field path." }), { description: "Fields that differ." }),
    manager: str({ description: "Field manager that changed the object, where managedFields tell it." }),
    message: str({ description: "Detail." }),
  },
  {
    description: "A difference between the policy and the live cluster.",
    required: ["kind", "name", "reason"],
  },
);

export const findingSchema = obj(
  {
    id: str({ description: "Check id." }),
    severity: enumOf(["Critical", "High", "Medium", "Low", "Info"] as const, { description: "Severity." }),
    resource: str({ description: "Kind/namespace/name or Kind/name." }),
    message: str({ description: "What is wrong." }),
    area: str({ description: "The policy area that produced it." }),
  },
  {
    description: "Something unsafe the operator reports but does not own.",
    required: ["id", "severity", "resource", "message"],
  },
);

/** How much of a child's UID status.childUIDs keeps: `xxxxxxxx-xxxx`, 48 random bits of a v4 UUID. */
export const CHILD_UID_MARK_LENGTH = 13;
/** At most this many children are remembered by UID (about 140 KB of status). */
export const MAX_REMEMBERED_CHILDREN = 10_000;

export const statusSchema = obj(
  {
    observedGeneration: int({ description: "The generation last reconciled.", minimum: 0 }),
    conditions: arrayOf(condition, {
      description: "Ready, Compliant and one per area in use.",
      listType: "map",
      mapKeys: ["type"],
    }),
    summary: obj(
      {
        namespaces: int({ description: "Namespaces selected.", minimum: 0 }),
        managedObjects: int({ description: "Objects the policy manages.", minimum: 0 }),
        drifted: int({ description: "Differences found (the list may be truncated).", minimum: 0 }),
        findings: int({
          description:
            "Findings that count against Compliant: every severity but Info (checks that could not be evaluated), also those past the bounded status.findings list.",
          minimum: 0,
        }),
        findingsBySeverity: obj(
          {
            Critical: int({ description: "Critical findings.", minimum: 0 }),
            High: int({ description: "High findings.", minimum: 0 }),
            Medium: int({ description: "Medium findings.", minimum: 0 }),
            Low: int({ description: "Low findings.", minimum: 0 }),
            Info: int({ description: "Info findings (checks that could not be evaluated).", minimum: 0 }),
          },
          {
            description:
              "Every finding by severity, also those past the bounded status.findings list (0 for a severity with none).",
          },
        ),
      },
      { description: "Counts." },
    ),
    drift: arrayOf(driftSchema, { description: "Differences, bounded.", maxItems: 50 }),
    findings: arrayOf(findingSchema, { description: "Findings, most severe first, bounded.", maxItems: 50 }),
    childUIDs: arrayOf(
      str({
        description: "The first 13 characters (48 random bits) of a child's UID.",
        maxLength: CHILD_UID_MARK_LENGTH,
      }),
      {
        description:
          "The children the operator created, by UID, kept where namespace users cannot write: a child whose ownerReferences and managedFields were rewritten is still recognised and restored. Sorted, bounded.",
        maxItems: MAX_REMEMBERED_CHILDREN,
      },
    ),
  },
  { description: "What the operator observed." },
);

export type ClusterSecurityPolicySpec = Static<typeof specSchema>;
export type ClusterSecurityPolicyStatus = Static<typeof statusSchema>;
export type Condition = NonNullable<ClusterSecurityPolicyStatus["conditions"]>[number];
export type DriftEntry = Static<typeof driftSchema>;
export type Exemption = Static<typeof exemptionSchema>;
export type PodSecurityLevel = "privileged" | "baseline" | "restricted";

export interface ClusterSecurityPolicy {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: {
    name: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    creationTimestamp?: string | Date;
    deletionTimestamp?: string | Date;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: ClusterSecurityPolicySpec;
  status?: ClusterSecurityPolicyStatus;
}
