import { expect } from "chai";
import {
  POD_SCAN_MAX_BYTES,
  POD_SCAN_PAGE,
  PolicyObjectReader,
  scanPages,
  type ListPage,
} from "../../../src/cluster/cispolicies.js";
import { ResponseTooLargeError, type RestClient } from "../../../src/cluster/rest.js";

const MiB = 1024 * 1024;

/** A paged list of items of the given sizes: a page over its cap fails as RestClient fails it. */
function pagedList(sizes: number[]) {
  const asked: { limit: number; from: number; maxBytes: number; ok: boolean }[] = [];
  const read = (limit: number, cont: string | undefined, maxBytes: number): Promise<ListPage<number>> => {
    const from = cont === undefined ? 0 : Number(cont);
    const items = sizes.map((_, i) => i).slice(from, from + limit);
    const bytes = items.reduce((sum, i) => sum + sizes[i]!, 0);
    asked.push({ limit, from, maxBytes, ok: bytes <= maxBytes });
    if (bytes > maxBytes) return Promise.reject(new ResponseTooLargeError("GET", "/api/v1/pods", maxBytes));
    const next = from + items.length;
    return Promise.resolve({ items, metadata: next < sizes.length ? { continue: String(next) } : {} });
  };
  return { asked, read };
}

describe("the 5.4.1 pod scan's pages", () => {
  it("asks for small pages with a small byte cap by default", () => {
    expect(POD_SCAN_PAGE).to.be.at.most(50);
    expect(POD_SCAN_MAX_BYTES).to.be.at.most(8 * MiB);
  });

  it("halves a page over its byte cap from the same continue token, and sees every pod once", async () => {
    // 250 pods of 1.5 MiB of env literals: 50 of them are 75 MiB, over the 8 MiB cap.
    const list = pagedList(Array.from({ length: 250 }, () => 1.5 * MiB));
    const seen: number[] = [];
    await scanPages(list.read, (i) => seen.push(i), {
      first: 50,
      maxBytes: 8 * MiB,
      onePodMaxBytes: 16 * MiB,
    });
    expect(seen).to.deep.equal(Array.from({ length: 250 }, (_, i) => i));
    expect(list.asked[0]).to.deep.include({ limit: 50, from: 0, ok: false });
    expect(list.asked[1]).to.deep.include({ limit: 25, from: 0 });
    // What was read never exceeded the cap; no page asked for more than the first page size.
    expect(list.asked.every((a) => a.limit <= 50 && a.maxBytes === 8 * MiB)).to.equal(true);
    // Pages of 5 pods (7.5 MiB): no request per pod.
    expect(list.asked.filter((a) => a.ok).length).to.be.below(100);
  });

  it("grows back to the first page size after the large pods", async () => {
    const list = pagedList([
      ...Array.from({ length: 10 }, () => 3 * MiB),
      ...Array.from({ length: 400 }, () => 1000),
    ]);
    let n = 0;
    await scanPages(list.read, () => n++, { first: 50, maxBytes: 8 * MiB, onePodMaxBytes: 16 * MiB });
    expect(n).to.equal(410);
    expect(list.asked.at(-1)!.limit).to.equal(50);
    expect(list.asked.length).to.be.below(30);
  });

  it("reads one pod larger than a page's cap under the one-pod cap, and fails on one above it", async () => {
    const list = pagedList([1000, 10 * MiB, 1000]);
    let n = 0;
    await scanPages(list.read, () => n++, { first: 50, maxBytes: 8 * MiB, onePodMaxBytes: 16 * MiB });
    expect(n).to.equal(3);
    expect(list.asked.find((a) => a.limit === 1)).to.deep.include({ maxBytes: 16 * MiB, ok: true });
    const huge = pagedList([1000, 20 * MiB]);
    const err = await scanPages(huge.read, () => undefined, {
      first: 50,
      maxBytes: 8 * MiB,
      onePodMaxBytes: 16 * MiB,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ResponseTooLargeError);
  });

  it("does not retry other errors", async () => {
    let calls = 0;
    const err = await scanPages(
      () => {
        calls++;
        return Promise.reject(new Error("connection reset"));
      },
      () => undefined,
      { first: 50, maxBytes: 8 * MiB, onePodMaxBytes: 16 * MiB },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).to.equal("connection reset");
    expect(calls).to.equal(1);
  });

  it("keeps a failed scan's time: no new scan before the reuse interval", async () => {
    let calls = 0;
    // Only the read the scan makes; what the API server answers is tested in controlplane-cis.test.ts.
    const rest = {
      request: () => {
        calls++;
        return Promise.reject(new Error("HTTP 500"));
      },
    } as unknown as RestClient;
    const reader = new PolicyObjectReader(rest, 300_000);
    const t0 = 1_000_000;
    for (const t of [t0, t0 + 1000, t0 + 299_000]) {
      const err = await reader.secretEnvironment(t).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as Error).message).to.equal("HTTP 500");
    }
    expect(calls).to.equal(1);
    await reader.secretEnvironment(t0 + 300_000).catch(() => undefined);
    expect(calls).to.equal(2);
  });
});
