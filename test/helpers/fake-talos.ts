/**
 * Runs a generated talosctl script against the fake talosctl/curl in test/fixtures/fake-bin, which record every
 * call. Used to check the order, flags, files and exit codes of the node lifecycle without a node.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./temp";

export const FAKE_BIN = join(__dirname, "../fixtures/fake-bin");

export interface FakeCall {
  argv: string[];
  sub: string;
  files: Record<string, { path: string; mode: string | null; content: string | null }>;
  code: number;
}

export interface ScriptRun {
  code: number;
  stdout: string;
  stderr: string;
  calls: FakeCall[];
  seconds: number;
  state: string;
}

export function runWithFakeTalos(
  script: string,
  opts: { stdin?: string; talosconfig?: string; env?: Record<string, string>; state?: string } = {},
): ScriptRun {
  const state = opts.state ?? tempDir("fake-talos-");
  const log = join(state, "calls.jsonl");
  const started = Date.now();
  const r = spawnSync("bash", ["-c", script], {
    input: opts.stdin ?? "",
    encoding: "utf8",
    timeout: 120_000,
    env: {
      PATH: `${FAKE_BIN}:${process.env.PATH}`,
      HOME: process.env.HOME ?? "/tmp",
      FAKE_TALOS_LOG: log,
      FAKE_TALOS_STATE: state,
      ROUTER_RETRY_INTERVAL: "0.05",
      ...(opts.talosconfig === undefined ? {} : { ROUTER_TALOSCONFIG: opts.talosconfig }),
      ...opts.env,
    },
  });
  const calls = existsSync(log)
    ? readFileSync(log, "utf8")
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as FakeCall)
    : [];
  return {
    code: r.status ?? -1,
    stdout: r.stdout,
    stderr: r.stderr,
    calls,
    seconds: (Date.now() - started) / 1000,
    state,
  };
}

/** The subcommands in call order, e.g. ["version", "get", "apply-config", "version"]. */
export function subs(run: ScriptRun): string[] {
  return run.calls.map((c) => c.sub);
}

/** Value following a flag in a call's argv. */
export function flag(call: FakeCall, name: string): string | undefined {
  const i = call.argv.indexOf(name);
  return i >= 0 ? call.argv[i + 1] : undefined;
}
