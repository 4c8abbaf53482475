/**
 * Test tools built from the Go module proxy (DESIGN decision 17): pinned by the go.mod/go.sum of a wrapper
 * module under tools/, built once per machine into a cache outside the repository, never shipped to the router.
 *
 * A tool's cache directory is keyed by its pinned version and a digest of its wrapper module's files, so a
 * change to the pins or to our own Go code builds a new directory and an unchanged tool is never rebuilt:
 *   ${ROUTER_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-router/tools}/<tool>-<version>-<digest>/
 * The directory appears whole (built in a sibling temporary directory, then renamed), so its existence means
 * the build finished.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** The tools/ folder of this checkout. */
export const TOOLS_DIR = __dirname;

/** One binary a tool's wrapper module builds. */
export interface GoBinary {
  /** File name in the tool's cache directory. */
  name: string;
  /** Package to build, as `go build` takes it (a path inside the wrapper module, or a module package path). */
  pkg: string;
  /** Linker flags; `{version}` stands for the tool's pinned version (as the upstream release build sets it). */
  ldflags?: string;
}

/** A tool: a wrapper module under tools/ and the binaries built from it. */
export interface GoTool {
  /** Name of the tool and of its folder under tools/. */
  name: string;
  /** The module whose version names the cache directory (it must be required in the wrapper's go.mod). */
  versionOf: string;
  /** Binaries to build. */
  binaries: GoBinary[];
}

export const GO_TOOLS: readonly GoTool[] = [
  {
    // The linter of .github/workflows/ (test/review/workflow.test.ts); it runs shellcheck on the workflow's scripts.
    name: "actionlint",
    versionOf: "github.com/rhysd/actionlint",
    binaries: [{ name: "actionlint", pkg: "github.com/rhysd/actionlint/cmd/actionlint" }],
  },
  {
    // GoBGP, the BGP speaker Talos embeds for BGPInstanceConfig (siderolabs/talos go.mod: github.com/osrg/gobgp/v4
    // v4.7.0, replaced by a fork with a watcher-leak fix): the virtual appliance runs the node's BGP with it.
    name: "gobgp",
    versionOf: "github.com/osrg/gobgp/v4",
    binaries: [
      { name: "gobgpd", pkg: "github.com/osrg/gobgp/v4/cmd/gobgpd" },
      { name: "gobgp", pkg: "github.com/osrg/gobgp/v4/cmd/gobgp" },
    ],
  },
  {
    name: "talos-validate",
    versionOf: "github.com/siderolabs/talos/pkg/machinery",
    binaries: [{ name: "talos-validate", pkg: "." }],
  },
  {
    // The Pulumi CLI (engine), at the version of the Node SDK in package.json; bin/ is the layout the
    // Automation API's PulumiCommand.get({ root }) expects.
    name: "pulumi",
    versionOf: "github.com/pulumi/pulumi/pkg/v3",
    binaries: [
      {
        name: "bin/pulumi",
        pkg: "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
        ldflags: "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={version}",
      },
    ],
  },
  {
    // VictoriaLogs, the log store of the observability stack (the router runs its upstream image): the log
    // pipeline test and the stack's benchmark run this build. CGO off is upstream's "pure" build.
    name: "victoria-logs",
    versionOf: "github.com/VictoriaMetrics/VictoriaLogs",
    binaries: [
      {
        name: "victoria-logs",
        pkg: "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs",
        ldflags: "-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-{version}",
      },
    ],
  },
  {
    // VictoriaMetrics single-node and vmalert: the other TSDB candidate, the peer of the stack's benchmark.
    name: "victoria-metrics",
    versionOf: "github.com/VictoriaMetrics/VictoriaMetrics",
    binaries: [
      {
        name: "victoria-metrics",
        pkg: "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics",
        ldflags: "-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-metrics-{version}",
      },
      {
        name: "vmalert",
        pkg: "github.com/VictoriaMetrics/VictoriaMetrics/app/vmalert",
        ldflags: "-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=vmalert-{version}",
      },
    ],
  },
];

/** Root of the tools cache. */
export function toolsCacheRoot(): string {
  if (process.env.ROUTER_TOOLS_CACHE) return process.env.ROUTER_TOOLS_CACHE;
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cache, "edge-router", "tools");
}

/** The tool of that name; throws for an unknown name with the known ones. */
export function goTool(name: string): GoTool {
  const tool = GO_TOOLS.find((t) => t.name === name);
  if (!tool) throw new Error(`unknown Go tool '${name}': known are ${GO_TOOLS.map((t) => t.name).join(", ")}`);
  return tool;
}

/** The version of `module` that a go.mod text requires (the replacement's version when it is replaced). */
export function requiredVersion(goMod: string, module: string): string {
  const escaped = module.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const replaced = new RegExp(`^\\s*(?:replace\\s+)?${escaped}\\s+=>\\s+\\S+\\s+(v\\S+)`, "m").exec(goMod);
  if (replaced) return replaced[1];
  const required = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, "m").exec(goMod);
  if (!required) throw new Error(`go.mod does not require ${module}`);
  return required[1];
}

/** Digest of a tool's definition and the files of its wrapper module (go.mod, go.sum, Go sources, in name order). */
function moduleDigest(tool: GoTool, dir: string): string {
  const h = createHash("sha256");
  h.update(`${JSON.stringify(tool)}\0`);
  for (const f of readdirSync(dir).sort()) {
    if (!/^go\.(mod|sum)$|\.go$/.test(f)) continue;
    h.update(`${f}\0`);
    h.update(readFileSync(join(dir, f)));
    h.update("\0");
  }
  return h.digest("hex").slice(0, 12);
}

/** The version of a tool as this checkout pins it (its `versionOf` module in the wrapper's go.mod). */
export function toolVersion(name: string): string {
  const tool = goTool(name);
  return requiredVersion(readFileSync(join(TOOLS_DIR, tool.name, "go.mod"), "utf8"), tool.versionOf);
}

/** The cache directory of a tool as this checkout pins it. */
export function toolDir(name: string): string {
  const tool = goTool(name);
  return join(toolsCacheRoot(), `${tool.name}-${toolVersion(name)}-${moduleDigest(tool, join(TOOLS_DIR, tool.name))}`);
}

/** Path of one binary of a tool in the cache (it exists once `npm run build:tools` has built the tool). */
export function toolBinary(tool: string, binary = tool): string {
  if (!goTool(tool).binaries.some((b) => b.name === binary)) throw new Error(`${tool} builds no binary ${binary}`);
  return join(toolDir(tool), binary);
}
