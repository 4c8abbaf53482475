/**
 * docs/operations.md shows commands an operator runs by hand. Each block fenced as `sh test` runs here against the
 * fake node, with the talosconfig exported as the text says, and must succeed and do what the text claims.
 */
import { afterEach, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FakeNode } from "../helpers/fake-node";
import { nodeOptions, rendered, talosconfig, target } from "../helpers/lifecycle-fixtures";
import { tempDir } from "../helpers/temp";

const DOC = readFileSync(join(__dirname, "../../docs/operations.md"), "utf8");
const blocks = [...DOC.matchAll(/^```sh test\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
const heading = (block: string) => {
  const before = DOC.slice(0, DOC.indexOf(block));
  return [...before.matchAll(/^## (.+)$/gm)].at(-1)![1];
};

const OLD = "registry.lab:5000/router/installer@sha256:" + "a".repeat(64);
const NEW = "registry.lab:5000/router/installer@sha256:" + "b".repeat(64);

let node: FakeNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

async function runBlock(block: string, opts: { installed: boolean }) {
  node = await FakeNode.start(
    nodeOptions({
      installed: opts.installed,
      bootstrapped: opts.installed,
      savedConfig: opts.installed ? rendered().config : undefined,
      image: OLD,
      rebootMs: 500,
    }),
  );
  const dir = tempDir("ops-doc-");
  writeFileSync(join(dir, "talosconfig"), talosconfig(), { mode: 0o600 });
  // The doc's talosctl reads $TALOSCONFIG; the fake shim takes the file through --talosconfig, as talosctl would.
  const wrapper = `talosctl() { command talosctl --talosconfig "$TALOSCONFIG" "$@"; }\nset -eo pipefail\n`;
  const run = await node.run(wrapper + block, {
    env: { TALOSCONFIG: join(dir, "talosconfig"), NODE: target.address, NEW_IMAGE: NEW },
    cwd: dir,
  });
  return { run, state: await node.state() };
}

describe("docs/operations.md", () => {
  it("has tested command blocks for health, upgrade, rollback and a failed install", () => {
    expect(blocks.map(heading)).toEqual([
      "Is the router healthy?",
      "Upgrade Talos or the data-plane extension",
      "Roll back by hand",
      "Roll back by hand",
      "Recover from a failed install",
    ]);
  });

  it("the health commands show a healthy router with its ruleset digest", async () => {
    const { run } = await runBlock(blocks[0], { installed: true });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/STATE +Running/);
    expect(run.stdout).toMatch(new RegExp(`ok ruleset=applied ${rendered().checks.dataplane!.rulesetSha256}`));
  });

  it("the manual upgrade installs the new image", async () => {
    const { run, state } = await runBlock(blocks[1], { installed: true });
    expect(run.code, run.stderr).toBe(0);
    expect(state.slots).toEqual({ current: NEW, previous: OLD });
  });

  it("the manual rollback goes back to the previous image and waits for it to be healthy", async () => {
    const { run, state } = await runBlock(
      `talosctl --nodes "$NODE" --endpoints "$NODE" upgrade --image "$NEW_IMAGE" --wait\n${blocks[2]}`,
      {
        installed: true,
      },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(state.slots).toEqual({ current: OLD, previous: NEW });
  });

  it("the running configuration's digest is what the program applied", async () => {
    const { run } = await runBlock(blocks[3], { installed: true });
    expect(run.code, run.stderr).toBe(0);
    const { createHash } = await import("node:crypto");
    expect(run.stdout.split(" ")[0]).toBe(
      createHash("sha256")
        .update(rendered().config + "\n")
        .digest("hex"),
    );
  });

  it("the maintenance-mode look shows the box's MACs and disks, with no credentials", async () => {
    const { run, state } = await runBlock(blocks[4], { installed: false });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/00:1a:2b:3c:4d:01\n00:1a:2b:3c:4d:02/);
    expect(run.stdout).toMatch(/\/dev\/nvme0n1 Samsung SSD 980 S64ANS0T1 274877906944 nvme/);
    expect(state.received).toEqual([]);
  });
});
