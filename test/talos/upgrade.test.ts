/** Upgrades against the fake node's A/B boot slots: a healthy new image stays, an unhealthy one is rolled back. */
import { afterEach, describe, expect, it } from "vitest";
import { upgradeScript } from "../../components/talos-node/scripts";
import { FakeNode } from "../helpers/fake-node";
import { nodeOptions, rendered, talosconfig, target } from "../helpers/lifecycle-fixtures";

const env = { ROUTER_TALOSCONFIG: talosconfig() };
const base = rendered();
const OLD = "registry.lab:5000/router/installer@sha256:" + "a".repeat(64);
const NEW = "registry.lab:5000/router/installer@sha256:" + "b".repeat(64);
const t = { ...target, healthTimeout: 6 };

let node: FakeNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

async function start(): Promise<FakeNode> {
  node = await FakeNode.start(
    nodeOptions({ installed: true, bootstrapped: true, savedConfig: base.config, image: OLD }),
  );
  return node;
}

describe("Talos upgrades", () => {
  it("a new image that boots healthy stays", async () => {
    const n = await start();
    const run = await n.run(upgradeScript({ ...t, healthTimeout: 20 }, NEW, base.checks), { env });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/upgrade to .* healthy/);
    const st = await n.state();
    expect(st.slots).toEqual({ current: NEW, previous: OLD });
    expect(st.received.map((r) => r.event)).toEqual(["upgrade", "reboot"]);
  });

  it("a new image that boots but fails its health is rolled back, the old one comes back healthy, and the update fails saying so", async () => {
    const n = await start();
    await n.fault({ unhealthyImages: [NEW] });
    const run = await n.run(upgradeScript(t, NEW, base.checks), { env });
    expect(run.code).toBe(1);
    const st = await n.state();
    expect(st.received.map((r) => r.event)).toEqual(["upgrade", "reboot", "rollback", "reboot"]);
    expect(st.slots.current).toBe(OLD);
    expect(run.stderr).toMatch(
      /health checks failed: Kubernetes-API, and not run for lack of time: .*cluster-health; rolling back to the previous image/,
    );
    expect(run.stderr).toMatch(
      /rolled back: the node runs its previous image again and is healthy\. The upgrade to .*b{64} failed \(Kubernetes-API.*\) and this update changed nothing/,
    );
  });

  it("an image the node cannot pull changes nothing", async () => {
    const n = await start();
    await n.fault({ pullFail: [NEW] });
    const run = await n.run(upgradeScript(t, NEW, base.checks), { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/error validating installer image/);
    expect((await n.state()).slots.current).toBe(OLD);
  });

  it("a rollback that leaves the node unhealthy says so", async () => {
    const n = await start();
    await n.fault({ unhealthyImages: [NEW, OLD] });
    const run = await n.run(upgradeScript(t, NEW, base.checks), { env });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/rolled back to the previous image, but it is not healthy either/);
  });
});
