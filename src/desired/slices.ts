/**
 * Time-sliced computation for the pure layers. A pass over thousands of namespaces or children is written
 * once, as a generator (`xSteps()`) that yields every SLICE iterations; the sync function (`x()`, for the
 * CLI, render and tests) drains it at once, and the reconcile drains it with drainYielding(), which lets
 * the event loop run whenever the computation has held it for more than a few milliseconds. A yield costs
 * a few tens of nanoseconds and carries nothing: the clock is read only by the driver, at a yield, so the
 * generators stay pure and both drivers give the very same result.
 */

/** A computation in steps: each `yield` is a point where the event loop may run. */
export type Steps<T> = Generator<undefined, T, undefined>;

/** Iterations between two yields: small enough that no slice of any pass takes more than ~0.5 ms. */
export const SLICE = 32;

/** How long a yielding drain holds the event loop before it lets other work run (a watch event, a repair). */
export const SLICE_BUDGET_MS = 4;

/** Runs `steps` to the end at once. */
export function drain<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * Runs `steps` to the end, letting the event loop run (setImmediate: pending I/O callbacks go first)
 * whenever it has held it for `budgetMs` since the last time.
 */
export async function drainYielding<T>(steps: Steps<T>, budgetMs = SLICE_BUDGET_MS): Promise<T> {
  let since = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - since >= budgetMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      since = performance.now();
    }
  }
}

/** Array.prototype.sort's default order for strings (UTF-16 code units). */
export const codeUnitOrder = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * `items` sorted by `compare`, in steps: a stable merge sort, so the result is exactly what the stable
 * Array.prototype.sort gives with the same comparator. Runs already in order (the usual case: lists built
 * in sorted order) cost one comparison per item.
 */
export function* sortedSteps<T>(items: readonly T[], compare: (a: T, b: T) => number): Steps<T[]> {
  let a = [...items];
  const n = a.length;
  let ops = 0;
  // Already sorted: nothing to merge.
  let sorted = true;
  for (let i = 1; i < n; i++) {
    if (compare(a[i - 1]!, a[i]!) > 0) {
      sorted = false;
      break;
    }
    if (++ops % SLICE === 0) yield;
  }
  if (sorted) return a;
  let b = new Array<T>(n);
  for (let width = 1; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      let k = lo;
      // The two halves already in order: copied as they are.
      if (mid < hi && compare(a[mid - 1]!, a[mid]!) <= 0) {
        while (k < hi) b[k++] = a[i++]!;
      } else {
        while (i < mid && j < hi) {
          b[k++] = compare(a[j]!, a[i]!) < 0 ? a[j++]! : a[i++]!;
          if (++ops % SLICE === 0) yield;
        }
        while (i < mid) b[k++] = a[i++]!;
        while (j < hi) b[k++] = a[j++]!;
      }
      if (++ops % SLICE === 0) yield;
    }
    [a, b] = [b, a];
  }
  return a;
}
