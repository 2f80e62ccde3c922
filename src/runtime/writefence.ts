import type { KubeConfig } from "@kubernetes/client-node";

/** A write was refused because this process is not (or no longer) the leader. Retryable by the next leader. */
export class NotLeaderError extends Error {
  constructor(
    readonly method: string,
    readonly url: string,
  ) {
    super(`${method} ${new URL(url).pathname}: not the leader; write refused`);
    this.name = "NotLeaderError";
  }
}

const READS = new Set(["GET", "HEAD", "OPTIONS"]);

interface AuthContext {
  getHttpMethod(): string;
  getUrl(): string;
}

/**
 * Gates every mutating request sent with `kc` on `allowed()`, checked the moment the request is about to
 * be sent. Every client the operator builds from its KubeConfig (the raw RestClient and client-node's
 * typed APIs and watches alike) authenticates through `applySecurityAuthentication`, so this is the one
 * place no write can go around. `exempt` lets the Lease requests of leader election itself through.
 */
export function fenceWrites(kc: KubeConfig, allowed: () => boolean, exempt: (path: string) => boolean): void {
  const target = kc as unknown as { applySecurityAuthentication(ctx: AuthContext): Promise<void> };
  const original = target.applySecurityAuthentication.bind(kc);
  target.applySecurityAuthentication = async (ctx: AuthContext) => {
    const method = String(ctx.getHttpMethod()).toUpperCase();
    if (!READS.has(method) && !exempt(new URL(ctx.getUrl()).pathname) && !allowed())
      throw new NotLeaderError(method, ctx.getUrl());
    await original(ctx);
    // Checked again after authentication (an exec plugin may take a while): the last moment before sending.
    if (!READS.has(method) && !exempt(new URL(ctx.getUrl()).pathname) && !allowed())
      throw new NotLeaderError(method, ctx.getUrl());
  };
}
