/**
 * The fleet command's pure parts: its command line (every problem at once, each naming the flag and what is
 * allowed), which stacks a run selects, and the waves it runs them in (canaries first, then waves of at most
 * `concurrency` stacks). No Pulumi, no I/O.
 */
import { resolve } from "node:path";
import { durationSeconds } from "../../components/site/duration";

/** What the fleet does to each stack. */
export type FleetOp = "preview" | "up" | "drift";
export const FLEET_OPS: readonly FleetOp[] = ["preview", "up", "drift"];

export interface FleetOptions {
  op: FleetOp;
  /** Stack name globs in the order given (`*` any run of characters, `?` one); empty selects every stack. */
  stacks: string[];
  /** How many selected stacks run first, alone in their own wave. */
  canary: number;
  /** How many stacks run at the same time (and the size of each wave after the canaries). */
  concurrency: number;
  /** Seconds a stack may run before the fleet cancels it. */
  timeoutSeconds: number;
  /** Seconds between the escalating signals of a cancel (cancel, terminate, kill). */
  graceSeconds: number;
  /** The project directory (Pulumi.yaml). */
  dir: string;
  /** Installation root of the Pulumi CLI (`<root>/bin/pulumi`); undefined uses `pulumi` on PATH. */
  pulumiRoot?: string;
  /** Run the program in the fleet's own processes instead of the CLI's Node.js language host. */
  inline: boolean;
  /** Write the results as JSON to this file as well. */
  json?: string;
}

export const USAGE = `usage: npm run fleet -- preview|up|drift [--stacks GLOB[,GLOB…]] [--canary N] [--concurrency K]
       [--timeout DURATION] [--cancel-grace DURATION] [--dir PROJECT_DIR] [--pulumi-root DIR] [--inline]
       [--json FILE]`;

/** Default per-stack time limits by operation: an up waits for installs, health gates and try windows. */
const DEFAULT_TIMEOUT: Record<FleetOp, string> = { preview: "20m", up: "60m", drift: "20m" };

export class FleetUsageError extends Error {}

function count(flag: string, text: string | undefined, fallback: number, min: number, problems: string[]): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min) {
    problems.push(`${flag}: "${text}" is not a whole number ≥ ${min}`);
    return fallback;
  }
  return Number(text);
}

function duration(flag: string, text: string, problems: string[]): number {
  try {
    const s = durationSeconds(text);
    if (s > 0) return s;
  } catch {
    // reported below
  }
  problems.push(`${flag}: "${text}" is not a duration above zero (allowed: e.g. 90s, 20m, 1h30m)`);
  return 1;
}

/** Parsed flags of the command line (node:util parseArgs values). */
export interface RawFleetArgs {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

/** Validates the command line; throws FleetUsageError listing every problem. */
export function fleetOptions(raw: RawFleetArgs, cwd: string): FleetOptions {
  const problems: string[] = [];
  const [op, ...extra] = raw.positionals;
  if (!op) problems.push(`operation: missing (allowed: ${FLEET_OPS.join(", ")})`);
  else if (!FLEET_OPS.includes(op as FleetOp))
    problems.push(`operation: "${op}" is not one (allowed: ${FLEET_OPS.join(", ")})`);
  if (extra.length > 0) problems.push(`unexpected arguments: ${extra.join(" ")}`);
  const v = raw.values;
  const str = (k: string) => (typeof v[k] === "string" ? (v[k] as string) : undefined);
  const stacks = (str("stacks") ?? "")
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "");
  for (const g of stacks)
    if (!/^[A-Za-z0-9_.\-/*?]+$/.test(g))
      problems.push(
        `--stacks: "${g}" is not a stack name glob (allowed: letters, digits, _ . - / and the wildcards * ?)`,
      );
  const canary = count("--canary", str("canary"), 1, 0, problems);
  const concurrency = count("--concurrency", str("concurrency"), 4, 1, problems);
  const fleetOp = (FLEET_OPS.includes(op as FleetOp) ? op : "preview") as FleetOp;
  const timeoutSeconds = duration("--timeout", str("timeout") ?? DEFAULT_TIMEOUT[fleetOp], problems);
  const graceSeconds = duration("--cancel-grace", str("cancel-grace") ?? "60s", problems);
  if (problems.length > 0) throw new FleetUsageError([...problems.map((p) => `  - ${p}`), USAGE].join("\n"));
  return {
    op: fleetOp,
    stacks,
    canary,
    concurrency,
    timeoutSeconds,
    graceSeconds,
    dir: resolve(cwd, str("dir") ?? "."),
    pulumiRoot: str("pulumi-root") === undefined ? undefined : resolve(cwd, str("pulumi-root")!),
    inline: v.inline === true,
    json: str("json"),
  };
}

/** A glob over stack names as a regular expression: `*` any run of characters, `?` one character. */
export function globRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

/** The short name of a stack as backends list it (`org/project/name` → `name`). */
export function shortName(stack: string): string {
  return stack.split("/").at(-1)!;
}

export interface Selection {
  /** Stack names in run order: by the first glob each matches, then by name. */
  stacks: string[];
  /** Globs that matched no stack (a typo must not pass silently). */
  unmatched: string[];
}

/** Selects the backend's stacks the globs match (a glob matches a stack's full or short name). */
export function selectStacks(available: readonly string[], globs: readonly string[]): Selection {
  const sorted = [...new Set(available)].sort();
  if (globs.length === 0) return { stacks: sorted, unmatched: [] };
  const chosen: string[] = [];
  const unmatched: string[] = [];
  for (const glob of globs) {
    const re = globRegExp(glob);
    const hits = sorted.filter((s) => re.test(s) || re.test(shortName(s)));
    if (hits.length === 0) unmatched.push(glob);
    for (const s of hits) if (!chosen.includes(s)) chosen.push(s);
  }
  return { stacks: chosen, unmatched };
}

export interface Wave {
  /** 1-based wave number. */
  index: number;
  /** True for the canaries' wave. */
  canary: boolean;
  stacks: string[];
}

/** Canaries first (one wave), then the rest in waves of at most `concurrency` stacks, in selection order. */
export function planWaves(stacks: readonly string[], canary: number, concurrency: number): Wave[] {
  const waves: Wave[] = [];
  const canaries = stacks.slice(0, canary);
  if (canaries.length > 0) waves.push({ index: 1, canary: true, stacks: canaries });
  const rest = stacks.slice(canaries.length);
  for (let i = 0; i < rest.length; i += concurrency)
    waves.push({ index: waves.length + 1, canary: false, stacks: rest.slice(i, i + concurrency) });
  return waves;
}
