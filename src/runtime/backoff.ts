/**
 * Per-key exponential backoff with a cap, the way client-go's rate-limiting queue does it: each failure
 * doubles the delay for that key, success forgets it. Jitter spreads retries of many keys.
 */
export class Backoff {
  private readonly failures = new Map<string, number>();

  constructor(
    private readonly baseMs = 200,
    private readonly maxMs = 60_000,
    private readonly jitter: () => number = Math.random,
  ) {}

  /** Records one more failure of `key` and returns how long to wait before retrying it. */
  next(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const exp = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(n - 1, 30));
    return Math.round(exp * (0.9 + 0.2 * this.jitter()));
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}
