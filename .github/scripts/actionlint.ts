/**
 * actionlint (github.com/rhysd/actionlint), the linter of .github/workflows/: test tooling (DESIGN decision 17),
 * pinned here, built once per machine from the Go module proxy with `go install module@version` (the proxy's
 * checksum database verifies the module) into the tools cache outside the repository:
 *   ${ROUTER_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-router/tools}/actionlint-<version>/actionlint
 * The directory appears whole (built in a sibling temporary directory, then renamed).
 *
 *   npm run build:actionlint      # builds it if missing and prints its path (.ci/run does this)
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const ACTIONLINT_MODULE = "github.com/rhysd/actionlint/cmd/actionlint";
export const ACTIONLINT_VERSION = "v1.7.12";

/** The tools cache, as the Go-built test tools use it. */
export function toolsCache(): string {
  if (process.env.ROUTER_TOOLS_CACHE) return process.env.ROUTER_TOOLS_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "edge-router", "tools");
}

/** Where the pinned actionlint lives once built. */
export function actionlintPath(): string {
  return join(toolsCache(), `actionlint-${ACTIONLINT_VERSION}`, "actionlint");
}

/** Builds the pinned actionlint unless the cache has it; returns its path. Throws with go's output on failure. */
export function buildActionlint(): string {
  const path = actionlintPath();
  if (existsSync(path)) return path;
  const dir = join(toolsCache(), `actionlint-${ACTIONLINT_VERSION}`);
  mkdirSync(toolsCache(), { recursive: true });
  const tmp = mkdtempSync(`${dir}.tmp-`);
  try {
    const r = spawnSync("go", ["install", `${ACTIONLINT_MODULE}@${ACTIONLINT_VERSION}`], {
      env: { ...process.env, GOBIN: tmp, GOFLAGS: "-mod=mod" },
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`go install ${ACTIONLINT_MODULE}@${ACTIONLINT_VERSION} failed:\n${r.stderr}`);
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return path;
}

if (require.main === module) console.log(buildActionlint());
