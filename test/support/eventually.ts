/**
 * Polls `fn` until it returns something other than undefined/false, or throws after `timeoutMs` with the
 * last error seen. For tests against a real API server, where everything converges asynchronously. The
 * poll interval starts at 100 ms and grows to 1 s, so quick convergence is seen quickly and a long wait
 * (an API server reloading its encryption config) does not spawn kubectl ten times a second for minutes.
 */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let interval = 100;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, interval));
    interval = Math.min(1000, Math.round(interval * 1.5));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
}
