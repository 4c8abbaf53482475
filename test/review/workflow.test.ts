/**
 * The pull-request workflow: linted by actionlint (tools/actionlint, pinned, built from the Go module proxy by
 * `npm run build:tools`; shellcheck checks its scripts), every action pinned by commit, and wired to the script the review test drives
 * (cli/pr-review.ts): the same base, the same comment marker, the preview only with backend credentials. A broken
 * workflow is refused by the same linter, so its pass means something.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { toolBinary } from "../../tools/go-tools";
import { MARKER } from "../../cli/pr-review";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";

const lint = tier("workflow lint (actionlint from the Go module proxy, shellcheck)", {
  commands: ["go", "shellcheck"],
});
const WORKFLOW = join(ROOT, ".github/workflows/review.yml");

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
const steps = () =>
  (parse(readFileSync(WORKFLOW, "utf8")) as { jobs: { review: { steps: Step[] } } }).jobs.review.steps;

function actionlint(bin: string, ...files: string[]) {
  return spawnSync(bin, ["-no-color", ...files], { cwd: ROOT, encoding: "utf8" });
}

describe.skipIf(!lint.ok)("the review workflow under actionlint", () => {
  const bin = toolBinary("actionlint");

  it("passes", () => {
    const r = actionlint(bin, WORKFLOW);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("refuses a broken workflow (an undefined step output, an unquoted variable in a script)", () => {
    const dir = join(tempDir("review-workflow-"), ".github/workflows");
    mkdirSync(dir, { recursive: true });
    const bad = join(dir, "bad.yml");
    writeFileSync(
      bad,
      [
        "on: pull_request",
        "jobs:",
        "  a:",
        "    runs-on: ubuntu-24.04",
        "    steps:",
        "      - run: echo ${{ steps.nope.outputs.x }}",
        "      - run: cp $FILE /tmp",
        "",
      ].join("\n"),
    );
    const r = actionlint(bin, bad);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/property "nope" is not defined/);
    expect(r.stdout).toMatch(/shellcheck reported issue/);
  });
});

describe("the review workflow's wiring", () => {
  it("pins every action by commit", () => {
    const uses = steps().flatMap((s) => (s.uses ? [s.uses] : []));
    expect(uses.length).toBeGreaterThan(0);
    for (const u of uses) expect(u).toMatch(/^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/);
  });

  it("runs the review script against the pull request's base and posts its comment under the script's marker", () => {
    const review = steps().find((s) => s.run?.includes("cli/pr-review.ts"))!;
    expect(review.run).toContain('--base "origin/${BASE_REF}" --out review.md --stacks-out stacks.txt');
    expect(review.env).toEqual({ BASE_REF: "${{ github.base_ref }}" });
    const post = steps().find((s) => s.uses?.startsWith("actions/github-script@"))!;
    expect(post.if).toBe("always() && hashFiles('review.md') != ''");
    expect(String(post.with?.script)).toContain(`const marker = "${MARKER}";`);
  });

  it("previews each affected stack with the policy pack only when the repository has backend credentials", () => {
    const preview = steps().find((s) => s.run?.includes("pulumi preview"))!;
    expect(preview.if).toMatch(/env\.PULUMI_ACCESS_TOKEN != '' \|\| env\.PULUMI_BACKEND_URL != ''/);
    expect(preview.run).toContain('pulumi preview --stack "${stack}" --policy-pack policies');
    expect(preview.run).toContain("done < stacks.txt");
  });
});
