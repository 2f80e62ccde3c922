import type { V1CustomResourceDefinition } from "@kubernetes/client-node";
import type { OpenApiSchema } from "../schema.js";
import { GROUP, KIND, PLURAL, VERSION, specSchema, statusSchema } from "./policy.js";

/** The CustomResourceDefinition, built from the same schema objects the operator's types come from. */
export function clusterSecurityPolicyCRD(): V1CustomResourceDefinition {
  const root: OpenApiSchema = {
    type: "object",
    description:
      "ClusterSecurityPolicy declares the security posture of the cluster: network isolation, least privilege, " +
      "Pod Security and control-plane hardening. The operator drives the cluster toward it (Enforce) or reports " +
      "where it differs (Audit).",
    properties: {
      apiVersion: { type: "string", description: "APIVersion of this object." },
      kind: { type: "string", description: "Kind of this object." },
      metadata: { type: "object" },
      spec: specSchema.openapi,
      status: statusSchema.openapi,
    },
    "x-kubernetes-validations": [
      {
        rule: "self.metadata.name.size() <= 40",
        message:
          "metadata.name must be at most 40 characters (it prefixes the names of the objects it creates)",
      },
      {
        // Extra NetworkPolicies are named csp-<policy>.<extra>: with no '.' in policy names, the '.' tells
        // where the policy's name ends, so no two policies (nor a built-in and an extra) share a name.
        // Checked on create only (names never change): a policy stored before this rule keeps accepting
        // updates, and the operator can still write its status.
        rule: "oldSelf.hasValue() || !self.metadata.name.contains('.')",
        optionalOldSelf: true,
        message:
          "metadata.name must not contain '.' (it prefixes the names of the objects it creates, where '.' " +
          "separates the policy's name from an extra NetworkPolicy's name)",
      },
    ],
  };
  const cond = (type: string) => `.status.conditions[?(@.type=="${type}")].status`;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${PLURAL}.${GROUP}`, labels: { "app.kubernetes.io/part-of": "csp-operator" } },
    spec: {
      group: GROUP,
      scope: "Cluster",
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: "clustersecuritypolicy",
        shortNames: ["csp"],
        categories: ["security"],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Mode", type: "string", jsonPath: ".spec.mode" },
            { name: "Ready", type: "string", jsonPath: cond("Ready") },
            { name: "Compliant", type: "string", jsonPath: cond("Compliant") },
            { name: "Namespaces", type: "integer", jsonPath: ".status.summary.namespaces", priority: 1 },
            { name: "Managed", type: "integer", jsonPath: ".status.summary.managedObjects", priority: 1 },
            { name: "Drifted", type: "integer", jsonPath: ".status.summary.drifted" },
            { name: "Findings", type: "integer", jsonPath: ".status.summary.findings" },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: { openAPIV3Schema: root },
        },
      ],
    },
  };
}
