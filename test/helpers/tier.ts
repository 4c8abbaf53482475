/**
 * Test tiers that need something beyond Node (root, a Debian package, the kernel's BPF support).
 *
 * On a developer machine a tier whose prerequisites are missing is skipped with a printed reason. In CI
 * (`ROUTER_REQUIRE_ALL_TIERS=1`, set by .ci/run) a missing prerequisite is a failure: a skipped tier there
 * would turn "not tested" into "passed".
 */
import { spawnSync } from "node:child_process";

export interface TierRequirements {
  /** Executables that must be on PATH. */
  commands?: string[];
  /** The tier needs uid 0 (network namespaces, BPF, nftables). */
  root?: boolean;
  /** Files that must exist (e.g. a built BPF object). */
  files?: string[];
  /** How to get what is missing, appended to the reason (e.g. the command that builds it). */
  hint?: string;
}

export interface Tier {
  /** True when every prerequisite is present. */
  ok: boolean;
  /** Why the tier cannot run (empty when ok). */
  missing: string[];
}

export const requireAllTiers = process.env.ROUTER_REQUIRE_ALL_TIERS === "1";

function onPath(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${JSON.stringify(cmd)}`], { stdio: "ignore" }).status === 0;
}

/**
 * Checks a tier's prerequisites. Skips (with a reason on stderr) when something is missing, or throws when
 * all tiers are required.
 */
export function tier(name: string, req: TierRequirements): Tier {
  const missing: string[] = [];
  if (req.root && process.getuid?.() !== 0) missing.push("root (uid 0)");
  for (const c of req.commands ?? []) if (!onPath(c)) missing.push(`command '${c}'`);
  for (const f of req.files ?? []) {
    if (spawnSync("test", ["-e", f]).status !== 0) missing.push(`file '${f}'`);
  }
  if (missing.length > 0) {
    const msg = `test tier '${name}' cannot run: missing ${missing.join(", ")}${req.hint ? ` (${req.hint})` : ""}`;
    if (requireAllTiers) throw new Error(`${msg} (ROUTER_REQUIRE_ALL_TIERS=1: a skipped tier is a failure)`);
    console.warn(`SKIP ${msg}`);
  }
  return { ok: missing.length === 0, missing };
}
