/**
 * The fleet tests' fake Pulumi CLI (test/fleet/fake-pulumi) against the real CLI it models (v3.248.0, built from
 * the module proxy), on the commands the fleet's Automation API calls make outside an operation and on the
 * refusals it must get right: the same command line in a project with a stack "lab" gives both the same exit
 * status, the same error line and JSON of the same shape. The operations themselves (preview, up, refresh with
 * their event streams) are compared where the fleet runs against the real CLI (fleet.test.ts here).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { engineProject, engineTier, engineWorkspace, PULUMI_CLI } from "../helpers/engine";
import { FAKE_PULUMI_ROOT, World } from "../fleet/world";

const t = engineTier();

interface Answer {
  code: number | null;
  stdout: string;
  /** The stderr's `error:` lines. */
  errors: string[];
}

const answer = (r: ReturnType<typeof spawnSync>): Answer => ({
  code: r.status,
  stdout: String(r.stdout),
  errors: String(r.stderr)
    .split("\n")
    .filter((l) => l.startsWith("error: ")),
});

describe.skipIf(!t.ok)("the fake Pulumi CLI answers as the real one", () => {
  const project = t.ok ? engineProject() : undefined!;
  const world = new World({ lab: { resources: 0 } });

  /** The same command line run by the real CLI and by the fake, each in its project with a stack "lab". */
  const both = (args: string[], env: Record<string, string> = {}): { real: Answer; fake: Answer } => ({
    real: answer(
      spawnSync(PULUMI_CLI, [...args, "--non-interactive"], {
        cwd: project.projectDir,
        env: { ...process.env, ...project.env, ...env },
        encoding: "utf8",
      }),
    ),
    fake: answer(
      spawnSync(join(FAKE_PULUMI_ROOT, "bin", "pulumi"), [...args, "--non-interactive"], {
        cwd: world.project,
        env: { ...process.env, FAKE_PULUMI_WORLD: world.dir, ...env },
        encoding: "utf8",
      }),
    ),
  });

  beforeAll(async () => {
    await engineWorkspace({ project, stack: "lab", site: "dev" });
  }, 300_000);

  it("version: the same version", () => {
    const { real, fake } = both(["version"]);
    expect(real).toEqual({ code: 0, stdout: "v3.248.0\n", errors: [] });
    expect(fake).toEqual(real);
  });

  it("stack ls --json: the same fields for a file backend's stack", () => {
    const { real, fake } = both(["stack", "ls", "--json"]);
    const shape = (a: Answer) =>
      (JSON.parse(a.stdout) as Record<string, unknown>[]).map((s) => ({
        name: s.name,
        keys: Object.keys(s).sort(),
        lastUpdate: Number.isNaN(Date.parse(String(s.lastUpdate))) ? "not a time" : "a time",
        resourceCount: s.resourceCount,
      }));
    expect(real.code).toBe(0);
    expect(shape(real)).toEqual([
      { name: "lab", keys: ["current", "lastUpdate", "name", "resourceCount"], lastUpdate: "a time", resourceCount: 0 },
    ]);
    expect(shape(fake)).toEqual(shape(real));
  });

  it("whoami --json: the same fields, a file:// backend URL", () => {
    const { real, fake } = both(["whoami", "--json"]);
    for (const a of [real, fake]) {
      expect(a.code).toBe(0);
      const who = JSON.parse(a.stdout) as { url: string };
      expect(Object.keys(who).sort()).toEqual(["url", "user"]);
      expect(who.url).toMatch(/^file:\/\//);
    }
  });

  it("stack select of an unknown stack: exit 6 and the error the Automation API recognises", () => {
    const { real, fake } = both(["stack", "select", "--stack", "nope"]);
    expect(real.code).toBe(6);
    expect(real.errors).toEqual(["error: no stack named 'nope' found"]);
    expect({ code: fake.code, errors: fake.errors }).toEqual({ code: real.code, errors: real.errors });
  });

  it("refresh --preview-only with PULUMI_SKIP_CONFIRMATIONS=true: refused alike", () => {
    const { real, fake } = both(["refresh", "--preview-only", "--stack", "lab"], { PULUMI_SKIP_CONFIRMATIONS: "true" });
    expect(real.code).toBe(1);
    expect(real.errors).toEqual(["error: --yes and --preview-only cannot be used together"]);
    expect({ code: fake.code, errors: fake.errors }).toEqual({ code: real.code, errors: real.errors });
  });

  it("stack history --json of a stack never updated: an empty list", () => {
    const { real, fake } = both(["stack", "history", "--json", "--stack", "lab"]);
    expect(real.code).toBe(0);
    expect(JSON.parse(real.stdout)).toEqual([]);
    expect(fake.code).toBe(0);
    expect(JSON.parse(fake.stdout)).toEqual([]);
  });
});
