/**
 * Talos' own validation of machine configurations: tools/talos-validate (pkg/machinery's configloader and
 * ValidateAsClient in metal mode, strict, as `talosctl validate --mode metal --strict` does), built into the
 * tools cache by `npm run build:tools`. Many configurations go to one process, separated by NUL bytes.
 */
import { spawnSync } from "node:child_process";
import { toolBinary } from "../../tools/go-tools";
import { tier, type Tier } from "./tier";

/** One error or warning Talos reports about a configuration. */
export interface TalosFinding {
  severity: "error" | "warning";
  /** Document kind (`v1alpha1` for the legacy document); absent for a finding about the whole stream. */
  kind?: string;
  /** Document name, for named documents. */
  name?: string;
  message: string;
}

/** Talos' verdict on one configuration. */
export interface TalosVerdict {
  valid: boolean;
  /** Documents Talos loaded (0 when loading failed). */
  documents: number;
  findings: TalosFinding[];
}

export const TALOS_VALIDATE = toolBinary("talos-validate");

/** The tier of tests that need the validator; its prerequisite is built by `npm run build:tools`. */
export function talosValidatorTier(): Tier {
  return tier("talos-validator", { files: [TALOS_VALIDATE], hint: "build it with: npm run build:tools" });
}

/** Verdicts for `configs`, in order, from one validator run. */
export function talosValidate(configs: readonly string[]): TalosVerdict[] {
  for (const [i, c] of configs.entries()) if (c.includes("\0")) throw new Error(`configuration ${i} holds a NUL byte`);
  const r = spawnSync(TALOS_VALIDATE, ["-mode", "metal", "-0"], {
    input: configs.join("\0"),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    timeout: 300_000,
  });
  if (r.error) throw r.error;
  // 0: all valid, 1: some invalid; anything else is a usage or read error with the reason on stderr.
  if (r.status !== 0 && r.status !== 1) throw new Error(`talos-validate exited ${r.status}: ${r.stderr}`);
  const verdicts = new Map<string, TalosVerdict>();
  const pending = new Map<string, TalosFinding[]>();
  for (const line of r.stdout.split("\n").filter(Boolean)) {
    const o = JSON.parse(line) as Record<string, unknown> & { config: string };
    if (o.result !== undefined) {
      verdicts.set(o.config, {
        valid: o.result === "valid",
        documents: Number(o.documents),
        findings: pending.get(o.config) ?? [],
      });
      continue;
    }
    const f: TalosFinding = { severity: o.severity as TalosFinding["severity"], message: String(o.message) };
    if (o.kind) f.kind = String(o.kind);
    if (o.name) f.name = String(o.name);
    pending.set(o.config, [...(pending.get(o.config) ?? []), f]);
  }
  // The validator labels the n-th NUL-separated configuration "#n"; every one must have its verdict.
  return configs.map((_, i) => {
    const v = verdicts.get(`#${i}`);
    if (!v) throw new Error(`talos-validate gave no verdict for configuration ${i} (exit ${r.status}): ${r.stderr}`);
    if (v.valid !== !v.findings.some((f) => f.severity === "error"))
      throw new Error(`talos-validate's verdict on configuration ${i} contradicts its findings`);
    return v;
  });
}

/** One line per finding, as `severity Kind/name: message`, for assertion messages and comparisons. */
export function describeFindings(v: TalosVerdict): string[] {
  return v.findings.map((f) => `${f.severity} ${f.kind ?? "(stream)"}${f.name ? `/${f.name}` : ""}: ${f.message}`);
}
