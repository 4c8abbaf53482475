/**
 * Builds the Go test tools (tools/go-tools.ts) that are missing from the cache; a tool already there is left
 * alone. Needs Go ≥ 1.26 and the Go module proxy; modules are fetched with the pins of each wrapper's go.sum
 * (-mod=readonly: a pin that would have to change fails the build instead of drifting).
 *
 *   npm run build:tools [-- NAME...]      build the named tools (default: all)
 *   npm run build:tools -- --print NAME   print a tool's cache directory
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { GO_TOOLS, goTool, TOOLS_DIR, toolDir, toolVersion, type GoTool } from "./go-tools";

/** Environment of every go command: no toolchain download, no VCS fallback, pins kept as they are. */
function goEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GOTOOLCHAIN: "local",
    GOFLAGS: "-mod=readonly -trimpath",
    GOPROXY: process.env.GOPROXY || "https://proxy.golang.org",
    CGO_ENABLED: "0",
  };
}

/** Builds every binary of `tool` into a temporary sibling of its cache directory, then renames it into place. */
function build(tool: GoTool): { dir: string; seconds: number } {
  const dir = toolDir(tool.name);
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = mkdtempSync(`${dir}.tmp-`);
  const started = process.hrtime.bigint();
  try {
    for (const bin of tool.binaries) {
      const ldflags = bin.ldflags ? ["-ldflags", bin.ldflags.replaceAll("{version}", toolVersion(tool.name))] : [];
      const out = join(tmp, bin.name);
      mkdirSync(dirname(out), { recursive: true });
      const r = spawnSync("nice", ["-n", "10", "go", "build", ...ldflags, "-o", out, bin.pkg], {
        cwd: join(TOOLS_DIR, tool.name),
        env: goEnv(),
        stdio: ["ignore", "inherit", "inherit"],
      });
      if (r.error) throw new Error(`${tool.name}: cannot run go: ${r.error.message} (Go ≥ 1.26 must be on PATH)`);
      if (r.status !== 0) throw new Error(`${tool.name}: go build ${bin.pkg} failed (exit ${r.status})`);
    }
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  return { dir, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { print: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("usage: npm run build:tools [-- NAME...] | [-- --print NAME]");
    console.log(`tools: ${GO_TOOLS.map((t) => t.name).join(", ")}`);
    return;
  }
  const tools = positionals.length ? positionals.map(goTool) : [...GO_TOOLS];
  if (values.print) {
    for (const t of tools) console.log(toolDir(t.name));
    return;
  }
  for (const tool of tools) {
    const dir = toolDir(tool.name);
    if (existsSync(dir)) {
      console.log(`${tool.name}: cached in ${dir}`);
      continue;
    }
    console.log(`${tool.name}: building into ${dir}`);
    const { seconds } = build(tool);
    console.log(`${tool.name}: built in ${seconds.toFixed(1)} s`);
  }
}

try {
  main();
} catch (e) {
  console.error((e as Error).message);
  process.exit(1);
}
