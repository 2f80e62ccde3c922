/**
 * `csp-operator validate`: ClusterSecurityPolicy manifests checked offline against the rules the API server
 * runs at admission (the generated CRD's OpenAPI schema and CEL rules) plus the operator's own InvalidSpec
 * checks, for CI and pre-commit hooks. Exit codes: 0 every policy is valid, 1 at least one is invalid,
 * 2 nothing could be judged (bad usage, unreadable file, CRD not found).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { stringify } from "yaml";
import { decodeInput, where as whereIs } from "./manifests.js";
import { loadValidator, type DocumentResult } from "./validate.js";

/** The exit codes of `validate`. */
export const VALIDATE_EXIT = { valid: 0, invalid: 1, error: 2 } as const;

/** Where a command reads and writes; injected so the top-level CLI and tests decide. */
export interface CommandIO {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** The whole of standard input, for `-f -`. */
  readonly readStdin: () => Promise<string>;
  /** Receives the command's exit code once it has run (the top-level CLI sets process.exitCode from it). */
  readonly setExitCode: (code: number) => void;
}

/** The process's own streams. */
export function processIO(): CommandIO {
  return {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return decodeInput(Buffer.concat(chunks));
    },
    setExitCode: (code) => {
      process.exitCode = code;
    },
  };
}

interface ValidateOptions {
  filename: string[];
  output: "text" | "yaml" | "json";
  recursive: boolean;
  crd?: string;
}

/** `validate` as a commander Command, to be mounted by the top-level CLI (`program.addCommand(...)`). */
export function validateCommand(io: CommandIO = processIO()): Command {
  return new Command("validate")
    .description(
      "Validate ClusterSecurityPolicy manifests offline: the CRD's OpenAPI schema and CEL rules (the ones the " +
        "API server runs, read from the generated CRD) and the operator's InvalidSpec checks.\n" +
        "Exit 0: all valid; 1: at least one invalid; 2: nothing could be judged.",
    )
    .requiredOption(
      "-f, --filename <file...>",
      "manifest files or directories (*.yaml, *.yml, *.json); '-' reads standard input",
    )
    .addOption(
      new Option("-o, --output <format>", "output format").choices(["text", "yaml", "json"]).default("text"),
    )
    .option("-R, --recursive", "descend into subdirectories of directories given with -f", false)
    .option(
      "--crd <file>",
      "the CRD to validate against (default: the generated crds/ file shipped with the operator)",
    )
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .action(async (opts: ValidateOptions) => {
      io.setExitCode(await validate(opts, io));
    });
}

async function validate(opts: ValidateOptions, io: CommandIO): Promise<number> {
  let results: DocumentResult[];
  try {
    const validator = loadValidator(opts.crd);
    results = [];
    for (const input of expandInputs(opts.filename, opts.recursive)) {
      let text: string;
      try {
        text = input === "-" ? await io.readStdin() : decodeInput(readFileSync(input));
      } catch (err) {
        // Bytes that are not text (NUL, bad UTF-8), or too large: this input is invalid, the others are judged.
        const message = `invalid input: ${err instanceof Error ? err.message : String(err)}`;
        if ((err as NodeJS.ErrnoException).code !== undefined) throw err; // unreadable: exit 2
        results.push({
          file: input,
          document: 0,
          result: "invalid",
          errors: [{ field: "", reason: "FieldValueInvalid", message, source: "schema" }],
        });
        continue;
      }
      results.push(...validator.validateText(input, text));
    }
  } catch (err) {
    io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    return VALIDATE_EXIT.error;
  }
  const invalid = results.filter((r) => r.result === "invalid").length;
  const valid = results.filter((r) => r.result === "valid").length;
  if (opts.output === "json") io.stdout(JSON.stringify({ valid: invalid === 0, results }, null, 2) + "\n");
  else if (opts.output === "yaml") io.stdout(stringify({ valid: invalid === 0, results }));
  else {
    for (const r of results) io.stdout(textLine(r));
    io.stderr(`${valid} valid, ${invalid} invalid, ${results.length - valid - invalid} skipped\n`);
  }
  return invalid > 0 ? VALIDATE_EXIT.invalid : VALIDATE_EXIT.valid;
}

function textLine(r: DocumentResult): string {
  const where = whereIs(r.file, r);
  const what = `${r.kind ?? "<no kind>"}/${r.name ?? "<no name>"}`;
  if (r.result === "skipped") return `${where}: ${what} skipped (not a ClusterSecurityPolicy)\n`;
  if (r.result === "valid") return `${where}: ${what} is valid\n`;
  return `${where}: ${what} is invalid:\n${r.errors.map((e) => `  * ${e.message}\n`).join("")}`;
}

const MANIFEST = /\.(ya?ml|json)$/;

/** Files in command-line order; a directory contributes its manifests sorted by name. */
function expandInputs(inputs: string[], recursive: boolean): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (recursive) walk(p);
      } else if (MANIFEST.test(entry.name)) out.push(p);
    }
  };
  for (const input of inputs) {
    if (input !== "-" && statSync(input).isDirectory()) walk(input);
    else out.push(input);
  }
  return out;
}

/**
 * Runs `validate` with these arguments (without the command's own name) and returns its exit code; for
 * tests and for a CLI that does not use commander.
 */
export async function runValidate(argv: string[], io: CommandIO): Promise<number> {
  let code: number = VALIDATE_EXIT.valid;
  const cmd = validateCommand({ ...io, setExitCode: (c) => (code = c) }).exitOverride();
  try {
    await cmd.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : VALIDATE_EXIT.error;
    throw err;
  }
  return code;
}
