import { expect } from "chai";
import { decodeInput, MAX_INPUT_BYTES, readManifests, where } from "../../../src/gitops/manifests.js";

const warnDays = (v: string) => {
  const [m] = readManifests(`spec:\n  warnDays: ${v}\n`);
  return (m!.object as { spec: { warnDays: unknown } }).spec.warnDays;
};

describe("manifests: reading input as kubectl (go-yaml v2) does", () => {
  it("opens any *List with items, each item located by document and item", () => {
    const ms = readManifests("a: 1\n---\napiVersion: v1\nkind: List\nitems: [{x: 1}, {x: 2}]\n");
    expect(ms.map((m) => where("f.yaml", m))).to.deep.equal([
      "f.yaml",
      "f.yaml (document 2, item 1)",
      "f.yaml (document 2, item 2)",
    ]);
    expect(readManifests('{"kind": "PodList", "items": [{"x": 1}]}')[0]!.item).to.equal(0);
  });

  it("resolves scalars like go-yaml v2: no base-60, 0o octal, leading-zero octal, hex, underscores", () => {
    expect(warnDays("1:00")).to.equal("1:00");
    expect(warnDays("0:0")).to.equal("0:0");
    expect(warnDays("1:30.5")).to.equal("1:30.5");
    expect(warnDays("0o17")).to.equal(15);
    expect(warnDays("-0o17")).to.equal(-15);
    expect(warnDays("017")).to.equal(15);
    expect(warnDays("0x1F")).to.equal(31);
    expect(warnDays("2027-01-01T00:00:00Z")).to.equal("2027-01-01T00:00:00Z");
    expect(warnDays("yes")).to.equal(true);
  });

  it("decodes UTF-16 with a byte order mark and a UTF-8 BOM; refuses NUL, bad UTF-16 and oversized input", () => {
    const text = "kind: X\nname: é\n";
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, "utf16le")]);
    const be = Buffer.from(le);
    be.swap16();
    expect(decodeInput(le)).to.equal(text);
    expect(decodeInput(be)).to.equal(text);
    expect(decodeInput(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]))).to.equal(text);
    expect(() => decodeInput(Buffer.from("kind: X\0\n"))).to.throw("NUL");
    // kubectl reads a Latin-1 byte as U+FFFD and the server accepts it: the same here.
    expect(decodeInput(Buffer.from([0x6b, 0x3a, 0x20, 0xe9, 0x0a]))).to.equal("k: \uFFFD\n");
    expect(() => decodeInput(Buffer.from([0xff, 0xfe, 0x00, 0xd8, 0x6b, 0x00]))).to.throw(
      "not valid UTF-16LE",
    );
    expect(() => decodeInput(Buffer.alloc(MAX_INPUT_BYTES + 1, 0x20))).to.throw("3 MiB");
    expect(() => decodeInput("a".repeat(MAX_INPUT_BYTES + 1))).to.throw("3 MiB");
  });

  it("refuses a file without objects rather than skipping it", () => {
    expect(readManifests("")[0]!.error).to.equal("no object in it");
    expect(readManifests("# only a comment\n---\n")[0]!.error).to.equal("no object in it");
  });

  it("finds duplicate keys at any depth in linear time", () => {
    expect(readManifests("a: 1\nb: {c: 1, c: 2}\n")[0]!.error).to.match(/mapping key "c" already defined/);
    expect(readManifests("a: [{x: 1}, {x: 1}]\n")[0]!.error).to.equal(undefined);
    const n = 40_000;
    const big = "m:\n" + Array.from({ length: n }, (_, i) => `  k${i}: ${i}\n`).join("") + "  k7: dup\n";
    const t0 = performance.now();
    expect(readManifests(big)[0]!.error).to.match(/"k7" already defined/);
    expect(performance.now() - t0).to.be.lessThan(5000);
  });
});
