/**
 * What the operator wrote lately, per object, shared by the two lanes (the policy lane and the repair
 * lane, see lane.ts) so neither repeats a write the other just made.
 *
 * Two ways a plan goes stale, and the rule for each:
 * - a write made after the plan's snapshot was taken: the plan's view of that object predates it (the plan
 *   records `epoch()` when its snapshot is taken; a write recorded later has a higher sequence number);
 * - a plan made after the write, from a cache whose watch has not delivered it yet: the cache still shows
 *   the resourceVersion the writer saw before writing (or still nothing, for a create).
 * Either way the write is skipped: if the object still differs once the cache catches up, its watch event
 * starts a repair. A write in flight in one lane is skipped by the other (`claim`). A remembered write
 * is forgotten as soon as the cache's watch delivers it or anything newer (`observe`), and after `ttlMs`
 * (a watch that never delivers it must not hold repairs back for ever). Absence is the one state that
 * recurs (created by us, deleted by someone else): only `observe` tells the two apart.
 */
export class WriteLedger {
  private seq = 0;
  private readonly written = new Map<
    string,
    { seq: number; before: string | null; after: string | null; at: number }
  >();
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly now: () => number = Date.now,
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 50_000,
  ) {}

  /** The sequence number a plan made from a snapshot taken now compares writes against. */
  epoch(): number {
    return this.seq;
  }

  /**
   * Whether a plan of `epoch` that saw `seen` at `key` (its resourceVersion; null: nothing there) is
   * outdated by a write recorded since, or by one its cache has not caught up with.
   */
  stale(key: string, seen: string | null | undefined, epoch: number): boolean {
    const w = this.written.get(key);
    if (!w) return false;
    if (this.now() - w.at > this.ttlMs) {
      this.written.delete(key);
      return false;
    }
    if (w.seq > epoch) return true;
    if (seen === undefined) return false;
    if (seen === w.after) {
      // The cache shows what was written: nothing to remember any more.
      this.written.delete(key);
      return false;
    }
    return seen === w.before;
  }

  /** Takes `key` for one write; false when the other lane is writing it now. */
  claim(key: string): boolean {
    if (this.inFlight.has(key)) return false;
    this.inFlight.add(key);
    return true;
  }

  /**
   * Ends a claim. `result`, when the write went through: the resourceVersion the plan saw (`before`, null
   * for nothing) and the one the write produced (`after`, null for a delete).
   */
  release(
    key: string,
    result?: { before: string | null | undefined; after: string | null | undefined },
  ): void {
    this.inFlight.delete(key);
    if (!result) return;
    // A no-op apply (same resourceVersion): the cache already shows it, nothing to wait for.
    if (result.after !== null && result.after !== undefined && result.after === result.before) return;
    this.written.set(key, {
      seq: ++this.seq,
      before: result.before ?? null,
      after: result.after ?? null,
      at: this.now(),
    });
    if (this.written.size > this.maxEntries) this.prune();
  }

  /**
   * The cache took in an event for `key` at `resourceVersion` (`deleted`: a delete event). It has caught up
   * with the remembered write when that is the written version, a newer one (resourceVersions are etcd
   * revisions: compared as integers when both are), or the deletion of what was written.
   */
  observe(key: string, resourceVersion: string | undefined, deleted = false): void {
    const w = this.written.get(key);
    if (!w || resourceVersion === undefined) return;
    if (
      (w.after === null && deleted) ||
      resourceVersion === w.after ||
      (w.after !== null && newer(resourceVersion, w.after))
    )
      this.written.delete(key);
  }

  /** Objects remembered (for tests and metrics). */
  get size(): number {
    return this.written.size;
  }

  private prune(): void {
    const now = this.now();
    for (const [k, w] of this.written) if (now - w.at > this.ttlMs) this.written.delete(k);
    // Still too many (a flood of writes within the TTL): the oldest go first (Map keeps insertion order).
    for (const k of this.written.keys()) {
      if (this.written.size <= this.maxEntries) break;
      this.written.delete(k);
    }
  }
}

function newer(a: string, b: string): boolean {
  return /^\d+$/.test(a) && /^\d+$/.test(b) && BigInt(a) > BigInt(b);
}
