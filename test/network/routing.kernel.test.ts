/**
 * Dynamic routing through the router's own firewall: BIRD on the router, FRR on the neighbour. The dev site with
 * OSPF on the servers segment (redistributing its static routes and its other segments), a BGP neighbour with BFD
 * on that segment and a static route to 172.20.99.0/24: the router namespace runs the rendered ruleset and the
 * bird pod (the rendered DaemonSet's command, capabilities and bird.conf: test/network/bird.ts), and the kernel
 * holds what Talos installs — the static route with protocol static, a DHCP default route with protocol boot on
 * the WAN. A neighbour namespace runs FRR, which advertises a prefix of its own.
 *   - the OSPF adjacency forms and the neighbour learns the static route's prefix and the other segments'
 *     subnets, never the WAN's default route or subnet; the router installs the neighbour's prefix (protocol
 *     bird) and nothing for its own segment's subnet;
 *   - the BGP session and its BFD session come up from the configured neighbour, while TCP 179 from another
 *     host on the same segment, or from another segment, is dropped.
 * BGP on the router is Talos' own (a BGPInstanceConfig document); here FRR's bgpd stands in for it with the
 * document's ASN, router id and neighbours (siderolabs/talos BGPInstanceConfig: numbered sessions, peer ASN,
 * BFD with an empty block), and passive, so that the session can only come from the neighbour's connection
 * through the router's input chain. Its bgpd and bfdd share a zebra of their own (one FRR path space): bgpd asks
 * zebra for a neighbour's BFD session and zebra hands the request to bfdd (zebra/zebra_ptm.c), as on the
 * neighbour. "BFD up" means on both ends: bfdd holds the session Up, has received the other end's control
 * packets (through the router's input chain one way), and bgpd reports its session tracked by it.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderRuleset } from "../../components/dataplane/nftables";
import { renderRoutingHost } from "../../components/network-services/routing";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { Shell } from "../e2e/lib/exec";
import { BirdPod } from "./bird";
import { FRR_DAEMONS, FrrInstance, eventually } from "./frr";
import { Netns } from "./netns";
import { ROOT } from "../helpers/stacks";
import { OSPF_REFORM_S, segmentProbeScript } from "../../components/network-services/probe";

const t = tier("dynamic routing through the ruleset, BIRD on the router and FRR on the neighbour", {
  root: true,
  commands: ["ip", "nft", "node", "vtysh", "bird", "birdc", "setpriv", "unshare"],
  files: ["zebra", "ospfd", "bgpd", "bfdd"].map((d) => `${FRR_DAEMONS}/${d}`),
});

const ROUTER = "10.50.0.1";
const PEER = "10.50.0.254";
const OTHER = "10.50.0.77";
const ROUTED = "172.20.99.0/24";
/** The neighbour's own prefix, advertised over OSPF. */
const LEARNED = "172.30.9.0/24";
/**
 * Prefixes the neighbour also advertises, which the router must never install (routing.ospf.accept's default, the
 * router's own subnets): two halves of the address space (together they would beat the WAN's default route), a
 * public prefix, half of the router's own servers subnet and a part of the cluster's pod network. The default route
 * comes from `default-information originate`.
 */
const HIJACKS = ["0.0.0.0/1", "128.0.0.0/1", "8.8.8.0/24", "10.50.0.128/25", "10.244.9.0/24"];

const dev = devSite((raw) => {
  raw.routes = [{ destination: ROUTED, gateway: "10.50.0.253" }];
  raw.routing = {
    ospf: { routerId: "10.10.0.1", segments: ["servers"], redistribute: ["static", "connected"] },
    bgp: { asn: 65010, routerId: "10.10.0.1", neighbors: [{ address: PEER, asn: 65020, bfd: true }], advertise: [] },
  };
});

/** FRR's bgpd configured from the rendered BGPInstanceConfig document, as Talos' BGP would run it. */
function talosBgpStandIn(): string {
  const doc = renderRoutingHost(dev.site, dev.plan).documents[0] as unknown as {
    localASN: number;
    routerID: string;
    neighbors: { address: string; peerASN: number; bfd?: object }[];
  };
  return [
    "frr defaults traditional",
    `router bgp ${doc.localASN}`,
    ` bgp router-id ${doc.routerID}`,
    " no bgp ebgp-requires-policy",
    ...doc.neighbors.flatMap((n) => [
      ` neighbor ${n.address} remote-as ${n.peerASN}`,
      ` neighbor ${n.address} passive`,
      ...(n.bfd ? [` neighbor ${n.address} bfd`] : []),
    ]),
    "!",
    "",
  ].join("\n");
}

const PEER_CONF = [
  "frr defaults traditional",
  "hostname peer",
  "!",
  "interface eth0",
  " ip ospf area 0.0.0.0",
  "!",
  "router ospf",
  ` ospf router-id ${PEER}`,
  " redistribute connected",
  // what a host on the segment could announce to take traffic: the default route, the two halves of the address
  // space, a public prefix, a part of the router's own segment and of its pod network (kernel blackholes here)
  " redistribute kernel",
  " default-information originate always",
  "!",
  "router bgp 65020",
  ` bgp router-id ${PEER}`,
  " no bgp ebgp-requires-policy",
  ` neighbor ${ROUTER} remote-as 65010`,
  ` neighbor ${ROUTER} bfd`,
  "!",
  "",
].join("\n");

/** The bird pod's status container (images/services/router-ospf-status), run once from the checkout. */
const OSPF_STATUS = join(ROOT, "images/services/router-ospf-status");

interface OspfStatus {
  uptime: number;
  boot: string;
  readable: boolean;
  error?: string;
  neighbours?: { routerId: string; interface: string; address: string; state: string; role: string; deadIn: number }[];
}

function ospfStatus(socket: string, out: string): OspfStatus {
  const r = spawnSync(OSPF_STATUS, ["--once", socket, out], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`router-ospf-status failed: ${r.stderr}`);
  return JSON.parse(readFileSync(out, "utf8")) as OspfStatus;
}

const nodeUptime = () => Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);

interface OspfNeighbors {
  neighbors: Record<string, { state?: string; nbrState?: string }[]>;
}
type Routes = Record<string, { protocol: string; selected?: boolean }[]>;

interface BfdPeer {
  peer: string;
  status?: string;
  "control-packet-input"?: number;
}

/** One end's view of its BFD session with `address`: bfdd's state and received packets, bgpd's BFD status. */
function bfdEnd(frr: FrrInstance, address: string): { status?: string; received: number; bgp?: string } {
  const find = (cmd: string) => frr.json<BfdPeer[]>(cmd)?.find?.((p) => p.peer === address);
  const bgp = frr.json<Record<string, { peerBfdInfo?: { status?: string } }>>(`show bgp neighbors ${address} json`);
  return {
    status: find("show bfd peers json")?.status,
    received: find("show bfd peers counters json")?.["control-packet-input"] ?? 0,
    bgp: bgp?.[address]?.peerBfdInfo?.status,
  };
}

describe.skipIf(!t.ok)(
  "dynamic routing through the rendered ruleset, BIRD on the router and FRR on the neighbour",
  () => {
    const lab = new Netns("rt");
    // made in beforeAll: lab.dir makes the scratch directory, which a skipped tier must not leave behind
    let shell: Shell;
    const router = new FrrInstance(lab, "rtr", lab.name("frrr"));
    let bird: BirdPod;
    const peer = new FrrInstance(lab, "peer", lab.name("frrp"));

    beforeAll(() => {
      shell = new Shell(lab.dir);
      lab.add("rtr", "peer", "inet", "trusted");
      lab.link("rtr", "lan0.50", "peer", "eth0");
      lab.link("rtr", "wan0", "inet", "eth0");
      lab.link("rtr", "lan0.20", "trusted", "eth0");
      lab.exec("rtr", ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      lab.ip("rtr", [
        `address add ${ROUTER}/24 dev lan0.50`,
        "address add 10.20.0.1/24 dev lan0.20",
        "address add 203.0.113.2/24 dev wan0",
        // What Talos installs: the DHCP default route (protocol boot), the site's static route (protocol static).
        "route add default via 203.0.113.1 dev wan0 proto boot metric 1010",
        `route add ${ROUTED} via 10.50.0.253 dev lan0.50 proto static metric 1024`,
      ]);
      lab.ip("peer", [
        `address add ${PEER}/24 dev eth0`,
        `address add ${OTHER}/24 dev eth0`,
        "address add 172.30.9.1/24 dev lo",
        ...HIJACKS.map((p) => `route add blackhole ${p}`),
      ]);
      lab.ip("inet", ["address add 203.0.113.1/24 dev eth0"]);
      lab.ip("trusted", ["address add 10.20.0.50/24 dev eth0", "route add default via 10.20.0.1"]);
      lab.nft("rtr", renderRuleset(dev.site, dev.plan, dev.policy));
      chmodSync(lab.dir, 0o755);
      const conf = (name: string, text: string) => {
        writeFileSync(join(lab.dir, name), text, { mode: 0o644 });
        return join(lab.dir, name);
      };
      bird = new BirdPod(shell, lab.name("rtr"), lab.dir, dev);
      bird.start();
      router.start(["zebra", "bfdd", "bgpd"], conf("talos-bgp.conf", talosBgpStandIn()));
      peer.start(["zebra", "bfdd", "ospfd", "bgpd"], conf("peer.conf", PEER_CONF));
    }, 60_000);

    afterAll(async () => {
      await bird?.stop(2_000);
      await shell.daemons.stopAll();
      router.stop();
      peer.stop();
      lab.close();
    });

    it("forms the OSPF adjacency on the servers segment", async () => {
      const state = await eventually(90_000, () => {
        const s = peer.json<OspfNeighbors>("show ip ospf neighbor json")?.neighbors?.["10.10.0.1"]?.[0];
        const v = s?.nbrState ?? s?.state;
        return v?.startsWith("Full") ? v : undefined;
      });
      expect(state).toMatch(/^Full/);
    }, 100_000);

    // What the try path and the metrics read: BIRD's own view, as the pod's status container writes it.
    it("writes the adjacency as BIRD sees it to the OSPF status, stamped with the node's uptime", async () => {
      const out = join(lab.dir, "ospf.json");
      const before = nodeUptime();
      const status = await eventually(30_000, () => {
        const s = ospfStatus(bird.socket, out);
        return s.neighbours?.some((n) => n.state === "Full") ? s : undefined;
      });
      expect(status?.readable).toBe(true);
      expect(status?.boot).toBe(readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
      expect(status?.uptime).toBeGreaterThanOrEqual(Math.floor(before));
      expect(status?.uptime).toBeLessThanOrEqual(nodeUptime() + 1);
      expect(status?.neighbours).toEqual([
        {
          routerId: PEER,
          interface: "lan0.50",
          address: PEER,
          state: "Full",
          role: expect.stringMatching(/^(DR|BDR|Other)$/),
          // hello 10 s, dead 40 s (bird.ts): a neighbour that says hello is never more than one hello from dead 40
          deadIn: expect.any(Number),
        },
      ]);
      expect(status!.neighbours![0].deadIn).toBeGreaterThanOrEqual(29);
      expect(status!.neighbours![0].deadIn).toBeLessThanOrEqual(40);
    }, 40_000);

    it("says the status is unreadable, and why, when BIRD does not answer", () => {
      const s = ospfStatus(join(lab.dir, "no-bird.ctl"), join(lab.dir, "ospf-none.json"));
      expect(s.readable).toBe(false);
      expect(s.error).toMatch(/^birdc failed \(exit \d+\): .*no-bird\.ctl/);
      expect(s.neighbours).toBeUndefined();
    });

    it("advertises the site's static route and its other segments, never the WAN's default route or subnet", async () => {
      const routes = await eventually(30_000, () => {
        const r = peer.json<Routes>("show ip route json");
        return r?.[ROUTED] && r["10.20.0.0/24"] ? r : undefined;
      });
      expect(routes?.[ROUTED]?.[0].protocol).toBe("ospf");
      expect(routes?.["10.20.0.0/24"]?.[0].protocol).toBe("ospf");
      expect(routes?.["0.0.0.0/0"]).toBeUndefined();
      expect(routes?.["203.0.113.0/24"]).toBeUndefined();
    }, 40_000);

    it("installs the neighbour's prefix in the router's kernel, and nothing for its own segment", async () => {
      const kernel = (dst: string) =>
        JSON.parse(lab.exec("rtr", ["ip", "-d", "-j", "-4", "route", "show", "exact", dst]).stdout || "[]") as {
          protocol?: string;
          gateway?: string;
        }[];
      const learned = await eventually(30_000, () => (kernel(LEARNED).length > 0 ? kernel(LEARNED) : undefined));
      expect(learned).toEqual([expect.objectContaining({ protocol: "bird", gateway: PEER })]);
      expect(kernel("10.50.0.0/24").map((r) => r.protocol)).toEqual(["kernel"]);
      // BIRD learned the hijacks (OSPF floods them) but installed none: no route of protocol bird but the prefix
      const ospfRoutes = bird.birdc("show", "route", "protocol", "router_ospf");
      for (const p of [...HIJACKS, "0.0.0.0/0"]) expect(ospfRoutes, p).toContain(p);
      const installed = JSON.parse(lab.exec("rtr", ["ip", "-j", "-4", "route", "show", "proto", "bird"]).stdout) as {
        dst: string;
      }[];
      expect(installed.map((r) => r.dst)).toEqual([LEARNED]);
    }, 40_000);

    it("establishes the BGP session and its BFD session from the configured neighbour", async () => {
      const bgp = await eventually(60_000, () => {
        const n = peer.json<Record<string, { bgpState?: string }>>(`show bgp neighbors ${ROUTER} json`)?.[ROUTER];
        return n?.bgpState === "Established" ? n.bgpState : undefined;
      });
      expect(bgp).toBe("Established");
      // Each end's bfdd holds the session Up (a session leaves Down only on the other end's packets: RFC 5880
      // 6.8.6, FRR bfdd/bfd_packet.c), both have received control packets through the other's input path, and
      // each end's bgpd tracks its BGP session with it (bgpd/bgp_bfd.c: the neighbour's peerBfdInfo).
      const sessions = await eventually(30_000, () => {
        const ends = [bfdEnd(router, PEER), bfdEnd(peer, ROUTER)];
        return ends.every((e) => e.status === "up" && e.bgp === "Up" && e.received > 0) ? ends : undefined;
      });
      expect(
        sessions,
        `BFD and BGP as each end sees them: ${JSON.stringify([bfdEnd(router, PEER), bfdEnd(peer, ROUTER)])}`,
      ).toBeDefined();
    }, 100_000);

    it("drops TCP 179 from any host that is not a configured neighbour", () => {
      expect(lab.probe("peer", ROUTER, 179, OTHER).kind).toBe("dropped");
      expect(lab.probe("trusted", "10.20.0.1", 179, "10.20.0.50").kind).toBe("dropped");
    });

    // The services' rollout gate holds BIRD's adjacencies through a restart (components/network-services/probe.ts):
    // the status container of the new pod keeps the old one's last status, and the segment probe's OSPF check
    // waits for every neighbour Full there to be Full again. With the real BIRD, the real FRR and the real status
    // container: a restart into the same configuration passes within OSPF_REFORM_S; a restart into another area
    // (a typo BIRD accepts, FRR refuses: RFC 2328 10.5) fails naming the neighbour.
    it("holds the adjacency through BIRD's restart: the same configuration comes back Full, another area never does", async () => {
      const dir = join(lab.dir, "routing");
      mkdirSync(dir, { recursive: true });
      const statusOut = join(dir, "ospf.json");
      let status: ChildProcess | undefined;
      let started = nodeUptime() - 1;
      const startStatus = async () => {
        status = spawn(OSPF_STATUS, [bird.socket, statusOut, "1"], { stdio: "ignore" });
        // its first status (since, and uptime not before it) once it has kept the previous one
        await eventually(10_000, () => {
          try {
            const s = JSON.parse(readFileSync(statusOut, "utf8")) as OspfStatus & { since?: number };
            return s.since !== undefined && s.since > started ? s : undefined;
          } catch {
            return undefined;
          }
        });
      };
      const stopStatus = () => status?.kill("SIGTERM");
      const probe = (reformS: number) => {
        const script = segmentProbeScript(
          [{ segment: "servers", link: "lan0.50", ospf: true, fingerprint: "-" }],
          reformS,
        );
        const at = nodeUptime();
        const r = spawnSync("sh", ["-c", script, "segment-probe", "servers"], {
          encoding: "utf8",
          env: { PATH: process.env.PATH, OSPF_STATUS_DIR: dir, PROBE_CHANGED: "bird" },
          timeout: (reformS + 10) * 1000,
        });
        return { code: r.status, out: r.stdout + r.stderr, seconds: nodeUptime() - at };
      };
      const restart = async (conf?: string) => {
        stopStatus();
        await bird.stop(2_000);
        started = nodeUptime();
        bird.start(conf ? { edit: (argv) => argv.map((a, i) => (argv[i - 1] === "-c" ? conf : a)) } : {});
        await startStatus();
      };
      try {
        // the running pod's status container, with the adjacency Full
        await startStatus();
        await eventually(30_000, () => {
          const s = JSON.parse(readFileSync(statusOut, "utf8")) as OspfStatus;
          return s.neighbours?.some((n) => n.routerId === PEER && n.state === "Full") || undefined;
        });

        await restart();
        const same = probe(OSPF_REFORM_S);
        expect(same.out).toContain(`ok segment servers: OSPF on lan0.50: ${PEER} Full again since BIRD restarted`);
        expect(same.code, same.out).toBe(0);
        expect(same.seconds).toBeLessThan(OSPF_REFORM_S);
        console.log(
          `BIRD restarted: the neighbour was Full again within ${same.seconds.toFixed(1)} s of the probe's start`,
        );
        const previous = JSON.parse(readFileSync(join(dir, "ospf.previous.json"), "utf8")) as OspfStatus;
        expect(previous.neighbours?.find((n) => n.routerId === PEER)?.state).toBe("Full");

        // another area: BIRD starts and answers, the neighbour stays away (20 s: two of its hellos)
        const typo = join(lab.dir, "bird-area.conf");
        const birdConf = readFileSync(join(lab.dir, "bird.conf"), "utf8");
        expect(birdConf).toContain("area 0.0.0.0 {");
        writeFileSync(typo, birdConf.replace("area 0.0.0.0 {", "area 0.0.0.1 {"), { mode: 0o644 });
        await restart(typo);
        const wrong = probe(20);
        expect(wrong.code, wrong.out).toBe(1);
        expect(wrong.out).toMatch(
          new RegExp(
            `FAIL segment servers: OSPF on lan0\\.50: neighbour ${PEER.replace(/\./g, "\\.")} \\(${PEER.replace(/\./g, "\\.")}\\) was Full before BIRD restarted and is (gone|\\S+) \\(after 20s\\)`,
          ),
        );

        // back to the site's configuration (the rollback), for the tests after this one
        await restart();
        const back = probe(OSPF_REFORM_S);
        // the previous status is the wrong area's, where nothing was Full: nothing to hold, so wait for it here
        expect(back.code, back.out).toBe(0);
        await eventually(OSPF_REFORM_S * 1000, () => {
          const s = JSON.parse(readFileSync(statusOut, "utf8")) as OspfStatus;
          return s.neighbours?.some((n) => n.routerId === PEER && n.state === "Full") || undefined;
        });
      } finally {
        stopStatus();
      }
    }, 200_000);

    // Last: it silences the neighbour. A neighbour whose hellos stop stays Full for up to the dead interval; the
    // status shows the time since its last hello growing (which the try path's check reads), then the neighbour
    // gone once BIRD declares it dead.
    it("shows a silenced neighbour still Full with its last hello ageing, then drops it at the dead interval", async () => {
      const out = join(lab.dir, "ospf.json");
      lab.nft(
        "peer",
        "table inet silence { chain out { type filter hook output priority 0; ip protocol ospf drop; }; }",
      );
      const silenced = nodeUptime();
      const aged = await eventually(30_000, () => {
        const n = ospfStatus(bird.socket, out).neighbours?.find((x) => x.routerId === PEER);
        return n && 40 - n.deadIn >= 15 ? n : undefined;
      });
      // older than any hello interval, and still Full: a check of the state alone would take it for healthy
      expect(aged?.state).toBe("Full");
      const gone = await eventually(45_000, () => {
        const s = ospfStatus(bird.socket, out);
        return s.readable && !s.neighbours?.some((x) => x.routerId === PEER) ? s : undefined;
      });
      expect(gone, "BIRD still lists the neighbour after its dead interval").toBeDefined();
      expect(gone!.uptime - silenced).toBeGreaterThanOrEqual(29);
    }, 90_000);
  },
);
