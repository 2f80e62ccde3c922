/**
 * Command-line parsing the way Kubernetes components parse it (spf13/pflag behind cobra, with
 * component-base's `_` -> `-` name normalisation), so CIS checks judge the setting the component actually
 * runs with instead of pattern-matching argv text:
 *
 * - `--flag=value` and `--flag value` are the same, except for boolean flags: pflag gives those a
 *   "no-option default" of `true`, so a bare `--anonymous-auth` is true and the NEXT item is NOT consumed
 *   (`--anonymous-auth false` means true plus a stray positional argument, which the component rejects).
 * - A non-boolean flag without `=` consumes the next item whatever it is, even one starting with `--`.
 * - Scalars given twice: the last value wins. String slices (`--authorization-mode`,
 *   `--enable-admission-plugins`, `--tls-cipher-suites`, ...) are CSV-split and APPEND across occurrences,
 *   the first occurrence replacing the default. String arrays append without splitting. Bool maps
 *   (`--feature-gates` on the kubelet) merge key by key.
 * - Values are converted with Go's rules: strconv.ParseBool, strconv.ParseInt(s, 0, bits) (so `030` is
 *   octal 24 and `0x1e` is 30), time.ParseDuration. An occurrence that does not convert makes the component
 *   refuse to start, so the setting is reported as not determinable rather than guessed.
 */

/** What pflag needs to know to split argv into flags: which flags take no separate value. */
export interface FlagGrammar {
  /** Component name used in evidence, e.g. `kube-apiserver`. */
  readonly component: string;
  /** Boolean flags (pflag NoOptDefVal "true"): bare means true; a following item is never consumed. */
  readonly boolFlags: ReadonlySet<string>;
  /** Non-boolean flags that also have a no-option default (`--version`), so they never consume an item. */
  readonly optionalValueFlags: ReadonlySet<string>;
  /** Single-letter shorthands to their long names (`v` -> `v`, `h` -> `help`). */
  readonly shorthands: Readonly<Record<string, string>>;
  /**
   * `go`: Go's standard `flag` package (etcd): `-name` and `--name` are the same flag, there are no
   * shorthands, `_` is not read as `-`, and parsing stops at the first non-flag argument. Default `pflag`.
   */
  readonly style?: "pflag" | "go";
}

/**
 * One argv item. `unresolved` is set when the item referenced something only known at run time (a
 * container env var from `valueFrom`), so any flag value taken from it cannot be judged offline.
 */
export interface ArgItem {
  readonly text: string;
  readonly unresolved?: string;
  /** Where the item came from when not the command line itself (e.g. `env ETCD_CLIENT_CERT_AUTH`), for evidence. */
  readonly via?: string;
}

/** An argv item: plain text or an {@link ArgItem}. */
export type ArgInput = string | ArgItem;

/** One appearance of a flag on the command line, after name normalisation. */
export interface FlagOccurrence {
  /** Normalised long name without dashes (`anonymous-auth`). */
  readonly name: string;
  readonly value: string;
  /** `inline` for `--f=v`, `separate` for `--f v`, `bare` for a value-less boolean `--f`. */
  readonly form: "inline" | "separate" | "bare";
  /** Position of the flag item in the argv given to {@link parseFlags}. */
  readonly index: number;
  /** Why the value cannot be known offline, when it came from an unresolved item. */
  readonly unresolved?: string;
  /** Where the occurrence came from when not the command line (see {@link ArgItem.via}). */
  readonly via?: string;
}

/** The outcome of parsing one component's argv. */
export interface ParsedFlags {
  readonly grammar: FlagGrammar;
  readonly occurrences: readonly FlagOccurrence[];
  /** Non-flag items, with their argv position. The components treat these as errors. */
  readonly positional: readonly { readonly text: string; readonly index: number }[];
  /** Syntax errors pflag would stop on (missing value, `---x`, unknown shorthand). */
  readonly errors: readonly string[];
  /**
   * Set when an item only known at run time may itself be one or more flags (`$(B)` from a valueFrom env
   * var, `--$(NAME)=x`): then no flag's effective value can be known offline, and every lookup says so.
   */
  readonly opaque?: string;
}

/**
 * The effective value of a setting and where it came from (`source` is shown to users as evidence), or the
 * reason it cannot be determined. `explicit` is false when the value is a default.
 */
export type Effective<T> =
  | { readonly ok: true; readonly value: T; readonly explicit: boolean; readonly source: string }
  | { readonly ok: false; readonly reason: string };

/** component-base's WordSepNormalizeFunc: `_` in flag names is read as `-`. */
export function normalizeFlagName(name: string): string {
  return name.replaceAll("_", "-");
}

function itemOf(a: ArgInput): ArgItem {
  return typeof a === "string" ? { text: a } : a;
}

/**
 * Splits argv into flag occurrences exactly like pflag's parseArgs (interspersed positionals allowed, `--`
 * ends flag parsing). Unknown flags are treated as value-taking, which is what pflag does for every known
 * non-boolean flag; a flag unknown to the component would make it refuse to start anyway.
 */
export function parseFlags(argv: readonly ArgInput[], grammar: FlagGrammar): ParsedFlags {
  const occurrences: FlagOccurrence[] = [];
  const positional: { text: string; index: number }[] = [];
  const errors: string[] = [];
  const items = argv.map(itemOf);
  let opaque: string | undefined;
  let i = 0;
  const go = grammar.style === "go";
  const takesNoValue = (name: string) => grammar.boolFlags.has(name) || grammar.optionalValueFlags.has(name);
  const push = (
    name: string,
    value: string,
    form: FlagOccurrence["form"],
    index: number,
    ...from: ArgItem[]
  ) => {
    const unresolved = from.find((f) => f.unresolved !== undefined)?.unresolved;
    const via = from.find((f) => f.via !== undefined)?.via;
    occurrences.push({
      name,
      value,
      form,
      index,
      ...(unresolved === undefined ? {} : { unresolved }),
      ...(via === undefined ? {} : { via }),
    });
  };
  while (i < items.length) {
    const index = i;
    const item = items[i++] as ArgItem;
    const s = item.text;
    if (item.unresolved !== undefined && (!s.startsWith("-") || /^-+[^=]*\$\(/.test(s))) {
      // What it expands to at run time could be any flag (or several words): nothing is known offline.
      opaque ??= `argument ${index} (${s}) cannot be evaluated offline and may set any flag: ${item.unresolved}`;
      continue;
    }
    if (s.length <= 1 || !s.startsWith("-")) {
      positional.push({ text: s, index });
      if (go) for (; i < items.length; i++) positional.push({ text: (items[i] as ArgItem).text, index: i });
      continue;
    }
    if (s.startsWith("--") || go) {
      if (s === "--") {
        for (; i < items.length; i++) positional.push({ text: (items[i] as ArgItem).text, index: i });
        break;
      }
      const body = s.slice(s.startsWith("--") ? 2 : 1);
      if (body.startsWith("-") || body.startsWith("=")) {
        errors.push(`bad flag syntax: ${s}`);
        continue;
      }
      const eq = body.indexOf("=");
      const raw = eq >= 0 ? body.slice(0, eq) : body;
      const name = go ? raw : normalizeFlagName(raw);
      if (eq >= 0) push(name, body.slice(eq + 1), "inline", index, item);
      else if (takesNoValue(name)) push(name, "true", "bare", index, item);
      else if (i < items.length) {
        const next = items[i++] as ArgItem;
        push(name, next.text, "separate", index, item, next);
      } else errors.push(`flag needs an argument: --${name}`);
      continue;
    }
    // Shorthand: -v=2, -v2, -v 2, -h.
    const letter = s.charAt(1);
    const long = grammar.shorthands[letter];
    if (long === undefined) {
      errors.push(`unknown shorthand flag: '${letter}' in ${s}`);
      continue;
    }
    if (s.charAt(2) === "=") push(long, s.slice(3), "inline", index, item);
    else if (takesNoValue(long)) push(long, "true", "bare", index, item);
    else if (s.length > 2) push(long, s.slice(2), "inline", index, item);
    else if (i < items.length) {
      const next = items[i++] as ArgItem;
      push(long, next.text, "separate", index, item, next);
    } else errors.push(`flag needs an argument: -${letter}`);
  }
  return { grammar, occurrences, positional, errors, ...(opaque === undefined ? {} : { opaque }) };
}

/** All occurrences of a flag (by normalised name), in argv order. */
export function occurrencesOf(flags: ParsedFlags, name: string): FlagOccurrence[] {
  return flags.occurrences.filter((o) => o.name === name);
}

/** True when the flag appears at all (even with an empty value). */
export function isFlagSet(flags: ParsedFlags, name: string): boolean {
  return flags.occurrences.some((o) => o.name === name);
}

/** How an occurrence was written, for evidence: `--f=v`, `--f v` or `--f`. */
export function describeOccurrence(o: FlagOccurrence): string {
  const text =
    o.form === "inline"
      ? `--${o.name}=${o.value}`
      : o.form === "separate"
        ? `--${o.name} ${o.value}`
        : `--${o.name}`;
  return o.via === undefined ? text : `${text} (from ${o.via})`;
}

/**
 * Evidence text for a last-wins scalar: the winning occurrence, plus the overridden ones when the flag was
 * given more than once (the trap that regex-based audits fall into).
 */
function scalarSource(all: readonly FlagOccurrence[], flags: ParsedFlags): string {
  const last = all[all.length - 1] as FlagOccurrence;
  let text = describeOccurrence(last);
  if (last.form === "bare") {
    const next = flags.positional.find((p) => p.index === last.index + 1);
    if (next !== undefined && parseGoBool(next.text) !== undefined) {
      text += ` (a boolean flag takes no separate value: "${next.text}" after it is a stray argument that ${flags.grammar.component} rejects, and the flag itself means true)`;
    }
  }
  if (all.length > 1) {
    const earlier = all.slice(0, -1).map(describeOccurrence).join(", ");
    text += ` (given ${all.length} times; the last one wins over ${earlier})`;
  }
  return text;
}

function unresolvedReason(all: readonly FlagOccurrence[]): string | undefined {
  const u = all.find((o) => o.unresolved !== undefined);
  return u === undefined ? undefined : `--${u.name} cannot be evaluated offline: ${u.unresolved}`;
}

/**
 * A scalar flag converted with `convert` (last occurrence wins). Every occurrence must convert, because
 * pflag stops at the first bad value; `fallback` describes the component default when the flag is absent.
 */
export function scalarFlag<T>(
  flags: ParsedFlags,
  name: string,
  convert: (raw: string) => T | undefined,
  expected: string,
  fallback: { value: T; note: string },
): Effective<T> {
  if (flags.opaque !== undefined) return { ok: false, reason: flags.opaque };
  const all = occurrencesOf(flags, name);
  if (all.length === 0) return { ok: true, value: fallback.value, explicit: false, source: fallback.note };
  const last = all[all.length - 1] as FlagOccurrence;
  if (last.unresolved !== undefined) return { ok: false, reason: unresolvedReason([last]) as string };
  for (const o of all) {
    if (o.unresolved === undefined && convert(o.value) === undefined) {
      return {
        ok: false,
        reason: `${describeOccurrence(o)} is not a valid ${expected}; ${flags.grammar.component} refuses to start with it`,
      };
    }
  }
  return { ok: true, value: convert(last.value) as T, explicit: true, source: scalarSource(all, flags) };
}

/** A boolean flag (Go strconv.ParseBool), last occurrence wins. */
export function boolFlag(
  flags: ParsedFlags,
  name: string,
  fallback: boolean,
  note?: string,
): Effective<boolean> {
  return scalarFlag(
    flags,
    name,
    parseGoBool,
    "boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False)",
    {
      value: fallback,
      note: note ?? `--${name} is not set; the ${flags.grammar.component} default is ${fallback}`,
    },
  );
}

/** A string flag, last occurrence wins. Absent means `fallback` (usually ""). */
export function stringFlag(
  flags: ParsedFlags,
  name: string,
  fallback = "",
  note?: string,
): Effective<string> {
  return scalarFlag(flags, name, (s) => s, "string", {
    value: fallback,
    note:
      note ??
      (fallback === ""
        ? `--${name} is not set`
        : `--${name} is not set; the ${flags.grammar.component} default is ${fallback}`),
  });
}

/** An integer flag parsed like pflag's Int/Int32/Int64 (strconv.ParseInt with base 0). */
export function intFlag(
  flags: ParsedFlags,
  name: string,
  bits: 32 | 64,
  fallback: number,
  note?: string,
): Effective<number> {
  const e = scalarFlag(flags, name, (s) => parseGoInt(s, bits), `${bits}-bit integer`, {
    value: fallback,
    note: note ?? `--${name} is not set; the ${flags.grammar.component} default is ${fallback}`,
  });
  const raw = occurrencesOf(flags, name).at(-1)?.value;
  // `030` is octal and `0x1e` hex for Go: say what the component reads.
  if (e.ok && e.explicit && raw !== String(e.value))
    return { ...e, source: `${e.source} (Go reads ${raw} as ${e.value})` };
  return e;
}

/** A duration flag parsed like time.ParseDuration; the value is in nanoseconds. */
export function durationFlag(
  flags: ParsedFlags,
  name: string,
  fallbackNs: number,
  note?: string,
): Effective<number> {
  return scalarFlag(flags, name, parseGoDuration, "duration (e.g. 5m, 300s)", {
    value: fallbackNs,
    note:
      note ?? `--${name} is not set; the ${flags.grammar.component} default is ${formatDuration(fallbackNs)}`,
  });
}

/**
 * A pflag string slice: each occurrence is CSV-split (encoding/csv, so quotes work and spaces are kept), the
 * first occurrence replaces the default and later ones append.
 */
export function listFlag(
  flags: ParsedFlags,
  name: string,
  fallback: readonly string[],
  note?: string,
): Effective<string[]> {
  if (flags.opaque !== undefined) return { ok: false, reason: flags.opaque };
  const all = occurrencesOf(flags, name);
  if (all.length === 0) {
    return {
      ok: true,
      value: [...fallback],
      explicit: false,
      source: note ?? `--${name} is not set; the default is [${fallback.join(",")}]`,
    };
  }
  const unresolved = unresolvedReason(all);
  if (unresolved !== undefined) return { ok: false, reason: unresolved };
  const value: string[] = [];
  for (const o of all) {
    const parts = parseGoCsvRecord(o.value);
    if (parts === undefined) {
      return {
        ok: false,
        reason: `${describeOccurrence(o)} is not a valid comma-separated list; ${flags.grammar.component} refuses to start with it`,
      };
    }
    value.push(...parts);
  }
  let source = all.map(describeOccurrence).join(" ");
  if (all.length > 1) source += ` (given ${all.length} times; the lists append)`;
  return { ok: true, value, explicit: true, source };
}

/** A pflag string array: every occurrence appends its whole value, no splitting. */
export function arrayFlag(flags: ParsedFlags, name: string): Effective<string[]> {
  if (flags.opaque !== undefined) return { ok: false, reason: flags.opaque };
  const all = occurrencesOf(flags, name);
  if (all.length === 0) return { ok: true, value: [], explicit: false, source: `--${name} is not set` };
  const unresolved = unresolvedReason(all);
  if (unresolved !== undefined) return { ok: false, reason: unresolved };
  return {
    ok: true,
    value: all.map((o) => o.value),
    explicit: true,
    source: all.map(describeOccurrence).join(" "),
  };
}

/**
 * component-base's MapStringBool (kubelet `--feature-gates`): comma-separated `key=bool` pairs, keys and
 * values trimmed, occurrences merge with later keys winning. Returns only what the flag sets.
 */
export function boolMapFlag(flags: ParsedFlags, name: string): Effective<Record<string, boolean>> {
  if (flags.opaque !== undefined) return { ok: false, reason: flags.opaque };
  const all = occurrencesOf(flags, name);
  const value: Record<string, boolean> = {};
  if (all.length === 0) return { ok: true, value, explicit: false, source: `--${name} is not set` };
  const unresolved = unresolvedReason(all);
  if (unresolved !== undefined) return { ok: false, reason: unresolved };
  for (const o of all) {
    for (const pair of o.value.split(",")) {
      if (pair.length === 0) continue;
      const eq = pair.indexOf("=");
      const b = eq < 0 ? undefined : parseGoBool(pair.slice(eq + 1).trim());
      if (b === undefined) {
        return {
          ok: false,
          reason: `${describeOccurrence(o)} has a malformed pair "${pair}" (expected key=bool); ${flags.grammar.component} refuses to start with it`,
        };
      }
      value[pair.slice(0, eq).trim()] = b;
    }
  }
  return { ok: true, value, explicit: true, source: all.map(describeOccurrence).join(" ") };
}

/** Go's strconv.ParseBool: exactly `1 t T TRUE true True` / `0 f F FALSE false False`, nothing else. */
export function parseGoBool(s: string): boolean | undefined {
  switch (s) {
    case "1":
    case "t":
    case "T":
    case "TRUE":
    case "true":
    case "True":
      return true;
    case "0":
    case "f":
    case "F":
    case "FALSE":
    case "false":
    case "False":
      return false;
    default:
      return undefined;
  }
}

// Go's strconv.underscoreOK: underscores only between digits (or after a base prefix).
function underscoreOK(s0: string): boolean {
  let s = s0;
  let saw = "^";
  let i = 0;
  if (s.startsWith("-") || s.startsWith("+")) s = s.slice(1);
  let hex = false;
  if (s.length >= 2 && s[0] === "0" && "box".includes((s[1] as string).toLowerCase())) {
    i = 2;
    saw = "0";
    hex = (s[1] as string).toLowerCase() === "x";
  }
  for (; i < s.length; i++) {
    const c = s[i] as string;
    const lc = c.toLowerCase();
    if ((c >= "0" && c <= "9") || (hex && lc >= "a" && lc <= "f")) {
      saw = "0";
      continue;
    }
    if (c === "_") {
      if (saw !== "0") return false;
      saw = "_";
      continue;
    }
    if (saw === "_") return false;
    saw = "!";
  }
  return saw !== "_";
}

/**
 * Go's strconv.ParseInt(s, 0, bits): optional sign, base from the prefix (`0x`, `0o`, `0b`, or a bare
 * leading `0` for octal), underscores between digits. Returns undefined where Go returns an error
 * (including out of range).
 */
export function parseGoInt(s0: string, bits: 32 | 64): number | undefined {
  if (s0.length === 0) return undefined;
  let s = s0;
  let neg = false;
  if (s[0] === "+" || s[0] === "-") {
    neg = s[0] === "-";
    s = s.slice(1);
    if (s.length === 0) return undefined;
  }
  let base = 10;
  if (s[0] === "0") {
    const p = (s[1] ?? "").toLowerCase();
    if (s.length >= 3 && (p === "b" || p === "o" || p === "x")) {
      base = p === "b" ? 2 : p === "o" ? 8 : 16;
      s = s.slice(2);
    } else {
      base = 8;
      s = s.slice(1);
    }
  }
  let n = 0n;
  let underscores = false;
  for (const c of s) {
    if (c === "_") {
      underscores = true;
      continue;
    }
    const d = parseInt(c, 36);
    if (Number.isNaN(d) || d >= base) return undefined;
    n = n * BigInt(base) + BigInt(d);
  }
  if (underscores && !underscoreOK(s0)) return undefined;
  const limit = 1n << BigInt(bits - 1);
  if (neg ? n > limit : n >= limit) return undefined;
  return Number(neg ? -n : n);
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  "\u00b5s": 1e3,
  "\u03bcs": 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/**
 * Go's time.ParseDuration (`300ms`, `1.5h`, `2h45m`, `0`; a unit is required except for `0`). Returns
 * nanoseconds (as a float: sub-nanosecond precision is irrelevant here), or undefined where Go errors.
 */
export function parseGoDuration(s0: string): number | undefined {
  let s = s0;
  let neg = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") return undefined;
  let total = 0;
  while (s !== "") {
    const m = /^(\d*)(?:\.(\d*))?/.exec(s) as RegExpExecArray;
    const whole = m[1] ?? "";
    const frac = m[2];
    if (whole === "" && (frac === undefined || frac === "")) return undefined;
    s = s.slice(m[0].length);
    const unitMatch = /^[^0-9.]+/.exec(s);
    if (unitMatch === null) return undefined;
    const unit = DURATION_UNITS[unitMatch[0]];
    if (unit === undefined) return undefined;
    s = s.slice(unitMatch[0].length);
    total += Number(`${whole === "" ? "0" : whole}.${frac ?? "0"}`) * unit;
  }
  if (total > 2 ** 63) return undefined;
  return neg ? -total : total;
}

/** A nanosecond duration in Go's style, enough for evidence (`4h0m0s`, `300ms`, `0s`). */
export function formatDuration(ns: number): string {
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  let rest = Math.abs(ns);
  if (rest < 1e9) return `${sign}${rest / 1e6}ms`;
  const h = Math.floor(rest / 3600e9);
  rest -= h * 3600e9;
  const m = Math.floor(rest / 60e9);
  rest -= m * 60e9;
  const sec = Math.round((rest / 1e9) * 1000) / 1000;
  return h > 0 ? `${sign}${h}h${m}m${sec}s` : m > 0 ? `${sign}${m}m${sec}s` : `${sign}${sec}s`;
}

/**
 * One record of Go's encoding/csv with default settings, as pflag's readAsCSV uses it: `""` is an empty
 * list, fields split on `,`, a field may be double-quoted (`""` escapes a quote), a quote inside an
 * unquoted field is an error, spaces are kept. Reading stops at the first newline outside quotes.
 */
export function parseGoCsvRecord(value: string): string[] | undefined {
  if (value === "") return [];
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = "";
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= value.length) return undefined;
        const c = value[i] as string;
        if (c === '"') {
          if (value[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += c;
        i++;
      }
      if (i < value.length && value[i] !== "," && value[i] !== "\n" && value[i] !== "\r") return undefined;
    } else {
      while (i < value.length && value[i] !== "," && value[i] !== "\n" && value[i] !== "\r") {
        if (value[i] === '"') return undefined;
        field += value[i];
        i++;
      }
    }
    out.push(field);
    if (i < value.length && value[i] === ",") {
      i++;
      continue;
    }
    return out;
  }
}

/**
 * Splits a command line given as one string (`--kubelet-flags "..."`) the way a POSIX shell would for
 * plain words: whitespace separates, single quotes are literal, double quotes allow `\"`, `\\`, `\$` and
 * `` \` `` escapes, a backslash outside quotes escapes the next character. Throws on an unterminated quote.
 */
export function splitCommandLine(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
      i++;
      continue;
    }
    inWord = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error("unterminated single quote");
      cur += line.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= line.length) throw new Error("unterminated double quote");
        const d = line[i] as string;
        if (d === '"') {
          i++;
          break;
        }
        if (d === "\\" && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1] as string)) {
          if (line[i + 1] !== "\n") cur += line[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        i++;
      }
    } else if (c === "\\") {
      if (i + 1 < line.length && line[i + 1] !== "\n") cur += line[i + 1];
      i += 2;
    } else {
      cur += c;
      i++;
    }
  }
  if (inWord) out.push(cur);
  return out;
}
