/**
 * How often one object may be corrected. A rival controller that keeps reverting a managed object would
 * otherwise meet one write per revert, for ever (measured: ~220 writes a minute against a rival writing
 * 4 times a second). Corrections of one object are free up to {@link CorrectionLimits.burst} in a sliding
 * window; past that the object is "contested": further corrections wait, the wait doubling from
 * `minHoldMs` to `maxHoldMs`, so the writes a rival can provoke per object and minute are bounded by
 * `burst + windowMs / minHoldMs` in the first window and about `windowMs / maxHoldMs` after it. Once nothing
 * corrects the object for a whole window it is free again; after the rival stops, the next correction
 * comes at most `maxHoldMs` later.
 *
 * In memory only: a restart forgets the history, which costs at most one more burst.
 */
export interface CorrectionLimits {
  burst: number;
  windowMs: number;
  minHoldMs: number;
  maxHoldMs: number;
}

/** Expired histories are swept every this many corrections, so memory follows recent reverts only. */
const SWEEP_EVERY = 256;

export const DEFAULT_CORRECTION_LIMITS: CorrectionLimits = {
  burst: 5,
  windowMs: 60_000,
  minHoldMs: 5_000,
  maxHoldMs: 30_000,
};

/** The answer for one object: correct it now, or wait until `retryAt` (epoch ms). */
export type Admission = { ok: true } | { ok: false; retryAt: number; corrections: number };

interface History {
  /** Times of the corrections inside the window, oldest first. */
  at: number[];
  /** Consecutive holds: the next hold is minHold * 2^holds, capped. */
  holds: number;
  /** While contested: no correction before this time. */
  until: number;
}

/** Per-object correction budget; keys are object keys (kind/namespace/name), scoped by the caller. */
export class CorrectionLimiter {
  private readonly history = new Map<string, History>();
  private calls = 0;

  constructor(private readonly limits: CorrectionLimits = DEFAULT_CORRECTION_LIMITS) {}

  /** May `key` be corrected at `now`? Does not record anything: call {@link corrected} after the write. */
  admit(key: string, now: number): Admission {
    const h = this.trimmed(key, now);
    if (!h) return { ok: true };
    if (now < h.until) return { ok: false, retryAt: h.until, corrections: h.at.length };
    return { ok: true };
  }

  /** Whether `key` was corrected within the window (or is still held) at `now`. */
  recent(key: string, now: number): boolean {
    return this.trimmed(key, now) !== undefined;
  }

  /** Records a correction of `key` at `now`; past the burst, the object is held for the next one. */
  corrected(key: string, now: number): void {
    if (++this.calls % SWEEP_EVERY === 0) this.sweep(now);
    const h = this.trimmed(key, now) ?? { at: [], holds: 0, until: 0 };
    h.at.push(now);
    // Once contested, every correction inside the window waits longer; only a quiet window frees it.
    if (h.holds > 0 || h.at.length >= this.limits.burst) {
      const hold = Math.min(this.limits.maxHoldMs, this.limits.minHoldMs * 2 ** h.holds);
      h.holds += 1;
      h.until = now + hold;
    }
    this.history.set(key, h);
  }

  /**
   * Objects currently tracked: those corrected within the last window or still held, plus at most
   * SWEEP_EVERY corrections' worth of expired entries (swept every SWEEP_EVERY corrections).
   */
  get size(): number {
    return this.history.size;
  }

  /** Forgets every object whose window and hold have passed. */
  sweep(now: number): void {
    for (const key of [...this.history.keys()]) this.trimmed(key, now);
  }

  /** The history of `key` with corrections older than the window dropped; forgotten once empty. */
  private trimmed(key: string, now: number): History | undefined {
    const h = this.history.get(key);
    if (!h) return undefined;
    const from = now - this.limits.windowMs;
    while (h.at.length > 0 && h.at[0]! <= from) h.at.shift();
    if (h.at.length === 0 && now >= h.until) {
      this.history.delete(key);
      return undefined;
    }
    return h;
  }
}
