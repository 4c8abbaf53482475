/**
 * The fleet command's pure parts: its command line (every problem at once, naming the flag and what is allowed),
 * which stacks a run selects and in which order, the waves, and the report's table.
 */
import { describe, expect, it } from "vitest";
import { fleetOptions, FleetUsageError, planWaves, selectStacks } from "../../cli/fleet/plan";
import { formatChanges, formatDuration, renderReport, type StackResult } from "../../cli/fleet/report";
import { exitStatus } from "../../cli/fleet";

const parse = (positionals: string[], values: Record<string, string | boolean> = {}) =>
  fleetOptions({ positionals, values }, "/work/project");

describe("the fleet command line", () => {
  it("defaults: one canary, four at a time, the operation's time limit, this directory, pulumi on PATH", () => {
    expect(parse(["up"])).toEqual({
      op: "up",
      stacks: [],
      canary: 1,
      concurrency: 4,
      timeoutSeconds: 3600,
      graceSeconds: 60,
      dir: "/work/project",
      pulumiRoot: undefined,
      inline: false,
      json: undefined,
    });
    expect(parse(["drift"]).timeoutSeconds).toBe(1200);
  });

  it("reads globs in order, counts, durations and paths relative to the working directory", () => {
    const o = parse(["preview"], {
      stacks: "lab, branch-*,shop?",
      canary: "0",
      concurrency: "8",
      timeout: "1h30m",
      "cancel-grace": "10s",
      dir: "../sites",
      "pulumi-root": "tools/pulumi",
      inline: true,
    });
    expect(o).toMatchObject({
      stacks: ["lab", "branch-*", "shop?"],
      canary: 0,
      concurrency: 8,
      timeoutSeconds: 5400,
      graceSeconds: 10,
      dir: "/work/sites",
      pulumiRoot: "/work/project/tools/pulumi",
      inline: true,
    });
  });

  it("reports every problem at once, each naming its flag and what is allowed", () => {
    let err: unknown;
    try {
      parse(["deploy", "now"], { canary: "one", concurrency: "0", timeout: "soon", stacks: "lab,$(rm)" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FleetUsageError);
    const msg = (err as Error).message;
    expect(msg).toContain('operation: "deploy" is not one (allowed: preview, up, drift)');
    expect(msg).toContain("unexpected arguments: now");
    expect(msg).toContain('--canary: "one" is not a whole number ≥ 0');
    expect(msg).toContain('--concurrency: "0" is not a whole number ≥ 1');
    expect(msg).toContain('--timeout: "soon" is not a duration above zero (allowed: e.g. 90s, 20m, 1h30m)');
    expect(msg).toContain('--stacks: "$(rm)" is not a stack name glob');
    expect(msg).toContain("usage: npm run fleet");
  });

  it("a missing operation is named", () => {
    expect(() => parse([])).toThrow(/operation: missing \(allowed: preview, up, drift\)/);
  });
});

describe("stack selection", () => {
  const stacks = ["shop", "branch-b", "lab", "branch-a", "acme/router/edge"];

  it("selects every stack by name when no glob is given", () => {
    expect(selectStacks(stacks, [])).toEqual({
      stacks: ["acme/router/edge", "branch-a", "branch-b", "lab", "shop"],
      unmatched: [],
    });
  });

  it("orders by the first glob a stack matches, then by name; a stack is selected once", () => {
    expect(selectStacks(stacks, ["lab", "branch-*", "*"]).stacks).toEqual([
      "lab",
      "branch-a",
      "branch-b",
      "acme/router/edge",
      "shop",
    ]);
  });

  it("matches a backend's qualified name by its short name, and ? as one character", () => {
    expect(selectStacks(stacks, ["edge", "sho?"]).stacks).toEqual(["acme/router/edge", "shop"]);
  });

  it("names the globs that match nothing (a typo must not shrink the fleet silently)", () => {
    expect(selectStacks(stacks, ["lab", "brnach-*"])).toEqual({ stacks: ["lab"], unmatched: ["brnach-*"] });
  });

  it("takes glob characters of regular expressions literally", () => {
    expect(selectStacks(["a.b", "axb"], ["a.b"]).stacks).toEqual(["a.b"]);
  });
});

describe("waves", () => {
  const s = ["a", "b", "c", "d", "e", "f"];
  it("runs the canaries first in a wave of their own, then the rest in waves of at most K", () => {
    expect(planWaves(s, 2, 3)).toEqual([
      { index: 1, canary: true, stacks: ["a", "b"] },
      { index: 2, canary: false, stacks: ["c", "d", "e"] },
      { index: 3, canary: false, stacks: ["f"] },
    ]);
  });
  it("without canaries every wave holds K stacks (the last fewer)", () => {
    expect(planWaves(s, 0, 4).map((w) => w.stacks)).toEqual([
      ["a", "b", "c", "d"],
      ["e", "f"],
    ]);
  });
  it("more canaries than stacks makes one canary wave", () => {
    expect(planWaves(["a"], 3, 2)).toEqual([{ index: 1, canary: true, stacks: ["a"] }]);
  });
});

describe("the report", () => {
  const r = (over: Partial<StackResult>): StackResult => ({
    stack: "lab",
    wave: 1,
    canary: false,
    status: "ok",
    changes: {},
    errors: [],
    seconds: 12,
    ...over,
  });

  it("counts changes largest first, and formats durations", () => {
    expect(formatChanges("up", r({ changes: { create: 1, update: 2 } }))).toBe("3 (2 update, 1 create)");
    expect(formatChanges("up", r({ status: "not run" }))).toBe("—");
    // An up that failed changed what it changed; a preview that did not finish planned only part of its changes.
    expect(formatChanges("up", r({ status: "failed", changes: { create: 3 } }))).toBe("3 (3 create)");
    expect(formatChanges("preview", r({ status: "timed out", changes: { create: 18 } }))).toBe("—");
    expect(formatChanges("drift", r({ status: "failed", changes: { update: 1 } }))).toBe("—");
    expect(formatChanges("drift", r({ status: "drifted", changes: { update: 1 } }))).toBe("1 (1 update)");
    expect(formatDuration(7)).toBe("7s");
    expect(formatDuration(187)).toBe("3m07s");
    expect(formatDuration(3720)).toBe("1h02m");
  });

  it("lists every stack, then each failure's errors, then the stacks not run", () => {
    const text = renderReport({
      op: "up",
      stoppedAt: "branch",
      results: [
        r({ stack: "lab", canary: true, changes: { update: 2 } }),
        r({ stack: "branch", wave: 2, status: "failed", exitCode: 1, errors: ["lab-node-apply: NOT confirmed"] }),
        r({ stack: "shop", wave: 3, status: "not run", seconds: undefined }),
      ],
    });
    expect(text).toBe(
      [
        "stack   wave        result   changed       duration",
        "lab     1 (canary)  updated  2 (2 update)  12s",
        "branch  2           failed   0             12s",
        "shop    3           not run  —             —",
        "",
        "branch failed (exit 1):",
        "  lab-node-apply: NOT confirmed",
        "",
        "Not run (the fleet stopped after branch failed): shop",
        "",
      ].join("\n"),
    );
  });

  it("exit status: 0 all good, 2 drift without failures, 1 any failure, timeout or stack not run", () => {
    const rep = (...results: StackResult[]) => ({ op: "drift" as const, results });
    expect(exitStatus(rep(r({}), r({ stack: "b" })))).toBe(0);
    expect(exitStatus(rep(r({}), r({ stack: "b", status: "drifted" })))).toBe(2);
    expect(exitStatus(rep(r({ status: "drifted" }), r({ stack: "b", status: "failed" })))).toBe(1);
    expect(exitStatus(rep(r({ status: "timed out" })))).toBe(1);
    expect(exitStatus(rep(r({ status: "not run" })))).toBe(1);
  });
});
