import { expect } from "chai";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  hostRootReader,
  InputFileError,
  MAX_INPUT_BYTES,
  readRegularFile,
  resolveInRoot,
} from "../../../src/cis/gather/safefs.js";
import { quote, safeText } from "../../../src/cis/output/text.js";

async function rejection(p: Promise<unknown>): Promise<InputFileError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(InputFileError);
    return e as InputFileError;
  }
  throw new Error("expected a rejection");
}

describe("cis/safefs: reading untrusted files", () => {
  let dir = "";
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "cis-safefs-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("reads a file of exactly the limit and refuses one byte more", async () => {
    writeFileSync(join(dir, "max"), "a".repeat(MAX_INPUT_BYTES));
    writeFileSync(join(dir, "over"), "a".repeat(MAX_INPUT_BYTES + 1));
    expect((await readRegularFile(join(dir, "max"))).length).to.equal(MAX_INPUT_BYTES);
    const e = await rejection(readRegularFile(join(dir, "over")));
    expect([e.code, e.message]).to.deep.equal([
      "EFBIG",
      `is larger than 1 MiB (${MAX_INPUT_BYTES + 1} bytes)`,
    ]);
  });

  it("refuses devices (even /dev/zero, which never ends) and directories", async () => {
    expect((await rejection(readRegularFile("/dev/null"))).message).to.equal(
      "is a character device, not a regular file",
    );
    expect((await rejection(readRegularFile(dir))).code).to.equal("ENOTREG");
    expect((await rejection(readRegularFile("/dev/zero"))).code).to.equal("ENOTREG");
  });

  it("refuses invalid UTF-8 and paths with NUL bytes", async () => {
    writeFileSync(join(dir, "bad"), Buffer.from([0x6b, 0x3a, 0x20, 0xed, 0xa0, 0x80]));
    expect((await rejection(readRegularFile(join(dir, "bad")))).code).to.equal("EILSEQ");
    expect((await rejection(readRegularFile(`${dir}/a\0b`))).code).to.equal("EINVAL");
  });

  it("resolves symlinks component by component inside the root, like chroot", async () => {
    const root = join(dir, "root");
    mkdirSync(join(root, "etc/a"), { recursive: true });
    writeFileSync(join(root, "etc/a/f"), "inside");
    symlinkSync("/etc/a", join(root, "abs"));
    symlinkSync("../../../../../etc/a", join(root, "etc/a/up"));
    symlinkSync("loop2", join(root, "loop1"));
    symlinkSync("loop1", join(root, "loop2"));
    expect(await resolveInRoot(root, "/abs/f")).to.deep.equal({ path: "/etc/a/f", exists: true });
    expect(await resolveInRoot(root, "/etc/a/up/f")).to.deep.equal({ path: "/etc/a/f", exists: true });
    expect(await resolveInRoot(root, "/../../etc/./a//f")).to.deep.equal({ path: "/etc/a/f", exists: true });
    // `..` after a symlink is taken from where the link led, as the kernel does.
    expect(await resolveInRoot(root, "/abs/../a/f")).to.deep.equal({ path: "/etc/a/f", exists: true });
    expect(await resolveInRoot(root, "/abs/nope/x")).to.deep.equal({ path: "/etc/a/nope/x", exists: false });
    expect((await rejection(resolveInRoot(root, "/loop1"))).code).to.equal("ELOOP");
    expect((await rejection(resolveInRoot(root, "/etc/a/f/x"))).code).to.equal("ENOTDIR");
    expect(await hostRootReader(root).readFile("/abs/f")).to.equal("inside");
  });
});

describe("cis/text: printing input safely", () => {
  it("escapes control, C1 and bidi characters and keeps one line", () => {
    expect(safeText("a\u001b[2J\n\r\t\u007f\u009b\u202e\u2028b", 100)).to.equal(
      "a\\x1b[2J\\n\\r\\t\\x7f\\x9b\\u202e\\u2028b",
    );
  });

  it("bounds the length, saying how much was cut, without splitting a surrogate pair", () => {
    const cut = safeText("x".repeat(10_000), 100);
    expect(cut.length).to.be.at.most(100);
    expect(cut).to.match(/ \.\.\. \(\d+ more characters\)$/);
    const emoji = safeText("😀".repeat(100), 50);
    expect(emoji.length).to.be.at.most(50);
    expect(() => encodeURIComponent(emoji)).not.to.throw();
  });

  it("quotes values from input", () => {
    expect(quote('a"b\\c\u001b')).to.equal('"a\\"b\\\\c\\x1b"');
    expect(quote(["x", 1])).to.equal('["x",1]');
    expect(quote("y".repeat(1000)).length).to.be.at.most(80);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(quote(circular)).to.equal("[object Object]");
  });
});
