/**
 * BIRD's capabilities: the rendered bird DaemonSet's container adds only NET_ADMIN and NET_RAW (no SYS_ADMIN,
 * which every FRR daemon demanded: lib/privs.c zprivs_caps_init), and BIRD started with exactly that set
 * (setpriv: bounding set, nothing inheritable or ambient, no_new_privs, as the runtime gives uid 0) and the
 * rendered bird.conf forms an OSPF adjacency with an FRR neighbour and installs the route it learns in the
 * kernel. With one capability fewer it cannot: without NET_RAW no OSPF socket opens, without NET_ADMIN BIRD may
 * not write the kernel's routes (after the restart that follows the first run, it replaces the route it left) —
 * so the set is what BIRD needs, not more.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Shell } from "../e2e/lib/exec";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { waitFor } from "../helpers/wait";
import { BirdPod } from "./bird";
import { FRR_DAEMONS, FrrInstance, ospfPeerConf } from "./frr";
import { Netns } from "./netns";

const t = tier("BIRD's capabilities", {
  root: true,
  commands: ["ip", "unshare", "setpriv", "bird", "birdc", "vtysh"],
  files: [`${FRR_DAEMONS}/zebra`, `${FRR_DAEMONS}/ospfd`],
});

const PEER = "10.50.0.254";
const LEARNED = "172.30.9.0/24";

const dev = devSite((raw) => {
  raw.routing = { ospf: { routerId: "10.10.0.1", segments: ["servers"], passive: ["mgmt"] } };
});

const PEER_CONF = ospfPeerConf(PEER);

describe.skipIf(!t.ok)("BIRD's capabilities", () => {
  const lab = new Netns("bp");
  // made in beforeAll: lab.dir makes the scratch directory, which a skipped tier must not leave behind
  let shell: Shell;
  const peer = new FrrInstance(lab, "peer", lab.name("frrp"));
  let bird: BirdPod;

  const learned = () =>
    (JSON.parse(lab.exec("rtr", ["ip", "-d", "-j", "-4", "route", "show", LEARNED]).stdout || "[]") as {
      protocol?: string;
      gateway?: string;
    }[]) ?? [];

  beforeAll(() => {
    shell = new Shell(lab.dir);
    lab.add("rtr", "peer");
    lab.link("rtr", "lan0.50", "peer", "eth0");
    lab.ip("rtr", ["address add 10.50.0.1/24 dev lan0.50"]);
    lab.ip("peer", [`address add ${PEER}/24 dev eth0`, "address add 172.30.9.1/24 dev lo"]);
    chmodSync(lab.dir, 0o755);
    writeFileSync(join(lab.dir, "peer.conf"), PEER_CONF, { mode: 0o644 });
    peer.start(["zebra", "ospfd"], join(lab.dir, "peer.conf"));
    bird = new BirdPod(shell, lab.name("rtr"), lab.dir, dev);
  }, 30_000);

  afterAll(async () => {
    await bird?.stop(2_000).catch(() => undefined);
    await shell.daemons.stopAll();
    peer.stop();
    lab.close();
  });

  it("are NET_ADMIN and NET_RAW only: no SYS_ADMIN", () => {
    expect(bird.capabilities).toEqual(["NET_ADMIN", "NET_RAW"]);
  });

  it("suffice for the adjacency with an FRR neighbour and the learned route in the kernel", async () => {
    const d = bird.start();
    await waitFor("the learned route in the router's kernel", () => learned().length > 0, 90_000, 250).catch(
      (e: Error) => {
        throw new Error(`${e.message}\nbird pod:\n${d.log()}\n${bird.birdc("show", "ospf", "neighbors")}`);
      },
    );
    expect(learned()).toEqual([expect.objectContaining({ protocol: "bird", gateway: PEER })]);
    expect(bird.birdc("show", "ospf", "neighbors")).toMatch(new RegExp(`${PEER.replace(/\./g, "\\.")}.*Full`));
    expect(d.exited).toBe(false);
    await bird.stop(5_000);
  }, 100_000);

  it.each([
    ["NET_RAW", /router_ospf: Socket error: socket: Operation not permitted/],
    ["NET_ADMIN", /Netlink: Operation not permitted/],
  ])(
    "are each needed: without %s BIRD says so",
    async (cap, complaint) => {
      const d = bird.start({ capabilities: bird.capabilities.filter((c) => c !== cap) });
      try {
        await waitFor(`BIRD's complaint without ${cap}`, () => complaint.test(d.log()), 60_000, 100);
      } finally {
        await bird.stop(2_000);
      }
    },
    70_000,
  );
});
