/**
 * A change must not lose a BGP session: every neighbour established before a try (or an upgrade) must be established
 * again, with BFD up where it was, before the change is kept. Against the fake node, whose BGPPeerStatuses follow its
 * running configuration and the neighbours around it the way Talos' BGP controller does (fake-node/bgp.js).
 */
import { afterEach, describe, expect, it } from "vitest";
import { applyTryScript, healthScript, upgradeScript } from "../../components/talos-node/scripts";
import { FakeNode, sha256, type BgpNeighbour, type Faults, type NodeState, type ScriptRun } from "../helpers/fake-node";
import type { Raw } from "../helpers/dev-site";
import {
  BGP_NEIGHBOURS,
  firewallChange,
  nodeOptions,
  rendered,
  talosconfig,
  target,
  withBgp,
} from "../helpers/lifecycle-fixtures";

const env = { ROUTER_TALOSCONFIG: talosconfig(), ROUTER_RETRY_MS: "300" };

/** The BGP site with a firewall change: nothing of BGP changes. */
function bgpAndFirewall(raw: Raw): void {
  withBgp(raw);
  firewallChange(raw);
}
const base = rendered(withBgp);

let node: FakeNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

async function start(opts: { neighbours?: BgpNeighbour[]; establishMs?: number; image?: string } = {}) {
  node = await FakeNode.start(
    nodeOptions({
      installed: true,
      bootstrapped: true,
      savedConfig: base.config,
      bgpNeighbours: opts.neighbours ?? BGP_NEIGHBOURS,
      bgpEstablishMs: opts.establishMs ?? 300,
      ...(opts.image ? { image: opts.image } : {}),
    }),
  );
  return node;
}

async function tryChange(
  edit: (raw: Raw) => void,
  faults: Faults = {},
  opts: { neighbours?: BgpNeighbour[]; establishMs?: number; tryTimeout?: number } = {},
): Promise<{ run: ScriptRun; state: NodeState; changed: string }> {
  const n = await start(opts);
  await n.fault(faults);
  const changed = rendered(edit);
  const run = await n.run(applyTryScript(target, opts.tryTimeout ?? 8, changed.checks), {
    stdin: changed.config,
    env,
  });
  return { run, state: await n.state(), changed: changed.config };
}

function expectConfirmed(r: { run: ScriptRun; state: NodeState; changed: string }): void {
  expect(r.run.code, r.run.stderr).toBe(0);
  expect(r.state.saved).toBe(sha256(r.changed));
}

function expectReverted(r: { run: ScriptRun; state: NodeState }): void {
  expect(r.run.code).toBe(1);
  expect(r.state.received.filter((x) => x.event === "apply" && x.mode !== "try")).toEqual([]);
  expect(r.state.saved).toBe(sha256(base.config));
  expect(r.state.running).toBe(sha256(base.config));
  expect(r.run.stderr).toMatch(/health checks failed: BGP/);
  expect(r.run.stderr).toMatch(/the node reverted and answers again on its previous configuration/);
}

describe("BGP sessions in the try window", () => {
  it("a change that does not touch BGP keeps every session and is confirmed", async () => {
    const r = await tryChange(bgpAndFirewall);
    expectConfirmed(r);
    expect(r.run.stderr).toContain(
      "BGP sessions established before the change, which it must keep: 10.50.0.250 (BFD up), fd12:3456:789a:50::fe",
    );
    expect(r.run.stderr).toMatch(/ok: BGP sessions that were up before the change/);
  });

  it("a wrong AS for a neighbour loses its session: nothing is confirmed, the node reverts, and the message names it", async () => {
    const r = await tryChange((raw) => withBgp(raw, { asn: 65021 }));
    expectReverted(r);
    expect(r.run.stderr).toMatch(/neighbour 10\.50\.0\.250 \(AS 65021\) is IDLE; it was established before the change/);
    // The other session stayed up and is not named.
    expect(r.run.stderr).not.toMatch(/neighbour fd12:3456:789a:50::fe/);
  });

  it("a change that restarts every session (a new router id) is confirmed once they are established again", async () => {
    // Talos recreates the BGP server when its router id changes (ServerKey): the sessions start over and take 1.5 s.
    const r = await tryChange((raw) => withBgp(raw, { routerId: "10.50.0.2" }), {}, { establishMs: 1500 });
    expectConfirmed(r);
    const statuses = await node!.talosGet("bgppeerstatuses");
    expect(statuses.map((s) => [s.spec.peer, s.spec.state])).toEqual([
      ["10.50.0.250", "ESTABLISHED"],
      ["fd12:3456:789a:50::fe", "ESTABLISHED"],
    ]);
    // They did start over: established after the script began, not an hour ago.
    for (const s of statuses) expect(Date.parse(String(s.spec.since))).toBeGreaterThan(Date.now() - 30_000);
  });

  it("a session whose BFD stays in Init after the change fails the try (GoBGP's stuck Init)", async () => {
    // A change that does not restart the session leaves BFD up, whatever the neighbour would do on a restart.
    const kept = await tryChange(bgpAndFirewall, { bfdStuckInit: ["10.50.0.250"] });
    expectConfirmed(kept);
    await node!.stop();
    // A new router id restarts it, and its BFD never gets past Init.
    const restarted = await tryChange((raw) => withBgp(raw, { routerId: "10.50.0.3" }), {
      bfdStuckInit: ["10.50.0.250"],
    });
    expectReverted(restarted);
    expect(restarted.run.stderr).toMatch(
      /neighbour 10\.50\.0\.250 \(AS 65020\): BFD is init; it was up before the change/,
    );
  });

  it("a session that was down before the change holds nothing", async () => {
    // The IPv6 neighbour does not answer (ACTIVE before and after); a router id change is confirmed without it.
    const r = await tryChange(
      (raw) => withBgp(raw, { routerId: "10.50.0.2" }),
      {},
      { neighbours: [BGP_NEIGHBOURS[0]] },
    );
    expectConfirmed(r);
    expect(r.run.stderr).toContain("which it must keep: 10.50.0.250 (BFD up)\n");
  });

  it("BFD turned off on a neighbour is not held to BFD", async () => {
    const r = await tryChange((raw) => withBgp(raw, { bfd: false }));
    expectConfirmed(r);
    expect(r.run.stderr).toContain("which it must keep: 10.50.0.250, fd12:3456:789a:50::fe\n");
  });

  it("a node that cannot report its BGP sessions is not changed", async () => {
    const r = await tryChange(bgpAndFirewall, { hang: ["get:bgppeerstatuses"] });
    expect(r.run.code).toBe(1);
    expect(r.run.stderr).toMatch(/could not read the node's BGP sessions.*nothing was changed/);
    expect(r.state.received.filter((x) => x.event === "apply")).toEqual([]);
    expect(r.state.saved).toBe(sha256(base.config));
  });
});

describe("BGP sessions across an upgrade and in the health gate", () => {
  const OLD = "registry.lab:5000/router/installer@sha256:" + "a".repeat(64);
  const NEW = "registry.lab:5000/router/installer@sha256:" + "b".repeat(64);

  it("an image on which the sessions do not come back is rolled back, and they are up again on the old one", async () => {
    const n = await start({ image: OLD });
    await n.fault({ bgpBrokenImages: [NEW] });
    const run = await n.run(upgradeScript({ ...target, healthTimeout: 6 }, NEW, base.checks), { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/health checks failed: BGP.*; rolling back to the previous image/);
    expect(run.stderr).toMatch(/neighbour 10\.50\.0\.250 \(AS 65020\) is ACTIVE; it was established before the change/);
    expect(run.stderr).toMatch(/rolled back: the node runs its previous image again and is healthy/);
    const st = await n.state();
    expect(st.slots.current).toBe(OLD);
    expect((await n.talosGet("bgppeerstatuses")).map((s) => s.spec.state)).toEqual(["ESTABLISHED", "ESTABLISHED"]);
  });

  it("an image on which they come back stays", async () => {
    const n = await start({ image: OLD });
    const run = await n.run(upgradeScript({ ...target, healthTimeout: 20 }, NEW, base.checks), { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/ok: BGP sessions that were up before the change/);
  });

  it("the health gate, which has no before, does not hold a neighbour that is down", async () => {
    const n = await start({ neighbours: [] });
    const run = await n.run(healthScript({ ...target, healthTimeout: 3 }, base.checks), { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/BGP/);
  });
});
