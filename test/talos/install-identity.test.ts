/**
 * The first install hits the right box and the right disk: before any secret goes to a node in maintenance mode, its
 * NIC MACs (and, when pinned, its certificate) must be the site's, and the install disk selector must pick exactly
 * one of its disks. A wrong box gets nothing: the fake node records no apply.
 */
import { afterEach, describe, expect, it } from "vitest";
import { installScript, type InstallIdentity } from "../../components/talos-node/scripts";
import { diskSelector, renderCel, renderJq } from "../../components/talos-node/disk-selector";
import type { InstallDisk } from "../../components/site/schema";
import { FakeNode, type Faults } from "../helpers/fake-node";
import { devBox, nodeOptions, nvme, rendered, talosconfig, target } from "../helpers/lifecycle-fixtures";

const env = { ROUTER_TALOSCONFIG: talosconfig() };
const base = rendered();
const t = { ...target, healthTimeout: 3 };

let node: FakeNode | undefined;
afterEach(async () => {
  await node?.stop();
  node = undefined;
});

function identity(disk: InstallDisk, over: Partial<InstallIdentity> = {}): InstallIdentity {
  const sel = diskSelector(disk);
  return { ...base.identity, diskFilter: renderJq(sel), diskCel: renderCel(sel), ...over };
}

async function install(id: InstallIdentity, faults: Faults = {}) {
  node = await FakeNode.start(nodeOptions());
  await node.fault(faults);
  const run = await node.run(installScript(t, id), { stdin: base.config, env });
  const st = await node.state();
  return { run, applies: st.received.filter((r) => r.event === "apply"), installed: st.installed };
}

describe("the first install", () => {
  it("installs on the dev box: every NIC present, one NVMe disk of at least 100 GiB", async () => {
    const r = await install(base.identity);
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.applies).toHaveLength(1);
    expect(r.installed).toBe(true);
  });

  it("another box at the maintenance address gets nothing, and the message names the missing MACs", async () => {
    const other = devBox();
    other.links = other.links.map((l, i) => ({ ...l, permanentAddr: `02:00:00:00:00:0${i}` }));
    const r = await install(base.identity, { identity: { links: other.links } });
    expect(r.run.code).toBe(1);
    expect(r.applies).toEqual([]);
    expect(r.run.stderr).toMatch(
      /not this site's router: the NIC MACs 00:1a:2b:3c:4d:01 00:1a:2b:3c:4d:02 00:1a:2b:3c:4d:03 \(router:node\.nics\[\]\.mac\) are not among its links' permanent addresses \(it has: 02:00/,
    );
    expect(r.run.stderr).toMatch(/Nothing was sent to it/);
  });

  it("a box with only some of the site's NICs is not the router either", async () => {
    const box = devBox();
    const r = await install(base.identity, { identity: { links: box.links.filter((l) => l.name !== "enp3s0") } });
    expect(r.run.code).toBe(1);
    expect(r.applies).toEqual([]);
    expect(r.run.stderr).toMatch(/the NIC MACs 00:1a:2b:3c:4d:03 \(router:node/);
  });

  it("a pinned certificate fingerprint that does not match stops the apply during the handshake", async () => {
    const r = await install(identity({ type: "nvme", minSizeGiB: 100 }, { certFingerprint: "A".repeat(43) + "=" }));
    expect(r.run.code).toBe(1);
    expect(r.applies).toEqual([]);
    expect(r.run.stderr).toMatch(/its maintenance certificate does not match router:node\.maintenanceCertFingerprint/);
  });

  it("the pinned fingerprint of the right box lets the install through", async () => {
    const r = await install(identity({ type: "nvme" }, { certFingerprint: devBox().certFingerprint }));
    expect(r.run.code, r.run.stderr).toBe(0);
    expect(r.applies).toHaveLength(1);
    const apply = r.run.calls.find((c) => c.sub === "apply-config")!;
    expect(apply.argv).toContain(devBox().certFingerprint);
  });

  it("a selector that matches no disk is an error listing the box's disks", async () => {
    const r = await install(identity({ type: "nvme", minSizeGiB: 1000 }));
    expect(r.run.code).toBe(1);
    expect(r.applies).toEqual([]);
    expect(r.run.stderr).toMatch(/router:node\.installDisk must select exactly one disk of the box, but .* selects 0/);
    expect(r.run.stderr).toMatch(/\/dev\/nvme0n1 \(Samsung SSD 980, serial S64ANS0T1/);
    expect(r.run.stderr).toMatch(/\/dev\/sdb \(Flash Disk, serial USB1, 17179869184 bytes, usb\)/);
  });

  it("a selector that matches several disks is an error naming the candidates", async () => {
    const box = devBox();
    const r = await install(identity({ type: "nvme" }), {
      identity: { disks: [...box.disks, nvme("/dev/nvme1n1", 512, "WD Black", "WDB1")] },
    });
    expect(r.run.code).toBe(1);
    expect(r.applies).toEqual([]);
    expect(r.run.stderr).toMatch(/selects 2/);
    expect(r.run.stderr).toMatch(/\| \/dev\/nvme0n1 .*\n.*\| \/dev\/nvme1n1 \(WD Black/);
  });

  it("a raw match keeps the guards: it cannot pick the USB stick the box booted from", async () => {
    const r = await install(identity({ match: 'disk.model == "Flash Disk"' }));
    expect(r.run.code).toBe(1);
    expect(r.applies).toEqual([]);
    expect(r.run.stderr).toMatch(/selects 0/);
  });

  it("a node that no longer answers on its management address goes through the same checks, never straight to maintenance mode", async () => {
    // The install re-runs (state lost, say) against a box that was reset and sits in maintenance mode — but it is
    // another box: nothing may reach it.
    const other = devBox();
    const r = await install(base.identity, {
      identity: {
        links: [{ name: "eth0", permanentAddr: "02:aa:bb:cc:dd:ee" }],
        certFingerprint: other.certFingerprint,
      },
    });
    expect(r.run.stderr).toMatch(/not this site's router/);
    expect(r.applies).toEqual([]);
  });
});
