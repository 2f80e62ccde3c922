/**
 * `csp-operator render` and `csp-operator diff` as commander Commands, plus runRender/runDiff for the
 * top-level CLI and tests (the same pattern as `validate` in command.ts).
 *
 * render exit codes: 0 rendered; 1 the policy is invalid or the plan reports failures (InvalidSpec, Roles
 * not grantable; the rest is still rendered); 2 nothing could be rendered (usage, unreadable input).
 * diff exit codes (kubectl diff's): 0 no change; 1 changes, prunes or plan failures (as render); 2 error.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import type { V1Namespace } from "@kubernetes/client-node";
import { stringify } from "yaml";
import type { ClusterSecurityPolicy } from "../api/v1alpha1/policy.js";
import { errorMessage, loadKubeConfig } from "../cluster/client.js";
import { LiveReader } from "../cluster/livereader.js";
import { processIO, type CommandIO } from "./command.js";
import { DIFF_EXIT, diffPolicy, type PolicyDiff } from "./diff.js";
import { gatherLive } from "./gather.js";
import { describeImpact } from "./impact.js";
import {
  crossPolicyConflicts,
  InputError,
  offlineSnapshot,
  parseNamespaces,
  policyDocuments,
  renderJson,
  renderPolicy,
  renderYaml,
  type Rendered,
} from "./render.js";
import { decodeInput } from "./manifests.js";
import { loadValidator } from "./validate.js";

export const RENDER_EXIT = { rendered: 0, invalid: 1, error: 2 } as const;

interface RenderOptions {
  filename: string;
  namespaces?: string;
  kubeconfig?: string;
  output: "yaml" | "json";
  crd?: string;
}

interface DiffOptions {
  filename: string;
  kubeconfig?: string;
  output: "text" | "yaml" | "json";
  crd?: string;
}

/** The policies of the file, validated as the API server would; throws InputError naming every error. */
async function readPolicies(
  file: string,
  io: CommandIO,
  crd: string | undefined,
): Promise<ClusterSecurityPolicy[]> {
  let text: string;
  try {
    text = file === "-" ? await io.readStdin() : decodeInput(readFileSync(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== undefined) throw err;
    throw new InvalidPolicy([`${file}: ${err instanceof Error ? err.message : String(err)}`]);
  }
  let docs: { where: string; object: unknown }[];
  try {
    docs = policyDocuments(file, text);
  } catch (err) {
    if (err instanceof InputError) throw new InvalidPolicy([err.message]);
    throw err;
  }
  if (docs.length === 0) throw new InputError(`${file}: no ClusterSecurityPolicy in it`);
  const validator = loadValidator(crd);
  const problems: string[] = [];
  for (const d of docs)
    for (const e of validator.validate(d.object)) problems.push(`${d.where}: ${e.message}`);
  if (problems.length > 0) throw new InvalidPolicy(problems);
  return docs.map((d) => d.object as ClusterSecurityPolicy);
}

class InvalidPolicy extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

/** `render` as a commander Command. */
export function renderCommand(io: CommandIO = processIO()): Command {
  return new Command("render")
    .description(
      "Print every object a ClusterSecurityPolicy would make csp-operator write: children, the apply patches " +
        "of shared namespaces and default ServiceAccounts, the audit Policy and the EncryptionConfiguration " +
        "(keys replaced by a placeholder), in write order, from the controller's own plan.\n" +
        "Namespaces come from --namespaces FILE (offline: nothing exists yet, everything is created) or a live " +
        "cluster (--kubeconfig, read-only: only what would change).\n" +
        "Exit 0: rendered; 1: the policy is invalid or the plan reports failures; 2: error.",
    )
    .requiredOption("-f, --filename <file>", "the policy manifest ('-' reads standard input)")
    .option(
      "--namespaces <file>",
      "Namespace objects (YAML/JSON, or `kubectl get ns -o yaml`): render offline",
    )
    .option("--kubeconfig <file>", "read namespaces and the operator's objects from this cluster (read-only)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["yaml", "json"]).default("yaml"))
    .option("--crd <file>", "the CRD to validate the policy against (default: the shipped crds/ file)")
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .action(async (opts: RenderOptions) => {
      io.setExitCode(await render(opts, io));
    });
}

async function render(opts: RenderOptions, io: CommandIO): Promise<number> {
  if (opts.namespaces && opts.kubeconfig) {
    io.stderr("error: --namespaces and --kubeconfig exclude each other\n");
    return RENDER_EXIT.error;
  }
  const now = new Date();
  let renders: Rendered[];
  try {
    const policies = await readPolicies(opts.filename, io, opts.crd);
    if (opts.kubeconfig) {
      const reader = new LiveReader(loadKubeConfig(opts.kubeconfig));
      renders = [];
      for (const p of policies) {
        const { snapshot } = await gatherLive(reader, p, now);
        renders.push(renderPolicy(p.metadata.name, snapshot));
      }
    } else {
      let namespaces: V1Namespace[] = [];
      if (opts.namespaces)
        namespaces = parseNamespaces(opts.namespaces, readFileSync(opts.namespaces, "utf8"));
      else io.stderr("note: no --namespaces or --kubeconfig: only cluster-wide objects are rendered\n");
      io.stderr("note: offline, Roles are not checked against ClusterRole csp-operator-grantable\n");
      const snapshot = offlineSnapshot(policies, namespaces, now);
      renders = policies.map((p) => renderPolicy(p.metadata.name, snapshot));
    }
  } catch (err) {
    if (err instanceof InvalidPolicy) {
      for (const p of err.problems) io.stderr(`error: ${p}\n`);
      return RENDER_EXIT.invalid;
    }
    io.stderr(`error: ${errorMessage(err)}\n`);
    return RENDER_EXIT.error;
  }
  io.stdout(opts.output === "json" ? renderJson(renders) : renderYaml(renders));
  const conflicts = crossPolicyConflicts(renders);
  for (const c of conflicts) io.stderr(`${c}\n`);
  let failed = conflicts.length > 0;
  for (const r of renders) {
    for (const d of r.deletes) io.stderr(`policy ${r.policy}: would delete ${d}\n`);
    for (const f of r.failures) {
      io.stderr(`policy ${r.policy}: ${f}\n`);
      failed = true;
    }
  }
  return failed ? RENDER_EXIT.invalid : RENDER_EXIT.rendered;
}

/** `diff` as a commander Command. */
export function diffCommand(io: CommandIO = processIO()): Command {
  return new Command("diff")
    .description(
      "Show what applying a ClusterSecurityPolicy would change in a live cluster, like kubectl diff: each object " +
        "csp-operator would write is sent as a server-side apply dry run (dryRun=All) under its field manager " +
        "and compared with the live object. Lists what would be pruned, the pods whose ingress traffic " +
        "(Services, container ports) no NetworkPolicy would allow any more, and the pods whose egress would be " +
        "cut (DNS called out). Writes nothing.\n" +
        "Exit 0: no change; 1: changes, prunes, or the plan reports failures (InvalidSpec, Roles not " +
        "grantable; as render); 2: error.",
    )
    .requiredOption("-f, --filename <file>", "the policy manifest ('-' reads standard input)")
    .option("--kubeconfig <file>", "the cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
    .addOption(
      new Option("-o, --output <format>", "output format").choices(["text", "yaml", "json"]).default("text"),
    )
    .option("--crd <file>", "the CRD to validate the policy against (default: the shipped crds/ file)")
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .action(async (opts: DiffOptions) => {
      io.setExitCode(await diff(opts, io));
    });
}

async function diff(opts: DiffOptions, io: CommandIO): Promise<number> {
  const results: PolicyDiff[] = [];
  try {
    const policies = await readPolicies(opts.filename, io, opts.crd);
    const reader = new LiveReader(loadKubeConfig(opts.kubeconfig));
    for (const p of policies) results.push(await diffPolicy(reader, p, new Date()));
  } catch (err) {
    if (err instanceof InvalidPolicy) for (const p of err.problems) io.stderr(`error: ${p}\n`);
    else io.stderr(`error: ${errorMessage(err)}\n`);
    return DIFF_EXIT.error;
  }
  if (opts.output === "json") io.stdout(JSON.stringify({ policies: results }, null, 2) + "\n");
  else if (opts.output === "yaml") io.stdout(stringify({ policies: results }, { lineWidth: 0 }));
  else
    for (const r of results) {
      for (const c of r.changes) io.stdout(c.diff);
      for (const key of r.prunes) io.stdout(`prune ${key} (policy ${r.policy})\n`);
      if (r.impact.length > 0) {
        io.stdout(`traffic no NetworkPolicy would allow any more (policy ${r.policy}):\n`);
        for (const i of r.impact) io.stdout(`  ${describeImpact(i)}\n`);
      }
    }
  for (const r of results) for (const f of r.failures) io.stderr(`policy ${r.policy}: ${f}\n`);
  // A plan with failures (InvalidSpec, Roles not grantable) gates like a change, as render exits 1 on it:
  // the controller would report the policy not Ready, so CI must not read "no change".
  const failed = results.some((r) => r.failures.length > 0);
  const changed = results.some((r) => r.changes.length > 0 || r.prunes.length > 0);
  return changed || failed ? DIFF_EXIT.changed : DIFF_EXIT.same;
}

async function run(make: (io: CommandIO) => Command, argv: string[], io: CommandIO): Promise<number> {
  let code = 0;
  const cmd = make({ ...io, setExitCode: (c) => (code = c) }).exitOverride();
  try {
    await cmd.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  return code;
}

/** Runs `render` with these arguments (without the command's name); returns its exit code. */
export function runRender(argv: string[], io: CommandIO): Promise<number> {
  return run(renderCommand, argv, io);
}

/** Runs `diff` with these arguments (without the command's name); returns its exit code. */
export function runDiff(argv: string[], io: CommandIO): Promise<number> {
  return run(diffCommand, argv, io);
}
