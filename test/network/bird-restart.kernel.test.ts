/**
 * The bird pod's restart. Its process ends the way the kubelet ends a container (SIGTERM to PID 1, which is BIRD;
 * SIGKILL once terminationGracePeriodSeconds pass). The kernel protocol's `persist` leaves the routes BIRD
 * installed in the kernel, so the router keeps forwarding while the pod is away; the next pod's start
 * (images/services/bird-start) holds them one metric behind before BIRD's first scan of the kernel table would
 * remove them as its own routes it has not learned (yet), and flushes them after its grace
 * (components/network-services/bird.ts says why BIRD's graceful restart is not used).
 * Proven here, in namespaces: the bird pod as the node runs it (test/network/bird.ts: the rendered command,
 * capabilities and bird.conf, BIRD as PID 1 of its own PID namespace) and a neighbour FRR that advertises a
 * prefix over OSPF with the default timers (the rendered config keeps them, and both ends must agree). The
 * learned route is polled every 100 ms: it is never missing through the stop and the start, and no datagram
 * over it is lost; BIRD's new route wins over the held one, which is flushed after the grace with a route of
 * BIRD's that OSPF no longer learns and one the replaced frr pod left; the route is BIRD's again (the neighbour's
 * withdrawal removes it).
 * Beside BIRD, Talos' own BGP (GoBGP in machined) installs every learned best path as a RouteSpec: main table,
 * protocol bgp (186), priority 0 (siderolabs/talos internal/app/machined/pkg/controllers/network/internal/bgp/
 * bgp.go RouteSpec), added with that priority as the metric (route_spec.go syncRoute; the kernel makes an IPv6
 * metric 0 into 1024). BIRD counts only protocol bird (12) routes as its own (sysdep/linux/netlink.c
 * nl_parse_route: other protocols' routes are ignored unless `learn`, which the render leaves off), so neither
 * its start nor its sync after the restart touches them, nor Talos' static route (protocol static) or DHCP
 * default route (protocol boot) — even a protocol-bgp route at BIRD's own metric 20; an `ip monitor` records
 * every deletion to prove it.
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Shell, type Daemon } from "../e2e/lib/exec";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { sleep, waitFor } from "../helpers/wait";
import { BirdPod } from "./bird";
import { FRR_DAEMONS, FrrInstance, ospfPeerConf } from "./frr";
import { Netns } from "./netns";

const t = tier("the bird pod's restart", {
  root: true,
  commands: ["ip", "unshare", "setpriv", "node", "vtysh", "bird", "birdc"],
  files: ["zebra", "ospfd"].map((d) => `${FRR_DAEMONS}/${d}`),
});

const ROUTER = "10.50.0.1";
const PEER = "10.50.0.254";
/** The neighbour's prefix, learned over OSPF, and an address in it that answers pings. */
const LEARNED = "172.30.9.0/24";
const TARGET = "172.30.9.1";
/** The pods' terminationGracePeriodSeconds (components/daemonset.ts). */
const KUBELET_GRACE_MS = 10_000;

const dev = devSite((raw) => {
  raw.routing = { ospf: { routerId: "10.10.0.1", segments: ["servers"], redistribute: ["connected"] } };
});

const PEER_CONF = ospfPeerConf(PEER);

/** A UDP echo server: sends every datagram back. */
const ECHO = `
const s = require("node:dgram").createSocket("udp4");
s.on("message", (m, r) => s.send(m, r.port, r.address));
s.bind(Number(process.argv[3]), process.argv[2], () => console.log("ready"));
`;

/** Sends a numbered datagram every 100 ms; prints "ok N" for each echo and "err N CODE" for each failed send. */
const SENDER = `
const s = require("node:dgram").createSocket("udp4");
const [host, port] = process.argv.slice(2);
let n = 0;
s.on("message", (m) => console.log("ok " + m.toString()));
setInterval(() => {
  const seq = String(++n);
  s.send(seq, Number(port), host, (e) => e && console.log("err " + seq + " " + e.code));
}, 100);
`;
const ECHO_PORT = 7007;
/** A route of BIRD's that OSPF no longer learns (as a withdrawn prefix leaves behind): held, then flushed. */
const GONE = "172.30.99.0/24";
/** A route the frr pod this one replaced left behind (zebra's protocol ospf): held, then flushed. */
const FRR_LEFT = "172.30.98.0/24";
/** The protocol bird-start holds routes under (images/services/bird-start), as `ip -j` names an unnamed one. */
const STALE = "249";
/**
 * The hold's length in this test (the pod's default is 120 s): longer than the new adjacency takes on a loaded
 * machine (a neighbour's hello every 10 s names the DR, then the database exchange; up to ≈ 20 s seen under a
 * full test run), shorter than the default to keep the test short.
 */
const GRACE_S = 45;
/** What Talos installs beside BIRD: learned BGP paths (each family, at the metric the kernel gives priority 0), a
 * protocol-bgp route at BIRD's own metric, the DHCP default route and a static route. */
const TALOS = [
  { dst: "172.31.250.0/24", spec: "via 10.50.0.254 proto bgp metric 0", protocol: "bgp" },
  { dst: "2001:db8:250::/48", spec: "via 2001:db8:50::fe proto bgp metric 0", protocol: "bgp" },
  { dst: "172.31.251.0/24", spec: "via 10.50.0.254 proto bgp metric 20", protocol: "bgp" },
  { dst: "default", spec: "via 10.50.0.253 proto boot metric 1010", protocol: "boot" },
  { dst: "172.20.99.0/24", spec: "via 10.50.0.253 proto static metric 1024", protocol: "static" },
];

interface KernelRoute {
  dst: string;
  protocol?: string;
  gateway?: string;
  metric?: number;
}

describe.skipIf(!t.ok)("the bird pod's restart", () => {
  const lab = new Netns("bg");
  // made in beforeAll: lab.dir makes the scratch directory, which a skipped tier must not leave behind
  let shell: Shell;
  const peer = new FrrInstance(lab, "peer", lab.name("frrp"));
  let bird: BirdPod;

  /** The router's main-table IPv4 routes (`-d` names every protocol). */
  const routes = (): KernelRoute[] =>
    JSON.parse(
      lab.exec("rtr", ["ip", "-d", "-j", "-4", "route", "show", "table", "main"]).stdout || "[]",
    ) as KernelRoute[];
  const learned = () => routes().filter((r) => r.dst === LEARNED);
  /** The main table's routes of a prefix, both families. */
  const both = (dst: string): KernelRoute[] =>
    ["-4", "-6"]
      .flatMap(
        (f) =>
          JSON.parse(
            lab.exec("rtr", ["ip", "-d", "-j", f, "route", "show", "table", "main"]).stdout || "[]",
          ) as KernelRoute[],
      )
      .filter((r) => r.dst === dst);
  let monitor: Daemon;

  beforeAll(async () => {
    shell = new Shell(lab.dir);
    lab.add("rtr", "peer");
    lab.link("rtr", "lan0.50", "peer", "eth0");
    lab.ip("rtr", [
      `address add ${ROUTER}/24 dev lan0.50`,
      "address add 2001:db8:50::1/64 dev lan0.50",
      ...TALOS.map((r) => `route add ${r.dst} ${r.spec}`),
    ]);
    lab.ip("peer", [`address add ${PEER}/24 dev eth0`, `address add ${TARGET}/24 dev lo`]);
    chmodSync(lab.dir, 0o755);
    writeFileSync(join(lab.dir, "peer.conf"), PEER_CONF, { mode: 0o644 });
    writeFileSync(join(lab.dir, "echo.js"), ECHO);
    writeFileSync(join(lab.dir, "sender.js"), SENDER);
    const echo = shell.daemon("udp-echo", lab.name("peer"), [
      "node",
      join(lab.dir, "echo.js"),
      TARGET,
      String(ECHO_PORT),
    ]);
    await waitFor("the echo server", () => echo.log().includes("ready"), 10_000, 50);
    monitor = shell.daemon("route-monitor", lab.name("rtr"), ["ip", "-o", "monitor", "route"]);
    peer.start(["zebra", "ospfd"], join(lab.dir, "peer.conf"));
    bird = new BirdPod(shell, lab.name("rtr"), lab.dir, dev);
    const d = bird.start();
    await waitFor("the learned route in the router's kernel", () => learned().length > 0, 90_000, 250).catch(
      (e: Error) => {
        throw new Error(`${e.message}\nbird pod:\n${d.log()}`);
      },
    );
  }, 100_000);

  afterAll(async () => {
    await bird?.stop(2_000);
    await shell.daemons.stopAll();
    peer.stop();
    lab.close();
  });

  it("keeps the learned route through a restart (no gap, no datagram lost), holds the previous BIRD's routes until the grace ends, then flushes what OSPF no longer learns", async () => {
    expect(learned()).toEqual([expect.objectContaining({ protocol: "bird", gateway: PEER })]);
    const sender = shell.daemon("udp-sender", lab.name("rtr"), [
      "node",
      join(lab.dir, "sender.js"),
      TARGET,
      String(ECHO_PORT),
    ]);
    // the longest stretch without any route to the learned prefix: from the last poll that saw one to the next
    let longest = 0;
    let missingSince: number | undefined;
    const missing: number[] = [];
    let lastSeen = Date.now();
    let polling = true;
    const start = Date.now();
    const poller = (async () => {
      while (polling) {
        const now = Date.now();
        let seen = true;
        try {
          seen = learned().length > 0;
        } catch {
          polling = false; // the namespace is gone: a failed test's cleanup ran
        }
        if (!seen) {
          missing.push(now - start);
          missingSince ??= lastSeen;
        } else {
          if (missingSince !== undefined) longest = Math.max(longest, now - missingSince);
          missingSince = undefined;
          lastSeen = now;
        }
        await sleep(100);
      }
    })();
    await sleep(1_000);
    await bird.stop(KUBELET_GRACE_MS);
    // the stop left BIRD's routes in place (persist): what the next start holds
    expect(learned()).toEqual([expect.objectContaining({ protocol: "bird", gateway: PEER })]);
    // a route of BIRD's that OSPF no longer learns (a prefix withdrawn while the pod was away), and one the FRR
    // this pod replaced left behind (zebra's protocol ospf, its metric 20)
    lab.ip("rtr", [
      `route add ${GONE} via ${PEER} proto bird metric 20`,
      `route add ${FRR_LEFT} via ${PEER} proto ospf metric 20`,
    ]);
    const held = Date.now();
    const d = bird.start({ env: { BIRD_RESTART_GRACE: String(GRACE_S) } });
    await waitFor("the learned route held", () => learned().some((r) => r.protocol === STALE), 10_000, 50);
    await waitFor("the learned route BIRD's again", () => learned().some((r) => r.protocol === "bird"), 60_000, 100);
    // BIRD's own route wins; the held one waits one metric behind until the grace ends
    expect(learned(), `${Date.now() - held} ms after the start`).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ protocol: "bird", gateway: PEER, metric: 20 }),
        expect.objectContaining({ protocol: STALE, gateway: PEER, metric: 21 }),
      ]),
    );
    expect(Date.now() - held).toBeLessThan(GRACE_S * 1000);
    await waitFor(
      "the held routes flushed",
      () => routes().every((r) => r.protocol !== STALE),
      (GRACE_S + 10) * 1000,
      200,
    );
    await sleep(500);
    polling = false;
    await poller;
    await sleep(500); // the last echoes
    await sender.stop();
    if (missingSince !== undefined) longest = Math.max(longest, Date.now() - missingSince);
    console.log(`bird restart: the learned route was missing at ${missing.length} polls, longest gap ${longest} ms`);
    expect(missing, `the learned route was missing at these ms (longest gap ${longest} ms)\n${d.log()}`).toEqual([]);
    expect(d.log()).toMatch(new RegExp(`holding ${LEARNED.replace(/[./]/g, "\\$&")} \\(protocol bird\\)`));
    // after the grace: the learned route is BIRD's alone; what OSPF no longer learns is gone
    expect(learned()).toEqual([expect.objectContaining({ protocol: "bird", gateway: PEER, metric: 20 })]);
    expect(routes().filter((r) => r.dst === GONE || r.dst === FRR_LEFT)).toEqual([]);
    // every datagram sent before the end (the last few may still be in flight) came back
    const lines = sender.log().split("\n");
    const sent = Math.max(...lines.map((l) => Number(/^(?:ok|err) (\d+)/.exec(l)?.[1] ?? 0)));
    const answered = new Set(lines.flatMap((l) => (l.startsWith("ok ") ? [Number(l.slice(3))] : [])));
    const lost = Array.from({ length: sent - 5 }, (_, i) => i + 1).filter((i) => !answered.has(i));
    expect(sent).toBeGreaterThan(30);
    expect(
      lost,
      lines
        .filter((l) => l.startsWith("err"))
        .slice(0, 20)
        .join("\n"),
    ).toEqual([]);
  }, 160_000);

  it.each(TALOS)("never deletes nor changes Talos' route to $dst ($protocol) at BIRD's starts or syncs", (r) => {
    const deleted = monitor
      .log()
      .split("\n")
      .filter((l) => l.startsWith(`Deleted ${r.dst} `));
    expect(deleted, `route monitor:\n${monitor.log()}`).toEqual([]);
    expect(both(r.dst).map((k) => k.protocol)).toEqual([r.protocol]);
  });

  it("is BIRD's route again after the restart: the neighbour's withdrawal removes it", async () => {
    expect(learned()).toEqual([expect.objectContaining({ protocol: "bird", gateway: PEER })]);
    lab.exec("peer", ["ip", "address", "del", `${TARGET}/24`, "dev", "lo"]);
    await waitFor("the withdrawn route gone from the router's kernel", () => learned().length === 0, 30_000, 100);
  }, 40_000);
});
