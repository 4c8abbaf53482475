/**
 * Running commands for the virtual appliance: synchronous set-up steps, concurrent probes, and long-running
 * daemons whose pids are tracked so that teardown ends exactly the processes this harness started. Waiting is
 * test/helpers/wait.ts, shared with the eBPF tests.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Return a failed result instead of throwing. */
  allowFail?: boolean;
  env?: NodeJS.ProcessEnv;
}

function describeFailure(argv: string[], r: RunResult): string {
  return `command failed (status ${r.status}): ${argv.join(" ")}\n${r.stderr.trim()}\n${r.stdout.trim()}`.trim();
}

/** Runs a command to completion; throws with its output unless it succeeds (or allowFail). */
export function sh(argv: string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(argv[0], argv.slice(1), {
    input: opts.input,
    encoding: "utf8",
    timeout: opts.timeoutMs ?? 30_000,
    env: opts.env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  const res: RunResult = { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
  if (res.status !== 0 && !opts.allowFail) throw new Error(describeFailure(argv, res));
  return res;
}

/** Runs a command asynchronously (probes in several namespaces at once). */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (status) => {
      clearTimeout(timer);
      const res = { status, stdout, stderr };
      if (status !== 0 && !opts.allowFail) reject(new Error(describeFailure(argv, res)));
      else resolve(res);
    });
    // a command that exits without reading its input (e.g. curl failing at once) closes the pipe first: the
    // write's EPIPE is not a failure of the command, whose exit status tells
    child.stdin.on("error", () => undefined);
    child.stdin.end(opts.input ?? "");
  });
}

/** argv prefix that runs a command in a network namespace. */
export function inNs(ns: string, argv: string[]): string[] {
  return ["ip", "netns", "exec", ns, ...argv];
}

/** A long-running process started by the harness. */
export class Daemon {
  exited = false;
  exitCode: number | null = null;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    child.on("exit", (code) => {
      this.exited = true;
      this.exitCode = code;
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The daemon's output so far. */
  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.exited) process.kill(this.pid, sig);
  }

  /** Sends a signal and waits for the process to exit (SIGKILL after the grace period). */
  async stop(sig: NodeJS.Signals = "SIGTERM", graceMs = 3000): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.signal(sig);
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    await done;
    clearTimeout(timer);
  }
}

/** Every daemon one appliance started, so that teardown can end each of them by its pid. */
export class Daemons {
  private readonly all: Daemon[] = [];

  /** Starts argv with stdout and stderr appended to logFile. The process is not detached from the test. */
  start(name: string, argv: string[], logFile: string, env?: NodeJS.ProcessEnv): Daemon {
    const fd = openSync(logFile, "a");
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", fd, fd], env: env ?? process.env });
    closeSync(fd);
    const d = new Daemon(name, child, logFile);
    this.all.push(d);
    return d;
  }

  list(): readonly Daemon[] {
    return this.all;
  }

  /** Ends every daemon still running: SIGTERM, then SIGKILL for those that do not exit in time. */
  async stopAll(): Promise<void> {
    await Promise.all(this.all.filter((d) => !d.exited).map((d) => d.stop("SIGTERM", 2000)));
  }

  /** Synchronous last resort (process exit): SIGKILL by pid. */
  killAllSync(): void {
    for (const d of this.all)
      if (!d.exited && d.pid > 0)
        try {
          process.kill(d.pid, "SIGKILL");
        } catch {
          // already gone
        }
  }
}

function sanitize(s: string): string {
  return s.replace(/[^a-z0-9-]/gi, "-");
}

/**
 * What every part of the appliance works with: its work directory, commands in its namespaces, and the daemons
 * it starts, each with a log file of its own there.
 */
export class Shell {
  readonly daemons = new Daemons();

  constructor(readonly work: string) {}

  /** Runs a command in a namespace (synchronously). */
  exec(ns: string, argv: string[], opts: RunOptions = {}): RunResult {
    return sh(inNs(ns, argv), opts);
  }

  /** Runs a command in a namespace (asynchronously). */
  run(ns: string, argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(inNs(ns, argv), opts);
  }

  /** One `ip -n NS …` command; `args` split at spaces. */
  ip(ns: string, args: string): void {
    sh(["ip", "-n", ns, ...args.split(" ")]);
  }

  /** Several `ip` commands in one namespace, in one process (`ip -batch`). */
  batch(ns: string, commands: string[]): void {
    if (commands.length) sh(["ip", "-n", ns, "-batch", "-"], { input: `${commands.join("\n")}\n` });
  }

  /** A fresh log file for a daemon (a restarted daemon gets a new one). */
  log(name: string): string {
    let path = join(this.work, `${sanitize(name)}.log`);
    for (let i = 2; existsSync(path); i++) path = join(this.work, `${sanitize(name)}-${i}.log`);
    return path;
  }

  /**
   * Starts a daemon in a namespace, logging to a file of its own; with `cgroup`, in that cgroup (it moves itself
   * there before anything else runs, so every process it starts is accounted there).
   */
  daemon(name: string, ns: string, argv: string[], env?: NodeJS.ProcessEnv, cgroup?: string): Daemon {
    const command = cgroup
      ? ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, ...inNs(ns, argv)]
      : inNs(ns, argv);
    return this.daemons.start(name, command, this.log(name), env);
  }
}
