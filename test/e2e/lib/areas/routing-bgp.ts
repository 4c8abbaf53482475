/**
 * Dynamic routing, BGP: an eBGP neighbour router (Debian's FRR, with its own AS, in a namespace of its own) on the
 * segment of the first configured neighbour address of router:routing.bgp, with a network and a host behind it.
 * The router side is the node's BGP as Talos runs it from the rendered BGPInstanceConfig (lib/talos-bgp.ts: GoBGP,
 * the speaker Talos embeds). Proven, with expectations from the site (never from the render):
 *   - the session reaches Established, and BFD comes up where the neighbour has `bfd: true`, through the router's
 *     input chain and Talos' ingress firewall as booted (the router's side only listens);
 *   - TCP 179 from a host of the same segment that is not a configured neighbour gets what the policy oracle says
 *     (the zone's own input: dropped or rejected, never reaching the BGP speaker);
 *   - the neighbour learns exactly the prefixes of the segments router:routing.bgp.advertise names, and nothing
 *     else (not the segment it peers on unless named, no WAN, nothing the router learned from OSPF);
 *   - the router installs the neighbour's network (protocol bgp), and each other segment's client reaches the
 *     host there exactly when the policy oracle accepts the flow and the neighbour learned a route back;
 *   - with BFD, the router drops that route within seconds once the neighbour's BFD falls silent (its BGP
 *     keepalives still passing), long before the hold time would.
 * The node's BGP starts with these tests rather than at boot; the neighbour only speaks once the ruleset is in.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { contains, nthAddress } from "../../../../components/site/ip";
import type { SegmentPlan, SitePlan } from "../../../../components/site/plan";
import type { Site } from "../../../../components/site/schema";
import { FrrInstance } from "../../../network/frr";
import { waitFor } from "../../../helpers/wait";
import type { Appliance } from "../appliance";
import { probe } from "../checks";
import { addNamespace, deleteNamespace } from "../namespaces";
import type { PolicyOracle } from "../oracle";
import type { SuiteContext } from "../suite";
import { TalosBgp } from "../talos-bgp";

/** The network behind the BGP neighbour, and its host (outside every prefix of the sites the tests use). */
export const BGP_BEHIND = "172.31.253.0/24";
export const BGP_BEHIND_HOST = "172.31.253.10";

type BgpNeighbor = NonNullable<Site["routing"]["bgp"]>["neighbors"][number];

/** The neighbour the e2e plays: the first configured IPv4 neighbour on one of the site's segments. */
export function bgpPeering(site: Site, plan: SitePlan): { seg: SegmentPlan; neighbor: BgpNeighbor } | undefined {
  for (const neighbor of site.routing.bgp?.neighbors ?? []) {
    const seg = plan.segments.find((s) => s.ipv4 && contains(s.ipv4.cidr, neighbor.address));
    if (seg && !neighbor.address.includes(":")) return { seg, neighbor };
  }
  return undefined;
}

/**
 * The prefixes the neighbour must learn, from the schema's documented meaning of router:routing.bgp.advertise:
 * the IPv4 subnet and the IPv6 prefix of each segment it names.
 */
export function bgpAdvertisedPrefixes(site: Site): string[] {
  const names = site.routing.bgp?.advertise ?? [];
  return site.segments
    .filter((s) => names.includes(s.name))
    .flatMap((s) => [s.ipv4?.cidr, s.ipv6?.prefix].filter((p): p is string => !!p))
    .sort();
}

interface BgpRib {
  routes?: Record<string, { peerId?: string; pathFrom?: string }[]>;
}

/** The eBGP neighbour router: its namespaces and its FRR (zebra, bfdd, bgpd), and the node's BGP it peers with. */
export class BgpNeighbour {
  readonly ns: string;
  readonly behind: string;
  readonly frr: FrrInstance;
  readonly node: TalosBgp;
  private readonly dir: string;

  constructor(
    private readonly app: Appliance,
    readonly seg: SegmentPlan,
    readonly neighbor: BgpNeighbor,
  ) {
    this.ns = `${app.opts.prefix}-bgp-nbr`;
    this.behind = `${app.opts.prefix}-bgp-far`;
    this.dir = mkdtempSync(join(tmpdir(), `${app.opts.prefix}-bgp-`));
    chmodSync(this.dir, 0o755);
    const lab = {
      exec: (ns: string, argv: string[], ok = true) => {
        const r = app.exec(ns, argv, { allowFail: !ok });
        return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
      },
    };
    this.frr = new FrrInstance(lab, this.ns, `${app.opts.prefix}-bgpn`);
    const doc = app.host.bgp[0];
    if (!doc) throw new Error("the site has router:routing.bgp but the render has no BGPInstanceConfig");
    this.node = new TalosBgp(app.shell, app.router, doc);
  }

  /** The router's address the neighbour peers with: its gateway address on the segment. */
  get router(): string {
    return this.seg.ipv4!.gateway;
  }

  /** Starts the node's BGP, plugs the neighbour into the segment's bridge with a host behind it, starts its FRR. */
  async start(site: Site): Promise<void> {
    const app = this.app;
    const bgp = site.routing.bgp!;
    await this.node.start();
    addNamespace(app.shell, this.ns, false);
    addNamespace(app.shell, this.behind, true);
    app.shell.batch(app.sw, [
      `link add bgp${this.seg.vlan} type veth peer name eth0 netns ${this.ns}`,
      `link set bgp${this.seg.vlan} master br${this.seg.vlan} up`,
    ]);
    app.shell.batch(this.ns, [
      "link add eth1 type veth peer name eth0 netns " + this.behind,
      `address add ${this.neighbor.address}/${this.seg.ipv4!.prefixLength} dev eth0`,
      `address add ${nthAddress(BGP_BEHIND, 1)}/24 dev eth1`,
      "link set eth0 up",
      "link set eth1 up",
    ]);
    app.exec(this.ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    app.shell.batch(this.behind, [
      `address add ${BGP_BEHIND_HOST}/24 dev eth0`,
      "link set eth0 up",
      `route add default via ${nthAddress(BGP_BEHIND, 1)}`,
    ]);
    app.serve(this.behind, "behind-bgp");
    const r = this.router;
    const conf = join(this.dir, "frr.conf");
    writeFileSync(
      conf,
      [
        "frr defaults traditional",
        "hostname bgp-neighbour",
        "!",
        `router bgp ${this.neighbor.asn}`,
        ` bgp router-id ${this.neighbor.address}`,
        " no bgp ebgp-requires-policy",
        ` neighbor ${r} remote-as ${bgp.asn}`,
        ` neighbor ${r} timers connect 2`,
        " address-family ipv4 unicast",
        `  network ${BGP_BEHIND}`,
        " exit-address-family",
        " address-family ipv6 unicast",
        `  neighbor ${r} activate`,
        " exit-address-family",
        "!",
        // The neighbour's BFD session is configured on its own, with its address and interface, so that it keeps one
        // discriminator for its life. With `neighbor X bfd` instead, FRR's bgpd registers the session without a
        // local address and interface and re-registers it with both once the BGP session is up
        // (bgpd/bgp_bfd.c bgp_peer_bfd_update_source): bfdd replaces the session, and its discriminator changes.
        // GoBGP v4.7.0 (the version Talos pins) that is in Init at that moment keeps the old discriminator and stays
        // in Init for good: it accepts the new session's Down packets (Your Discriminator zero) as keepalives, and
        // the new session drops its Init packets for their unknown discriminator (pkg/server/bfd_peer.go rxPacket;
        // GoBGP v4.8.0 discards packets from an unbound discriminator, so Init expires and starts over). README
        // ("Routing") gives operators the same advice for their own neighbours.
        ...(this.neighbor.bfd
          ? ["bfd", ` peer ${r} local-address ${this.neighbor.address} interface eth0`, " exit", "exit", "!"]
          : []),
        "",
      ].join("\n"),
      { mode: 0o644 },
    );
    this.frr.start(["zebra", "bfdd", "bgpd"], conf);
  }

  async stop(): Promise<void> {
    this.frr.stop();
    await this.node.stop();
    deleteNamespace(this.behind);
    deleteNamespace(this.ns);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The session's state as the neighbour sees it. */
  state(): string | undefined {
    return this.frr.json<Record<string, { bgpState?: string }>>(`show bgp neighbors ${this.router} json`)?.[this.router]
      ?.bgpState;
  }

  /** The BFD session's state as the neighbour sees it. */
  bfd(): string | undefined {
    const peers = this.frr.json<{ peer: string; status: string }[]>("show bfd peers json");
    return Array.isArray(peers) ? peers.find((p) => p.peer === this.router)?.status : undefined;
  }

  /** The prefixes (both families) the neighbour holds from the router, from its BGP table. */
  learned(): string[] {
    return ["ipv4", "ipv6"]
      .flatMap((f) => Object.entries(this.frr.json<BgpRib>(`show bgp ${f} unicast json`)?.routes ?? {}))
      .filter(([, paths]) => paths.some((p) => p.peerId === this.router))
      .map(([prefix]) => prefix)
      .sort();
  }
}

/** A probe of a host behind a neighbour from every other segment's client: what the oracle says, what happened. */
export type ReachBehind = (
  seg: SegmentPlan,
  target: { host: string; label: string; back: string[] },
) => Promise<{ want: string[]; seen: string[] }>;

/** Registers the BGP tests; `nbr` is the neighbour started by the routing area. */
export function bgpTests(ctx: SuiteContext, oracle: PolicyOracle, nbr: () => BgpNeighbour, reach: ReachBehind): void {
  const { seg, neighbor } = bgpPeering(ctx.site, ctx.plan)!;
  const gateway = seg.ipv4!.gateway;
  /** Whether the router's kernel holds the neighbour's network, learned over BGP, via the neighbour. */
  const installed = (app: Appliance) =>
    (
      JSON.parse(app.exec(app.router, ["ip", "-j", "route", "show", BGP_BEHIND]).stdout) as {
        protocol?: string;
        gateway?: string;
        dev?: string;
      }[]
    ).some((x) => x.protocol === "bgp" && x.gateway === neighbor.address && x.dev === seg.link);

  it(`establishes an eBGP session${neighbor.bfd ? " and its BFD session" : ""} with the neighbour ${neighbor.address} on ${seg.name} through the router's input chain and Talos' ingress firewall`, async () => {
    const app = ctx.app;
    const want = oracle.decide({
      from: seg.zone,
      to: "router",
      proto: "tcp",
      port: 179,
      src: neighbor.address,
      dst: gateway,
    });
    expect(want.verdict, "the site opens BGP from the neighbour").toBe("accept");
    for (const table of ["router", "talos"])
      expect(app.exec(app.router, ["nft", "list", "table", "inet", table], { allowFail: true }).status).toBe(0);
    const n = nbr();
    // GoBGP resets the BGP session whenever its BFD peer signals Down after being Up, then waits its idle hold
    // time (30 s) before it accepts the neighbour again: a session can be Established, reset by BFD and come
    // back once more before both are up, so both are waited for together
    const up = () =>
      n.state() === "Established" && n.node.established(neighbor.address) && (!neighbor.bfd || n.bfd() === "up");
    await waitFor(
      `the session${neighbor.bfd ? " and its BFD session" : ""} to be up on both ends`,
      up,
      120_000,
      1000,
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}\nthe neighbour says BGP ${n.state() ?? "none"}, BFD ${n.bfd() ?? "none"}\nthe node's BGP:\n${n.node.log().slice(-3000)}`,
      );
    });
  }, 140_000);

  it(`refuses TCP 179 from a host on ${seg.name} that is not a configured neighbour`, async () => {
    const app = ctx.app;
    const h = app.client(seg.name);
    expect(h.addr4, `${seg.name}'s client has an IPv4 address`).toBeDefined();
    const d = oracle.decide({ from: seg.zone, to: "router", proto: "tcp", port: 179, src: h.addr4!, dst: gateway });
    expect(d.verdict, "the oracle's answer for a host that is not a neighbour").not.toBe("accept");
    const r = (await probe(app, h.ns, [{ id: "bgp", proto: "tcp", dst: gateway, port: 179, src: h.addr4 }])).get(
      "bgp",
    )!;
    expect(r.observed, r.detail).toBe(d.verdict === "reject" ? "rejected" : "dropped");
  });

  it("advertises to the neighbour exactly the segments router:routing.bgp.advertise names", async () => {
    const want = bgpAdvertisedPrefixes(ctx.site);
    expect(want.length, "prefixes the router must advertise").toBeGreaterThan(0);
    const n = nbr();
    await waitFor(
      "the neighbour to learn the advertised prefixes",
      () => want.every((p) => n.learned().includes(p)),
      30_000,
      1000,
    );
    expect(n.learned()).toEqual(want);
  }, 40_000);

  it(`installs the neighbour's network (protocol bgp); every other segment's client reaches a host there exactly as the policy oracle decides (and the neighbour has a route back)`, async () => {
    const app = ctx.app;
    await waitFor(`the router's kernel route to ${BGP_BEHIND}`, () => installed(app), 30_000, 1000);
    const { want, seen } = await reach(seg, {
      host: BGP_BEHIND_HOST,
      label: "behind-bgp",
      back: bgpAdvertisedPrefixes(ctx.site),
    });
    console.log(`${ctx.title}: to ${BGP_BEHIND_HOST} behind the BGP neighbour: ${seen.join(", ")}`);
    expect(seen).toEqual(want);
  }, 60_000);

  if (neighbor.bfd)
    it("drops the neighbour's network within seconds once BFD stops hearing the neighbour, long before the BGP hold time", async () => {
      const app = ctx.app;
      expect(installed(app), "the route before").toBe(true);
      // the neighbour's BFD falls silent (its control packets dropped on their way out); its BGP keepalives pass
      app.exec(nbr().ns, ["nft", "-f", "-"], {
        input:
          "table inet e2e_bfd {\n chain out {\n  type filter hook output priority 0;\n  udp dport 3784 drop\n }\n}\n",
      });
      const t0 = Date.now();
      // GoBGP's BFD defaults: 1 s intervals, detection after 3; its hold time is 90 s
      await waitFor("the router to drop its route to the neighbour's network", () => !installed(app), 15_000, 250);
      console.log(`${ctx.title}: BFD took the route away after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }, 20_000);
}
