/**
 * The pull-request review script (cli/pr-review.ts, what .github/workflows/review.yml runs) against a throwaway
 * repository with two commits: `main`, and a branch that edits the dev site and adds a stack that breaks a
 * mandatory policy. It reviews exactly the affected stacks, writes one comment (marker, table, summaries, folded
 * diffs cut to the comment limit) and the stacks to preview, and fails on the broken stack; a change to docs
 * only reviews nothing, and a change to the program reviews every stack.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { affectedStacks, comment, MARKER } from "../../cli/pr-review";
import { tempDir } from "../helpers/temp";
import { tier } from "../helpers/tier";
import { cli, commitAll, GUEST_WEB_RULE, editStack, git, projectRepo } from "./repo";

const tools = tier("pull-request review (git worktrees, the diff tool)", { commands: ["git", "diff"] });

function prReview(repo: string, base: string) {
  const out = tempDir("review-pr-");
  const r = cli("pr-review", [
    "--repo",
    repo,
    "--base",
    base,
    "--out",
    join(out, "review.md"),
    "--stacks-out",
    join(out, "stacks.txt"),
  ]);
  const read = (f: string) => {
    try {
      return readFileSync(join(out, f), "utf8");
    } catch {
      return undefined;
    }
  };
  return { status: r.status, err: r.err, body: read("review.md"), stacks: read("stacks.txt") };
}

type Config = Record<string, unknown>;
const fw = (c: Config) => c["router:firewall"] as { policies: Config[]; rules: Config[] };

describe("which stacks a change affects", () => {
  it("edited stack files only, unless something that renders changed; tests and docs affect none", () => {
    const all = ["branch", "dev"];
    expect(affectedStacks(["Pulumi.dev.yaml", "README.md", "test/x.test.ts"], all, all)).toEqual(["dev"]);
    expect(affectedStacks(["docs/operations.md", ".github/workflows/review.yml"], all, all)).toEqual([]);
    expect(affectedStacks(["components/dataplane/nftables.ts"], ["dev"], all)).toEqual(all);
    expect(affectedStacks(["ebpf/loader/main.c"], all, all)).toEqual(all);
    expect(affectedStacks(["policies/intent/wan.ts"], all, all)).toEqual(all);
  });

  it("cuts the folded diffs to fit a comment and says how to see them all", () => {
    const diff = {
      stack: "dev",
      base: "b",
      changed: ["x"],
      summary: "## Stack dev\n",
      diffs: "+line\n".repeat(5000),
      violations: [],
    };
    const body = comment("main", [{ stack: "dev", diff }], 2_000);
    expect(body.length).toBeLessThanOrEqual(2_000);
    expect(body).toContain("… cut to fit the comment: run `npm run diff -- --stack dev --base main` for all of it");
  });
});

describe.skipIf(!tools.ok)("the pull-request review", () => {
  let repo: string;
  let pr: ReturnType<typeof prReview>;

  beforeAll(() => {
    repo = projectRepo("pr");
    git(repo, "checkout", "-q", "-b", "change");
    editStack(repo, "dev", (c) => fw(c).rules.push(GUEST_WEB_RULE));
    editStack(repo, "open", (c) => fw(c).policies.unshift({ from: "wan", to: "trusted", action: "accept" }));
    appendFileSync(join(repo, "README.md"), "\nA note.\n");
    commitAll(repo, "the change");
    pr = prReview(repo, "main");
  }, 400_000);

  it("reviews the edited stacks, fails on the one that breaks a mandatory policy, and lists both to preview", () => {
    expect(pr.status, pr.err).toBe(2);
    expect(pr.stacks).toBe("dev\nopen\n");
    const body = pr.body!;
    expect(body.startsWith(`${MARKER}\n## Router review (against main (`)).toBe(true);
    expect(body).toContain("| dev | changes ");
    expect(body).toContain("| open | **breaks 1 mandatory policy** |");
    expect(body).toContain("- guest → servers: reject → reject + accept tcp/443 (guest-web)");
    expect(body).toContain("The stack is new: it does not exist at");
    expect(body).toContain(
      "- [mandatory] wan-accepts-only-forwards: wan → trusted accepts every new connection from the internet",
    );
    expect(body).toMatch(/<details><summary>Unified diffs of stack dev<\/summary>\n\n```diff\n--- base\//);
  });

  it("reviews nothing for a change to docs only, and every stack for a change to the program", () => {
    git(repo, "checkout", "-q", "-b", "docs", "main");
    appendFileSync(join(repo, "docs/operations.md"), "\nAnother note.\n");
    commitAll(repo, "docs");
    const docs = prReview(repo, "main");
    expect(docs.status, docs.err).toBe(0);
    expect(docs.body).toContain("No stack is affected by this change.");
    expect(docs.stacks).toBe("");
    git(repo, "checkout", "-q", "-b", "code", "main");
    appendFileSync(join(repo, "components/summary.ts"), "\n// a comment changes no render\n");
    commitAll(repo, "code");
    const code = prReview(repo, "main");
    expect(code.status, code.err).toBe(0);
    expect(code.stacks).toBe("dev\n");
    expect(code.body).toContain("| dev | no change |");
  }, 400_000);
});
