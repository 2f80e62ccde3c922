#!/usr/bin/env node
/**
 * csp-operator entry point (the `csp-operator` and `kubectl-csp` executables):
 *   csp-operator [run] [--kubeconfig FILE] [--workers N] [--resync SECONDS]   run the operator
 *   csp-operator agent --node-name N ...                                      node agent
 *   csp-operator check [...]                                                  offline CIS checks
 *   csp-operator help [command] | --help | --version
 * The command line is parsed in src/cli/program.ts; what the commands do is in src/cli/actions.ts.
 * Nothing is imported before the Node version check, so an old Node gets a clear message, not a
 * syntax or import error from a dependency.
 */
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  console.error(
    `csp-operator needs Node >= 22.19 (Node 24 LTS recommended); this is ${process.version}. Run it through npm scripts, which use the project's Node.`,
  );
  process.exit(2);
}

const [{ runCli, programName }, { ACTIONS }] = await Promise.all([
  import("./cli/program.js"),
  import("./cli/actions.js"),
]);
const io = {
  stdout: (s: string) => void process.stdout.write(s),
  stderr: (s: string) => void process.stderr.write(s),
};
runCli(process.argv.slice(2), ACTIONS, io, programName(process.argv[1])).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
