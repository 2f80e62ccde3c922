import type { Clock } from "../../../src/runtime/clock.js";

/** A clock that moves only when told to: timers fire, in deadline order, inside advance(). */
export class FakeClock implements Clock {
  private t = 0;
  /** Wall-clock offset from the monotonic time: stepWall() moves only the wall clock (NTP, `date -s`). */
  private wallOffset = Date.UTC(2026, 0, 1);
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  wallNow(): number {
    return this.t + this.wallOffset;
  }

  /** Steps the wall clock by `ms` (negative: backwards) without moving monotonic time or firing timers. */
  stepWall(ms: number): void {
    this.wallOffset += ms;
  }

  /** Moves monotonic (and wall) time without firing any timer: a process that was frozen and wakes up. */
  jump(ms: number): void {
    this.t += ms;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Pending timers, for assertions. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting promise callbacks run between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = [...this.timers.entries()]
        .filter(([, v]) => v.at <= end)
        .sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
    await settle();
  }
}

/** Lets every already-queued promise callback (and the ones they queue) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}
