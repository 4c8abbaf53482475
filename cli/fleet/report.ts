/**
 * What the fleet command prints: progress lines while stacks run (stderr) and the final table (stdout) — stack,
 * wave, result, resources changed, duration — followed by why each failed stack failed and which stacks were not
 * run. Pure functions over the results.
 */
import type { FleetOp } from "./plan";
import type { StackOutcome, StepMessage } from "./worker";

/** One stack's line in the final table. */
export interface StackResult {
  stack: string;
  /** The wave it belongs to (1-based) and whether that is the canaries' wave. */
  wave: number;
  canary: boolean;
  /** `not run`: the fleet stopped before its wave; `timed out`: the fleet cancelled it. */
  status: "not run" | "timed out" | StackOutcome["outcome"];
  changes: Record<string, number>;
  errors: string[];
  exitCode?: number;
  /** Wall time in seconds (undefined when not run). */
  seconds?: number;
  /** How a timed-out stack was stopped: the CLI cancelled, terminated, or the process group was killed. */
  stoppedBy?: "cancel" | "terminate" | "kill";
}

export interface FleetReport {
  op: FleetOp;
  /** Where the stacks' state lives (the CLI's backend URL), when the CLI says. */
  backend?: string;
  results: StackResult[];
  /** The first stack that failed or timed out, which stopped the fleet. */
  stoppedAt?: string;
}

/** True when a result stops the fleet: a failure or a timeout (drift does not). */
export function isFailure(r: StackResult): boolean {
  return r.status === "failed" || r.status === "timed out" || r.status === "cancelled";
}

/** Number of resources an operation changed (or would change). */
export function changedCount(changes: Record<string, number>): number {
  return Object.values(changes).reduce((a, b) => a + b, 0);
}

/** True when the result's changes are not a count: a preview or drift check that did not finish planned part. */
function noCount(op: FleetOp, r: StackResult): boolean {
  return r.status === "not run" || (op !== "up" && isFailure(r));
}

/**
 * `3 (2 update, 1 create)`; `0` when nothing changed; `—` when the stack did not run, or its preview or drift
 * check did not finish (the steps planned until then are not what it would change).
 */
export function formatChanges(op: FleetOp, r: StackResult): string {
  if (noCount(op, r)) return "—";
  const n = changedCount(r.changes);
  if (n === 0) return "0";
  const parts = Object.entries(r.changes)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([op, k]) => `${k} ${op}`);
  return `${n} (${parts.join(", ")})`;
}

/** `45s`, `3m07s`, `1h02m`. */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** The result column: what happened to the stack in this operation's words. */
export function resultLabel(op: FleetOp, r: StackResult): string {
  if (r.status === "timed out") return `timed out (${r.stoppedBy ?? "cancel"})`;
  if (r.status !== "ok") return r.status;
  const changed = changedCount(r.changes) > 0;
  if (op === "drift") return "in sync";
  if (op === "preview") return changed ? "changes" : "no changes";
  return changed ? "updated" : "no changes";
}

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd(),
  );
}

/** The final report: the table, then failures with their errors, then the stacks that were not run. */
export function renderReport(report: FleetReport): string {
  const rows = [
    ["stack", "wave", "result", "changed", "duration"],
    ...report.results.map((r) => [
      r.stack,
      `${r.wave}${r.canary ? " (canary)" : ""}`,
      resultLabel(report.op, r),
      formatChanges(report.op, r),
      formatDuration(r.seconds),
    ]),
  ];
  const out = table(rows);
  for (const r of report.results.filter(isFailure)) {
    out.push("", `${r.stack} ${resultLabel(report.op, r)}${r.exitCode === undefined ? "" : ` (exit ${r.exitCode})`}:`);
    for (const e of r.errors) out.push(...e.split("\n").map((l) => `  ${l}`));
  }
  const notRun = report.results.filter((r) => r.status === "not run").map((r) => r.stack);
  if (notRun.length > 0)
    out.push("", `Not run (the fleet stopped after ${report.stoppedAt ?? "a failure"} failed): ${notRun.join(", ")}`);
  const drifted = report.results.filter((r) => r.status === "drifted").map((r) => r.stack);
  if (drifted.length > 0) out.push("", `Drifted (the router no longer matches its stack): ${drifted.join(", ")}`);
  return `${out.join("\n")}\n`;
}

/** Past tense of a step's operation for progress lines. */
const DONE: Record<string, string> = {
  create: "created",
  update: "updated",
  delete: "deleted",
  replace: "replaced",
  "create-replacement": "created a replacement of",
  "delete-replaced": "deleted the replaced",
  read: "read",
  import: "imported",
  refresh: "refreshed",
};

/**
 * A progress line for a resource step, or undefined for steps not worth a line: a preview's planned steps are
 * counted, not listed; an up lists what it did and what failed; a drift check lists what differs.
 */
export function stepLine(op: FleetOp, stack: string, m: StepMessage): string | undefined {
  if (m.phase === "failed") return `${stack}: FAILED ${m.op} ${m.name} (${m.type})`;
  if (m.phase !== "done") return undefined;
  if (op === "drift") return `${stack}: differs: ${m.name} (${m.type}) would ${m.op}`;
  if (op === "up" && !m.planning) return `${stack}: ${DONE[m.op] ?? m.op} ${m.name} (${m.type})`;
  return undefined;
}

/** The line a stack ends with in the progress display. */
export function finishLine(op: FleetOp, r: StackResult): string {
  const changed = changedCount(r.changes);
  const count = noCount(op, r) ? "" : `, ${changed} resource${changed === 1 ? "" : "s"} changed`;
  return `${r.stack}: ${resultLabel(op, r)}${count}, ${formatDuration(r.seconds)}`;
}
