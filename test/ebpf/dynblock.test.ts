/**
 * The WAN guard's dynamic blocklist (ebpf/loader/dynblock.c, the guard's dp_dyn4/dp_dyn6) on the real verifier
 * and BPF_PROG_TEST_RUN: what an IDS alert adds drops its source (an IPv6 source's /64) and nothing else of its
 * /24, protected sources and a full table are refused, a table publish keeps the block, an entry stops blocking at
 * its expiry by itself, and the sweep gives the per-/24 summary back as it was published.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { tier } from "../helpers/tier";
import { BUILD_COMMANDS, buildEbpf, runTool } from "./lib";

const t = tier("ebpf dynamic blocklist", { root: true, commands: [...BUILD_COMMANDS] });

interface Row {
  row?: string;
  ok?: boolean;
  detail?: string;
  summary?: { rows: number; failed: number };
}

describe.skipIf(!t.ok)("dynamic blocklist", () => {
  let rows: Row[] = [];
  let status: number | null = null;
  beforeAll(() => {
    buildEbpf("tests");
    const r = runTool<Row>("dynblock_test", []);
    rows = r.lines;
    status = r.status;
    if (!rows.some((l) => l.summary)) throw new Error(`dynblock_test produced no summary:\n${r.stderr}`);
  }, 600_000);

  const byName = (name: string) => {
    const r = rows.find((x) => x.row === name);
    if (!r) throw new Error(`no row "${name}"`);
    return r;
  };

  it.each([
    "the blocked source is dropped as dynamic",
    "its /24 neighbour still passes",
    "another address of its /64 is dropped",
    "the next /64 passes",
    "a protected source is refused",
    "an IPv6 /64 holding a protected address is refused",
    "a full table refuses a fifth",
    "a table publish keeps the block (the new generation is marked before it is active)",
    "an expired entry stops blocking by itself, before any sweep",
    "the first block expires on time (2 s)",
    "the sweep removes the two expired entries",
    "once every entry is gone both generations' summaries are as published",
  ])("%s", (name) => {
    const r = byName(name);
    expect(r.ok, r.detail).toBe(true);
  });

  it("every row holds and the tool exits 0", () => {
    expect(rows.filter((r) => r.ok === false)).toEqual([]);
    expect(rows.find((r) => r.summary)?.summary?.rows).toBe(28);
    expect(status).toBe(0);
  });
});
