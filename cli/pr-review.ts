/**
 * The pull-request review (.github/workflows/review.yml runs it): for every stack the change can affect, render
 * it, run the policy pack and `npm run diff` against the merge base, and write one Markdown comment — a table of
 * stacks, each stack's semantic summary and its unified diffs (folded, cut to fit a comment) — plus the list of
 * stacks for `pulumi preview`.
 *
 * A change to a stack file affects that stack; a change to anything else that renders (the program, the pack,
 * Pulumi.yaml, the extension's and images' sources) affects every stack; tests, docs, benchmarks and the
 * workflow itself affect none.
 *
 *   node --import tsx cli/pr-review.ts --base REF [--repo DIR] [--out FILE] [--stacks-out FILE]
 *
 * Exit code: 0 when every stack renders and passes the mandatory policies, 2 otherwise (the comment says why).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DiffError, diffStack, type StackDiff } from "./diff";

const ROOT = resolve(__dirname, "..");
export const MARKER = "<!-- edge-router-review -->";
/** GitHub refuses comments over 65,536 characters; the diffs are cut to leave room for the rest. */
export const COMMENT_LIMIT = 60_000;

const STACK_FILE = /^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$/;
/** Paths whose changes cannot change a render. */
const NEUTRAL = [
  /^test\//,
  /^docs\//,
  /^bench\//,
  /^\.github\//,
  /^\.ci\//,
  /\.md$/,
  /^\.gitignore$/,
  /^\.prettier/,
  /^eslint\.config/,
];

function git(repo: string, ...args: string[]): string {
  const r = spawnSync("git", args, { cwd: repo, encoding: "utf8" });
  if (r.status !== 0) throw new DiffError(`git ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** The stacks a change affects: every stack of either side when a render input changed, else the edited ones. */
export function affectedStacks(
  changed: readonly string[],
  baseStacks: readonly string[],
  headStacks: readonly string[],
): string[] {
  const all = [...new Set([...baseStacks, ...headStacks])].sort();
  const stackEdits = changed.flatMap((f) => STACK_FILE.exec(f)?.[1] ?? []);
  const rendersChange = changed.some((f) => !STACK_FILE.test(f) && !NEUTRAL.some((re) => re.test(f)));
  return rendersChange ? all : all.filter((s) => stackEdits.includes(s));
}

interface Outcome {
  stack: string;
  diff?: StackDiff;
  error?: string;
}

function result(o: Outcome): string {
  if (o.error) return "**error**";
  const d = o.diff!;
  if (d.violations.length)
    return `**breaks ${d.violations.length} mandatory ${d.violations.length === 1 ? "policy" : "policies"}**`;
  return d.changed.length ? `changes ${d.changed.length} artifacts` : "no change";
}

/** The comment: marker, table, each stack's summary, then the diffs folded and cut to the limit. */
export function comment(base: string, outcomes: readonly Outcome[], limit = COMMENT_LIMIT): string {
  const head = [MARKER, `## Router review (against ${base})`, ""];
  if (outcomes.length === 0) return [...head, "No stack is affected by this change.", ""].join("\n");
  head.push("| stack | result |", "|---|---|", ...outcomes.map((o) => `| ${o.stack} | ${result(o)} |`), "");
  const body = outcomes.map((o) =>
    o.error ? `## Stack ${o.stack}: error\n\n\`\`\`\n${o.error}\n\`\`\`\n` : o.diff!.summary,
  );
  const text = [...head, ...body].join("\n");
  let room = limit - text.length;
  const folds: string[] = [];
  for (const o of outcomes) {
    if (!o.diff?.diffs) continue;
    const open = `<details><summary>Unified diffs of stack ${o.stack}</summary>\n\n\`\`\`diff\n`;
    const close = "```\n\n</details>\n";
    const cut = `… cut to fit the comment: run \`npm run diff -- --stack ${o.stack} --base ${base}\` for all of it\n`;
    const space = room - open.length - close.length - cut.length;
    if (space <= 0) break;
    const diffs =
      o.diff.diffs.length <= space ? o.diff.diffs : `${o.diff.diffs.slice(0, space).replace(/[^\n]*$/, "")}${cut}`;
    folds.push(`${open}${diffs}${close}`);
    room -= open.length + diffs.length + close.length;
  }
  return [text, ...folds].join("\n");
}

function stacksAt(repo: string, rev?: string): string[] {
  const names = rev ? git(repo, "ls-tree", "--name-only", rev).split("\n") : readdirSync(repo);
  return names.flatMap((f) => STACK_FILE.exec(f)?.[1] ?? []);
}

export interface Review {
  body: string;
  /** Affected stacks that exist in the change (for `pulumi preview`). */
  previewStacks: string[];
  failed: boolean;
}

export function review(repo: string, base: string): Review {
  const mergeBase = git(repo, "merge-base", base, "HEAD").trim();
  const changed = git(repo, "diff", "--name-only", mergeBase).split("\n").filter(Boolean);
  const headStacks = stacksAt(repo);
  const stacks = affectedStacks(changed, stacksAt(repo, mergeBase), headStacks);
  const outcomes: Outcome[] = stacks.map((stack) => {
    try {
      return { stack, diff: diffStack(stack, mergeBase, repo) };
    } catch (e) {
      if (e instanceof DiffError) return { stack, error: e.message };
      throw e;
    }
  });
  return {
    body: comment(`${base} (${mergeBase.slice(0, 12)})`, outcomes),
    previewStacks: stacks.filter((s) => headStacks.includes(s)),
    failed: outcomes.some((o) => o.error || o.diff!.violations.length > 0),
  };
}

function main(): number {
  const { values } = parseArgs({
    options: {
      base: { type: "string" },
      repo: { type: "string" },
      out: { type: "string" },
      "stacks-out": { type: "string" },
    },
  });
  if (!values.base) {
    console.error("usage: pr-review --base REF [--repo DIR] [--out FILE] [--stacks-out FILE]");
    return 2;
  }
  const repo = values.repo ? resolve(values.repo) : ROOT;
  if (!existsSync(repo)) {
    console.error(`no such repository: ${repo}`);
    return 2;
  }
  try {
    const r = review(repo, values.base);
    if (values.out) writeFileSync(values.out, r.body);
    else process.stdout.write(r.body);
    if (values["stacks-out"]) writeFileSync(values["stacks-out"], r.previewStacks.map((s) => `${s}\n`).join(""));
    return r.failed ? 2 : 0;
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    return 2;
  }
}

if (require.main === module) process.exit(main());
