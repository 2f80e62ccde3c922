import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { shareDispatcher } from "../../../src/cluster/client.js";
import { FaultProxy } from "../../support/faultproxy.js";

/**
 * A stand-in upstream for client-side behaviour only (timeouts, retries, reconnects): it serves one
 * list of ConfigMaps and holds watches open until told to end them. What a real API server decides is
 * tested against one in test/integration.
 */
export class FakeApi {
  readonly server: Server;
  private readonly watches = new Set<ServerResponse>();
  items: object[] = [{ metadata: { name: "a", namespace: "ns", resourceVersion: "1" } }];

  constructor() {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.searchParams.get("watch") === "true") {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.flushHeaders();
        this.watches.add(res);
        res.on("close", () => this.watches.delete(res));
        return;
      }
      const body = JSON.stringify({ kind: "List", metadata: { resourceVersion: "1" }, items: this.items });
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(body);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", () => r()));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Ends every open watch cleanly, as an API server does when a watch times out. */
  endWatches(): void {
    for (const w of this.watches) w.end();
  }

  /** Sends one watch event (a line of JSON) on every open watch. */
  sendToWatches(event: object): void {
    for (const w of this.watches) w.write(`${JSON.stringify(event)}\n`);
  }

  get openWatches(): number {
    return this.watches.size;
  }

  async close(): Promise<void> {
    for (const w of this.watches) w.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A kubeconfig for a plain-HTTP server on loopback, with no credentials (client-node wants skipTLSVerify for http). */
export function kubeConfigFor(server: string, kc: KubeConfig = new KubeConfig()): KubeConfig {
  kc.loadFromOptions({
    clusters: [{ name: "c", server, skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return shareDispatcher(kc);
}

/**
 * Registers mocha hooks that start a FakeApi behind a FaultProxy for the enclosing `describe` and stop both
 * afterwards; the returned getters are valid inside its tests.
 */
export function useFakeApiBehindProxy(): { api: () => FakeApi; proxy: () => FaultProxy } {
  let api: FakeApi | undefined;
  let proxy: FaultProxy | undefined;
  before(async () => {
    api = new FakeApi();
    proxy = await FaultProxy.start({ url: new URL(await api.listen()) });
  });
  after(async () => {
    await proxy?.stop();
    await api?.close();
  });
  return { api: () => api!, proxy: () => proxy! };
}
