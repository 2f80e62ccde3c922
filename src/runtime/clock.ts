/**
 * Time as the runtime sees it. Production uses the real clock; tests pass a fake one so backoff and
 * requeue timing can be proven without sleeping.
 */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; the timer must not keep the process alive on its own. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The real clock, but its timers keep the process alive (an informer retrying before anything else runs). */
export const keepAliveClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
