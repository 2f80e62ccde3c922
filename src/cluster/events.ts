import type { CoreV1Event } from "@kubernetes/client-node";

/** The identity of a repeated event: same object, type, reason and message. */
export interface EventKey {
  uid: string;
  name: string;
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

interface Seen {
  eventName: string;
  count: number;
  firstTimestamp: Date;
  lastSeen: number;
}

/** What to write for an event: a new Event, or a count bump on the one already recorded. */
export type EventWrite =
  | { action: "create"; body: CoreV1Event; remember: (eventName: string) => void }
  | { action: "patch"; eventName: string; patch: Pick<CoreV1Event, "count" | "lastTimestamp"> };

/**
 * Collapses repeated events like client-go's recorder does: the second "DriftCorrected" with the same
 * message for the same policy bumps `count` and `lastTimestamp` of the first Event instead of creating
 * another object, so a policy fighting a drifting controller shows one Event with a growing count, not
 * thousands. Pure bookkeeping (the clock is passed in); the cluster layer does the writes. Entries older
 * than `windowMs` start a new Event, and at most `maxEntries` keys are remembered (oldest forgotten).
 */
export class EventAggregator {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly windowMs = 10 * 60_000,
    private readonly maxEntries = 4096,
  ) {}

  next(key: EventKey, base: CoreV1Event, now: Date): EventWrite {
    const id = JSON.stringify([key.uid, key.name, key.type, key.reason, key.message]);
    const prev = this.seen.get(id);
    if (prev && now.getTime() - prev.lastSeen < this.windowMs) {
      prev.count++;
      prev.lastSeen = now.getTime();
      // Re-insert so the map's order stays least-recently-used first.
      this.seen.delete(id);
      this.seen.set(id, prev);
      return { action: "patch", eventName: prev.eventName, patch: { count: prev.count, lastTimestamp: now } };
    }
    return {
      action: "create",
      body: { ...base, count: 1, firstTimestamp: now, lastTimestamp: now },
      remember: (eventName) => {
        this.seen.delete(id);
        this.seen.set(id, { eventName, count: 1, firstTimestamp: now, lastSeen: now.getTime() });
        while (this.seen.size > this.maxEntries) this.seen.delete(this.seen.keys().next().value!);
      },
    };
  }

  /** The Event was deleted (TTL) or the patch failed: the next occurrence creates a new one. */
  forget(eventName: string): void {
    for (const [id, s] of this.seen) if (s.eventName === eventName) this.seen.delete(id);
  }
}
