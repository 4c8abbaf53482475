/**
 * A throwaway git repository holding a copy of this checkout's project (its tracked and untracked, not ignored,
 * files — the code under test included), node_modules linked from here, with one commit on `main`: the ground
 * `npm run diff` and the pull-request review run on, edited and committed by a test as a change would be.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse, stringify } from "yaml";
import { ROOT } from "../helpers/stacks";
import { tempDir } from "../helpers/temp";

export function git(repo: string, ...args: string[]): string {
  const r = spawnSync("git", ["-c", "user.name=Review Test", "-c", "user.email=review@test.invalid", ...args], {
    cwd: repo,
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** A new repository with the project committed once on `main`. */
export function projectRepo(tag: string): string {
  const repo = tempDir(`review-repo-${tag}-`);
  const files = spawnSync("git", ["ls-files", "-z", "-co", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" })
    .stdout.split("\0")
    .filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(repo, f)), { recursive: true });
    copyFileSync(join(ROOT, f), join(repo, f));
  }
  symlinkSync(join(ROOT, "node_modules"), join(repo, "node_modules"), "dir");
  git(repo, "init", "-q", "-b", "main");
  git(repo, "add", "-A");
  git(repo, "commit", "-q", "-m", "base");
  return repo;
}

type Config = Record<string, unknown>;

/** Edits a stack file's `config` (creating the file from `from` when it does not exist yet). */
export function editStack(repo: string, stack: string, edit: (config: Config) => void, from = "dev"): void {
  const file = join(repo, `Pulumi.${stack}.yaml`);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    text = readFileSync(join(repo, `Pulumi.${from}.yaml`), "utf8");
  }
  const doc = parse(text) as { config: Config };
  edit(doc.config);
  writeFileSync(file, stringify(doc));
}

export function commitAll(repo: string, message: string): string {
  git(repo, "add", "-A");
  git(repo, "commit", "-q", "-m", message);
  return git(repo, "rev-parse", "HEAD").trim();
}

/** Runs one of this checkout's CLI entries (`cli/NAME.ts`) as a user would, with its output captured. */
export function cli(name: string, args: string[], timeout = 300_000) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, `cli/${name}.ts`), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout,
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

/** A rule the review tests add to the dev site: guests may reach the servers' HTTPS. */
export const GUEST_WEB_RULE = {
  name: "guest-web",
  from: ["guest"],
  to: ["servers"],
  protocol: "tcp",
  ports: [443],
  action: "accept",
};
