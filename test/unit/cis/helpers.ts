// Test helpers for the CIS checks: build inputs from literal argv and in-memory files, run one check.
import { APISERVER_CHECKS } from "../../../src/cis/checks/apiserver.js";
import type { CheckOutcome, CisCheck } from "../../../src/cis/checks/check.js";
import type { ArgInput } from "../../../src/cis/parse/flags.js";
import { parseFlags } from "../../../src/cis/parse/flags.js";
import type {
  ApiServerInputs,
  FileResult,
  HostReader,
  KubeletInputs,
} from "../../../src/cis/gather/inputs.js";
import { gatherKubeletInputs } from "../../../src/cis/gather/inputs.js";
import { APISERVER_GRAMMAR } from "../../../src/cis/parse/grammars.js";
import { KUBELET_CHECKS } from "../../../src/cis/checks/kubelet.js";
import { splitCommandLine, stringFlag } from "../../../src/cis/parse/flags.js";

/** API server inputs from argv; `files` maps a flag name to file content, or to null for "unreadable". */
export function api(argv: readonly ArgInput[], files: Record<string, string | null> = {}): ApiServerInputs {
  const flags = parseFlags(argv, APISERVER_GRAMMAR);
  const out: Record<string, FileResult> = {};
  for (const [flag, text] of Object.entries(files)) {
    const named = stringFlag(flags, flag);
    const path = named.ok && named.value !== "" ? named.value : `/etc/kubernetes/${flag}.yaml`;
    out[flag] =
      text === null
        ? { ok: false, path, hostPath: path, reason: `cannot read ${path}: ENOENT` }
        : { ok: true, path, hostPath: path, text };
  }
  return { source: "test", pod: { name: "kube-apiserver", namespace: "kube-system" }, flags, files: out };
}

function find<I>(checks: readonly CisCheck<I>[], id: string): CisCheck<I> {
  const c = checks.find((x) => x.id === id);
  if (c === undefined) throw new Error(`no check ${id}`);
  return c;
}

/** Evaluates one API server check. */
export function apiCheck(
  id: string,
  argv: readonly ArgInput[],
  files: Record<string, string | null> = {},
): CheckOutcome {
  return find(APISERVER_CHECKS, id).evaluate(api(argv, files));
}

/** An in-memory host: path -> content; a missing path rejects like ENOENT. */
export function memoryReader(files: Record<string, string>): HostReader {
  return {
    readFile: (p) => {
      const t = files[p];
      return t === undefined ? Promise.reject(new Error(`ENOENT: no such file ${p}`)) : Promise.resolve(t);
    },
    listFiles: (dir) => {
      const prefix = dir.endsWith("/") ? dir : `${dir}/`;
      const names = Object.keys(files)
        .filter((p) => p.startsWith(prefix))
        .map((p) => p.slice(prefix.length));
      return names.length === 0
        ? Promise.reject(new Error(`ENOENT: no such directory ${dir}`))
        : Promise.resolve(names);
    },
  };
}

/** The kubelet config file used by {@link kubelet} when its flags say `--config=/var/lib/kubelet/config.yaml`. */
export const KUBELET_CONFIG_PATH = "/var/lib/kubelet/config.yaml";

/** A KubeletConfiguration document with the given body lines. */
export function kubeletConfig(body: string): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n${body}`;
}

/** Kubelet inputs from a command line and host files. */
export function kubelet(line: string, files: Record<string, string> = {}): Promise<KubeletInputs> {
  return gatherKubeletInputs({ argv: splitCommandLine(line), source: "test" }, memoryReader(files));
}

/** Evaluates one kubelet check; `config` (if given) is the file at {@link KUBELET_CONFIG_PATH}. */
export async function kubeletCheck(
  id: string,
  line: string,
  config?: string,
  extra: Record<string, string> = {},
): Promise<CheckOutcome> {
  const files = config === undefined ? extra : { [KUBELET_CONFIG_PATH]: config, ...extra };
  return find(KUBELET_CHECKS, id).evaluate(await kubelet(line, files));
}

/** A kubelet command line that loads the config file. */
export const WITH_CONFIG = `--config=${KUBELET_CONFIG_PATH} --kubeconfig=/etc/kubernetes/kubelet.conf`;
