/**
 * A ready Pulumi workspace for tests that run the real engine: the Pulumi CLI built by `npm run build:tools`,
 * a local file backend, a passphrase secrets provider, its own PULUMI_HOME with the resource plugins, and a
 * stack of this project whose configuration is a Pulumi.<stack>.yaml (the repository's by default), with
 * secret keys set as Pulumi secrets. The CLI never downloads anything: update checks, plugin acquisition and
 * ambient plugins are off, so a missing plugin is an error.
 *
 * The program runs as an Automation API inline program: `index.ts` is loaded in this process and served to the
 * engine by @pulumi/pulumi's own language runtime (`--client`), because the Node.js language host plugin is not
 * served by the Go module proxy (tools/README.md). Resource plugins the proxy does not serve at the versions
 * package-lock.json pins are preview stand-ins (engine-stand-in-provider.ts): a preview works, an `up` fails; or,
 * for command, tls and random with `engineProject({ models: true })`, models that act as the real providers do
 * (engine-model-provider.ts), so an `up` of what uses only those (the node part) runs.
 *
 *   const ws = await engineWorkspace({ secrets: { registryPassword: "…" } });
 *   const result = await ws.stack.preview({ onEvent: … });
 *   await ws.dispose();
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { LocalWorkspace, PulumiCommand, Stack, type PulumiFn } from "@pulumi/pulumi/automation";
import { parse, stringify } from "yaml";
import { toolBinary, toolDir } from "../../tools/go-tools";
import { ROOT } from "./stacks";
import { tempDir } from "./temp";
import { tier, type Tier } from "./tier";

/** The Pulumi CLI in the tools cache. */
export const PULUMI_CLI = toolBinary("pulumi", "bin/pulumi");

/** The resource plugins the program uses (the @pulumi/* packages in package.json that have one). */
export const RESOURCE_PLUGINS = ["command", "kubernetes", "random", "tls"] as const;

/** The tier of tests that run the real engine. */
export function engineTier(): Tier {
  return tier("pulumi-engine", { files: [PULUMI_CLI], hint: "build it with: npm run build:tools" });
}

/** Version of an installed @pulumi/* package: the plugin version its SDK asks the engine for. */
export function sdkVersion(pkg: string): string {
  return (
    JSON.parse(readFileSync(join(ROOT, "node_modules", "@pulumi", pkg, "package.json"), "utf8")) as {
      version: string;
    }
  ).version;
}

export interface EngineWorkspaceOptions {
  /** Stack name (default "dev"). */
  stack?: string;
  /** The repository's stack file whose config the stack gets (default: the stack's own name). */
  site?: string;
  /** The stack's `config:` map as in Pulumi.<stack>.yaml (default: the repository's file for the site). */
  config?: Record<string, unknown>;
  /** An existing project (and its backend and PULUMI_HOME) to add the stack to (default: a new one). */
  project?: EngineProject;
  /** Keys of this project (`registryPassword`) set as Pulumi secrets; `secure:` values of the file are dropped. */
  secrets?: Record<string, string>;
  /** The inline program (default: the repository's index.ts). */
  program?: PulumiFn;
}

/** A project directory, its local file backend and PULUMI_HOME with the plugins: stacks can be added to it. */
export interface EngineProject {
  /** Directory holding Pulumi.yaml and the Pulumi.<stack>.yaml files. */
  projectDir: string;
  /** The file backend's directory (state, history, backups). */
  backendDir: string;
  /** PULUMI_HOME, with the plugins. */
  pulumiHome: string;
  /** Environment every CLI run gets (the passphrase included). */
  env: Record<string, string>;
}

export interface EngineWorkspace extends EngineProject {
  /** The stack, with the program inline; preview/up/destroy/refresh as the Automation API offers them. */
  stack: Stack;
  /** Removes the stack from the backend; the directories go with the test file's temporary directories. */
  dispose(): Promise<void>;
}

/** Runs the program's index.ts as an inline program; each run loads a fresh instance of the module. */
let runs = 0;
async function program(): Promise<Record<string, unknown>> {
  const entry = join(ROOT, "index.ts");
  const mod = (await import(runs++ === 0 ? entry : `${entry}?engine=${runs}`)) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(mod).filter(([k]) => k !== "default" && k !== "__esModule"));
}

/** The resource plugins that have a model acting as the real provider does (engine-model-provider.ts). */
export const MODELLED_PLUGINS = ["command", "random", "tls"] as const;

/**
 * Writes a plugin shim for `name` at the version its SDK asks for: the model of the provider when `model`, else the
 * preview stand-in.
 */
function installStandIn(pulumiHome: string, name: string, model = false): void {
  const version = sdkVersion(name);
  const dir = join(pulumiHome, "plugins", `resource-${name}-v${version}`);
  mkdirSync(dir, { recursive: true });
  const shim = join(dir, `pulumi-resource-${name}`);
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  writeFileSync(
    shim,
    [
      "#!/bin/sh",
      `exec ${q(process.execPath)} --import ${q(join(ROOT, "node_modules/tsx/dist/loader.mjs"))} ` +
        `${q(join(__dirname, model ? "engine-model-provider.ts" : "engine-stand-in-provider.ts"))} ` +
        `${q(name)} ${q(version)} "$@"`,
      "",
    ].join("\n"),
  );
  chmodSync(shim, 0o755);
}

/** The stack file: the given config (or the repository's), without `secure:` values or another salt. */
function stackFile(site: string, config?: Record<string, unknown>): string {
  const base =
    config ??
    (parse(readFileSync(join(ROOT, `Pulumi.${site}.yaml`), "utf8")) as { config: Record<string, unknown> }).config ??
    {};
  const plain = Object.fromEntries(
    Object.entries(base).filter(([, v]) => !(v && typeof v === "object" && "secure" in (v as object))),
  );
  return stringify({ config: plain }, { lineWidth: 0 });
}

/** The analyzer plugin that boots a Node.js policy pack, which Pulumi's releases ship beside the CLI (tools/pulumi-policy/). */
export const POLICY_ANALYZER = join(ROOT, "tools/pulumi-policy/pulumi-analyzer-policy-nodejs");

/**
 * Installs the policy analyzer plugin in PULUMI_HOME's plugin cache, where the CLI finds it with ambient plugins
 * off (pulumi/pulumi sdk/go/common/workspace/plugins.go getPluginInfoAndPath: an unversioned request takes the
 * newest cached `analyzer-policy-nodejs-v*`). It is a link, so the plugin is the repository's script.
 */
function installPolicyAnalyzer(pulumiHome: string): void {
  const dir = join(pulumiHome, "plugins", `analyzer-policy-nodejs-v${sdkVersion("pulumi")}`);
  mkdirSync(dir, { recursive: true });
  symlinkSync(POLICY_ANALYZER, join(dir, "pulumi-analyzer-policy-nodejs"));
}

export interface EngineProjectOptions {
  /**
   * Install the models of command, tls and random (MODELLED_PLUGINS) that act as the real providers do, so
   * `pulumi up` creates, updates and deletes; kubernetes stays a preview stand-in. Default: every plugin is a
   * preview stand-in (an `up` fails at its first create).
   */
  models?: boolean;
  /** Variables added to the environment of every CLI run, and so of the plugins and the commands they run. */
  env?: Record<string, string>;
}

/**
 * A new project directory of this program (Pulumi.yaml), an empty file backend and PULUMI_HOME with plugins: the
 * resource stand-ins (or models) and the policy analyzer, so `--policy-pack policies` runs the repository's pack.
 */
export function engineProject(opts: EngineProjectOptions = {}): EngineProject {
  const root = tempDir("engine-");
  const projectDir = join(root, "project");
  const backendDir = join(root, "backend");
  const pulumiHome = join(root, "home");
  for (const d of [projectDir, backendDir, pulumiHome]) mkdirSync(d, { recursive: true });
  const modelled: readonly string[] = opts.models ? MODELLED_PLUGINS : [];
  for (const p of RESOURCE_PLUGINS) installStandIn(pulumiHome, p, modelled.includes(p));
  installPolicyAnalyzer(pulumiHome);
  copyFileSync(join(ROOT, "Pulumi.yaml"), join(projectDir, "Pulumi.yaml"));
  const env: Record<string, string> = {
    PULUMI_HOME: pulumiHome,
    PULUMI_BACKEND_URL: `file://${backendDir}`,
    PULUMI_CONFIG_PASSPHRASE: randomBytes(16).toString("hex"),
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_IGNORE_AMBIENT_PLUGINS: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    ...opts.env,
  };
  return { projectDir, backendDir, pulumiHome, env };
}

/** Creates the workspace and its stack (`pulumi stack init` with the passphrase provider), config set. */
export async function engineWorkspace(opts: EngineWorkspaceOptions = {}): Promise<EngineWorkspace> {
  const stackName = opts.stack ?? "dev";
  const project = opts.project ?? engineProject();
  const { projectDir, backendDir, pulumiHome, env } = project;
  writeFileSync(join(projectDir, `Pulumi.${stackName}.yaml`), stackFile(opts.site ?? stackName, opts.config));
  const pulumiCommand = await PulumiCommand.get({ root: toolDir("pulumi") });
  const ws = await LocalWorkspace.create({
    workDir: projectDir,
    pulumiHome,
    pulumiCommand,
    envVars: env,
    program: opts.program ?? program,
    secretsProvider: "passphrase",
  });
  const stack = await Stack.create(stackName, ws);
  for (const [key, value] of Object.entries(opts.secrets ?? {})) await stack.setConfig(key, { value, secret: true });
  return {
    stack,
    projectDir,
    backendDir,
    pulumiHome,
    env,
    dispose: () => ws.removeStack(stackName, { force: true }),
  };
}

/**
 * The resources `npm run render` lists in resources.json for a site, from its own process (the mock runtime,
 * apart from the engine).
 */
export function renderedResources(site = "dev"): { urn: string; type: string; parent?: string }[] {
  const out = tempDir("engine-render-");
  const r = spawnSync(process.execPath, ["--import", "tsx", "cli/render.ts", "--stack", site, "--out", out], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`npm run render failed: ${r.stderr}`);
  return (JSON.parse(readFileSync(join(out, "resources.json"), "utf8")) as { resources: [] }).resources;
}
