/**
 * The try window is respected and the checks cover the data plane: a change is confirmed only while it is still the
 * running configuration, with time to spare, and only when the data plane applied exactly the rendered ruleset.
 * Every case runs against the fake node's real try timer (test/fixtures/fake-node).
 */
import { afterEach, describe, expect, it } from "vitest";
import { applyTryScript, healthScript, tryMarginSeconds } from "../../components/talos-node/scripts";
import { loaderGeneration } from "../../components/talos-node/health";
import { FakeNode, sha256, type Faults, type NodeState, type ScriptRun } from "../helpers/fake-node";
import { firewallChange, nodeOptions, rendered, talosconfig, target } from "../helpers/lifecycle-fixtures";

const env = { ROUTER_TALOSCONFIG: talosconfig() };
const base = rendered();
const changed = rendered(firewallChange);

let node: FakeNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

async function tryChange(
  tryTimeout: number,
  faults: Faults,
  opts: { checks?: typeof changed.checks; config?: string; savedConfig?: string; retryMs?: number } = {},
): Promise<{ run: ScriptRun; state: NodeState }> {
  node = await FakeNode.start(
    nodeOptions({ installed: true, bootstrapped: true, savedConfig: opts.savedConfig ?? base.config }),
  );
  await node.fault(faults);
  const run = await node.run(applyTryScript(target, tryTimeout, opts.checks ?? changed.checks), {
    stdin: opts.config ?? changed.config,
    env: opts.retryMs === undefined ? env : { ...env, ROUTER_RETRY_MS: String(opts.retryMs) },
  });
  return { run, state: await node.state() };
}

/** Nothing was confirmed: no confirming apply reached the node, and it saved and runs the old configuration. */
function expectNotConfirmed({ run, state }: { run: ScriptRun; state: NodeState }, old = base.config): void {
  expect(run.code).toBe(1);
  expect(state.received.filter((r) => r.event === "apply" && r.mode !== "try")).toEqual([]);
  expect(state.saved).toBe(sha256(old));
  expect(state.running).toBe(sha256(old));
  expect(run.stderr).toMatch(/NOT confirmed/);
}

describe("the try window", () => {
  it("keeps a margin at the end of every window", () => {
    expect(tryMarginSeconds(120)).toBe(15);
    expect(tryMarginSeconds(8)).toBe(2);
    expect(tryMarginSeconds(3)).toBe(1);
  });

  it("a check that hangs does not eat the window: it is cut off, nothing is confirmed, and the node reverts", async () => {
    const r = await tryChange(6, { hang: ["health"] });
    expectNotConfirmed(r);
    expect(r.run.stderr).toMatch(/gave up waiting for cluster health/);
    expect(r.run.stderr).toMatch(/no answer within/);
    expect(r.run.stderr).toMatch(/the node reverted and answers again on its previous configuration/);
    // The script ended soon after the window: the hung call did not hold it.
    expect(r.run.seconds).toBeLessThan(6 + 8);
    expect(r.state.received.map((x) => x.event)).toEqual(["apply", "revert"]);
  });

  it("a hung loader health endpoint is cut off too", async () => {
    const r = await tryChange(6, { hang: ["loader-health"] });
    expectNotConfirmed(r);
    expect(r.run.stderr).toMatch(/health checks failed: data-plane/);
  });

  it("a reboot inside the window is detected by the running configuration's digest, not confirmed", async () => {
    // Without the data-plane check every other check passes on the rebooted (old) node: only the digest catches it.
    // The node reboots as soon as it has answered the try (how fast the checks run cannot race it), is back on the
    // old configuration within the fake's reboot time, and the checks retry until it answers.
    const r = await tryChange(8, { rebootAfterTryMs: 0 }, { checks: {}, retryMs: 200 });
    expectNotConfirmed(r);
    expect(r.state.reboots).toBe(1);
    expect(r.run.stderr).toMatch(
      /no longer runs the tried configuration \(it rebooted or reverted inside the try window\)/,
    );
  });

  it("a reboot inside the window also shows in the loader's ruleset digest", async () => {
    const r = await tryChange(8, { rebootAfterTryMs: 0 }, { retryMs: 200 });
    expectNotConfirmed(r);
    expect(r.run.stderr).toMatch(/loader: ruleset [0-9a-f]{64} is not the rendered one/);
  });

  it("a slow node whose checks pass too close to the margin is not confirmed", async () => {
    // 12s window, 3s margin, 4s per check attempt: cluster health answers after 3.5s, so the checks end some 4-6s
    // into the window with 3-5s left — less than the ~7s two such calls (the digest check and the confirm) may take.
    const r = await tryChange(12, { slowCalls: { health: 3500 } });
    expectNotConfirmed(r);
    expect(r.run.stderr).toMatch(/the checks passed with only [\d.]+s of the try window left/);
  });

  it("the same node a little slower than usual is still confirmed when there is time", async () => {
    const r = await tryChange(12, { slowMs: 150 });
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.state.saved).toBe(sha256(changed.config));
  });
});

describe("the data plane in the checks", () => {
  it("a ruleset the loader rejects fails the try: the loader still reports the old digest, and the node reverts", async () => {
    const r = await tryChange(6, { rejectRulesetContaining: "lifecycle-test" });
    expectNotConfirmed(r);
    expect(r.run.stderr).toMatch(/health checks failed: data-plane/);
    expect(r.run.stderr).toMatch(/status degraded \(ruleset rejected by nft\)/);
    expect(r.run.stderr).toContain(`is not the rendered one ${changed.checks.dataplane!.rulesetSha256}`);
  });

  it("an extension service that is not running fails the try", async () => {
    const r = await tryChange(6, { dataplaneService: "Failed" });
    expectNotConfirmed(r);
    expect(r.run.stderr).toMatch(/ext-router-dataplane is not running: STATE +Failed/);
  });

  it("the loader must have committed the rendered configuration generation", async () => {
    const withGeneration = (config: string, g: string) =>
      config.replace(/^( *)\[global\]$/m, `$1[global]\n$1generation = ${g}`);
    const config = withGeneration(changed.config, "a1b2c3");
    expect(loaderGeneration(withGeneration("[global]\npin_root = x\n", "a1b2c3"))).toBe("a1b2c3");
    const dp = { ...changed.checks.dataplane!, generation: "ffff00" };
    const bad = await tryChange(6, {}, { config, checks: { dataplane: dp } });
    expectNotConfirmed(bad);
    expect(bad.run.stderr).toMatch(/configuration generation a1b2c3 is not the rendered ffff00/);
    await node!.stop();
    const good = await tryChange(12, {}, { config, checks: { dataplane: { ...dp, generation: "a1b2c3" } } });
    expect(good.run.code, good.run.stderr).toBe(0);
  });

  it("the health gate checks the data plane as well", async () => {
    node = await FakeNode.start(nodeOptions({ installed: true, bootstrapped: true, savedConfig: base.config }));
    const ok = await node.run(healthScript({ ...target, healthTimeout: 3 }, base.checks), { env });
    expect(ok.code, ok.stderr).toBe(0);
    await node.fault({ dataplaneService: "Waiting" });
    const bad = await node.run(healthScript({ ...target, healthTimeout: 3 }, base.checks), { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/the router is not healthy: data-plane/);
  });
});
