import { expect } from "chai";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import {
  EXIT_USAGE,
  packageVersion,
  programName,
  runCli,
  type Actions,
  type AgentCliOptions,
  type IntegrityAcceptOptions,
  type RunOptions,
  UsageError,
} from "../../../src/cli/program.js";

const VERSION = (
  JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  ran?: RunOptions;
  agent?: AgentCliOptions;
  checked?: string[];
  validated?: string[];
  accepted?: IntegrityAcceptOptions;
  rendered?: string[];
  diffed?: string[];
}

/** Runs the command line with actions that only record what they were given. */
async function cli(argv: string[], env: Record<string, string> = {}, name?: string): Promise<Outcome> {
  const out: Outcome = { code: -1, stdout: "", stderr: "" };
  const actions: Actions = {
    run: (o) => {
      if (o.kubeconfig === "/unreadable")
        return Promise.reject(new UsageError("cannot load --kubeconfig /unreadable"));
      out.ran = o;
      return Promise.resolve(0);
    },
    agent: (o) => {
      out.agent = o;
      return Promise.resolve(0);
    },
    check: (argv, io) => {
      out.checked = argv;
      if (argv.includes("--help")) io.stdout("Usage: csp-operator check [options]\n");
      return Promise.resolve(argv.includes("--fail") ? 1 : 0);
    },
    render: (argv) => {
      out.rendered = argv;
      return Promise.resolve(0);
    },
    diff: (argv) => {
      out.diffed = argv;
      return Promise.resolve(argv.includes("--changed") ? 1 : 0);
    },
    integrityAccept: (o) => {
      out.accepted = o;
      return Promise.resolve(0);
    },
    validate: (argv, io) => {
      out.validated = argv;
      if (argv.includes("--help")) io.stdout("Usage: csp-operator validate [options]\n");
      return Promise.resolve(argv.includes("--invalid") ? 1 : 0);
    },
  };
  const saved: Record<string, string | undefined> = {};
  for (const k of ["CSP_WORKERS", "CSP_RESYNC_SECONDS", "LOG_LEVEL", "NODE_NAME", ...Object.keys(env)]) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  Object.assign(process.env, env);
  try {
    out.code = await runCli(
      argv,
      actions,
      { stdout: (s) => (out.stdout += s), stderr: (s) => (out.stderr += s) },
      name,
    );
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  return out;
}

/** A usage error: exit 2, nothing run, exactly one line on stderr that contains `needle`. */
function expectUsageError(o: Outcome, needle: string): void {
  expect(o.code, o.stderr).to.equal(EXIT_USAGE);
  expect(o.ran ?? o.agent ?? o.checked).to.equal(undefined);
  expect(o.stdout).to.equal("");
  expect(o.stderr.endsWith("\n")).to.be.true;
  expect(o.stderr.trimEnd().split("\n"), o.stderr).to.have.length(1);
  expect(o.stderr).to.contain(needle);
}

describe("cli: the csp-operator command line", () => {
  it("runs the operator by default, with the documented defaults", async () => {
    for (const argv of [[], ["run"]]) {
      const o = await cli(argv);
      expect(o.code).to.equal(0);
      expect(o.ran).to.deep.equal({
        workers: 2,
        repairWorkers: 2,
        resyncSeconds: 300,
        logLevel: "info",
        maxConcurrentWrites: 8,
        metricsSecure: true,
        healthBind: { port: 8081 },
        watchSilenceMs: 150_000,
      });
    }
  });

  it("passes run's options, before or after the command name, and reads their environment variables", async () => {
    const flags = ["--kubeconfig", "/k", "--workers=4", "--resync", "30", "--log-level", "debug"];
    const writes = await cli(["--max-concurrent-writes", "3"]);
    expect(writes.ran?.maxConcurrentWrites).to.equal(3);
    expect((await cli(["--repair-workers", "5"])).ran?.repairWorkers).to.equal(5);
    expect((await cli(["--repair-workers=0"])).code).to.equal(2);
    expect((await cli(["--max-concurrent-writes=0"])).code).to.equal(2);
    for (const argv of [flags, ["run", ...flags]]) {
      const o = await cli(argv);
      expect(o.code, o.stderr).to.equal(0);
      expect(o.ran).to.deep.equal({
        kubeconfig: "/k",
        workers: 4,
        repairWorkers: 2,
        resyncSeconds: 30,
        logLevel: "debug",
        maxConcurrentWrites: 8,
        metricsSecure: true,
        healthBind: { port: 8081 },
        watchSilenceMs: 150_000,
      });
    }
    const env = await cli([], { CSP_WORKERS: "3", CSP_RESYNC_SECONDS: "1.5", LOG_LEVEL: "warn" });
    expect(env.ran).to.deep.equal({
      workers: 3,
      repairWorkers: 2,
      resyncSeconds: 1.5,
      logLevel: "warn",
      maxConcurrentWrites: 8,
      metricsSecure: true,
      healthBind: { port: 8081 },
      watchSilenceMs: 150_000,
    });
    const flagWins = await cli(["--workers", "5"], { CSP_WORKERS: "3" });
    expect(flagWins.ran?.workers).to.equal(5);
  });

  it("passes the leader-election, metrics and probe options, refusing bad ones with the flag named", async () => {
    const o = await cli([
      "run",
      "--leader-elect",
      "--leader-elect-lease-duration=6000ms",
      "--leader-elect-renew-deadline",
      "4s",
      "--leader-elect-retry-period=1s",
      "--metrics-bind-address=:8080",
      "--metrics-secure=false",
      "--health-probe-bind-address=127.0.0.1:0",
    ]);
    expect(o.code, o.stderr).to.equal(0);
    expect(o.ran).to.deep.include({
      leaderElection: {
        namespace: "csp-system",
        leaseDurationMs: 6000,
        renewDeadlineMs: 4000,
        retryPeriodMs: 1000,
      },
      metricsBind: { port: 8080 },
      metricsSecure: false,
      healthBind: { host: "127.0.0.1", port: 0 },
    });
    expect((await cli(["--watch-silence-timeout=75s"])).ran?.watchSilenceMs).to.equal(75_000);
    expect((await cli([], { CSP_WATCH_SILENCE_TIMEOUT: "2m" })).ran?.watchSilenceMs).to.equal(120_000);
    expect((await cli(["--watch-silence-timeout=soon"])).code).to.equal(2);
    const off = await cli(["--metrics-bind-address=0", "--health-probe-bind-address=0", "--metrics-secure"]);
    expect(off.ran).to.not.have.property("metricsBind");
    expect(off.ran).to.not.have.property("healthBind");
    expect(off.ran?.metricsSecure).to.equal(true);
    for (const [argv, needle] of [
      [["--leader-elect-lease-duration=soon"], "--leader-elect-lease-duration"],
      [["--metrics-bind-address=8080"], "--metrics-bind-address"],
      [["--metrics-secure=yes"], "--metrics-secure"],
      [["--leader-elect", "--leader-elect-renew-deadline=20s"], "--leader-elect-renew-deadline"],
    ] as const) {
      const bad = await cli([...argv]);
      expect(bad.code, argv.join(" ")).to.equal(2);
      expect(bad.stderr).to.contain(needle);
      expect(bad.stderr.trim().split("\n")).to.have.length(1);
    }
  });

  it("passes agent's options", async () => {
    const o = await cli([
      "agent",
      "--node-name",
      "cp-1",
      "--audit-policy-path",
      "/etc/kubernetes/audit.yaml",
      "--host-root=/host",
      "--policy",
      "baseline",
      "--resync",
      "10",
      "--health-probe-bind-address=127.0.0.1:9091",
    ]);
    expect(o.code, o.stderr).to.equal(0);
    expect(o.agent).to.deep.equal({
      nodeName: "cp-1",
      auditPolicyPath: "/etc/kubernetes/audit.yaml",
      hostRoot: "/host",
      policy: "baseline",
      resyncSeconds: 10,
      logLevel: "info",
      healthBind: { host: "127.0.0.1", port: 9091 },
    });
    const env = await cli(["agent", "--encryption-config-path", "/e.yaml"], { NODE_NAME: "cp-2" });
    expect(env.agent).to.deep.equal({
      nodeName: "cp-2",
      encryptionConfigPath: "/e.yaml",
      resyncSeconds: 60,
      logLevel: "info",
      healthBind: { port: 8081 },
    });
  });

  it("agent: --health-probe-bind-address 0 turns the probes off; a malformed one is a usage error", async () => {
    const off = await cli([
      "agent",
      "--node-name",
      "n",
      "--host-root",
      "/h",
      "--health-probe-bind-address",
      "0",
    ]);
    expect(off.code, off.stderr).to.equal(0);
    expect(off.agent).not.to.have.property("healthBind");
    expectUsageError(
      await cli(["agent", "--node-name", "n", "--host-root", "/h", "--health-probe-bind-address", "8081"]),
      "--health-probe-bind-address",
    );
  });

  it("passes check's arguments through untouched, in order, and returns its exit code", async () => {
    const argv = ["--apiserver-manifest", "m.yaml", "-o", "json", "--kubelet-flags", "--version --x=1", "x"];
    const o = await cli(["check", ...argv, "--fail"]);
    expect(o.checked).to.deep.equal([...argv, "--fail"]);
    expect(o.code).to.equal(1);
  });

  it("integrity accept needs --node, an absolute --path and a --reason, and passes them", async () => {
    const o = await cli([
      "integrity",
      "accept",
      "--node",
      "cp-1",
      "--path",
      "/etc/kubernetes/a.yaml",
      "--reason",
      "CHG-1",
    ]);
    expect(o.code, o.stderr).to.equal(0);
    expect(o.accepted).to.deep.equal({ node: "cp-1", path: "/etc/kubernetes/a.yaml", reason: "CHG-1" });
    for (const argv of [
      ["integrity", "accept", "--node", "cp-1", "--path", "/a"],
      ["integrity", "accept", "--node", "cp-1", "--path", "relative.yaml", "--reason", "x"],
      ["integrity", "accept", "--path", "/a", "--reason", "x"],
    ]) {
      const bad = await cli(argv);
      expect(bad.code, argv.join(" ")).to.equal(2);
      expect(bad.stderr.trim().split("\n")).to.have.length(1);
    }
  });

  it("passes render's and diff's arguments through untouched, with diff's exit code", async () => {
    const r = await cli(["render", "-f", "p.yaml", "--namespaces", "ns.yaml", "-o", "json"]);
    expect(r.rendered).to.deep.equal(["-f", "p.yaml", "--namespaces", "ns.yaml", "-o", "json"]);
    const d = await cli(["diff", "-f", "p.yaml", "--changed"]);
    expect(d.diffed).to.deep.equal(["-f", "p.yaml", "--changed"]);
    expect(d.code).to.equal(1);
  });

  it("passes validate's arguments through untouched, with its exit code and its own help", async () => {
    const o = await cli(["validate", "-f", "-", "-o", "json", "--invalid"]);
    expect(o.validated).to.deep.equal(["-f", "-", "-o", "json", "--invalid"]);
    expect(o.code).to.equal(1);
    const help = await cli(["help", "validate"]);
    expect(help.validated).to.deep.equal(["--help"]);
    expect(help.stdout).to.contain("Usage: csp-operator validate");
  });

  it("check's own options reach it even where they look like the program's", async () => {
    const o = await cli(["check", "-h"]);
    expect(o.checked).to.deep.equal(["-h"]);
    const help = await cli(["check", "--help"]);
    expect(help.checked).to.deep.equal(["--help"]);
    expect(help.stdout).to.contain("Usage: csp-operator check");
  });

  it("rejects an unknown option with one line naming it, exit 2, and suggests the near one", async () => {
    const o = await cli(["--wokers", "3"]);
    expectUsageError(o, "unknown option '--wokers'");
    expect(o.stderr).to.contain("--workers");
    expectUsageError(await cli(["agent", "--node-name", "n", "--host-root", "/h", "--bogus"]), "--bogus");
  });

  it("rejects a missing value with one line naming the option, exit 2", async () => {
    expectUsageError(await cli(["run", "--workers"]), "--workers");
    expectUsageError(await cli(["--kubeconfig"]), "--kubeconfig");
    expectUsageError(await cli(["agent", "--node-name"]), "--node-name");
  });

  it("rejects invalid values with one line naming the option (or its environment variable), exit 2", async () => {
    for (const w of ["0", "-1", "1.5", "x", "", "1e3"])
      expectUsageError(await cli(["--workers", w]), "--workers");
    for (const r of ["0", "-5", "soon", "", "0.5", "86401", "2200000", "0x10", "1e-9", "1e3", " 60"])
      expectUsageError(await cli(["--resync", r]), "--resync");
    expectUsageError(await cli([], { CSP_RESYNC_SECONDS: "2200000" }), "--resync");
    for (const r of ["0", "86401", "2200000", "0x10"])
      expectUsageError(
        await cli(["agent", "--node-name", "n", "--host-root", "/h", "--resync", r]),
        "--resync",
      );
    expectUsageError(await cli(["--log-level", "loud"]), "--log-level");
    expectUsageError(await cli([], { CSP_WORKERS: "many" }), "CSP_WORKERS");
    expectUsageError(await cli([], { LOG_LEVEL: "loud" }), "LOG_LEVEL");
    expectUsageError(
      await cli(["agent", "--node-name", "n", "--audit-policy-path", "audit.yaml"]),
      "--audit-policy-path",
    );
    expectUsageError(await cli(["agent", "--node-name", "n", "--host-root", "host"]), "--host-root");
  });

  it("--resync takes decimal seconds from 1 to 86400 (a longer timer would overflow and fire in a loop)", async () => {
    expect((await cli(["--resync", "86400"])).ran?.resyncSeconds).to.equal(86400);
    expect((await cli(["--resync", "1"])).ran?.resyncSeconds).to.equal(1);
    expect((await cli(["--resync", "2.5"])).ran?.resyncSeconds).to.equal(2.5);
    expect((await cli([], { CSP_RESYNC_SECONDS: "600" })).ran?.resyncSeconds).to.equal(600);
    const agent = await cli(["agent", "--node-name", "n", "--host-root", "/h", "--resync", "86400"]);
    expect(agent.agent?.resyncSeconds).to.equal(86400);
  });

  it("reads the log level in any case (LOG_LEVEL=INFO), as the lower-case level", async () => {
    expect((await cli([], { LOG_LEVEL: "INFO" })).ran?.logLevel).to.equal("info");
    expect((await cli(["--log-level", "Debug"])).ran?.logLevel).to.equal("debug");
    const agent = await cli(["agent", "--node-name", "n", "--host-root", "/h", "--log-level", "WARN"]);
    expect(agent.agent?.logLevel).to.equal("warn");
  });

  it("agent: a missing node name or nothing to do is a usage error naming what is missing", async () => {
    expectUsageError(await cli(["agent", "--host-root", "/h"]), "--node-name");
    expectUsageError(await cli(["agent", "--node-name", "n"]), "--audit-policy-path");
    expectUsageError(await cli(["agent", "--host-root", "/h"], { NODE_NAME: "" }), "--node-name");
  });

  it("never echoes a control character or an endless argument to the terminal", async () => {
    const o = await cli(["--\u001b]0;pwned\u0007\u001b[2J", "x"]);
    expectUsageError(o, "unknown option '--\\x1b]0;pwned\\x07\\x1b[2J'");
    // eslint-disable-next-line no-control-regex
    expect(o.stderr).to.not.match(/[\u0000-\u0009\u000b-\u001f]/);
    const long = await cli(["--workers", "9".repeat(100_000)]);
    expectUsageError(long, "--workers");
    expect(long.stderr.length).to.be.below(1000);
  });

  it("bad input an action finds is one line naming it, exit 2", async () => {
    expectUsageError(
      await cli(["--kubeconfig", "/unreadable"]),
      "error: cannot load --kubeconfig /unreadable",
    );
  });

  it("rejects an unknown command or a stray argument, exit 2", async () => {
    expectUsageError(await cli(["chek"]), "unknown command 'chek'");
    expectUsageError(await cli(["run", "extra"]), "extra");
    expectUsageError(await cli(["help", "nope"]), "nope");
  });

  it("--version prints package.json's version on every command", async () => {
    expect(packageVersion()).to.equal(VERSION);
    for (const argv of [
      ["--version"],
      ["-V"],
      ["run", "--version"],
      ["agent", "-V"],
      ["check", "--version"],
    ]) {
      const o = await cli(argv);
      expect(o, argv.join(" ")).to.include({ code: 0, stdout: `${VERSION}\n`, stderr: "" });
      expect(o.ran ?? o.agent ?? o.checked).to.equal(undefined);
    }
  });

  it("--help and help [command] print usage to stdout and exit 0, running nothing", async () => {
    for (const argv of [["--help"], ["-h"], ["help"], ["help", "help"], ["help", "-h"], ["help", "--help"]]) {
      const o = await cli(argv);
      expect(o.code).to.equal(0);
      expect(o.ran).to.equal(undefined);
      expect(o.stdout).to.match(/^Usage: csp-operator \[options\] \[command\]/);
      for (const c of ["run", "agent", "check", "validate", "help"])
        expect(o.stdout).to.match(new RegExp(`\\n  ${c} `));
    }
    for (const [cmd, flag] of [
      ["run", "--workers"],
      ["agent", "--node-name"],
    ] as const) {
      for (const argv of [
        [cmd, "--help"],
        ["help", cmd],
      ]) {
        const o = await cli(argv);
        expect(o.code).to.equal(0);
        expect(o.ran ?? o.agent).to.equal(undefined);
        expect(o.stdout).to.contain(`Usage: csp-operator ${cmd} [options]`).and.contain(flag);
      }
    }
    for (const argv of [
      ["help", "--version"],
      ["help", "-V"],
    ]) {
      const o = await cli(argv);
      expect(o.code, argv.join(" ")).to.equal(0);
      expect(o.stdout).to.equal(`${VERSION}\n`);
      expect(o.stderr).to.equal("");
    }
    expectUsageError(await cli(["help", "check", "extra"]), "help takes one command");
    expectUsageError(await cli(["help", "--bogus"]), "--bogus");
    const check = await cli(["help", "check"]);
    expect(check.checked).to.deep.equal(["--help"]);
    expect(check.stdout).to.contain("Usage: csp-operator check");
  });

  it("calls itself `kubectl csp` when run as the kubectl plugin", async () => {
    expect(programName("/usr/local/bin/kubectl-csp")).to.equal("kubectl csp");
    expect(programName("/usr/local/lib/node_modules/csp-operator/dist/src/main.js")).to.equal("csp-operator");
    expect(programName(undefined)).to.equal("csp-operator");
    const o = await cli(["--help"], {}, "kubectl csp");
    expect(o.stdout).to.match(/^Usage: kubectl csp \[options\] \[command\]/);
  });

  it("accepts the arguments the shipped manifests give (config/manager, config/agent)", async () => {
    const argsOf = (file: string) => {
      const o = parse(readFileSync(new URL(`../../../${file}`, import.meta.url), "utf8")) as {
        spec: { template: { spec: { containers: { args: string[] }[] } } };
      };
      return o.spec.template.spec.containers[0]!.args;
    };
    const manager = await cli(argsOf("config/manager/deployment.yaml"));
    expect(manager.code, manager.stderr).to.equal(0);
    expect(manager.ran).to.include({ workers: 2, resyncSeconds: 300 });
    const agent = await cli(argsOf("config/agent/daemonset.yaml"), { NODE_NAME: "cp-1" });
    expect(agent.code, agent.stderr).to.equal(0);
    expect(agent.agent).to.include({ nodeName: "cp-1", hostRoot: "/host" });
  });
});
