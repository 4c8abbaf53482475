/**
 * Temporary directories that outlive the call that made them (a test reads them afterwards) and
 * are removed after the last test of the file that imports this module. Set KEEP_TEST_TMP=1 to
 * keep them for debugging.
 */
import { afterAll } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const made: string[] = [];

afterAll(() => {
  if (process.env.KEEP_TEST_TMP === "1") return;
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory under the system temporary directory, removed after the file's tests. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}
