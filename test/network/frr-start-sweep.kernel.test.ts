/**
 * A site with OSPF and BGP runs two routing stacks on one kernel: FRR's zebra in the frr pod (OSPF) and Talos'
 * own BGP (GoBGP in machined), which installs every learned best path as a RouteSpec: main table, protocol bgp
 * (186), priority 0 (siderolabs/talos internal/app/machined/pkg/controllers/network/internal/bgp/bgp.go
 * RouteSpec), added by the RouteSpecController with that priority as the route's metric (route_spec.go syncRoute;
 * the kernel makes an IPv6 metric 0 into 1024). FRR's zebra treats protocol bgp as its own: at start it reads the
 * kernel's routes, flags those with a protocol it installs with as left over from a previous run (zebra/
 * rt_netlink.c is_selfroute: bgp, ospf, zebra, FRR's static 196, isis, rip, …; not the kernel's static 4 nor
 * boot 3) and deletes them (zebra/main.c schedules rib_sweep_route at once, or after -K seconds; zebra/
 * zebra_rib.c rib_sweep_table uninstalls each flagged route read before startup; frr-start gives -K, so that
 * a restart keeps forwarding). What spares Talos' routes is
 * the metric: zebra adds and deletes every route with metric 20 (rt_netlink.c, "Hardcode the metric for all
 * routes coming from zebra": RTA_PRIORITY = NL_DEFAULT_ROUTE_METRIC), and the kernel deletes only the route of
 * the metric given (net/ipv4/fib_trie.c fib_table_delete, net/ipv6/route.c ip6_route_del). So zebra installs a
 * copy of a read route at metric 20, behind Talos' own, and its sweep deletes that copy; Talos' route at metric 0
 * (IPv6: 1024) is never touched.
 * Proven here, in namespaces, with the frr pod started as the node starts it (images/services/frr-start with the
 * rendered frr.conf, in a mount namespace holding the pod's /etc/frr, /var/run/frr, /var/tmp and the image's
 * /etc/group), beside the routes Talos installs:
 *   - the sweep runs: a protocol-bgp route at zebra's own metric 20 is deleted (were this to stop, e.g. with a
 *     release that no longer sweeps, this test says so and the reasoning above is to be revisited);
 *   - Talos' BGP routes, IPv4 and IPv6, are never deleted, still hold their gateway, and no copy of zebra's is
 *     left behind (a stale copy would keep forwarding to the old next hop after Talos withdraws the route);
 *   - Talos' static route (protocol static) and DHCP default route (protocol boot) are never touched.
 */
import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Shell, type Daemon } from "../e2e/lib/exec";
import { devSite } from "../helpers/dev-site";
import { tier } from "../helpers/tier";
import { sleep, waitFor } from "../helpers/wait";
import { FRR_DAEMONS, frrPodScript } from "./frr";
import { Netns } from "./netns";

const t = tier("FRR's start beside Talos' BGP routes", {
  root: true,
  commands: ["ip", "mount"],
  files: ["zebra", "staticd", "ospfd", "watchfrr"].map((d) => `${FRR_DAEMONS}/${d}`),
});

const PEER4 = "10.50.0.254";
const PEER6 = "2001:db8:50::fe";
/** Routes Talos' BGP installs (priority 0), each family, with the metric the kernel gives them. */
const TALOS_BGP = [
  { dst: "172.31.250.0/24", gateway: PEER4, metric: 0 },
  { dst: "2001:db8:250::/48", gateway: PEER6, metric: 1024 },
];
/** A protocol-bgp route at zebra's own metric: what its start deletes. */
const ZEBRA_METRIC = "172.31.251.0/24";
const STATIC = "172.20.99.0/24";

const dev = devSite((raw) => {
  raw.routes = [{ destination: STATIC, gateway: "10.50.0.253" }];
  raw.routing = {
    ospf: { routerId: "10.10.0.1", segments: ["servers"], redistribute: ["static", "connected"] },
    bgp: { asn: 65010, routerId: "10.10.0.1", neighbors: [{ address: PEER4, asn: 65020 }], advertise: [] },
  };
});

interface KernelRoute {
  dst: string;
  gateway?: string;
  protocol?: string;
  metric?: number;
}

describe.skipIf(!t.ok)("the frr pod's start beside Talos' BGP routes", () => {
  const lab = new Netns("fz");
  const shell = new Shell(lab.dir);
  const pod = join(lab.dir, "pod");
  let monitor: Daemon;
  let frr: Daemon | undefined;

  /** The router's main-table routes of a prefix, both families (`-d` names every protocol, boot too). */
  const routes = (dst: string): KernelRoute[] =>
    ["-4", "-6"]
      .flatMap(
        (f) =>
          JSON.parse(
            lab.exec("rtr", ["ip", "-d", "-j", f, "route", "show", "table", "main"]).stdout || "[]",
          ) as KernelRoute[],
      )
      .filter((r) => r.dst === dst);
  const deleted = (dst: string) =>
    monitor
      .log()
      .split("\n")
      .filter((l) => l.startsWith(`Deleted ${dst} `));

  /** The frr pod's container: frr-start in the router's network namespace and a mount namespace of its own. */
  function startFrrPod(): Daemon {
    const script = frrPodScript(pod, dev.site, dev.plan);
    // the sweep waits FRR_RESTART_GRACE seconds (zebra -K, test/network/frr-restart.kernel.test.ts); what is
    // proven here is what it deletes, so it runs after one second
    const env = { ...process.env, FRR_RESTART_GRACE: "1" };
    return shell.daemon("frr-pod", lab.name("rtr"), ["sh", "-c", script], env);
  }

  /** Ends the pod: watchfrr first (it would restart the others), then each daemon by its pid file. */
  async function stopFrrPod(): Promise<void> {
    await frr?.stop("SIGKILL");
    for (const d of ["zebra", "staticd", "ospfd"])
      try {
        process.kill(Number(readFileSync(join(pod, "run-frr", `${d}.pid`), "utf8").trim()), "SIGKILL");
      } catch {
        // never started, or gone
      }
  }

  beforeAll(async () => {
    lab.add("rtr", "peer", "inet");
    lab.link("rtr", "lan0.50", "peer", "eth0");
    lab.link("rtr", "wan0", "inet", "eth0");
    lab.ip("rtr", [
      "address add 10.50.0.1/24 dev lan0.50",
      "address add 2001:db8:50::1/64 dev lan0.50",
      "address add 203.0.113.2/24 dev wan0",
      // What Talos installs: learned BGP paths (RouteSpecController, priority 0), the DHCP default route
      // (protocol boot), the site's static route.
      ...TALOS_BGP.map((r) => `route add ${r.dst} via ${r.gateway} proto bgp metric 0`),
      `route add ${ZEBRA_METRIC} via ${PEER4} proto bgp metric 20`,
      "route add default via 203.0.113.1 dev wan0 proto boot metric 1010",
      `route add ${STATIC} via 10.50.0.253 dev lan0.50 proto static metric 1024`,
    ]);
    chmodSync(lab.dir, 0o755);
    mkdirSync(pod, { recursive: true, mode: 0o755 });
    monitor = shell.daemon("route-monitor", lab.name("rtr"), ["ip", "-o", "monitor", "route"]);
    await sleep(300);
    frr = startFrrPod();
    await waitFor(
      "zebra's sweep (the metric-20 protocol-bgp route deleted)",
      () => routes(ZEBRA_METRIC).length === 0,
      20_000,
      100,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nroute monitor:\n${monitor.log()}\nfrr pod:\n${frr?.log()}`);
    });
    // zebra's copies of the read routes come and go within the same start; give it time to settle
    await sleep(2_000);
  }, 40_000);

  afterAll(async () => {
    await stopFrrPod();
    await shell.daemons.stopAll();
    lab.close();
  });

  it("runs zebra's sweep of protocol-bgp routes at its own metric", () => {
    expect(frr?.exited, `frr-start exited: ${frr?.log()}`).toBe(false);
    expect(deleted(ZEBRA_METRIC)).not.toEqual([]);
    expect(routes(ZEBRA_METRIC)).toEqual([]);
  });

  it.each(TALOS_BGP)("never deletes Talos' BGP route to $dst nor leaves a copy of zebra's beside it", (r) => {
    const mine = deleted(r.dst).filter((l) => !/ metric 20( |$)/.test(l));
    expect(mine, `route monitor:\n${monitor.log()}`).toEqual([]);
    const now = routes(r.dst).map((k) => ({ gateway: k.gateway, protocol: k.protocol, metric: k.metric ?? 0 }));
    expect(now).toEqual([{ gateway: r.gateway, protocol: "bgp", metric: r.metric }]);
  });

  it("leaves Talos' static route and DHCP default route alone", () => {
    expect(deleted(STATIC)).toEqual([]);
    expect(deleted("default")).toEqual([]);
    expect(routes(STATIC)).toEqual([expect.objectContaining({ gateway: "10.50.0.253", protocol: "static" })]);
    expect(routes("default")).toEqual([expect.objectContaining({ gateway: "203.0.113.1", protocol: "boot" })]);
  });
});
