/**
 * One stack's operation for the fleet command, in a process of its own (forked by run.ts, leader of its own
 * process group, so the fleet can cancel it and everything it started). It receives a WorkerJob over IPC, runs
 * the operation with Pulumi's Automation API — `LocalWorkspace` over the project directory with the given CLI —
 * streams progress back and ends with one StackOutcome.
 *
 * SIGINT and SIGTERM do not end this process: they reach the CLI in the same process group, which cancels (the
 * first signal) or terminates (the second) the operation; this process stays to serve an inline program until
 * the CLI exits, then reports the cancelled operation.
 */
import { join } from "node:path";
import {
  LocalWorkspace,
  PulumiCommand,
  Stack,
  type EngineEvent,
  type OpMap,
  type PulumiFn,
} from "@pulumi/pulumi/automation";
import type { FleetOp } from "./plan";

/** What the fleet asks a worker to do. */
export interface WorkerJob {
  stack: string;
  op: FleetOp;
  /** Project directory: Pulumi.yaml and the stack files. */
  dir: string;
  /** CLI installation root (`<root>/bin/pulumi`), or undefined for `pulumi` on PATH. */
  pulumiRoot?: string;
  /** Serve this checkout's index.ts from this process instead of the CLI's Node.js language host. */
  inline: boolean;
}

/** How a stack's operation ended. */
export type Outcome = "ok" | "drifted" | "failed" | "cancelled";

export interface StackOutcome {
  outcome: Outcome;
  /** The engine's count of resource operations by kind (`same` left out). */
  changes: Record<string, number>;
  /** The CLI's exit code when it failed (7: changes where none were expected). */
  exitCode?: number;
  /** Why it failed: the engine's error diagnostics, or the CLI's error lines. */
  errors: string[];
}

/** A resource step as the progress display shows it. */
export interface StepMessage {
  kind: "step";
  phase: "start" | "done" | "failed";
  /** The step's operation (create, update, replace, delete, refresh, …). */
  op: string;
  /** Resource name (the last part of its URN) and type. */
  name: string;
  type: string;
  /** True for a preview's planned step (nothing was done). */
  planning: boolean;
}

export type WorkerMessage = StepMessage | { kind: "result"; result: StackOutcome };

/** The CLI's exit code carried by an Automation API error (the execa error it wraps, or its message). */
export function exitCodeOf(e: unknown): number | undefined {
  // CommandError keeps the CLI's result (and execa's error with the exit code) in a field its types mark private.
  const inner = (e as { commandResult?: { err?: { exitCode?: number } } } | undefined)?.commandResult?.err;
  if (typeof inner?.exitCode === "number") return inner.exitCode;
  const m = /exit code (\d+)/.exec(String((e as Error)?.message ?? e));
  return m ? Number(m[1]) : undefined;
}

/**
 * Why a command failed, from an Automation API error's message (`code: … stdout: … stderr: … err?: …`): the
 * CLI's `error:` lines, or else the first lines of its stderr, or else the message's first line.
 */
export function errorLines(e: unknown): string[] {
  const text = String((e as Error)?.message ?? e);
  const lines = [
    ...new Set(
      text
        .split("\n")
        .filter((l) => /^\s*error: /.test(l))
        .map((l) => l.trim()),
    ),
  ];
  if (lines.length > 0) return lines;
  const stderr = /\n stderr: ([\s\S]*?)\n err\?: /.exec(text)?.[1].trim();
  if (stderr) return [stderr.split("\n").slice(0, 8).join("\n")];
  return [text.split("\n")[0]];
}

/** The Pulumi CLI's exit code for "no changes were expected but changes were proposed" (cmd/pulumi/cmd/exit_codes.go). */
export const EXIT_NO_CHANGES = 7;

const nameOf = (urn: string) => urn.split("::").at(-1) ?? urn;

/** Turns engine events into progress messages and keeps what the outcome needs. */
class EventSink {
  summary?: OpMap;
  readonly diagnostics: string[] = [];
  readonly done = new Map<string, string>();
  constructor(private readonly send: (m: WorkerMessage) => void) {}

  on(e: EngineEvent): void {
    if (e.summaryEvent) this.summary = e.summaryEvent.resourceChanges;
    const d = e.diagnosticEvent;
    if (d && d.severity === "error" && !d.ephemeral)
      this.diagnostics.push(
        d.urn && !d.urn.includes("::pulumi:pulumi:Stack::")
          ? `${nameOf(d.urn)}: ${d.message.trim()}`
          : d.message.trim(),
      );
    const step = e.resourcePreEvent ?? e.resOutputsEvent;
    const failed = e.resOpFailedEvent;
    const m = step?.metadata ?? failed?.metadata;
    if (!m || m.type === "pulumi:pulumi:Stack") return;
    if (m.op === "same" || (m.op === "refresh" && !e.resourcePreEvent)) return;
    const phase = failed ? "failed" : e.resourcePreEvent ? "start" : "done";
    if (phase === "done") this.done.set(m.urn, m.op);
    const planning = Boolean(step && "planning" in step && step.planning);
    this.send({ kind: "step", phase, op: m.op, name: nameOf(m.urn), type: m.type, planning });
  }

  /** Resource operations by kind: the engine's summary, or the steps that finished before a failure. */
  changes(): Record<string, number> {
    const counts: Record<string, number> = {};
    if (this.summary) {
      for (const [op, n] of Object.entries(this.summary)) if (op !== "same" && n) counts[op] = n;
    } else {
      for (const op of this.done.values()) counts[op] = (counts[op] ?? 0) + 1;
    }
    return counts;
  }
}

/**
 * The drift check's environment over the operator's: `refresh` takes PULUMI_SKIP_CONFIRMATIONS=true (as CI
 * environments set it) for --yes, and refuses --yes with --preview-only (pulumi/pulumi v3.248.0
 * pkg/cmd/pulumi/operations/refresh.go and updateFlagsToOptions in io.go), so a refresh preview runs without it.
 */
const DRIFT_ENV = { PULUMI_SKIP_CONFIRMATIONS: "false" };

/** The program this checkout runs, served from this process (`--inline`). */
const inlineProgram: PulumiFn = async () => {
  const mod = (await import(join(__dirname, "..", "..", "index.ts"))) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(mod).filter(([k]) => k !== "default" && k !== "__esModule"));
};

/** Runs the job; never throws: every failure becomes an outcome. */
export async function runJob(job: WorkerJob, send: (m: WorkerMessage) => void, cancelled: () => boolean) {
  const sink = new EventSink(send);
  const onEvent = (e: EngineEvent) => sink.on(e);
  try {
    const pulumiCommand = await PulumiCommand.get(job.pulumiRoot ? { root: job.pulumiRoot } : {});
    const ws = await LocalWorkspace.create({
      workDir: job.dir,
      pulumiCommand,
      program: job.inline ? inlineProgram : undefined,
      envVars: job.op === "drift" ? DRIFT_ENV : {},
    });
    const stack = await Stack.select(job.stack, ws);
    const common = { onEvent, color: "never" as const };
    if (job.op === "preview") await stack.preview(common);
    else if (job.op === "up") await stack.up(common);
    else await stack.previewRefresh({ ...common, expectNoChanges: true });
    return { outcome: "ok", changes: sink.changes(), errors: [] } satisfies StackOutcome;
  } catch (e) {
    const exitCode = exitCodeOf(e);
    const errors = sink.diagnostics.length > 0 ? sink.diagnostics : errorLines(e);
    const outcome: Outcome = cancelled()
      ? "cancelled"
      : job.op === "drift" && exitCode === EXIT_NO_CHANGES
        ? "drifted"
        : "failed";
    return {
      outcome,
      changes: sink.changes(),
      exitCode,
      errors,
    } satisfies StackOutcome;
  }
}

if (require.main === module && process.send) {
  let signalled = false;
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => (signalled = true));
  const send = (m: WorkerMessage) => process.send?.(m);
  process.once("message", (job: WorkerJob) => {
    void runJob(job, send, () => signalled).then((result) =>
      process.send!({ kind: "result", result } satisfies WorkerMessage, () => process.exit(0)),
    );
  });
}
