import type { KubeConfig } from "@kubernetes/client-node";
import type { LeaseRecord, LeaseStore, StoredLease } from "../runtime/leaderelection.js";
import { statusCode } from "./client.js";
import { RestClient } from "./rest.js";

/** The leader-election Lease of the operator (API.md: operator namespace csp-system). */
export const LEADER_LEASE_NAME = "csp-operator-leader";

interface LeaseObject {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseRecord;
}

/** Path prefix of the Lease API in a namespace: the write fence lets these requests through. */
export function leasePath(namespace: string, name?: string): string {
  const base = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
  return name === undefined ? base : `${base}/${encodeURIComponent(name)}`;
}

/** One coordination.k8s.io/v1 Lease, read and written as plain JSON with optimistic concurrency. */
export class KubeLeaseStore implements LeaseStore {
  private readonly rest: RestClient;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly name: string = LEADER_LEASE_NAME,
  ) {
    this.rest = new RestClient(kc);
  }

  async get(timeoutMs: number): Promise<StoredLease | undefined> {
    try {
      return stored(
        await this.rest.request<LeaseObject>("GET", leasePath(this.namespace, this.name), { timeoutMs }),
      );
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord, timeoutMs: number): Promise<StoredLease> {
    const body = this.object(record);
    return stored(
      await this.rest.request<LeaseObject>("POST", leasePath(this.namespace), { body, timeoutMs }),
    );
  }

  async update(record: LeaseRecord, resourceVersion: string, timeoutMs: number): Promise<StoredLease> {
    const body = this.object(record, resourceVersion);
    return stored(
      await this.rest.request<LeaseObject>("PUT", leasePath(this.namespace, this.name), { body, timeoutMs }),
    );
  }

  private object(
    spec: LeaseRecord,
    resourceVersion?: string,
  ): LeaseObject & { apiVersion: string; kind: string } {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: this.name,
        namespace: this.namespace,
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      spec,
    };
  }
}

function stored(o: LeaseObject): StoredLease {
  return { record: o.spec ?? {}, resourceVersion: o.metadata.resourceVersion ?? "" };
}
