import { expect } from "chai";
import {
  arrayFlag,
  boolFlag,
  boolMapFlag,
  durationFlag,
  intFlag,
  listFlag,
  parseFlags,
  parseGoBool,
  parseGoCsvRecord,
  parseGoDuration,
  parseGoInt,
  splitCommandLine,
  stringFlag,
} from "../../../src/cis/parse/flags.js";
import { APISERVER_GRAMMAR, KUBELET_GRAMMAR } from "../../../src/cis/parse/grammars.js";

const apiFlags = (...argv: string[]) => parseFlags(argv, APISERVER_GRAMMAR);

describe("cis/flags: pflag-compatible parsing", () => {
  it("reads --flag=value and --flag value (two argv items) as the same value", () => {
    const a = stringFlag(apiFlags("--audit-log-path=/var/log/a.log"), "audit-log-path");
    const b = stringFlag(apiFlags("--audit-log-path", "/var/log/a.log"), "audit-log-path");
    expect(a.ok && a.value).to.equal("/var/log/a.log");
    expect(b.ok && b.value).to.equal("/var/log/a.log");
    expect(b.ok && b.source).to.equal("--audit-log-path /var/log/a.log");
  });

  it("lets a non-boolean flag consume the next item even when it starts with --", () => {
    const f = apiFlags("--token-auth-file", "--profiling=false");
    const tok = stringFlag(f, "token-auth-file");
    expect(tok.ok && tok.value).to.equal("--profiling=false");
    const prof = boolFlag(f, "profiling", true);
    expect(prof.ok && prof.value).to.equal(true);
    expect(prof.ok && prof.explicit).to.equal(false);
  });

  it("does not let a boolean flag consume the next item: `--anonymous-auth false` is true plus a stray argument", () => {
    const f = apiFlags("--anonymous-auth", "false");
    const v = boolFlag(f, "anonymous-auth", true);
    expect(v.ok && v.value).to.equal(true);
    expect(f.positional).to.deep.equal([{ text: "false", index: 1 }]);
    expect(v.ok && v.source).to.contain("stray argument");
  });

  it("reads a bare boolean flag as true", () => {
    const v = boolFlag(apiFlags("--profiling"), "profiling", false);
    expect(v.ok && v.value).to.equal(true);
  });

  it("takes the last value of a scalar given twice and says which ones it overrode", () => {
    const v = boolFlag(apiFlags("--profiling=false", "--profiling=true"), "profiling", true);
    expect(v.ok && v.value).to.equal(true);
    expect(v.ok && v.source).to.equal(
      "--profiling=true (given 2 times; the last one wins over --profiling=false)",
    );
  });

  it("appends list flags given twice (first occurrence replaces the default)", () => {
    const v = listFlag(
      apiFlags("--authorization-mode=Node", "--authorization-mode=RBAC"),
      "authorization-mode",
      ["AlwaysAllow"],
    );
    expect(v.ok && v.value).to.deep.equal(["Node", "RBAC"]);
    const d = listFlag(apiFlags(), "authorization-mode", ["AlwaysAllow"]);
    expect(d.ok && d.value).to.deep.equal(["AlwaysAllow"]);
    expect(d.ok && d.explicit).to.equal(false);
  });

  it("appends string arrays without splitting on commas", () => {
    const v = arrayFlag(
      apiFlags("--service-account-key-file=/a,b.pub", "--service-account-key-file", "/c.pub"),
      "service-account-key-file",
    );
    expect(v.ok && v.value).to.deep.equal(["/a,b.pub", "/c.pub"]);
  });

  it("normalises _ to - in flag names like component-base does", () => {
    const v = boolFlag(apiFlags("--anonymous_auth=false"), "anonymous-auth", true);
    expect(v.ok && v.value).to.equal(false);
  });

  it("stops parsing flags at --", () => {
    const f = apiFlags("--profiling=false", "--", "--profiling=true");
    const v = boolFlag(f, "profiling", true);
    expect(v.ok && v.value).to.equal(false);
    expect(f.positional.map((p) => p.text)).to.deep.equal(["--profiling=true"]);
  });

  it("handles shorthands (-v=2, -v 2, -v2) and reports a flag missing its value", () => {
    for (const argv of [["-v=2"], ["-v", "2"], ["-v2"]]) {
      const v = intFlag(apiFlags(...argv), "v", 32, 0);
      expect(v.ok && v.value, argv.join(" ")).to.equal(2);
    }
    expect(apiFlags("--etcd-servers").errors).to.deep.equal(["flag needs an argument: --etcd-servers"]);
    expect(apiFlags("---x").errors).to.deep.equal(["bad flag syntax: ---x"]);
  });

  it("makes a value that does not convert not determinable, even in an earlier occurrence", () => {
    const v = boolFlag(apiFlags("--profiling=maybe", "--profiling=false"), "profiling", true);
    expect(v.ok).to.equal(false);
    expect(!v.ok && v.reason).to.contain("--profiling=maybe is not a valid boolean");
  });

  it("makes a value from an unresolved env reference not determinable", () => {
    const f = parseFlags(
      [{ text: "--profiling=$(P)", unresolved: "P comes from valueFrom" }],
      APISERVER_GRAMMAR,
    );
    const v = boolFlag(f, "profiling", true);
    expect(!v.ok && v.reason).to.equal("--profiling cannot be evaluated offline: P comes from valueFrom");
  });

  it("uses the kubelet grammar for kubelet booleans", () => {
    const f = parseFlags(["--rotate-certificates", "--read-only-port", "0"], KUBELET_GRAMMAR);
    expect(f.positional).to.deep.equal([]);
    const p = intFlag(f, "read-only-port", 32, 10255);
    expect(p.ok && p.value).to.equal(0);
  });
});

describe("cis/flags: Go value parsing", () => {
  it("parses booleans exactly like strconv.ParseBool", () => {
    for (const t of ["1", "t", "T", "TRUE", "true", "True"]) expect(parseGoBool(t), t).to.equal(true);
    for (const f of ["0", "f", "F", "FALSE", "false", "False"]) expect(parseGoBool(f), f).to.equal(false);
    for (const bad of ["yes", "no", "on", "off", "tRUE", "", " true", "2"])
      expect(parseGoBool(bad), bad).to.equal(undefined);
  });

  it("parses integers like strconv.ParseInt(s, 0, bits)", () => {
    expect(parseGoInt("30", 64)).to.equal(30);
    expect(parseGoInt("030", 64)).to.equal(24);
    expect(parseGoInt("0x1e", 64)).to.equal(30);
    expect(parseGoInt("0o36", 64)).to.equal(30);
    expect(parseGoInt("0b11110", 64)).to.equal(30);
    expect(parseGoInt("1_000", 64)).to.equal(1000);
    expect(parseGoInt("-1", 64)).to.equal(-1);
    expect(parseGoInt("+7", 32)).to.equal(7);
    expect(parseGoInt("0", 32)).to.equal(0);
    expect(parseGoInt("08", 64)).to.equal(undefined);
    expect(parseGoInt("1__0", 64)).to.equal(undefined);
    expect(parseGoInt("_1", 64)).to.equal(undefined);
    expect(parseGoInt("1_", 64)).to.equal(undefined);
    expect(parseGoInt("0x", 64)).to.equal(undefined);
    expect(parseGoInt("30d", 64)).to.equal(undefined);
    expect(parseGoInt("", 64)).to.equal(undefined);
    expect(parseGoInt("2147483647", 32)).to.equal(2147483647);
    expect(parseGoInt("2147483648", 32)).to.equal(undefined);
    expect(parseGoInt("-2147483648", 32)).to.equal(-2147483648);
  });

  it("says how Go reads a non-decimal integer flag", () => {
    const v = intFlag(apiFlags("--audit-log-maxage=030"), "audit-log-maxage", 64, 366);
    expect(v.ok && v.value).to.equal(24);
    expect(v.ok && v.source).to.equal("--audit-log-maxage=030 (Go reads 030 as 24)");
  });

  it("parses durations like time.ParseDuration", () => {
    expect(parseGoDuration("0")).to.equal(0);
    expect(parseGoDuration("0s")).to.equal(0);
    expect(parseGoDuration("300ms")).to.equal(300e6);
    expect(parseGoDuration("5m")).to.equal(300e9);
    expect(parseGoDuration("1h30m")).to.equal(5400e9);
    expect(parseGoDuration("1.5h")).to.equal(5400e9);
    expect(parseGoDuration(".5s")).to.equal(0.5e9);
    expect(parseGoDuration("-1s")).to.equal(-1e9);
    expect(parseGoDuration("5")).to.equal(undefined);
    expect(parseGoDuration("5 m")).to.equal(undefined);
    expect(parseGoDuration("5d")).to.equal(undefined);
    expect(parseGoDuration("")).to.equal(undefined);
    expect(parseGoDuration(".s")).to.equal(undefined);
    const d = durationFlag(apiFlags("--request-timeout", "1m"), "request-timeout", 60e9);
    expect(d.ok && d.value).to.equal(60e9);
  });

  it("splits list values with encoding/csv rules, as pflag's string slices do", () => {
    expect(parseGoCsvRecord("")).to.deep.equal([]);
    expect(parseGoCsvRecord("Node,RBAC")).to.deep.equal(["Node", "RBAC"]);
    expect(parseGoCsvRecord("Node, RBAC")).to.deep.equal(["Node", " RBAC"]);
    expect(parseGoCsvRecord('"a,b",c')).to.deep.equal(["a,b", "c"]);
    expect(parseGoCsvRecord('"say ""hi"""')).to.deep.equal(['say "hi"']);
    expect(parseGoCsvRecord("a,")).to.deep.equal(["a", ""]);
    expect(parseGoCsvRecord('a"b')).to.equal(undefined);
    expect(parseGoCsvRecord('"ab')).to.equal(undefined);
    expect(parseGoCsvRecord('"a"b')).to.equal(undefined);
  });

  it("merges kubelet --feature-gates occurrences key by key", () => {
    const f = parseFlags(
      ["--feature-gates=A=true,B=false", "--feature-gates", "B=true, C = f"],
      KUBELET_GRAMMAR,
    );
    const v = boolMapFlag(f, "feature-gates");
    expect(v.ok && v.value).to.deep.equal({ A: true, B: true, C: false });
    const bad = boolMapFlag(parseFlags(["--feature-gates=A"], KUBELET_GRAMMAR), "feature-gates");
    expect(bad.ok).to.equal(false);
  });

  it("splits a command line like a shell would", () => {
    expect(splitCommandLine(`/usr/bin/kubelet --a=1  --b "x y" --c='p q' --d=\\"z`)).to.deep.equal([
      "/usr/bin/kubelet",
      "--a=1",
      "--b",
      "x y",
      "--c=p q",
      '--d="z',
    ]);
    expect(() => splitCommandLine(`--a "x`)).to.throw("unterminated double quote");
  });
});
