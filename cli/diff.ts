/**
 * What a change does to a site, in words: renders the stack at a base git ref (a `git worktree` of it in a
 * temporary directory, node_modules linked, rendered by that checkout's own program) and in the working tree,
 * then prints a semantic summary a reviewer can act on (cli/review-diff.ts: zone-matrix cells, what the WAN can
 * newly reach, segments and pools, forwards, served services, profiles, what the host needs — try path, reboot,
 * Talos upgrade — and the resources that change), the working tree's policy findings, and a unified diff per
 * changed artifact.
 *
 *   npm run diff -- --stack NAME [--base GIT_REF] [--repo DIR] [--summary-only]
 *
 * Exit code: 0 nothing changed, 1 something changed, 2 error (including a mandatory policy violation in the
 * working tree: the change must not land as it is).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { renderSections, semanticDiff, type Render } from "./review-diff";
import type { PolicyFinding } from "../policies/evaluate";

const ROOT = resolve(__dirname, "..");

export class DiffError extends Error {}

function run(cmd: string, args: string[], cwd: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (r.error) throw new DiffError(`${cmd} ${args.join(" ")}: ${r.error.message}`);
  return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function readTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, "utf8"));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

/**
 * Renders `stack` of the checkout in `dir` with that checkout's own render command, reporting (not refusing)
 * policy violations; an empty render when the stack does not exist there.
 */
export function renderCheckout(dir: string, stack: string, out: string): Map<string, string> {
  if (!existsSync(join(dir, `Pulumi.${stack}.yaml`))) return new Map();
  const cli = join(dir, "cli/render.ts");
  // Renders made before the policy pack know no such flag (and never refuse).
  const report = readFileSync(cli, "utf8").includes("report-policies") ? ["--report-policies"] : [];
  const r = run(process.execPath, ["--import", "tsx", cli, "--stack", stack, "--out", out, ...report], dir);
  if (r.status !== 0) throw new DiffError(`rendering stack ${stack} in ${dir} failed:\n${r.stderr.trim()}`);
  return readTree(out);
}

/** A checkout of `ref` of `repo` in `into`, with the repository's node_modules linked. Returns the commit. */
export function checkoutRef(repo: string, ref: string, into: string): string {
  const rev = run("git", ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], repo);
  if (rev.status !== 0) throw new DiffError(`--base ${ref} is not a commit of ${repo}`);
  const sha = rev.stdout.trim();
  const add = run("git", ["worktree", "add", "--detach", "--quiet", into, sha], repo);
  if (add.status !== 0) throw new DiffError(`git worktree add failed: ${add.stderr.trim()}`);
  symlinkSync(join(repo, "node_modules"), join(into, "node_modules"), "dir");
  return sha;
}

function removeCheckout(repo: string, dir: string): void {
  run("git", ["worktree", "remove", "--force", dir], repo);
  run("git", ["worktree", "prune"], repo);
}

/** Unified diffs of the changed artifacts, by the `diff` tool, labelled base/PATH and head/PATH. */
export function unifiedDiffs(baseDir: string, headDir: string, changed: string[]): string {
  return changed
    .map((p) => {
      const a = join(baseDir, p);
      const b = join(headDir, p);
      const r = run(
        "diff",
        [
          "-u",
          "--label",
          `base/${p}`,
          "--label",
          `head/${p}`,
          existsSync(a) ? a : "/dev/null",
          existsSync(b) ? b : "/dev/null",
        ],
        ROOT,
      );
      if (r.status > 1) throw new DiffError(`diff ${p}: ${r.stderr.trim()}`);
      return r.stdout;
    })
    .join("");
}

export interface StackDiff {
  stack: string;
  base: string;
  /** Artifacts added, removed or changed. */
  changed: string[];
  /** The semantic summary and artifact list, Markdown. */
  summary: string;
  /** Unified diffs of the changed artifacts. */
  diffs: string;
  /** The working tree's mandatory policy findings. */
  violations: PolicyFinding[];
}

/** Compares two renders (artifact maps, their directories for `diff`). */
export function compareRenders(
  stack: string,
  base: string,
  a: Render,
  b: Render,
  dirs: { base: string; head: string },
): StackDiff {
  const changed = [...new Set([...a.keys(), ...b.keys()])].filter((p) => a.get(p) !== b.get(p)).sort();
  const findings = (JSON.parse(b.get("policies.json") ?? '{"findings":[]}') as { findings: PolicyFinding[] }).findings;
  const lines = [
    `## Stack ${stack}: ${changed.length ? `${changed.length} artifacts change` : "no change"} (${base} → working tree)`,
    "",
  ];
  if (a.size === 0 && b.size > 0) lines.push(`The stack is new: it does not exist at ${base}.`, "");
  if (b.size === 0 && a.size > 0) lines.push("The stack is removed in the working tree.", "");
  lines.push(renderSections(semanticDiff(a, b)));
  if (findings.length)
    lines.push(
      "### Policy findings (working tree)",
      "",
      ...findings.map((f) => `- [${f.level}] ${f.policy}: ${f.message.split("\n").slice(-1)[0]}`),
      "",
    );
  if (changed.length)
    lines.push(
      "### Artifacts",
      "",
      ...changed.map((p) => `- ${p}${!a.has(p) ? " (new)" : !b.has(p) ? " (removed)" : ""}`),
      "",
    );
  return {
    stack,
    base,
    changed,
    summary: lines.join("\n"),
    // An SVG is drawn from its .dot, whose diff is the readable one.
    diffs: unifiedDiffs(
      dirs.base,
      dirs.head,
      changed.filter((p) => !p.endsWith(".svg")),
    ),
    violations: findings.filter((f) => f.level === "mandatory"),
  };
}

/** Renders `stack` at `ref` and in the working tree of `repo` (default: this checkout) and compares them. */
export function diffStack(stack: string, ref: string, repo = ROOT): StackDiff {
  if (!existsSync(join(repo, "node_modules")))
    throw new DiffError(`${repo} has no node_modules (run npm ci there first)`);
  const tmp = mkdtempSync(join(tmpdir(), `router-diff-${process.pid}-`));
  const checkout = join(tmp, "base");
  try {
    const sha = checkoutRef(repo, ref, checkout);
    const a = renderCheckout(checkout, stack, join(tmp, "render-base"));
    const b = renderCheckout(repo, stack, join(tmp, "render-head"));
    if (a.size === 0 && b.size === 0)
      throw new DiffError(`stack ${stack} exists neither at ${ref} nor in the working tree`);
    return compareRenders(stack, `${ref} (${sha.slice(0, 12)})`, a, b, {
      base: join(tmp, "render-base"),
      head: join(tmp, "render-head"),
    });
  } finally {
    if (existsSync(checkout)) removeCheckout(repo, checkout);
    rmSync(tmp, { recursive: true, force: true });
  }
}

function main(): number {
  const { values } = parseArgs({
    options: {
      stack: { type: "string", default: "dev" },
      base: { type: "string", default: "HEAD" },
      repo: { type: "string" },
      "summary-only": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: npm run diff -- --stack NAME [--base GIT_REF] [--repo DIR] [--summary-only]\n" +
        "  what the working tree of DIR (default: this checkout) changes in stack NAME against GIT_REF (default HEAD);\n" +
        "  exit 0: no change, 1: changed, 2: error or a mandatory policy violation",
    );
    return 0;
  }
  try {
    const d = diffStack(values.stack!, values.base!, values.repo ? resolve(values.repo) : ROOT);
    process.stdout.write(`${d.summary}\n`);
    if (d.diffs && !values["summary-only"]) process.stdout.write(`### Unified diffs\n\n\`\`\`diff\n${d.diffs}\`\`\`\n`);
    if (d.violations.length) {
      console.error(`stack ${d.stack}: the working tree breaks ${d.violations.length} mandatory policies (see above)`);
      return 2;
    }
    return d.changed.length ? 1 : 0;
  } catch (e) {
    console.error(e instanceof DiffError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e));
    return 2;
  }
}

if (require.main === module) process.exit(main());
