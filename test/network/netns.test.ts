/**
 * The namespace harness leaves nothing on the machine when its test is skipped: a kernel test file constructs its
 * Netns in the describe body, which runs even when `describe.skipIf` skips every test in it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Netns } from "./netns";

describe("Netns scratch directory", () => {
  const saved = process.env.TMPDIR;
  const root = mkdtempSync(join(tmpdir(), "netns-test-"));
  afterEach(() => {
    process.env.TMPDIR = saved;
  });

  it("is made on first use, not by the constructor, and removed by close", () => {
    process.env.TMPDIR = root;
    const lab = new Netns("nt");
    expect(readdirSync(root)).toEqual([]);
    const dir = lab.dir;
    expect(dir.startsWith(root)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(["probe.js", "server.js"]);
    expect(lab.dir).toBe(dir);
    lab.close();
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(root)).toEqual([]);
    rmSync(root, { recursive: true, force: true });
  });
});
