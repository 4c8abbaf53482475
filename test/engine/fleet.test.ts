/**
 * The fleet command (`npm run fleet`) against the real Pulumi CLI (built from the module proxy at the Node SDK's
 * version) and two real stacks of this program in a local file backend: the Automation API calls the fleet makes
 * — stack listing, whoami, stack select, preview, up and refresh --preview-only --expect-no-changes with the
 * event log — are answered by the real engine, and the program is this checkout's index.ts served inline
 * (`--inline`, as test/helpers/engine.ts does: the Node.js language host is not served by the module proxy).
 *
 * The resource plugins are the engine tier's preview stand-ins (test/helpers/engine-stand-in-provider.ts): a
 * preview plans every resource, an up fails at its first create. So this file proves, on the real engine: the
 * preview of each stack and its change count, the canary wave before the rest, a timeout cancelling the real
 * CLI without leaving a process or a lock, a real failed up stopping the fleet with the engine's own error and
 * leaving the next stack untouched, and a drift check of stacks that match. Concurrency limits within a wave,
 * each step of the cancel/terminate/kill escalation, Ctrl-C and detected drift are proven against the fake CLI
 * (test/fleet/fleet.test.ts), which models what this CLI does.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { engineProject, engineTier, engineWorkspace, PULUMI_CLI, renderedResources } from "../helpers/engine";
import { tempDir } from "../helpers/temp";
import { toolDir } from "../../tools/go-tools";
import { fleetCommand, tableRows, type FleetRun } from "../fleet/world";

const t = engineTier();

/** Processes (pid and command line) whose environment points at this file backend. */
function processesOf(backendDir: string): string[] {
  const mark = `PULUMI_BACKEND_URL=file://${backendDir}\0`;
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .flatMap((p) => {
      try {
        if (!readFileSync(`/proc/${p}/environ`, "latin1").includes(mark)) return [];
        const stat = readFileSync(`/proc/${p}/stat`, "utf8");
        if (stat.split(") ")[1]?.[0] === "Z") return [];
        return [`${p} ${readFileSync(`/proc/${p}/cmdline`, "latin1").replaceAll("\0", " ")}`];
      } catch {
        return [];
      }
    });
}

interface ReportJson {
  backend?: string;
  results: { stack: string; status: string; changes: Record<string, number>; errors: string[] }[];
}

describe.skipIf(!t.ok)("the fleet command on the real Pulumi engine, two local stacks", () => {
  const project = t.ok ? engineProject() : undefined!;
  const out = tempDir("engine-fleet-");
  const secret = `canary-${randomBytes(12).toString("hex")}`;
  let rendered: number;

  /** `npm run fleet -- ARGS` on this project with the real CLI, as an operator with this backend runs it. */
  const fleet = (args: string[]): Promise<FleetRun> =>
    fleetCommand([...args, "--dir", project.projectDir, "--pulumi-root", toolDir("pulumi"), "--inline"], {
      env: project.env,
      timeoutMs: 900_000,
    });

  /** The real CLI's `stack history --json` of a stack: its updates, newest first. */
  const history = (stack: string): { kind: string; result: string }[] => {
    const r = spawnSync(PULUMI_CLI, ["stack", "history", "--json", "--stack", stack], {
      cwd: project.projectDir,
      env: { ...process.env, ...project.env },
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`pulumi stack history failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as { kind: string; result: string }[];
  };

  beforeAll(async () => {
    // Two sites of the same program: both take the dev site's configuration and a registry password secret.
    for (const stack of ["lab", "shop"])
      await engineWorkspace({ project, stack, site: "dev", secrets: { registryPassword: secret } });
    rendered = renderedResources("dev").length;
  }, 600_000);

  it("preview: the canary first, then the other stack; each plans the program's resources; nothing is applied", async () => {
    const json = join(out, "preview.json");
    const run = await fleet(["preview", "--canary", "1", "--concurrency", "2", "--json", json]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(tableRows(run.stdout).map((r) => [r.stack, r.wave, r.result])).toEqual([
      ["lab", "1 (canary)", "changes"],
      ["shop", "2", "changes"],
    ]);
    // The engine's count: every resource the offline render lists (the mock runtime, apart from the engine),
    // plus the stack itself.
    const report = JSON.parse(readFileSync(json, "utf8")) as ReportJson;
    expect(report.results.map((r) => [r.stack, r.changes])).toEqual([
      ["lab", { create: rendered + 1 }],
      ["shop", { create: rendered + 1 }],
    ]);
    expect(tableRows(run.stdout)[0].changed).toBe(`${rendered + 1} (${rendered + 1} create)`);
    expect(report.backend).toBe(`file://${project.backendDir}`);
    // The canary's preview ended before the other stack started.
    const lines = run.stderr.split("\n");
    const labDone = lines.findIndex((l) => l.startsWith("lab: changes,"));
    const shopStart = lines.findIndex((l) => l.startsWith("shop: started (wave 2)"));
    expect(labDone).toBeGreaterThanOrEqual(0);
    expect(shopStart).toBeGreaterThan(labDone);
    expect(history("lab")).toEqual([]);
    expect(history("shop")).toEqual([]);
    // The secret reached the program (its preview succeeded) and shows in none of the fleet's output.
    expect(run.stdout + run.stderr + readFileSync(json, "utf8")).not.toContain(secret);
  }, 900_000);

  it("a stack past --timeout is cancelled through the real CLI: the fleet stops, nothing is left running or locked", async () => {
    // 1 s: the CLI, its plugins and the program cannot finish a preview that soon on any machine, so the
    // timeout always wins (a longer one raced a fast preview)
    const run = await fleet(["preview", "--timeout", "1s", "--cancel-grace", "10s"]);
    expect(run.code).toBe(1);
    const rows = tableRows(run.stdout).map((r) => [r.stack, r.result]);
    expect(rows[0][0]).toBe("lab");
    expect(rows[0][1]).toMatch(/^timed out \((cancel|terminate|kill)\)$/);
    expect(rows[1]).toEqual(["shop", "not run"]);
    // What the cancelled preview planned until then is not what it would change: no count.
    expect(tableRows(run.stdout)[0].changed).toBe("—");
    expect(run.stderr).toContain("lab: no result after 1s");
    expect(run.stderr).toContain("lab: cancelling (SIGINT)");
    // No process of this backend outlives the fleet: not the CLI, its plugins, nor the stack's worker.
    expect(processesOf(project.backendDir)).toEqual([]);
    // The cancelled preview left no lock behind: the next test's up runs on lab.
  }, 900_000);

  it("up: the canary's real update fails at its first create; the fleet stops and the other stack is untouched", async () => {
    const json = join(out, "up.json");
    const run = await fleet(["up", "--stacks", "lab,shop", "--json", json]);
    expect(run.code).toBe(1);
    expect(tableRows(run.stdout).map((r) => [r.stack, r.wave, r.result])).toEqual([
      ["lab", "1 (canary)", "failed"],
      ["shop", "2", "not run"],
    ]);
    // Why it failed is the engine's diagnostic from the provider, under the failed stack in the report.
    expect(run.stdout).toMatch(/lab failed \(exit \d+\):\n( {2}.*\n)* {2}.*is a preview stand-in .* cannot create/);
    expect(run.stdout).toContain("Not run (the fleet stopped after lab failed): shop");
    expect(run.stderr).toMatch(/lab: FAILED create \S+ \(/);
    // The real backend recorded lab's failed update and nothing for shop.
    expect(history("lab").map((u) => [u.kind, u.result])).toEqual([["update", "failed"]]);
    expect(history("shop")).toEqual([]);
  }, 900_000);

  // The engine tier's environment skips confirmations (PULUMI_SKIP_CONFIRMATIONS=true), which the real CLI's
  // refresh takes for --yes and refuses with --preview-only: the check runs all the same.
  it("drift: a refresh preview that expects no changes finds both stacks in sync, exit 0", async () => {
    const run = await fleet(["drift", "--canary", "0", "--concurrency", "2"]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(tableRows(run.stdout).map((r) => [r.stack, r.result, r.changed])).toEqual([
      ["lab", "in sync", "0"],
      ["shop", "in sync", "0"],
    ]);
    // A refresh preview records no update.
    expect(history("shop")).toEqual([]);
    expect(history("lab")).toHaveLength(1);
  }, 900_000);
});
