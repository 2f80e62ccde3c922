// The observer: watches namespaces, default ServiceAccounts and managed NetworkPolicies (as cluster admin,
// which API Priority and Fairness exempts, so it is never the bottleneck) and timestamps the moment each
// object reaches the desired state. Converge times and repair latencies are read from here, identically
// for the operator, the bare client and the reflex client.
import { isDesired, NP_NAMES, SELECTOR_LABEL, type Kind } from "./desired.js";
import type { Json, Kube } from "./kube.js";

interface State {
  rv: number;
  desired: boolean;
  at: number;
}
interface KeyWaiter {
  test: (s: State) => boolean;
  resolve: (s: State) => void;
}
interface ConvergeWaiter {
  pending: Set<string>;
  resolve: (at: number) => void;
}

export const key = (kind: Kind, ns: string, name = "") => `${kind}/${ns}/${name}`;

export function keysOf(namespaces: readonly string[]): string[] {
  return namespaces.flatMap((ns) => [key("ns", ns), key("sa", ns), ...NP_NAMES.map((n) => key("np", ns, n))]);
}

const WATCHES: { kind: Kind; path: string; query: string }[] = [
  { kind: "ns", path: "/api/v1/namespaces", query: "" },
  { kind: "sa", path: "/api/v1/serviceaccounts", query: "fieldSelector=metadata.name%3Ddefault" },
  {
    kind: "np",
    path: "/apis/networking.k8s.io/v1/networkpolicies",
    query: "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcsp-operator",
  },
];

export class Observer {
  private readonly states = new Map<string, State>();
  private readonly history = new Map<string, State[]>();
  private readonly keyWaiters = new Map<string, KeyWaiter[]>();
  private readonly convergeWaiters = new Set<ConvergeWaiter>();
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  /** Namespace name -> labels, for every namespace (selected or not). */
  readonly namespaceLabels = new Map<string, Record<string, string>>();
  /** Default ServiceAccounts seen, by namespace. */
  readonly defaultServiceAccounts = new Set<string>();
  private readonly saWaiters = new Set<{ want: readonly string[]; resolve: () => void }>();

  constructor(private readonly kube: Kube) {}

  async start(): Promise<void> {
    const synced: Promise<void>[] = [];
    for (const w of WATCHES) {
      let onSynced!: () => void;
      synced.push(new Promise<void>((r) => (onSynced = r)));
      this.loops.push(this.run(w, onSynced));
    }
    await Promise.all(synced);
  }

  stop(): Promise<void> {
    this.abort.abort();
    return Promise.allSettled(this.loops).then(() => undefined);
  }

  /** Resolves with the time (performance.now()) at which every key was desired at once. */
  converged(keys: readonly string[], timeoutMs: number): Promise<number> {
    const pending = new Set(keys.filter((k) => !this.states.get(k)?.desired));
    if (pending.size === 0) return Promise.resolve(performance.now());
    return withTimeout(
      new Promise<number>((resolve) => this.convergeWaiters.add({ pending, resolve })),
      timeoutMs,
      () =>
        `convergence of ${keys.length} objects (${pending.size} still not as desired, e.g. ${[...pending].slice(0, 3).join(", ")})`,
    );
  }

  /** The first event on `k` (kept or still to come) with a resourceVersion of at least minRv. */
  event(k: string, minRv: number, timeoutMs: number): Promise<State> {
    return this.first(
      k,
      (s) => s.rv >= minRv,
      timeoutMs,
      () => `an event on ${k} at resourceVersion >= ${minRv}`,
    );
  }

  /** The first event on `k` after resourceVersion afterRv that shows it as desired. */
  repaired(k: string, afterRv: number, timeoutMs: number): Promise<State> {
    return this.first(
      k,
      (s) => s.desired && s.rv > afterRv,
      timeoutMs,
      () => `repair of ${k}`,
    );
  }

  private first(
    k: string,
    test: (s: State) => boolean,
    timeoutMs: number,
    what: () => string,
  ): Promise<State> {
    const seen = this.history.get(k)?.find(test);
    if (seen) return Promise.resolve(seen);
    return withTimeout(
      new Promise<State>((resolve) => {
        const list = this.keyWaiters.get(k) ?? [];
        list.push({ test, resolve });
        this.keyWaiters.set(k, list);
      }),
      timeoutMs,
      what,
    );
  }

  /** Resolves once every namespace has its `default` ServiceAccount (created by kube-controller-manager). */
  serviceAccountsExist(namespaces: readonly string[], timeoutMs: number): Promise<void> {
    const check = () => namespaces.every((n) => this.defaultServiceAccounts.has(n));
    if (check()) return Promise.resolve();
    return withTimeout(
      new Promise<void>((resolve) => this.saWaiters.add({ want: namespaces, resolve })),
      timeoutMs,
      () => "the default ServiceAccounts",
    );
  }

  rv(k: string): number {
    return this.states.get(k)?.rv ?? 0;
  }

  private update(kind: Kind, type: string, obj: Json): void {
    const at = performance.now();
    const meta = obj["metadata"] as {
      name: string;
      namespace?: string;
      resourceVersion?: string;
      labels?: Record<string, string>;
    };
    const rv = Number(meta.resourceVersion ?? 0);
    const ns = kind === "ns" ? meta.name : meta.namespace!;
    if (kind === "ns") {
      if (type === "DELETED") this.namespaceLabels.delete(ns);
      else this.namespaceLabels.set(ns, meta.labels ?? {});
    }
    if (kind === "sa" && type !== "DELETED") {
      this.defaultServiceAccounts.add(ns);
      for (const w of this.saWaiters)
        if (w.want.every((n) => this.defaultServiceAccounts.has(n))) {
          this.saWaiters.delete(w);
          w.resolve();
        }
    }
    const k = key(kind, ns, kind === "np" ? meta.name : "");
    const selected = kind !== "ns" || meta.labels?.[SELECTOR_LABEL] !== undefined;
    const desired = type !== "DELETED" && selected && isDesired(kind, obj);
    this.states.set(k, { rv, desired, at });

    for (const w of this.convergeWaiters) {
      if (desired) w.pending.delete(k);
      if (w.pending.size === 0) {
        this.convergeWaiters.delete(w);
        w.resolve(at);
      }
    }
    const state = { rv, desired, at };
    const h = this.history.get(k) ?? [];
    h.push(state);
    this.history.set(k, h.slice(-16));
    const waiters = this.keyWaiters.get(k);
    if (waiters) {
      const left = waiters.filter((w) => !w.test(state));
      for (const w of waiters) if (w.test(state)) w.resolve(state);
      if (left.length) this.keyWaiters.set(k, left);
      else this.keyWaiters.delete(k);
    }
  }

  /** LIST then WATCH from its resourceVersion, re-watching from the last one seen when a watch ends. */
  private async run(w: (typeof WATCHES)[number], onSynced: () => void): Promise<void> {
    const signal = this.abort.signal;
    let rv = "";
    while (!signal.aborted) {
      try {
        if (!rv) {
          const list = await this.kube.json<{ metadata: { resourceVersion: string }; items: Json[] }>(
            "GET",
            `${w.path}?${w.query}`,
          );
          for (const item of list.items) this.update(w.kind, "ADDED", item);
          rv = list.metadata.resourceVersion;
          onSynced();
        }
        const q = `${w.query}${w.query ? "&" : ""}watch=1&allowWatchBookmarks=true&timeoutSeconds=3600&resourceVersion=${rv}`;
        const res = await this.kube.send("GET", `${w.path}?${q}`, { signal });
        if (!res.ok || !res.body) throw new Error(`watch ${w.path}: HTTP ${res.status}`);
        const decoder = new TextDecoder();
        let buf = "";
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(chunk, { stream: true });
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (!line.trim()) continue;
            const ev = JSON.parse(line) as { type: string; object: Json };
            if (ev.type === "ERROR") {
              rv = ""; // 410 Gone: list again
              break;
            }
            rv = (ev.object["metadata"] as { resourceVersion: string }).resourceVersion;
            if (ev.type !== "BOOKMARK") this.update(w.kind, ev.type, ev.object);
          }
        }
      } catch (err) {
        if (signal.aborted) return;
        process.stderr.write(`[bench] observer watch ${w.path} failed, retrying: ${String(err)}\n`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${Math.round(ms / 1000)} s waiting for ${what()}`)),
      ms,
    );
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
