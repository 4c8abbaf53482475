/**
 * Runs the fleet: lists the project's stacks in the CLI's backend (whatever the user is logged in to: the local
 * file backend, object storage or Pulumi Cloud), selects them, and runs the operation wave by wave — canaries
 * first, then waves of at most `concurrency` stacks at the same time. The first failure stops the fleet: no
 * stack starts after it, the stacks already running finish, and the rest are reported as not run.
 *
 * Each stack runs in a worker process (worker.ts) that leads its own process group. A stack that outlives
 * `--timeout` is cancelled the way an operator would with Ctrl-C: SIGINT to its group (the CLI cancels and waits
 * for the resource operations in flight), after `--cancel-grace` a second SIGINT (the CLI terminates its plugins
 * and exits), after another grace SIGKILL. Ctrl-C on the fleet itself does the same to every running stack.
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { planWaves, selectStacks, shortName, type FleetOptions, type Wave } from "./plan";
import { finishLine, isFailure, stepLine, type FleetReport, type StackResult } from "./report";
import type { StackOutcome, WorkerJob, WorkerMessage } from "./worker";

const WORKER = join(__dirname, "worker.ts");
const TSX = require.resolve("tsx");

export class FleetError extends Error {}

/** Where progress goes (stderr in the command). */
export type Progress = (line: string) => void;

/** How long a stack may be quiet before its progress line repeats that it is still running. */
const HEARTBEAT_MS = 30_000;

interface Running {
  child: ChildProcess;
  stack: string;
  /** Signals sent so far to its process group, in order. */
  stage: 0 | 1 | 2 | 3;
}

/** A fleet run: the running stacks, so an interrupt can reach them. */
class FleetRun {
  private readonly running = new Set<Running>();
  interrupted = false;
  /** The first stack (in time) that failed or timed out. */
  firstFailure?: string;

  constructor(
    private readonly opts: FleetOptions,
    private readonly progress: Progress,
  ) {}

  /** Escalates one running stack: cancel, terminate, kill. */
  escalate(r: Running): void {
    const pid = r.child.pid;
    if (pid === undefined || r.child.exitCode !== null || r.child.signalCode !== null) return;
    r.stage = Math.min(r.stage + 1, 3) as Running["stage"];
    const what = ["", "cancelling (SIGINT)", "terminating (second SIGINT)", "killing its processes (SIGKILL)"];
    this.progress(`${r.stack}: ${what[r.stage]}`);
    try {
      process.kill(-pid, r.stage === 3 ? "SIGKILL" : "SIGINT");
    } catch {
      // the group is gone already
    }
  }

  /** Ctrl-C on the fleet: no new stack starts; every running stack is escalated one step. */
  interrupt(): void {
    this.interrupted = true;
    this.progress("interrupted: no further stacks start; cancelling the running ones");
    for (const r of this.running) this.escalate(r);
  }

  /** Runs one stack in a worker and returns its result line. */
  async runStack(stack: string, wave: Wave): Promise<StackResult> {
    const { opts } = this;
    const job: WorkerJob = { stack, op: opts.op, dir: opts.dir, pulumiRoot: opts.pulumiRoot, inline: opts.inline };
    const started = Date.now();
    const child = fork(WORKER, [], {
      cwd: opts.dir,
      detached: true,
      execArgv: ["--import", TSX],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    const r: Running = { child, stack, stage: 0 };
    this.running.add(r);
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let outcome: StackOutcome | undefined;
    let quietSince = Date.now();
    child.on("message", (m: WorkerMessage) => {
      quietSince = Date.now();
      if (m.kind === "result") outcome = m.result;
      else {
        const line = stepLine(opts.op, stack, m);
        if (line) this.progress(line);
      }
    });
    const timers = [
      setInterval(() => {
        if (Date.now() - quietSince >= HEARTBEAT_MS)
          this.progress(`${stack}: still running (${Math.round((Date.now() - started) / 1000)}s)`);
      }, HEARTBEAT_MS),
      setTimeout(() => this.timeout(r), opts.timeoutSeconds * 1000),
    ];
    child.send(job);
    await new Promise<void>((resolve) => child.once("exit", () => resolve()));
    for (const t of timers) clearTimeout(t);
    this.running.delete(r);
    return this.result(stack, wave, (Date.now() - started) / 1000, r, outcome, stderr);
  }

  private timeout(r: Running): void {
    this.progress(`${r.stack}: no result after ${this.opts.timeoutSeconds}s`);
    this.escalate(r);
    const next = setInterval(() => {
      if (r.child.exitCode !== null || r.child.signalCode !== null || r.stage === 3) clearInterval(next);
      else this.escalate(r);
    }, this.opts.graceSeconds * 1000);
    r.child.once("exit", () => clearInterval(next));
  }

  private result(
    stack: string,
    wave: Wave,
    seconds: number,
    r: Running,
    outcome: StackOutcome | undefined,
    stderr: string,
  ): StackResult {
    const base = { stack, wave: wave.index, canary: wave.canary, seconds };
    const stoppedBy = (["cancel", "terminate", "kill"] as const)[r.stage - 1];
    if (r.stage > 0 && !this.interrupted)
      return {
        ...base,
        status: "timed out",
        stoppedBy,
        changes: outcome?.changes ?? {},
        errors: outcome?.errors ?? [],
      };
    if (!outcome)
      return {
        ...base,
        status: this.interrupted ? "cancelled" : "failed",
        changes: {},
        errors: [`the stack's worker ended without a result${stderr ? `:\n${stderr.trim()}` : ""}`],
      };
    return {
      ...base,
      status: outcome.outcome,
      changes: outcome.changes,
      errors: outcome.errors,
      exitCode: outcome.exitCode,
    };
  }

  /** Runs a wave's stacks, at most `concurrency` at a time; after a failure no further stack starts. */
  async runWave(wave: Wave, results: StackResult[]): Promise<void> {
    const queue = [...wave.stacks];
    const lane = async () => {
      for (let stack = queue.shift(); stack !== undefined; stack = queue.shift()) {
        if (this.interrupted || results.some(isFailure)) {
          results.push(notRun(stack, wave));
          continue;
        }
        this.progress(`${stack}: started (wave ${wave.index}${wave.canary ? ", canary" : ""})`);
        const result = await this.runStack(stack, wave);
        this.progress(finishLine(this.opts.op, result));
        if (isFailure(result)) this.firstFailure ??= stack;
        results.push(result);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, wave.stacks.length) }, lane));
  }
}

function notRun(stack: string, wave: Wave): StackResult {
  return { stack, wave: wave.index, canary: wave.canary, status: "not run", changes: {}, errors: [] };
}

/** The stacks of the project in the CLI's backend, and the backend's URL. */
async function listStacks(opts: FleetOptions): Promise<{ names: string[]; backend?: string }> {
  const pulumiCommand = await PulumiCommand.get(opts.pulumiRoot ? { root: opts.pulumiRoot } : {});
  const ws = await LocalWorkspace.create({ workDir: opts.dir, pulumiCommand });
  const [stacks, who] = await Promise.all([ws.listStacks(), ws.whoAmI().catch(() => undefined)]);
  return { names: stacks.map((s) => s.name), backend: who?.url };
}

/** Sites of the project directory (Pulumi.<name>.yaml) the globs select but the backend has no stack for. */
function siteFilesWithoutStack(dir: string, stacks: string[], globs: string[]): string[] {
  const sites = readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.ya?ml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined);
  const known = new Set(stacks.map(shortName));
  return selectStacks(sites, globs).stacks.filter((s) => !known.has(s));
}

/** Runs the fleet operation; throws FleetError when the selection is empty or a glob matches nothing. */
export async function runFleet(opts: FleetOptions, progress: Progress): Promise<FleetReport> {
  if (!existsSync(join(opts.dir, "Pulumi.yaml")))
    throw new FleetError(`--dir: ${opts.dir} holds no Pulumi.yaml (allowed: the project directory)`);
  const { names, backend } = await listStacks(opts);
  const selection = selectStacks(names, opts.stacks);
  const where = backend ? ` in ${backend}` : "";
  if (selection.unmatched.length > 0)
    throw new FleetError(
      `--stacks: ${selection.unmatched.map((g) => `"${g}"`).join(", ")} matches no stack of this project${where} ` +
        `(stacks: ${names.join(", ") || "none"})`,
    );
  if (selection.stacks.length === 0) throw new FleetError(`no stacks of this project${where}`);
  for (const site of siteFilesWithoutStack(opts.dir, names, opts.stacks))
    progress(
      `warning: Pulumi.${site}.yaml has no stack in this backend: not run (create it: pulumi stack init ${site})`,
    );
  const waves = planWaves(selection.stacks, opts.canary, opts.concurrency);
  progress(
    `${opts.op} of ${selection.stacks.length} stack${selection.stacks.length === 1 ? "" : "s"}${where} in ` +
      `${waves.length} wave${waves.length === 1 ? "" : "s"}: ` +
      waves.map((w) => `[${w.stacks.join(", ")}]${w.canary ? " (canary)" : ""}`).join(" → "),
  );
  const run = new FleetRun(opts, progress);
  const onSigint = () => run.interrupt();
  process.on("SIGINT", onSigint);
  const results: StackResult[] = [];
  try {
    for (const wave of waves) {
      if (run.interrupted || results.some(isFailure)) results.push(...wave.stacks.map((s) => notRun(s, wave)));
      else await run.runWave(wave, results);
    }
  } finally {
    process.off("SIGINT", onSigint);
  }
  const order = new Map(selection.stacks.map((s, i) => [s, i]));
  results.sort((a, b) => order.get(a.stack)! - order.get(b.stack)!);
  return { op: opts.op, backend, results, stoppedAt: run.firstFailure };
}
