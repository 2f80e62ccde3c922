// Proves the local control plane is a real Kubernetes control plane, not a stub: the apiserver is the version we
// built, CRDs get structural-schema and CEL validation, the controller manager garbage-collects and finalizes
// namespaces, Secrets are encrypted in etcd, and the audit log records our requests.
import { randomBytes } from "node:crypto";
import { expect } from "chai";
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { useControlPlane } from "../support/controlplane.js";
import { eventually } from "../support/eventually.js";

const GROUP = "harness.csp-operator.io";
const VERSION = "v1";
const PLURAL = "widgets";
const CEL_MESSAGE = "replicas must not exceed maxReplicas";
const KEY_NAME = "testkey1";

// A fresh random key per run: never a committed one.
const encryptionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: ${KEY_NAME}
              secret: ${randomBytes(32).toString("base64")}
      - identity: {}
`;

const widgetCrd: V1CustomResourceDefinition = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${PLURAL}.${GROUP}` },
  spec: {
    group: GROUP,
    scope: "Cluster",
    names: { plural: PLURAL, singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [
      {
        name: VERSION,
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                required: ["replicas", "maxReplicas"],
                properties: { replicas: { type: "integer" }, maxReplicas: { type: "integer" } },
                // client-node's serializer only knows the snake_case name; a raw "x-kubernetes-validations"
                // key would be dropped silently and the rule never reach the apiserver.
                x_kubernetes_validations: [
                  { rule: "self.replicas <= self.maxReplicas", message: CEL_MESSAGE },
                ],
              },
            },
          },
        },
      },
    ],
  },
};

function widget(name: string, replicas: number, maxReplicas: number): object {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "Widget",
    metadata: { name },
    spec: { replicas, maxReplicas },
  };
}

function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Resolves to true once a read answers 404; rethrows anything else. */
async function isGone(read: () => Promise<unknown>): Promise<true | undefined> {
  try {
    await read();
    return undefined;
  } catch (err) {
    if (httpCode(err) === 404) return true;
    throw err;
  }
}

describe("local control plane (etcd + kube-apiserver + kube-controller-manager v1.36.3)", function () {
  const cp = useControlPlane({ name: "harness-test", encryptionConfig });
  let core: CoreV1Api;
  let crds: ApiextensionsV1Api;
  let custom: CustomObjectsApi;

  before(function () {
    const kc = cp().kubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    crds = kc.makeApiClient(ApiextensionsV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
  });

  /** Creates the Widget CRD unless an earlier test did, and waits until it is served. */
  async function ensureWidgetCrd(): Promise<void> {
    try {
      await crds.createCustomResourceDefinition({ body: widgetCrd });
    } catch (err) {
      if (httpCode(err) !== 409) throw err;
    }
    await eventually(
      "CRD Established",
      async () => {
        const crd = await crds.readCustomResourceDefinition({ name: `${PLURAL}.${GROUP}` });
        const established = crd.status?.conditions?.find((c) => c.type === "Established");
        return established?.status === "True" ? true : undefined;
      },
      30_000,
    );
  }

  it("serves v1.36.3 to the kubectl built with it and lists the system namespaces", async function () {
    const version = await cp().kubectl(["version", "-o", "json"]);
    expect(version.code, version.stderr).to.equal(0);
    const parsed = JSON.parse(version.stdout) as {
      clientVersion?: { gitVersion?: string };
      serverVersion?: { gitVersion?: string };
    };
    expect(parsed.serverVersion?.gitVersion).to.equal("v1.36.3");
    expect(parsed.clientVersion?.gitVersion).to.equal("v1.36.3");

    const ns = await cp().kubectl(["get", "ns", "-o", "name"]);
    expect(ns.code, ns.stderr).to.equal(0);
    expect(ns.stdout.split("\n")).to.include.members(["namespace/default", "namespace/kube-system"]);
  });

  it("establishes a CRD with a structural schema and rejects objects violating its CEL rule", async function () {
    this.timeout(60_000);
    await ensureWidgetCrd();

    let rejection: unknown;
    try {
      await custom.createClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: PLURAL,
        body: widget("too-many", 5, 3),
      });
    } catch (err) {
      rejection = err;
    }
    expect(rejection, "an object violating the CEL rule must be rejected").to.not.equal(undefined);
    expect(httpCode(rejection)).to.equal(422);
    expect(String((rejection as { body?: unknown }).body)).to.contain(CEL_MESSAGE);

    const ok = (await custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      body: widget("fine", 1, 3),
    })) as { metadata?: { uid?: string } };
    expect(ok.metadata?.uid).to.be.a("string");
  });

  it("enforces RBAC for a ServiceAccount token minted by serviceAccountKubeconfig", async function () {
    await core.createNamespace({ body: { metadata: { name: "rbac-check" } } });
    await core.createNamespacedServiceAccount({
      namespace: "rbac-check",
      body: { metadata: { name: "nobody" } },
    });
    const kubeconfig = await cp().serviceAccountKubeconfig("rbac-check", "nobody");

    const whoami = await cp().kubectl(["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], {
      kubeconfig,
    });
    expect(whoami.code, whoami.stderr).to.equal(0);
    expect(whoami.stdout).to.equal("system:serviceaccount:rbac-check:nobody");

    const list = await cp().kubectl(["get", "secrets", "-n", "rbac-check"], { kubeconfig });
    expect(list.code).to.not.equal(0);
    expect(list.stderr).to.contain("forbidden");
  });

  it("finishes terminating a deleted namespace, contents included", async function () {
    this.timeout(90_000);
    await core.createNamespace({ body: { metadata: { name: "doomed" } } });
    await core.createNamespacedConfigMap({ namespace: "doomed", body: { metadata: { name: "content" } } });
    await core.deleteNamespace({ name: "doomed" });
    await eventually(
      "namespace doomed to be gone",
      () => isGone(() => core.readNamespace({ name: "doomed" })),
      60_000,
    );
    expect(await cp().etcdGet("/registry/configmaps/doomed/content")).to.equal(undefined);
  });

  it("stores Secrets aescbc-encrypted in etcd while ConfigMaps stay plain protobuf", async function () {
    const plaintext = `very-secret-${randomBytes(8).toString("hex")}`;
    await core.createNamespace({ body: { metadata: { name: "enc-check" } } });
    await core.createNamespacedSecret({
      namespace: "enc-check",
      body: { metadata: { name: "s1" }, stringData: { password: plaintext } },
    });
    await core.createNamespacedConfigMap({
      namespace: "enc-check",
      body: { metadata: { name: "c1" }, data: { visible: plaintext } },
    });

    const secret = await cp().etcdGet("/registry/secrets/enc-check/s1");
    expect(secret, "the Secret must be in etcd").to.not.equal(undefined);
    expect(secret!.subarray(0, 40).toString("latin1")).to.match(
      new RegExp(`^k8s:enc:aescbc:v1:${KEY_NAME}:`),
    );
    expect(secret!.includes(plaintext), "etcd must not hold the Secret in plaintext").to.equal(false);

    const configMap = await cp().etcdGet("/registry/configmaps/enc-check/c1");
    expect(configMap, "the ConfigMap must be in etcd").to.not.equal(undefined);
    expect(configMap!.subarray(0, 4).toString("latin1")).to.equal("k8s\0");
    expect(configMap!.includes(plaintext), "the unencrypted ConfigMap shows its data").to.equal(true);

    const viaApi = await core.readNamespacedSecret({ namespace: "enc-check", name: "s1" });
    expect(Buffer.from(viaApi.data?.password ?? "", "base64").toString()).to.equal(plaintext);
  });

  it("records the test's own requests in the audit log, attributed to csp-admin", async function () {
    this.timeout(30_000);
    await core.createNamespace({ body: { metadata: { name: "audit-check" } } });
    await core.createNamespacedConfigMap({
      namespace: "audit-check",
      body: { metadata: { name: "audited" } },
    });
    const event = await eventually(
      "the ConfigMap create in the audit log",
      async () =>
        (await cp().auditEvents()).find((e) => {
          const ref = e.objectRef as { resource?: string; namespace?: string; name?: string } | undefined;
          return (
            e.verb === "create" &&
            e.stage === "ResponseComplete" &&
            ref?.resource === "configmaps" &&
            ref.namespace === "audit-check" &&
            ref.name === "audited"
          );
        }),
      20_000,
    );
    const user = event.user as { username?: string; groups?: string[] } | undefined;
    expect(user?.username).to.equal("csp-admin");
    expect(user?.groups).to.include("system:masters");
    expect((event.responseStatus as { code?: number } | undefined)?.code).to.equal(201);
    expect(event.level).to.equal("Metadata");
  });

  it("garbage-collects a namespaced ConfigMap owned by a cluster-scoped custom object", async function () {
    // The GC learns about a new CRD only on its 30 s discovery resync. Foreground deletion makes the wait
    // deterministic: the owner stays (with the foregroundDeletion finalizer) until the GC has seen it, deleted
    // its dependents and removed the finalizer. A background delete of an owner the GC has not seen yet is only
    // retried with exponential back-off (it took ~40 s here).
    this.timeout(90_000);
    await ensureWidgetCrd();
    const owner = (await custom.createClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      body: widget("gc-owner", 1, 1),
    })) as { metadata?: { uid?: string } };
    const uid = owner.metadata?.uid;
    if (uid === undefined) throw new Error("the created Widget has no uid");

    await core.createNamespace({ body: { metadata: { name: "gc-check" } } });
    await core.createNamespacedConfigMap({
      namespace: "gc-check",
      body: {
        metadata: {
          name: "owned",
          ownerReferences: [
            {
              apiVersion: `${GROUP}/${VERSION}`,
              kind: "Widget",
              name: "gc-owner",
              uid,
              blockOwnerDeletion: true,
            },
          ],
        },
      },
    });
    await core.createNamespacedConfigMap({ namespace: "gc-check", body: { metadata: { name: "unowned" } } });

    await custom.deleteClusterCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      name: "gc-owner",
      propagationPolicy: "Foreground",
    });
    const t0 = Date.now();
    await eventually(
      "the owned ConfigMap to be garbage-collected",
      () => isGone(() => core.readNamespacedConfigMap({ namespace: "gc-check", name: "owned" })),
      60_000,
    );
    await eventually(
      "the GC to release the owner's foregroundDeletion finalizer",
      () =>
        isGone(() =>
          custom.getClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, name: "gc-owner" }),
        ),
      30_000,
    );
    process.stderr.write(
      `      (owner and dependent gone ${((Date.now() - t0) / 1000).toFixed(1)} s after the delete)\n`,
    );
    const unowned = await core.readNamespacedConfigMap({ namespace: "gc-check", name: "unowned" });
    expect(unowned.metadata?.name, "GC must leave objects without owners alone").to.equal("unowned");
  });
});
