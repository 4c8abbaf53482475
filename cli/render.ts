/**
 * Offline render of a site: runs the real program under Pulumi's mock runtime, runs the policy pack over what it
 * registered (policies/evaluate.ts), and writes every artifact to out/<stack>/ — resources.json, review.json
 * (the layers' review facts), the Talos machine configuration (secrets as placeholders), Helm values and
 * SUMMARY.md. An invalid site, or a mandatory policy violation, prints every problem, exits non-zero and writes
 * nothing.
 *
 *   npm run render [-- --stack NAME] [--out DIR]
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { readStackConfig, StackFileError, type StackConfig } from "./stack-config";
import { runUnderMocks, type MockRun, type OutputGenerator } from "./mock-runtime";
import { renderSummary } from "./summary";
import { parseSite } from "../components/site/parse";
import { planSite } from "../components/site/plan";
import { rawSiteConfig } from "../components/site/load";
import { formatIssues } from "../components/site/issues";
import { collectReview, type LayerReview } from "../components/review";
import { evaluatePolicies, formatFindings, type PolicyFinding } from "../policies/evaluate";
import { drawSvgs, haveGraphviz, renderPictures, TOPOLOGY, ZONE_MATRIX } from "./pictures";

const ROOT = resolve(__dirname, "..");

/** Stable JSON: sorted keys, two-space indent, trailing newline. */
export function stableJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x)
      ? x.map(sort)
      : x && typeof x === "object"
        ? Object.fromEntries(
            Object.keys(x as object)
              .sort()
              .map((k) => [k, sort((x as Record<string, unknown>)[k])]),
          )
        : x;
  return `${JSON.stringify(sort(v), null, 2)}\n`;
}

export interface RenderResult {
  /** Relative path → content of every artifact. */
  files: Map<string, string>;
  run: MockRun;
  /** What the policy pack found (only advisory ones when policies are enforced). */
  findings: PolicyFinding[];
}

export class InvalidSiteError extends Error {}

/** The policy pack found mandatory violations: nothing may be written. */
export class PolicyViolationError extends Error {
  constructor(readonly findings: PolicyFinding[]) {
    super(formatFindings(findings.filter((f) => f.level === "mandatory")));
  }
}

/** Renders a stack's artifacts in memory. Throws InvalidSiteError (with every problem) for an invalid site. */
export async function renderStack(opts: {
  /** Project directory holding Pulumi.yaml and Pulumi.<stack>.yaml (default: this repository). */
  dir?: string;
  stack: string;
  /** Use this configuration instead of reading the stack files. */
  config?: StackConfig;
  /** Generated provider outputs (keys, random values) under the mocks. */
  outputs?: OutputGenerator;
  /**
   * Throw PolicyViolationError on a mandatory policy violation (what `npm run render` and `npm run diff` do
   * before writing anything). Otherwise every finding is returned: harnesses that render sites to exercise the
   * data plane, not to ship them, read them or not.
   */
  enforcePolicies?: boolean;
}): Promise<RenderResult> {
  const cfg = opts.config ?? readStackConfig(opts.dir ?? ROOT, opts.stack);
  // The program validates the site itself (and would fail before any resource); checking here first gives the
  // same problems without a runtime error wrapper.
  const parsed = parseSite(rawSiteConfig(cfg.values));
  if (!parsed.ok) throw new InvalidSiteError(formatIssues(parsed.issues));
  const run = await runUnderMocks({
    project: cfg.project,
    stack: cfg.stack,
    config: cfg.values,
    secretKeys: cfg.secretKeys,
    entry: join(ROOT, "index.ts"),
    outputs: opts.outputs,
  });
  // The policy pack, as `pulumi preview --policy-pack policies` would run it.
  const findings = await evaluatePolicies(run.resources);
  if (opts.enforcePolicies && findings.some((f) => f.level === "mandatory")) throw new PolicyViolationError(findings);
  const files = new Map<string, string>();
  files.set("resources.json", stableJson({ stack: cfg.stack, project: cfg.project, resources: run.resources }));
  files.set("policies.json", stableJson({ findings }));
  const review = collectReview(
    run.resources.flatMap((r) => (r.outputs?.review ? [r.outputs.review as LayerReview] : [])),
  );
  files.set("review.json", stableJson(review));
  for (const [path, dot] of renderPictures(review)) files.set(path, dot);
  files.set("outputs.json", stableJson(run.stackOutputs));
  for (const r of run.resources) {
    const artifacts = r.outputs?.artifacts;
    if (artifacts && typeof artifacts === "object")
      for (const [path, content] of Object.entries(artifacts as Record<string, unknown>)) {
        if (files.has(path)) throw new Error(`two components publish the artifact ${path}`);
        files.set(path, String(content));
      }
    if (r.type.startsWith("kubernetes:") && !r.type.startsWith("kubernetes:helm.sh/") && r.custom) {
      const { apiVersion, kind, metadata, ...rest } = r.inputs as Record<string, unknown>;
      const meta = metadata as { name?: string; namespace?: string };
      const file = `k8s/${String(kind).toLowerCase()}-${meta.namespace ? `${meta.namespace}-` : ""}${meta.name ?? r.name}.yaml`;
      files.set(file, stringify({ apiVersion, kind, metadata, ...rest }, { lineWidth: 0 }));
    }
    if (r.type === "kubernetes:helm.sh/v3:Release")
      files.set(
        `helm/${String(r.inputs.name ?? r.name)}.values.yaml`,
        stringify(r.inputs.values ?? {}, { lineWidth: 0, sortMapEntries: true }),
      );
  }
  const plan = planSite(parsed.site);
  const listed = [...files.keys(), "SUMMARY.md"].sort();
  files.set(
    "SUMMARY.md",
    renderSummary(
      parsed.site,
      plan,
      run.resources,
      listed.filter((f) => f !== "SUMMARY.md"),
      [
        { title: `Topology of site ${parsed.site.site.name}`, path: TOPOLOGY },
        { title: "Zone matrix", path: ZONE_MATRIX },
      ],
    ),
  );
  return { files, run, findings };
}

/** Writes files into `outDir` atomically: a sibling temp dir is filled, then swapped in. */
export function writeArtifacts(outDir: string, files: Map<string, string>): void {
  mkdirSync(dirname(outDir), { recursive: true });
  const tmp = mkdtempSync(`${outDir}.tmp-`);
  try {
    for (const [path, content] of files) {
      mkdirSync(dirname(join(tmp, path)), { recursive: true });
      writeFileSync(join(tmp, path), content);
    }
    if (existsSync(outDir)) rmSync(outDir, { recursive: true, force: true });
    renameSync(tmp, outDir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      stack: { type: "string", default: "dev" },
      out: { type: "string" },
      dir: { type: "string" },
      stats: { type: "boolean" },
      "report-policies": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: npm run render [-- --stack NAME] [--out DIR] [--dir PROJECT_DIR] [--report-policies]\n" +
        "  renders stack NAME (default dev) of the project in PROJECT_DIR (default: this repository) to DIR (default out/NAME);\n" +
        "  a mandatory policy violation writes nothing unless --report-policies (then it is in policies.json)",
    );
    return;
  }
  const stack = values.stack!;
  const outDir = resolve(values.out ?? join(ROOT, "out", stack));
  try {
    const { files, findings } = await renderStack({
      stack,
      dir: values.dir ? resolve(values.dir) : undefined,
      enforcePolicies: !values["report-policies"],
    });
    // Pictures: SVG only where Graphviz is installed (the DOT sources are always among the files).
    if (haveGraphviz())
      for (const [path, svg] of drawSvgs(new Map([...files].filter(([p]) => p.endsWith(".dot"))))) files.set(path, svg);
    else console.error(`stack ${stack}: Graphviz (dot) is not installed: pictures written as DOT only`);
    writeArtifacts(outDir, files);
    if (findings.length) console.error(`stack ${stack}: policy findings:\n${formatFindings(findings)}`);
    console.log(`rendered stack ${stack}: ${files.size} files in ${outDir}`);
    if (values.stats) {
      // Self-reported, because tsx may run the program in a child process the caller cannot measure.
      const maxRssMB = process.resourceUsage().maxRSS / 1024;
      console.error(JSON.stringify({ stats: { uptimeSeconds: process.uptime(), maxRssMB } }));
    }
  } catch (e) {
    if (e instanceof InvalidSiteError) {
      console.error(`stack ${stack}: the site configuration is invalid; nothing was written:\n${e.message}`);
      process.exitCode = 1;
      return;
    }
    if (e instanceof StackFileError) {
      console.error(`stack ${stack}: ${e.message}`);
      process.exitCode = 1;
      return;
    }
    if (e instanceof PolicyViolationError) {
      console.error(`stack ${stack}: the policy pack found mandatory violations; nothing was written:\n${e.message}`);
      process.exitCode = 1;
      return;
    }
    throw e;
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (e: unknown) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : e);
      process.exit(1);
    },
  );
}
