import { expect } from "chai";
import { Environment } from "@marcbachmann/cel-js";
import { re2, re2ToJs } from "../../../src/gitops/re2.js";

describe("re2: Go RE2 semantics on JavaScript's engine", () => {
  it("`.` matches \\r, U+2028 and U+2029 but not \\n, as in RE2", () => {
    const re = re2("^unix:///.+$");
    for (const ok of ["unix:///\r", "unix:///\u2028", "unix:///\u2029", "unix:///x"])
      expect(re.test(ok), ok).to.equal(true);
    expect(re.test("unix:///\n")).to.equal(false);
    expect(new RegExp("^unix:///.+$", "u").test("unix:///\r")).to.equal(false); // why this exists
  });

  it("`\\s` and `\\S` are ASCII, in and out of classes; escapes and literal dots untouched", () => {
    expect(re2("^\\s$").test("\u00a0")).to.equal(false);
    expect(re2("^\\s$").test("\v")).to.equal(false);
    expect(re2("^\\s+$").test(" \t\r\n\f")).to.equal(true);
    expect(re2("^[\\sx]+$").test("x \t")).to.equal(true);
    expect(re2("^[\\sx]+$").test("\u2028")).to.equal(false);
    expect(re2("^\\S$").test("\u00a0")).to.equal(true);
    expect(re2ToJs("a\\.b[.]c.")).to.equal("a\\.b[.]c[^\\n]");
    expect(re2ToJs("[]a]")).to.equal("[\\]a]");
    expect(re2ToJs("[^]a]")).to.equal("[^\\]a]");
  });

  it("the CEL evaluator's own matches() is JavaScript's (what cel.ts rewrites away)", () => {
    const env = new Environment();
    expect(env.evaluate("'a\\r'.matches('^a.$')")).to.equal(false);
    expect(re2("^a.$").test("a\r")).to.equal(true);
  });
});
