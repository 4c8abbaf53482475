/**
 * The fleet command as an operator runs it (`npm run fleet -- …`, its own process) against a fake Pulumi CLI
 * (fake-pulumi/bin/pulumi, modelled on v3.248.0) injected through `--pulumi-root`: the CLI's calls and their
 * time spans show what ran, in which order and how many at once; the world's stack files show what an up
 * applied; the table, progress and exit status are what the operator sees.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { maxOverlap, tableRows, World, type FakeCall } from "./world";

const ups = (w: World): FakeCall[] => w.operations().filter((c) => c.sub === "up");
const span = (calls: FakeCall[], stack: string) => calls.find((c) => c.stack === stack)!;

/** True while a process runs (a zombie waiting for its reaper has ended). */
function running(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1][0] !== "Z";
  } catch {
    return false;
  }
}

describe("fleet preview", () => {
  it("previews every selected stack, changes nothing, names the backend, warns of a site without a stack", async () => {
    const w = new World(
      {
        lab: { pending: { update: 2, create: 1 } },
        "branch-a": {},
        "branch-b": { pending: { delete: 1 } },
        other: { project: "another-project" },
      },
      { siteFiles: ["branch-c"] },
    );
    const json = join(w.dir, "report.json");
    const run = await w.fleet(["preview", "--stacks", "branch-*,lab", "--concurrency", "3", "--json", json]);
    expect(run.code).toBe(0);
    expect(tableRows(run.stdout)).toEqual([
      { stack: "branch-a", wave: "1 (canary)", result: "no changes", changed: "0", duration: expect.any(String) },
      { stack: "branch-b", wave: "2", result: "changes", changed: "1 (1 delete)", duration: expect.any(String) },
      { stack: "lab", wave: "2", result: "changes", changed: "3 (2 update, 1 create)", duration: expect.any(String) },
    ]);
    expect(run.stderr).toContain(`preview of 3 stacks in file://${w.dir}/backend in 2 waves`);
    expect(run.stderr).toContain("warning: Pulumi.branch-c.yaml has no stack in this backend");
    // Another project's stack in the same backend is not part of this fleet.
    expect(w.operations().map((c) => c.stack)).not.toContain("other");
    expect(w.operations().every((c) => c.sub === "preview")).toBe(true);
    expect(w.stack("lab").pending).toEqual({ update: 2, create: 1 });
    const report = JSON.parse(readFileSync(json, "utf8")) as { results: { stack: string; changes: object }[] };
    expect(report.results.map((r) => [r.stack, r.changes])).toEqual([
      ["branch-a", {}],
      ["branch-b", { delete: 1 }],
      ["lab", { update: 2, create: 1 }],
    ]);
  }, 300_000);

  it("a glob that matches no stack is an error that names it and lists the stacks; nothing runs", async () => {
    const w = new World({ lab: {}, shop: {} });
    const run = await w.fleet(["preview", "--stacks", "lab,shp*"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('--stacks: "shp*" matches no stack of this project');
    expect(run.stderr).toContain("(stacks: lab, shop)");
    expect(w.operations()).toEqual([]);
  }, 120_000);
});

describe("fleet up", () => {
  it("runs the canary alone first, then waves of at most K stacks at once, and applies every stack", async () => {
    const stacks = Object.fromEntries(
      ["s1", "s2", "s3", "s4", "s5"].map((s) => [s, { pending: { update: 2 }, stepMs: 400 }]),
    );
    const w = new World(stacks);
    const run = await w.fleet(["up", "--canary", "1", "--concurrency", "2"]);
    expect(run.code).toBe(0);
    const calls = ups(w);
    expect(calls.map((c) => c.stack).sort()).toEqual(["s1", "s2", "s3", "s4", "s5"]);
    // The canary's update ended before any other began.
    const canary = span(calls, "s1");
    for (const c of calls.filter((x) => x.stack !== "s1")) expect(c.start).toBeGreaterThan(canary.end);
    // Waves: [s2, s3] both ran at once, and [s4, s5] started only after both ended.
    expect(maxOverlap(calls)).toBe(2);
    const wave2End = Math.max(span(calls, "s2").end, span(calls, "s3").end);
    for (const s of ["s4", "s5"]) expect(span(calls, s).start).toBeGreaterThan(wave2End);
    expect(tableRows(run.stdout).map((r) => [r.stack, r.wave, r.result, r.changed])).toEqual([
      ["s1", "1 (canary)", "updated", "2 (2 update)"],
      ["s2", "2", "updated", "2 (2 update)"],
      ["s3", "2", "updated", "2 (2 update)"],
      ["s4", "3", "updated", "2 (2 update)"],
      ["s5", "3", "updated", "2 (2 update)"],
    ]);
    for (const s of Object.keys(stacks)) expect(w.stack(s).pending).toEqual({});
    // Progress names each resource as it is done.
    expect(run.stderr).toContain("s3: updated s3-update-2 (command:local:Command)");
  }, 400_000);

  it("a failed canary stops the fleet: no other stack is touched, each is listed as not run", async () => {
    const w = new World({
      lab: { pending: { update: 2 }, faults: { up: { fail: "the node reverted: NOT confirmed", afterSteps: 1 } } },
      shop: { pending: { update: 1 } },
      office: { pending: { update: 1 } },
    });
    const run = await w.fleet(["up", "--stacks", "lab,*"]);
    expect(run.code).toBe(1);
    expect(ups(w).map((c) => c.stack)).toEqual(["lab"]);
    expect(w.stack("shop").pending).toEqual({ update: 1 });
    expect(tableRows(run.stdout).map((r) => [r.stack, r.result, r.changed])).toEqual([
      ["lab", "failed", "1 (1 update)"],
      ["office", "not run", "—"],
      ["shop", "not run", "—"],
    ]);
    expect(run.stdout).toContain("lab failed (exit 1):\n  lab-update-2: the node reverted: NOT confirmed");
    expect(run.stdout).toContain("Not run (the fleet stopped after lab failed): office, shop");
    expect(run.stderr).toContain("lab: FAILED update lab-update-2 (command:local:Command)");
  }, 300_000);

  it("a failure in a wave lets its running neighbours finish, and no later wave starts", async () => {
    const w = new World({
      a: { pending: { update: 1 } },
      b: { pending: { update: 1 }, faults: { up: { fail: "health gate failed" } } },
      c: { pending: { update: 3 }, stepMs: 300 },
      d: { pending: { update: 1 } },
    });
    const run = await w.fleet(["up", "--canary", "1", "--concurrency", "2"]);
    expect(run.code).toBe(1);
    expect(
      ups(w)
        .map((c) => c.stack)
        .sort(),
    ).toEqual(["a", "b", "c"]);
    expect(w.stack("c").pending).toEqual({});
    expect(w.stack("d").pending).toEqual({ update: 1 });
    expect(tableRows(run.stdout).map((r) => [r.stack, r.result])).toEqual([
      ["a", "updated"],
      ["b", "failed"],
      ["c", "updated"],
      ["d", "not run"],
    ]);
  }, 300_000);
});

describe("a stack that hangs", () => {
  it("is cancelled at --timeout like Ctrl-C (the CLI cancels), reported as timed out, and stops the fleet", async () => {
    const w = new World({
      lab: { pending: { update: 2 }, faults: { up: { hang: "cancellable", afterSteps: 1 } } },
      shop: { pending: { update: 1 } },
    });
    const run = await w.fleet(["up", "--timeout", "15s", "--cancel-grace", "10s"]);
    expect(run.code).toBe(1);
    const lab = span(ups(w), "lab");
    expect(lab.code).toBe(8); // the CLI's "update cancelled"
    // It ran until the fleet's time limit, counted from the stack's start.
    expect(lab.end - run.startedAt).toBeGreaterThan(15_000);
    expect(tableRows(run.stdout).map((r) => [r.stack, r.result])).toEqual([
      ["lab", "timed out (cancel)"],
      ["shop", "not run"],
    ]);
    expect(run.stderr).toContain("lab: no result after 15s");
    expect(run.stderr).toContain("lab: cancelling (SIGINT)");
    expect(ups(w).map((c) => c.stack)).toEqual(["lab"]);
  }, 300_000);

  it("a CLI stuck in a step is terminated by the second signal after the grace period", async () => {
    const w = new World({ lab: { pending: { update: 1 }, faults: { up: { hang: "stuck" } } } });
    const run = await w.fleet(["up", "--timeout", "12s", "--cancel-grace", "5s"]);
    expect(run.code).toBe(1);
    expect(span(ups(w), "lab").code).toBe(8);
    expect(tableRows(run.stdout)[0].result).toBe("timed out (terminate)");
    expect(run.stderr).toMatch(/lab: cancelling \(SIGINT\)\n(.*\n)*lab: terminating \(second SIGINT\)/);
  }, 300_000);

  it("a CLI that answers no signal is killed with its process group, and the fleet still ends", async () => {
    const w = new World({ lab: { pending: { update: 1 }, faults: { preview: { hang: "unresponsive" } } } });
    const run = await w.fleet(["preview", "--timeout", "12s", "--cancel-grace", "4s"]);
    expect(run.code).toBe(1);
    expect(tableRows(run.stdout)[0].result).toBe("timed out (kill)");
    expect(run.stderr).toContain("lab: killing its processes (SIGKILL)");
    // The preview began and never ended: it was killed, and does not outlive the fleet.
    expect(w.operations()).toEqual([]);
    const [preview] = w.started();
    expect(preview).toMatchObject({ sub: "preview", stack: "lab" });
    expect(running(preview.pid)).toBe(false);
  }, 300_000);
});

describe("fleet drift", () => {
  it("reports stacks whose router no longer matches (a refresh preview expecting no changes), exit 2", async () => {
    const w = new World({
      lab: { drifted: { update: 1 } },
      shop: {},
      office: { drifted: { delete: 2 } },
    });
    const run = await w.fleet(["drift", "--canary", "0"]);
    expect(run.code).toBe(2);
    for (const c of w.operations())
      expect(c.argv).toEqual(expect.arrayContaining(["--preview-only", "--expect-no-changes"]));
    expect(tableRows(run.stdout).map((r) => [r.stack, r.result, r.changed])).toEqual([
      ["lab", "drifted", "1 (1 update)"],
      ["office", "drifted", "2 (2 delete)"],
      ["shop", "in sync", "0"],
    ]);
    expect(run.stdout).toContain("Drifted (the router no longer matches its stack): lab, office");
    expect(run.stderr).toContain("lab: differs: lab-update-1 (command:local:Command) would update");
  }, 300_000);

  it("checks drift also where the environment skips confirmations (PULUMI_SKIP_CONFIRMATIONS, as CI sets)", async () => {
    const w = new World({ lab: { drifted: { update: 1 } }, shop: {} });
    const run = await w.fleet(["drift"], { env: { PULUMI_SKIP_CONFIRMATIONS: "true" } });
    expect(run.code).toBe(2);
    expect(tableRows(run.stdout).map((r) => [r.stack, r.result])).toEqual([
      ["lab", "drifted"],
      ["shop", "in sync"],
    ]);
  }, 300_000);

  it("a drift check that fails is a failure, not drift (exit 1)", async () => {
    const w = new World({ lab: { faults: { refresh: { fail: "cannot reach the cluster" } } }, shop: {} });
    const run = await w.fleet(["drift"]);
    expect(run.code).toBe(1);
    expect(tableRows(run.stdout).map((r) => [r.stack, r.result])).toEqual([
      ["lab", "failed"],
      ["shop", "not run"],
    ]);
    expect(run.stdout).toContain("cannot reach the cluster");
  }, 300_000);
});

describe("Ctrl-C on the fleet", () => {
  it("cancels the running stacks through their CLIs and starts no other", async () => {
    const w = new World({
      a: { pending: { update: 1 }, faults: { up: { hang: "cancellable" } } },
      b: { pending: { update: 1 } },
    });
    // Interrupt the fleet as a terminal would, once the canary's CLI is running.
    const poll = setInterval(() => {
      if (w.started().some((s) => s.stack === "a")) {
        clearInterval(poll);
        process.kill(w.fleetPid!, "SIGINT");
      }
    }, 200);
    const run = await w.fleet(["up", "--canary", "1"]);
    clearInterval(poll);
    expect(run.code).toBe(1);
    expect(span(ups(w), "a").code).toBe(8);
    expect(tableRows(run.stdout).map((r) => [r.stack, r.result])).toEqual([
      ["a", "cancelled"],
      ["b", "not run"],
    ]);
    expect(run.stderr).toContain("interrupted: no further stacks start");
  }, 300_000);
});
