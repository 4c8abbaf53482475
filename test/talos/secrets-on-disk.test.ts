/**
 * No secret survives on disk: each lifecycle script is killed (SIGKILL, so no trap runs) at each of its steps, and the
 * places a script could have written to — its TMPDIR, HOME and working directory, /dev/shm, and anything new in the
 * system temporary directory — are scanned for any of the canary secrets.
 */
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyTryScript, installScript, kubeconfigScript } from "../../components/talos-node/scripts";
import { FakeNode } from "../helpers/fake-node";
import { CANARY, firewallChange, nodeOptions, rendered, talosconfig, target } from "../helpers/lifecycle-fixtures";

const TALOSCONFIG = talosconfig();
const base = rendered();
const changed = rendered(firewallChange);
/** Byte strings that only a leaked secret would contain. */
const CANARIES = [
  CANARY.registry,
  CANARY.adminKey,
  // The talosconfig carries its keys base64-encoded, and so might a leaked copy.
  /key: (\S+)/.exec(TALOSCONFIG)![1],
  CANARY.kubeconfigKey,
];

let node: FakeNode | undefined;
const scratch: string[] = [];
afterEach(async () => {
  await node?.stop();
  node = undefined;
  for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
});

function files(dir: string, since: number, skip: (p: string) => boolean, out: string[] = []): string[] {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (skip(p)) continue;
    let st;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) files(p, since, skip, out);
    else if (st.isFile() && st.mtimeMs >= since && st.size < 50_000_000) out.push(p);
  }
  return out;
}

function leaks(dirs: string[], since: number, nodeDir: string): string[] {
  const found: string[] = [];
  const skip = (p: string) => p.startsWith(nodeDir);
  for (const d of dirs)
    for (const f of files(d, since, skip)) {
      let content: string;
      try {
        content = readFileSync(f, "latin1");
      } catch {
        continue;
      }
      for (const c of CANARIES) if (content.includes(c)) found.push(`${f}: ${c.slice(0, 12)}…`);
    }
  return found;
}

/** Runs the script, SIGKILLs it once its stderr matches `step`, and returns what it left behind. */
async function killAt(
  script: string,
  step: RegExp,
  stdin: string,
  installed: boolean,
): Promise<{ leaked: string[]; killed: boolean }> {
  node = await FakeNode.start(
    nodeOptions({
      installed,
      bootstrapped: installed,
      savedConfig: installed ? base.config : undefined,
      kubeconfig: `apiVersion: v1\nkind: Config\nusers:\n- user:\n    client-key-data: ${CANARY.kubeconfigKey}\n`,
    }),
  );
  const since = Date.now() - 1000;
  const home = mkdtempSync(join(tmpdir(), "lifecycle-home-"));
  const tmp = mkdtempSync(join(tmpdir(), "lifecycle-tmp-"));
  const cwd = mkdtempSync(join(tmpdir(), "lifecycle-cwd-"));
  scratch.push(home, tmp, cwd);
  const run = await node.run(script, {
    stdin,
    env: { ROUTER_TALOSCONFIG: TALOSCONFIG, HOME: home, TMPDIR: tmp },
    cwd,
    killWhen: { stderr: step, signal: "SIGKILL" },
  });
  // Whatever the killed script had started finishes on its own; give it a moment before looking.
  await new Promise((r) => setTimeout(r, 1500));
  return {
    killed: run.signal === "SIGKILL",
    leaked: leaks([home, tmp, cwd, "/dev/shm", tmpdir()], since, node.dir),
  };
}

describe("no secret survives a killed run", () => {
  const cases: [string, () => string, RegExp[], string, boolean][] = [
    [
      "install",
      () => installScript({ ...target, healthTimeout: 20 }, base.identity),
      [/node in maintenance mode/, /has every NIC/, /install disk/, /applying the machine configuration/],
      base.config,
      false,
    ],
    [
      "apply (try/confirm)",
      () => applyTryScript(target, 30, changed.checks),
      [/trying the new configuration/, /ok: Talos API/, /ok: WAN reachability/, /ok: data plane/, /confirming it/],
      changed.config,
      true,
    ],
    // Sanity: the scan finds what today's main did (the talosconfig in a mktemp directory a trap removes).
    [
      "a script that writes the talosconfig to a temporary file (what the scan must catch)",
      () =>
        'd=$(mktemp -d); trap \'rm -rf "$d"\' EXIT; printf %s "$ROUTER_TALOSCONFIG" > "$d/tc"; echo written >&2; sleep 2',
      [/written/],
      "",
      true,
    ],
    ["kubeconfig", () => kubeconfigScript(target), [/ok: admin kubeconfig/], "", true],
  ];
  for (const [name, script, steps, stdin, installed] of cases)
    for (const step of steps)
      it(`${name}, killed at ${step.source}`, async () => {
        const r = await killAt(script(), step, stdin, installed);
        expect(r.killed).toBe(true);
        if (name.startsWith("a script that writes")) expect(r.leaked.length).toBeGreaterThan(0);
        else expect(r.leaked).toEqual([]);
        await node?.stop();
        node = undefined;
      });
});
