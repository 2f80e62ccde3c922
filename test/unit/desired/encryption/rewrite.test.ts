import { expect } from "chai";
import { runRewrite, type RewriteIO, type RewriteItem } from "../../../../src/cluster/encryption.js";
import { ApiError } from "../../../../src/cluster/rest.js";
import type { RewriteProgress } from "../../../../src/desired/encryption/rotation.js";

/**
 * The rewrite loop's bookkeeping (resume, per-object failures, expired lists), driven through its small
 * I/O interface by an in-memory store that pages like the API server (sorted by namespace/name, continue
 * tokens that can expire). What the API server itself decides (403 on update) is tested against a real one
 * in test/integration/encryption.test.ts.
 */
class Store implements RewriteIO {
  puts: string[] = [];
  lists = 0;
  /** Objects whose update the server refuses, with the status it answers. */
  refuse = new Map<string, number>();
  /** Continue tokens that have expired (410 Gone). */
  expired = new Set<string>();
  /** The list call (1-based) that fails with 500, once. */
  failList: number | undefined;
  constructor(
    readonly keys: string[],
    readonly pageSize = 2,
  ) {}
  list(_resource: string, cont: string | undefined) {
    this.lists++;
    if (this.failList === this.lists) return Promise.reject(new ApiError(500, { message: "etcd timeout" }));
    // A token expires once: the fresh list that follows hands out new ones, as the API server does.
    if (cont !== undefined && this.expired.delete(cont))
      return Promise.reject(new ApiError(410, { message: "continue token expired" }));
    const start = cont === undefined ? 0 : Number(cont.slice(4));
    const items = [...this.keys]
      .sort()
      .slice(start, start + this.pageSize)
      .map((key): RewriteItem => ({ key, object: { metadata: { name: key } } }));
    const next = start + this.pageSize < this.keys.length ? `tok:${start + this.pageSize}` : undefined;
    return Promise.resolve(next === undefined ? { items } : { items, continue: next });
  }
  get(_resource: string, key: string) {
    return Promise.resolve(
      this.keys.includes(key) ? { key, object: { metadata: { name: key } } } : undefined,
    );
  }
  put(_resource: string, item: RewriteItem) {
    const code = this.refuse.get(item.key);
    if (code !== undefined) return Promise.reject(new ApiError(code, { message: `refused ${item.key}` }));
    this.puts.push(item.key);
    return Promise.resolve();
  }
}

const KEYS = ["a/1", "a/2", "b/1", "b/2", "c/1"];
const fresh = (): RewriteProgress => ({ target: "key-2", done: [] });

describe("rewrite of stored objects (resumable, per-object failures)", () => {
  it("goes on past an object it may not update, keeps the status code and names it", async () => {
    const store = new Store(KEYS);
    store.refuse.set("b/1", 403);
    const saved: RewriteProgress[] = [];
    const result = await runRewrite(store, ["secrets"], fresh(), (p) => {
      saved.push(p);
      return Promise.resolve();
    });
    expect(store.puts).to.deep.equal(["a/1", "a/2", "b/2", "c/1"]);
    expect(result).to.deep.include({ written: 4, complete: false, failed: 1, forbidden: true });
    expect(result.failures).to.deep.equal([
      { resource: "secrets", object: "b/1", code: 403, message: "refused b/1" },
    ]);
    expect(saved.at(-1)).to.deep.equal(result.progress);
    // The retry, once allowed, rewrites only what was left.
    store.refuse.clear();
    store.puts = [];
    const retry = await runRewrite(store, ["secrets"], result.progress, () => Promise.resolve());
    expect(store.puts).to.deep.equal(["b/1"]);
    expect(retry).to.deep.include({ complete: true, written: 1, failed: 0 });
    expect(retry.progress).to.deep.equal({ target: "key-2", done: ["secrets"] });
  });

  it("resumes after a failed LIST from the last saved page instead of re-writing everything", async () => {
    const store = new Store(KEYS);
    store.failList = 2;
    let saved = fresh();
    const save = (p: RewriteProgress) => {
      saved = p;
      return Promise.resolve();
    };
    let error: unknown;
    try {
      await runRewrite(store, ["secrets"], fresh(), save);
    } catch (err) {
      error = err;
    }
    expect((error as ApiError).code).to.equal(500);
    expect(store.puts).to.deep.equal(["a/1", "a/2"]);
    expect(saved).to.deep.include({ resource: "secrets", after: "a/2", continue: "tok:2" });
    store.puts = [];
    const resumed = await runRewrite(store, ["secrets"], saved, save);
    expect(store.puts).to.deep.equal(["b/1", "b/2", "c/1"]);
    expect(resumed.complete).to.equal(true);
  });

  it("lists again from the top when the continue token expired (410), skipping what it handled", async () => {
    const store = new Store(KEYS);
    store.expired.add("tok:2");
    const result = await runRewrite(
      store,
      ["secrets"],
      { target: "key-2", done: [], resource: "secrets", after: "a/2", continue: "tok:2" },
      () => Promise.resolve(),
    );
    expect(store.puts).to.deep.equal(["b/1", "b/2", "c/1"]);
    expect(result.complete).to.equal(true);
  });

  it("counts every failure but names only a few; too many to name means listing that resource again", async () => {
    const many = Array.from({ length: 60 }, (_, i) => `ns/s${String(i).padStart(2, "0")}`);
    const store = new Store(many, 25);
    for (const k of many) store.refuse.set(k, 422);
    const result = await runRewrite(store, ["secrets"], fresh(), () => Promise.resolve());
    expect(result).to.deep.include({ failed: 60, complete: false, forbidden: false });
    expect(result.failures).to.have.length(5);
    expect(result.progress).to.deep.equal({ target: "key-2", done: [], resource: "secrets" });
  });
});
