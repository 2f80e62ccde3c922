/**
 * Time as the runtime sees it. Production uses the real clock; tests pass a fake one so backoff and
 * requeue timing can be proven without sleeping.
 */
export interface Clock {
  /**
   * Monotonic milliseconds (performance.now() in production): only differences mean anything, and it never
   * steps when the wall clock is set (NTP, a VM resumed, an operator's `date -s`). Every deadline, expiry
   * and duration is measured with it.
   */
  now(): number;
  /** Wall-clock epoch milliseconds, for timestamps other processes read (Lease renewTime); never compared. */
  wallNow?(): number;
  /** Calls `fn` after `ms`; the timer must not keep the process alive on its own. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The real clock, but its timers keep the process alive (an informer retrying before anything else runs). */
export const keepAliveClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
