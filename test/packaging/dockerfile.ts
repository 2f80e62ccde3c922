/**
 * Reads the repository's Dockerfile and reproduces its stages' file sets in temp directories, without a
 * container engine: each stage gets a directory standing for its `/`; COPY copies from the build context
 * (honouring .dockerignore) or from an earlier stage's directory; the few RUN commands the Dockerfile uses
 * are run for real (tsc, `npm ci --omit=dev`) or stood in for (`npm ci` of the dev tree: the checkout's own
 * node_modules, installed from the same lockfile; `rm -rf` of base-image files: nothing to remove here).
 * Anything else — an instruction, a COPY form or a RUN command this reader does not know — throws, so a
 * Dockerfile change this reproduction cannot follow fails the tests instead of passing unseen.
 */
import { execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));

export interface Instruction {
  readonly keyword: string;
  readonly rest: string;
  readonly line: number;
}

export interface Stage {
  readonly from: string;
  readonly name?: string;
  readonly instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: Record<string, string>;
  readonly stages: Stage[];
}

/** Splits a Dockerfile into instructions: continuation lines joined, comments dropped. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  text.split("\n").forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith("#") || (trimmed === "" && pending === undefined)) return;
    const continued = trimmed.endsWith("\\");
    const piece = continued ? trimmed.slice(0, -1).trim() : trimmed;
    pending = pending
      ? { text: `${pending.text} ${piece}`, line: pending.line }
      : { text: piece, line: i + 1 };
    if (!continued) {
      const m = /^(\S+)\s*(.*)$/.exec(pending.text);
      if (m) instructions.push({ keyword: m[1]!.toUpperCase(), rest: m[2]!, line: pending.line });
      pending = undefined;
    }
  });
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === "FROM") {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.rest);
      if (!m) throw new Error(`Dockerfile:${ins.line}: cannot read FROM ${ins.rest}`);
      stages.push({ from: substitute(m[1]!, globalArgs), ...(m[2] ? { name: m[2] } : {}), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== "ARG") throw new Error(`Dockerfile:${ins.line}: ${ins.keyword} before FROM`);
      const [name, value = ""] = splitAssignment(ins.rest);
      globalArgs[name] = value;
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

function splitAssignment(s: string): [string, string | undefined] {
  const eq = s.indexOf("=");
  return eq < 0 ? [s.trim(), undefined] : [s.slice(0, eq).trim(), unquote(s.slice(eq + 1).trim())];
}

function unquote(s: string): string {
  return /^"(.*)"$/.test(s) ? s.slice(1, -1) : s;
}

function substitute(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => {
    const v = vars[(a ?? b)!];
    if (v === undefined) throw new Error(`Dockerfile: ${whole} is not set`);
    return v;
  });
}

/** `key="value with spaces" key2=value2` (LABEL, ENV). */
export function parsePairs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S+)/g)) out[m[1]!] = unquote(m[2]!);
  return out;
}

/** A .dockerignore of the form this repository uses: `*`, then `!name` exceptions (top-level names). */
export function dockerIgnore(text: string): (path: string) => boolean {
  const rules = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, "");
      if (pattern !== "*" && /[*?[\]]/.test(pattern))
        throw new Error(`.dockerignore pattern ${l}: this test reads only "*" and plain paths`);
      return { negate, pattern };
    });
  return (path) => {
    let ignored = false;
    for (const r of rules) {
      const hit = r.pattern === "*" || path === r.pattern || path.startsWith(`${r.pattern}/`);
      if (hit) ignored = !r.negate;
    }
    return ignored;
  };
}

/** A stage reproduced in a directory standing for its `/`. */
export interface BuiltStage {
  readonly name?: string;
  readonly from: string;
  readonly root: string;
  readonly workdir: string;
  readonly env: Record<string, string>;
  readonly labels: Record<string, string>;
  readonly args: Record<string, string>;
  readonly user?: string;
  readonly entrypoint?: string[];
  readonly cmd?: string[];
  /** Container paths the stage writes (COPY destinations and WORKDIRs). */
  readonly written: string[];
}

/** Where a container path of `stage` is on this machine. */
export function hostPath(stage: BuiltStage, containerPath: string): string {
  return join(stage.root, posix.resolve(stage.workdir, containerPath));
}

function run(cmd: string, args: string[], cwd: string): void {
  try {
    execFileSync(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(
      `${cmd} ${args.join(" ")} (in ${cwd}) failed: ${err.stderr || err.stdout || err.message}`,
      { cause: e },
    );
  }
}

/** Reproduces every stage of the repository's Dockerfile under a new temp dir; returns them in order. */
export function buildStages(repo = REPO): BuiltStage[] {
  const df = parseDockerfile(readFileSync(join(repo, "Dockerfile"), "utf8"));
  const ignoreFile = join(repo, ".dockerignore");
  const ignored = dockerIgnore(existsSync(ignoreFile) ? readFileSync(ignoreFile, "utf8") : "");
  const top = mkdtempSync(join(tmpdir(), "csp-image-"));
  // Shared by the packaging tests of this process, removed when it ends (CSP_KEEP_STATE=1 keeps it).
  if (!process.env["CSP_KEEP_STATE"])
    process.once("exit", () => rmSync(top, { recursive: true, force: true }));
  const built: BuiltStage[] = [];
  df.stages.forEach((s, i) => {
    const stage = {
      ...(s.name ? { name: s.name } : {}),
      from: s.from,
      root: join(top, s.name ?? `stage-${i}`),
      workdir: "/",
      env: {},
      labels: {},
      args: { ...df.globalArgs },
      written: [],
    } as { -readonly [K in keyof BuiltStage]: BuiltStage[K] };
    mkdirSync(stage.root, { recursive: true });
    for (const ins of s.instructions) {
      const where = `Dockerfile:${ins.line}`;
      const text = substitute(ins.rest, { ...stage.args, ...stage.env });
      switch (ins.keyword) {
        case "ARG": {
          const [name, value] = splitAssignment(ins.rest);
          stage.args[name] = value ?? df.globalArgs[name] ?? "";
          break;
        }
        case "LABEL":
          Object.assign(stage.labels, parsePairs(text));
          break;
        case "ENV":
          Object.assign(stage.env, parsePairs(text));
          break;
        case "WORKDIR":
          stage.workdir = posix.resolve(stage.workdir, text);
          mkdirSync(hostPath(stage, "."), { recursive: true });
          stage.written.push(stage.workdir);
          break;
        case "USER":
          stage.user = text;
          break;
        case "ENTRYPOINT":
        case "CMD": {
          const exec = JSON.parse(ins.rest) as unknown;
          if (!Array.isArray(exec) || !exec.every((x) => typeof x === "string"))
            throw new Error(`${where}: ${ins.keyword} must be in exec form (a JSON array of strings)`);
          if (ins.keyword === "ENTRYPOINT") stage.entrypoint = exec;
          else stage.cmd = exec;
          break;
        }
        case "COPY":
          copy(stage, text, where, built, repo, ignored);
          break;
        case "RUN":
          runStep(stage, text, where, repo);
          break;
        default:
          throw new Error(`${where}: this test does not reproduce ${ins.keyword}`);
      }
    }
    built.push(stage);
  });
  return built;
}

function copy(
  stage: BuiltStage & { written: string[] },
  text: string,
  where: string,
  built: BuiltStage[],
  repo: string,
  ignored: (p: string) => boolean,
): void {
  const words = text.split(/\s+/);
  let from: BuiltStage | undefined;
  while (words[0]?.startsWith("--")) {
    const flag = words.shift()!;
    const m = /^--from=(.+)$/.exec(flag);
    if (!m) throw new Error(`${where}: COPY ${flag} is not reproduced by this test`);
    from = built.find((b) => b.name === m[1]);
    if (!from) throw new Error(`${where}: COPY --from=${m[1]}: no earlier stage of that name`);
  }
  const dest = words.pop();
  if (dest === undefined || words.length === 0)
    throw new Error(`${where}: COPY needs a source and a destination`);
  const destPath = posix.resolve(stage.workdir, dest);
  const intoDir = dest.endsWith("/") || words.length > 1;
  for (const src of words) {
    if (/[*?[]/.test(src)) throw new Error(`${where}: COPY with a wildcard is not reproduced by this test`);
    let source: string;
    if (from) {
      source = hostPath(from, src);
    } else {
      const rel = posix.normalize(src).replace(/^\/+/, "");
      if (rel.startsWith("..")) throw new Error(`${where}: ${src} is outside the build context`);
      if (ignored(rel))
        throw new Error(`${where}: COPY ${src}: excluded from the build context by .dockerignore`);
      source = join(repo, rel);
    }
    if (!existsSync(source))
      throw new Error(
        `${where}: COPY ${src}: no such file in the ${from ? `stage ${from.name}` : "build context"}`,
      );
    const target = intoDir ? posix.join(destPath, posix.basename(src)) : destPath;
    const targetHost = join(stage.root, target);
    mkdirSync(dirname(targetHost), { recursive: true });
    cpSync(source, targetHost, {
      recursive: true,
      dereference: true,
      filter: (p) => from !== undefined || !ignored(posix.relative(repo, p)),
    });
    stage.written.push(target);
  }
}

function runStep(stage: BuiltStage, text: string, where: string, repo: string): void {
  const cwd = hostPath(stage, ".");
  const words = text.split(/\s+/);
  const [cmd, sub, ...flags] = words;
  if (cmd === "npm" && sub === "ci") {
    const known = ["--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev"];
    const unknown = flags.filter((f) => !known.includes(f));
    if (unknown.length > 0)
      throw new Error(`${where}: npm ci ${unknown.join(" ")} is not reproduced by this test`);
    if (!flags.includes("--ignore-scripts"))
      throw new Error(`${where}: npm ci without --ignore-scripts would run the project's prepare build here`);
    if (
      readFileSync(join(cwd, "package-lock.json"), "utf8") !==
      readFileSync(join(repo, "package-lock.json"), "utf8")
    )
      throw new Error(`${where}: npm ci needs the repository's package-lock.json in ${stage.workdir}`);
    if (flags.includes("--omit=dev")) {
      // For real, from the npm cache the checkout's `npm ci` filled (the registry only for what it lacks).
      run("npm", ["ci", ...flags, "--prefer-offline", "--loglevel=error"], cwd);
    } else {
      // The full tree from the same lockfile is the checkout's node_modules.
      symlinkSync(join(repo, "node_modules"), join(cwd, "node_modules"), "dir");
    }
    return;
  }
  if (cmd === "node" && sub === "node_modules/typescript/bin/tsc") {
    run(process.execPath, [join(cwd, sub), ...flags], cwd);
    return;
  }
  if (cmd === "rm" && sub === "-rf") {
    const inside = flags.filter(
      (p) =>
        !p.startsWith("/") ||
        stage.written.some((w) => p === w || p.startsWith(`${w}/`) || w.startsWith(`${p}/`)),
    );
    if (inside.length > 0)
      throw new Error(
        `${where}: rm -rf ${inside.join(" ")}: only base-image files (absolute paths) are reproduced`,
      );
    return; // base-image files: not in this reproduction
  }
  throw new Error(`${where}: RUN ${text} is not reproduced by this test`);
}

/** Every file (and symlink) under `dir`, as sorted relative paths, for "what is in the image" assertions. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => !d.isDirectory())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

let memo: BuiltStage[] | undefined;

/** {@link buildStages}, once per test process (the pack test reuses the compiled output). */
export function imageStages(): BuiltStage[] {
  memo ??= buildStages();
  return memo;
}
