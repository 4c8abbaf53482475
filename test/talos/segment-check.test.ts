/**
 * The node's side of every segment is part of the checks: inside the try window (before the network services roll
 * out, which follow the confirmed host change) each segment's VLAN link must be up and carry the gateway addresses
 * the plan gives it, as the node reports them (LinkStatus/AddressStatus). A renumbered segment whose address did
 * not come up is not confirmed and the node reverts. Runs against the fake node, whose links and addresses follow
 * its running configuration (test/fixtures/fake-node/segments.js).
 */
import { afterEach, describe, expect, it } from "vitest";
import { applyTryScript, healthScript } from "../../components/talos-node/scripts";
import { canonicalCidr } from "../../components/talos-node/health";
import { renderStack } from "../../cli/render";
import { FakeNode, sha256, type Faults } from "../helpers/fake-node";
import { nodeOptions, rendered, talosconfig, target } from "../helpers/lifecycle-fixtures";
import { devStack } from "../helpers/stacks";
import { devRaw, type Raw } from "../helpers/dev-site";
import { tier } from "../helpers/tier";

const t = tier("segment check", { commands: ["jq", "curl"] });
const env = { ROUTER_TALOSCONFIG: talosconfig() };
const base = rendered();

/** iot moves from 10.30.0.0/23 and fd12:3456:789a:30::/64 to 10.31.0.0/24 and fd12:3456:789a:31::/64. */
function renumberIot(raw: Raw): void {
  const iot = (raw.segments as Raw[]).find((s) => s.name === "iot")!;
  iot.ipv4 = { cidr: "10.31.0.0/24" };
  iot.ipv6 = { prefix: "fd12:3456:789a:31::/64" };
}
const renumbered = rendered(renumberIot);

let node: FakeNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

async function tryRenumber(faults: Faults, config = renumbered.config) {
  node = await FakeNode.start(nodeOptions({ installed: true, bootstrapped: true, savedConfig: base.config }));
  await node.fault(faults);
  const run = await node.run(applyTryScript(target, 6, renumbered.checks), { stdin: config, env });
  return { run, state: await node.state() };
}

/** The configuration without one of its documents (a VLAN link the node never got). */
function withoutVlan(config: string, link: string): string {
  return config
    .split(/^---\n/m)
    .filter((d) => !(/^kind: VLANConfig$/m.test(d) && new RegExp(`^name: ${link.replace(".", "\\.")}$`, "m").test(d)))
    .join("---\n");
}

describe.skipIf(!t.ok)("the segments in the try window", () => {
  it("a renumbered segment whose new gateway address does not come up is not confirmed, and the node reverts", async () => {
    const { run, state } = await tryRenumber({ dropAddresses: ["10.31.0.1/24"] });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/health checks failed: segments/);
    expect(run.stderr).toContain("segment iot: link lan0.30 has no address 10.31.0.1/24");
    expect(run.stderr).toMatch(/NOT confirmed/);
    expect(run.stderr).toMatch(/the node reverted and answers again on its previous configuration/);
    expect(state.received.filter((r) => r.event === "apply" && r.mode !== "try")).toEqual([]);
    expect(state.saved).toBe(sha256(base.config));
    expect(state.running).toBe(sha256(base.config));
  });

  it("a missing IPv6 gateway address fails the same way, named as the node prints it", async () => {
    const { run } = await tryRenumber({ dropAddresses: ["fd12:3456:789a:31:0:0:0:1/64"] });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("segment iot: link lan0.30 has no address fd12:3456:789a:31::1/64");
    expect(run.stderr).not.toContain("has no address 10.31.0.1/24");
  });

  it("an IPv6 gateway address another host already has (duplicate address detection failed) fails the try", async () => {
    const { run } = await tryRenumber({ duplicateAddresses: ["fd12:3456:789a:31::1/64"] });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      "segment iot: link lan0.30 address fd12:3456:789a:31::1/64 is not usable (flags dadfailed,tentative,permanent)",
    );
  });

  it("a segment whose VLAN link never appeared is named with its VLAN", async () => {
    const { run } = await tryRenumber({}, withoutVlan(renumbered.config, "lan0.40"));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("segment guest: link lan0.40 (VLAN 40) does not exist");
  });

  it("a segment link that is down fails the try", async () => {
    const down = renumbered.config.replace(/^(name: lan0\.20\n(?:(?!---).*\n)*?)up: true$/m, "$1up: false");
    expect(down).not.toBe(renumbered.config);
    const { run } = await tryRenumber({}, down);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("segment trusted: link lan0.20 is down, not up");
  });

  it("the renumbered segment that comes up is confirmed", async () => {
    const { run, state } = await tryRenumber({});
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/ok: segment links and gateway addresses/);
    expect(state.saved).toBe(sha256(renumbered.config));
    expect(state.running).toBe(sha256(renumbered.config));
  });

  it("the health gate after the services checks the segments as well", async () => {
    node = await FakeNode.start(nodeOptions({ installed: true, bootstrapped: true, savedConfig: base.config }));
    const gate = healthScript({ ...target, healthTimeout: 3 }, base.checks);
    const ok = await node.run(gate, { env });
    expect(ok.code, ok.stderr).toBe(0);
    await node.fault({ dropAddresses: ["fd12:3456:789a:50::1/64"] });
    const bad = await node.run(gate, { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/the router is not healthy: segments/);
    expect(bad.stderr).toContain("segment servers: link lan0.50 has no address fd12:3456:789a:50::1/64");
  });
});

describe("the segment check in the program", () => {
  it("expects addresses in the node's canonical form", () => {
    expect(canonicalCidr("FD12:3456:789A:0030:0:0:0:0001/64")).toBe("fd12:3456:789a:30::1/64");
    expect(canonicalCidr("10.30.0.1/23")).toBe("10.30.0.1/23");
  });

  it("is in the dev site's rendered try script and health gate, with every segment's link and gateway addresses", async () => {
    const { run } = await renderStack({ stack: "dev", config: devStack() });
    const input = (name: string, key: string) => String(run.resources.find((r) => r.name === name)?.inputs[key]);
    // Expected from the stack's own configuration, not from the plan the program computes.
    const segs = devRaw().segments as Raw[];
    expect(segs.length).toBeGreaterThan(0);
    for (const script of [input("lab-node-apply", "update"), input("lab-node-healthy", "update")]) {
      expect(script).toContain("get addresses -o json");
      for (const s of segs) {
        const [net4, len4] = String(s.ipv4.cidr).split("/");
        const gw4 = net4.replace(/\.0$/, ".1");
        const gw6 = String(s.ipv6.prefix).replace(/::\/64$/, "::1/64");
        expect(script).toContain(`"segment":"${s.name}","link":"lan0.${s.vlan}","vlan":${s.vlan}`);
        expect(script).toContain(`"${gw4}/${len4}","${gw6}"`);
      }
    }
  }, 120_000);
});
