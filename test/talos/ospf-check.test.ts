/**
 * A change must not lose an OSPF adjacency: every neighbour Full before a try (or an upgrade), on a link OSPF still
 * runs on, must be Full again with a hello received since the new configuration's checks began. Against the fake
 * node, whose OSPF status file follows its running configuration, BIRD's timers and the bird pod's status
 * container (fake-node/ospf.js); test/network/routing.kernel.test.ts shows the real BIRD keep a silenced neighbour
 * Full until its dead interval ends, which is why the state alone is not enough.
 */
import { afterEach, describe, expect, it } from "vitest";
import { applyTryScript, healthScript, upgradeScript, type HealthChecks } from "../../components/talos-node/scripts";
import { FakeNode, sha256, type Faults, type NodeState, type ScriptRun } from "../helpers/fake-node";
import type { Raw } from "../helpers/dev-site";
import {
  OSPF_NEIGHBOURS,
  firewallChange,
  nodeOptions,
  rendered,
  talosconfig,
  target,
  withOspf,
} from "../helpers/lifecycle-fixtures";

const env = { ROUTER_TALOSCONFIG: talosconfig(), ROUTER_RETRY_MS: "300" };
/** The fake BIRD's hello interval (the real one is 10 s; bird.ts). */
const HELLO_MS = 200;
const base = rendered(withOspf);

/** The site's checks with BIRD's dead interval as the fake node runs it, and a status written every 100 ms. */
function checksFor(checks: HealthChecks, deadMs: number): HealthChecks {
  return { ...checks, ospf: { ...checks.ospf!, deadSeconds: deadMs / 1000, statusSeconds: 1 } };
}

let node: FakeNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

interface Opts {
  deadMs?: number;
  podStartMs?: number;
  image?: string;
}

async function start(opts: Opts = {}) {
  node = await FakeNode.start(
    nodeOptions({
      installed: true,
      bootstrapped: true,
      savedConfig: base.config,
      ospfNeighbours: OSPF_NEIGHBOURS,
      ospfHelloMs: HELLO_MS,
      ospfDeadMs: opts.deadMs ?? 4 * HELLO_MS,
      ospfStatusMs: 100,
      ospfPodStartMs: opts.podStartMs ?? 300,
      ...(opts.image ? { image: opts.image } : {}),
    }),
  );
  return node;
}

async function tryChange(
  edit: (raw: Raw) => void,
  faults: Faults = {},
  opts: Opts = {},
): Promise<{ run: ScriptRun; state: NodeState; changed: string }> {
  const n = await start(opts);
  await n.fault(faults);
  const changed = rendered(edit);
  const checks = checksFor(changed.checks, opts.deadMs ?? 4 * HELLO_MS);
  const run = await n.run(applyTryScript(target, 8, checks), { stdin: changed.config, env });
  return { run, state: await n.state(), changed: changed.config };
}

function ospfAndFirewall(raw: Raw): void {
  withOspf(raw);
  firewallChange(raw);
}

function expectConfirmed(r: { run: ScriptRun; state: NodeState; changed: string }): void {
  expect(r.run.code, r.run.stderr).toBe(0);
  expect(r.state.saved).toBe(sha256(r.changed));
}

function expectReverted(r: { run: ScriptRun; state: NodeState }): void {
  expect(r.run.code, r.run.stderr).toBe(1);
  expect(r.state.received.filter((x) => x.event === "apply" && x.mode !== "try")).toEqual([]);
  expect(r.state.saved).toBe(sha256(base.config));
  expect(r.state.running).toBe(sha256(base.config));
  expect(r.run.stderr).toMatch(/health checks failed: OSPF/);
}

describe("OSPF adjacencies in the try window", () => {
  it("a change that does not touch OSPF keeps both adjacencies and is confirmed", async () => {
    const r = await tryChange(ospfAndFirewall);
    expectConfirmed(r);
    expect(r.run.stderr).toContain(
      "OSPF neighbours Full before the change, which it must keep: 10.50.0.254 on lan0.50, 10.20.0.253 on lan0.20",
    );
    expect(r.run.stderr).toContain("ok: OSPF adjacencies that were Full before the change");
  }, 60_000);

  it("a change after which a neighbour's hellos stop is not confirmed, though BIRD still says Full", async () => {
    // a dead interval longer than the try window: the neighbour stays Full to the end, and only the hello that
    // never came tells the change broke it
    const r = await tryChange(ospfAndFirewall, { ospfSilenced: ["10.50.0.254"] }, { deadMs: 60_000 });
    expectReverted(r);
    expect(r.run.stderr).toContain(
      "neighbour 10.50.0.254 on lan0.50 has sent no hello since the new configuration's checks began",
    );
    expect(r.run.stderr).not.toMatch(/neighbour 10\.20\.0\.253 on lan0\.20 (has|is)/);
    // OSPF waited out the window: the checks after it say once that they were not run, not each that it gave up
    expect(r.run.stderr).toMatch(/health checks failed: OSPF, and not run for lack of time: \S/);
    expect(r.run.stderr).not.toContain("(not attempted: no time left)");
  }, 60_000);

  it("a change that renumbers a segment loses its neighbour and is not confirmed, naming it", async () => {
    const r = await tryChange((raw) => {
      withOspf(raw);
      // the whole segment moves to 10.21.0.0/24: its gateway, pool and reservations with it
      const i = raw.segments.findIndex((s: { name: string }) => s.name === "trusted");
      raw.segments[i] = JSON.parse(JSON.stringify(raw.segments[i]).replaceAll("10.20.0.", "10.21.0.")) as unknown;
    });
    expectReverted(r);
    // the neighbour (10.20.0.253) is no longer on the segment's subnet: its hellos stop, then BIRD drops it
    expect(r.run.stderr).toMatch(
      /neighbour 10\.20\.0\.253 on lan0\.20 (is gone|has sent no hello since the new configuration's checks began)/,
    );
  }, 60_000);

  it("holds no neighbour on a segment the change takes out of OSPF", async () => {
    const r = await tryChange(
      (raw) => {
        withOspf(raw);
        raw.routing.ospf!.segments = ["trusted"];
      },
      { ospfSilenced: ["10.50.0.254"] },
    );
    expectConfirmed(r);
    expect(r.run.stderr).toContain(
      "OSPF neighbours Full before the change, which it must keep: 10.20.0.253 on lan0.20",
    );
  }, 60_000);

  it("says a stale status holds nothing, and goes on", async () => {
    const n = await start();
    // the status container stopped a while ago: the file is older than three statuses
    await n.fault({ ospfStatusStopped: true });
    await new Promise((r) => setTimeout(r, 3_500));
    await n.fault({ ospfSilenced: ["10.50.0.254"] });
    const changed = rendered(ospfAndFirewall);
    const run = await n.run(applyTryScript(target, 8, checksFor(changed.checks, 4 * HELLO_MS)), {
      stdin: changed.config,
      env,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(
      /WARNING: the OSPF status on the node is stale or unreadable \(it was written [3-9]s ago\), so this change holds no adjacency/,
    );
  }, 60_000);

  it("holds nothing when BIRD has never written a status on the node", async () => {
    // the bird pod has not started (OSPF is new on this site: the services follow the host's change)
    const n = await start({ podStartMs: 3_600_000 });
    const changed = rendered(ospfAndFirewall);
    const run = await n.run(applyTryScript(target, 8, checksFor(changed.checks, 4 * HELLO_MS)), {
      stdin: changed.config,
      env,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain("no OSPF status on the node yet (/var/lib/router/routing/ospf.json)");
  }, 60_000);

  it("changes nothing when the node cannot be read before the change", async () => {
    const n = await start();
    await n.fault({ hang: ["read"] });
    const changed = rendered(ospfAndFirewall);
    const run = await n.run(applyTryScript(target, 8, checksFor(changed.checks, 4 * HELLO_MS)), {
      stdin: changed.config,
      env,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("could not read the node's OSPF status");
    const state = await n.state();
    expect(state.received.filter((x) => x.event === "apply")).toEqual([]);
  }, 90_000);
});

describe("OSPF adjacencies through an upgrade", () => {
  it("keeps an upgrade once BIRD is Full again on the new boot, not on the previous boot's status", async () => {
    // the bird pod starts 2 s after the node is back: until then the file is the previous boot's, all Full
    const n = await start({ podStartMs: 2_000 });
    const run = await n.run(upgradeScript(target, "installer:v1.14.7", checksFor(base.checks, 4 * HELLO_MS)), {
      env,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain("ok: OSPF adjacencies that were Full before the change");
    expect(run.stderr).toMatch(/upgrade to installer:v1\.14\.7 healthy/);
  }, 90_000);

  it("rolls back an upgrade on which a neighbour does not come back; the previous boot's status, all Full, does not count", async () => {
    const n = await start({ podStartMs: 1_000 });
    // from the next boot on, the servers neighbour's hellos no longer reach BIRD
    await n.fault({ ospfSilenced: ["10.50.0.254"] });
    const run = await n.run(upgradeScript(target, "installer:v1.14.7", checksFor(base.checks, 4 * HELLO_MS)), {
      env,
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /health checks failed: OSPF(, and not run for lack of time: cluster-health)?; rolling back to the previous image/,
    );
    expect(run.stderr).toMatch(/neighbour 10\.50\.0\.254 on lan0\.50 (is gone|has sent no hello)/);
    expect((await n.state()).slots.current).not.toBe("installer:v1.14.7");
  }, 120_000);
});

describe("the health gate", () => {
  it("has no before to hold adjacencies to and does not read them", async () => {
    const n = await start();
    await n.fault({ ospfSilenced: ["10.50.0.254"], hang: ["read"] });
    const run = await n.run(healthScript(target, checksFor(base.checks, 4 * HELLO_MS)), { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/OSPF/);
  }, 60_000);
});
