/**
 * A world of stacks for the fake Pulumi CLI (fake-pulumi/bin/pulumi) and a runner for the fleet command against
 * it: `npm run fleet` as an operator runs it (its own process, its exit status, stdout and stderr), with the
 * fake CLI injected through `--pulumi-root`.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";

export const FAKE_PULUMI_ROOT = join(__dirname, "fake-pulumi");

export interface Fault {
  /** Fail with this message at step `afterSteps`. */
  fail?: string;
  /** Hang before step `afterSteps`: until the first signal, the second, or for ever (only SIGKILL ends it). */
  hang?: "cancellable" | "stuck" | "unresponsive";
  afterSteps?: number;
}

export interface FakeStack {
  project?: string;
  /** Resources in the stack's state. */
  resources?: number;
  /** What the program would change (preview, up). */
  pending?: Record<string, number>;
  /** Where the router differs from the state (refresh). */
  drifted?: Record<string, number>;
  faults?: { preview?: Fault; up?: Fault; refresh?: Fault };
  /** How long each step takes (ms). */
  stepMs?: number;
}

export interface FakeCall {
  argv: string[];
  sub: string;
  stack?: string;
  pid: number;
  start: number;
  end: number;
  code: number;
}

export interface FleetRun {
  /** When the command was started (ms since the epoch). */
  startedAt: number;
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** The records of a JSON-lines file the fake appends to (none while it does not exist). */
function jsonLines<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

export class World {
  readonly dir = tempDir("fleet-world-");
  readonly project = join(this.dir, "project");
  /** The running fleet command's process id. */
  fleetPid?: number;

  constructor(stacks: Record<string, FakeStack>, opts: { siteFiles?: string[] } = {}) {
    mkdirSync(join(this.dir, "stacks"), { recursive: true });
    mkdirSync(this.project, { recursive: true });
    writeFileSync(join(this.project, "Pulumi.yaml"), "name: router\nruntime:\n  name: nodejs\n");
    for (const [name, s] of Object.entries(stacks)) {
      writeFileSync(join(this.dir, "stacks", `${name}.json`), JSON.stringify({ resources: 10, ...s }));
      writeFileSync(join(this.project, `Pulumi.${name}.yaml`), "config: {}\n");
    }
    for (const f of opts.siteFiles ?? []) writeFileSync(join(this.project, `Pulumi.${f}.yaml`), "config: {}\n");
  }

  stack(name: string): FakeStack & { history?: unknown[] } {
    return JSON.parse(readFileSync(join(this.dir, "stacks", `${name}.json`), "utf8")) as FakeStack;
  }

  /** Every CLI invocation so far, in the order they ended. */
  calls(): FakeCall[] {
    return jsonLines<FakeCall>(join(this.dir, "calls.jsonl"));
  }

  /** The operations (preview, up, refresh) that began, whether or not they ended. */
  started(): { sub: string; stack: string; pid: number; start: number }[] {
    return jsonLines(join(this.dir, "started.jsonl"));
  }

  /** The operations (preview, up, refresh) run per stack, with their time spans. */
  operations(): FakeCall[] {
    return this.calls().filter((c) => ["preview", "up", "refresh"].includes(c.sub));
  }

  /** Runs `npm run fleet -- ARGS` against this world; `onStderr` sees progress as it comes. */
  fleet(args: string[], opts: FleetCommandOptions = {}): Promise<FleetRun> {
    return fleetCommand([...args, "--dir", this.project, "--pulumi-root", FAKE_PULUMI_ROOT], {
      ...opts,
      env: { FAKE_PULUMI_WORLD: this.dir, ...opts.env },
      onSpawn: (pid) => (this.fleetPid = pid),
    });
  }
}

export interface FleetCommandOptions {
  /** Added to this process's environment. */
  env?: Record<string, string>;
  onStderr?: (all: string) => void;
  /** Called with the command's process id once it runs. */
  onSpawn?: (pid: number | undefined) => void;
  /** SIGKILL the command after this long (default 240 s). */
  timeoutMs?: number;
}

/** Runs `npm run fleet -- ARGS` as an operator does: its own process, its exit status, stdout and stderr. */
export async function fleetCommand(args: string[], opts: FleetCommandOptions = {}): Promise<FleetRun> {
  const started = Date.now();
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "cli/fleet.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  opts.onSpawn?.(child.pid);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
    opts.onStderr?.(stderr);
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 240_000);
  const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
  clearTimeout(killer);
  return { startedAt: started, code, stdout, stderr, seconds: (Date.now() - started) / 1000 };
}

/** The final table's rows as objects (header: stack, wave, result, changed, duration). */
export function tableRows(stdout: string): Record<string, string>[] {
  const lines = stdout.split("\n");
  const header = lines[0];
  const cols = ["stack", "wave", "result", "changed", "duration"];
  const starts = cols.map((c) => header.indexOf(c));
  const rows: Record<string, string>[] = [];
  for (const line of lines.slice(1)) {
    if (line.trim() === "") break;
    rows.push(Object.fromEntries(cols.map((c, i) => [c, line.slice(starts[i], starts[i + 1] ?? undefined).trim()])));
  }
  return rows;
}

/** Largest number of operations running at the same time. */
export function maxOverlap(calls: FakeCall[]): number {
  const edges = calls.flatMap((c) => [
    [c.start, 1],
    [c.end, -1],
  ]);
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (now += d));
  return max;
}
