// Request counts from the API server's audit log. The audit policy logs only the benchmark's measured
// identities (operator, bare client, reflex client, marker), at Metadata level; everything else is None.
// A phase is delimited by "markers": a GET of a unique, non-existent namespace by the marker identity;
// once that request shows up in the log, every request that completed before it has been written too.
import { randomUUID } from "node:crypto";
import { open } from "node:fs/promises";
import type { Kube } from "./kube.js";

export interface AuditEvent {
  verb: string;
  user: string;
  resource: string;
  subresource?: string;
  name?: string;
  code?: number;
}

export const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);

export function auditPolicy(users: string[]): object {
  return {
    apiVersion: "audit.k8s.io/v1",
    kind: "Policy",
    omitStages: ["RequestReceived"],
    rules: [{ level: "Metadata", users }, { level: "None" }],
  };
}

export class AuditLog {
  private offset = 0;
  private rest = "";
  private readonly events: AuditEvent[] = [];
  private readonly markers = new Map<string, number>();

  constructor(
    private readonly path: string,
    private readonly marker: Kube,
  ) {}

  /** Writes a marker and resolves with its index in the log: events before it are complete. */
  async mark(): Promise<number> {
    const id = `bench-marker-${randomUUID().slice(0, 8)}`;
    await this.marker.send("GET", `/api/v1/namespaces/${id}`).then((r) => r.text());
    for (let i = 0; ; i++) {
      await this.read();
      const at = this.markers.get(id);
      if (at !== undefined) return at;
      if (i > 600) throw new Error(`audit marker ${id} never reached ${this.path}`);
      await new Promise((r) => setTimeout(r, 50)); // polling a file the API server appends to
    }
  }

  /** Events between two markers, optionally only one user's. */
  between(from: number, to: number, user?: string): AuditEvent[] {
    return this.events.slice(from, to).filter((e) => user === undefined || e.user === user);
  }

  private async read(): Promise<void> {
    const fh = await open(this.path, "r").catch(() => undefined);
    if (!fh) return;
    try {
      const buf = Buffer.alloc(1 << 20);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        const lines = (this.rest + buf.subarray(0, bytesRead).toString("utf8")).split("\n");
        this.rest = lines.pop() ?? "";
        for (const line of lines) if (line.trim()) this.ingest(JSON.parse(line) as Raw);
      }
    } finally {
      await fh.close();
    }
  }

  private ingest(e: Raw): void {
    // A watch is logged when it starts (ResponseStarted) and again when it ends; count it once.
    if (e.stage !== (e.verb === "watch" ? "ResponseStarted" : "ResponseComplete")) return;
    const name = e.objectRef?.name;
    if (name?.startsWith("bench-marker-") && e.objectRef?.resource === "namespaces") {
      this.markers.set(name, this.events.length);
      return;
    }
    this.events.push({
      verb: e.verb,
      user: e.user?.username ?? "",
      resource: e.objectRef?.resource ?? e.requestURI.split("?")[0]!,
      ...(e.objectRef?.subresource ? { subresource: e.objectRef.subresource } : {}),
      ...(name ? { name } : {}),
      ...(e.responseStatus?.code !== undefined ? { code: e.responseStatus.code } : {}),
    });
  }
}

interface Raw {
  stage: string;
  verb: string;
  requestURI: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; name?: string };
  responseStatus?: { code?: number };
}

/** Counts by verb, and writes by resource, for a report table. */
export function summarize(events: readonly AuditEvent[]): {
  total: number;
  writes: number;
  gets: number;
  lists: number;
  watches: number;
  byVerb: Record<string, number>;
  writesByResource: Record<string, number>;
} {
  const byVerb: Record<string, number> = {};
  const writesByResource: Record<string, number> = {};
  for (const e of events) {
    byVerb[e.verb] = (byVerb[e.verb] ?? 0) + 1;
    if (WRITE_VERBS.has(e.verb)) {
      const r = e.subresource ? `${e.resource}/${e.subresource}` : e.resource;
      writesByResource[r] = (writesByResource[r] ?? 0) + 1;
    }
  }
  return {
    total: events.length,
    writes: events.filter((e) => WRITE_VERBS.has(e.verb)).length,
    gets: byVerb["get"] ?? 0,
    lists: byVerb["list"] ?? 0,
    watches: byVerb["watch"] ?? 0,
    byVerb,
    writesByResource,
  };
}
