/**
 * NetworkServices' part of SUMMARY.md: the daemons it runs and the addressing it serves — every segment's IPAM
 * and the DHCP reservations — and the routing it owns: the site's static routes, OSPF (BIRD) and BGP (Talos),
 * what OSPF redistributes and what the firewall opens for them. Pure.
 */
import type { Site } from "../site/schema";
import { contains } from "../site/ip";
import type { SitePlan } from "../site/plan";
import { routingOpenings, type RoutingOpening } from "../dataplane/ruleset/input";
import { SECTION, mdTable, type LayerSummary } from "../summary";
import { ospfAuthentication, ospfNeverInstalled, ospfRedistribution } from "./bird";

function segments(plan: SitePlan): string {
  const out = [
    "## Segments (IPAM)",
    "",
    mdTable(
      ["segment", "VLAN", "link", "zone", "IPv4", "gateway", "DHCP pool", "reserved", "IPv6", "gateway (v6)"],
      plan.segments.map((s) => [
        s.name,
        String(s.vlan),
        s.link,
        s.zone,
        s.ipv4?.cidr ?? "—",
        s.ipv4?.gateway ?? "—",
        s.dhcp.pool ? `${s.dhcp.pool.start}–${s.dhcp.pool.end} (${s.dhcp.pool.size})` : "off",
        String(s.dhcp.reservations.length),
        s.ipv6?.prefix ?? "—",
        s.ipv6?.gateway ?? "—",
      ]),
    ),
    "",
  ];
  const reservations = plan.segments.flatMap((s) =>
    s.dhcp.reservations.map((r) => [s.name, r.name, r.mac, r.ipv4 ?? "—", r.ipv6 ?? "—"]),
  );
  if (reservations.length)
    out.push("### Reservations", "", mdTable(["segment", "host", "MAC", "IPv4", "IPv6"], reservations), "");
  return out.join("\n");
}

/** Where a static route leads: the segment (and zone) or WAN whose subnet holds its gateway, and what it is. */
function staticRoutes(site: Site, plan: SitePlan): string[] {
  if (!site.routes.length) return ["No static routes.", ""];
  const rows = site.routes.map((r) => {
    const inside = plan.insideRoutes.find((x) => x.destination === r.destination && x.gateway === r.gateway);
    const wan = plan.wans.find((w) =>
      [w.ipv4, w.ipv6].some((v) => v.mode === "static" && contains(v.address, r.gateway)),
    );
    const via = inside ? `segment ${inside.segment} (zone ${inside.zone})` : wan ? `WAN ${wan.name}` : "—";
    const kind = inside
      ? inside.internal
        ? "the site's own: NATed to the WANs, its hosts in the segment's zone"
        : "inside, public: routed as is, its hosts in the segment's zone"
      : "outside";
    return [r.destination, r.gateway, via, r.metric === undefined ? "—" : String(r.metric), kind];
  });
  return ["### Static routes", "", mdTable(["destination", "gateway", "via", "metric", "meaning"], rows), ""];
}

function ospfLines(site: Site, plan: SitePlan): string[] {
  const ospf = site.routing.ospf;
  if (!ospf) return [];
  const redistributed = ospfRedistribution(site, plan).map(
    (r) => `${r.kind === "static" ? "static routes" : "connected segments"}: ${r.prefixes.join(", ")}`,
  );
  return [
    "### OSPF (BIRD)",
    "",
    `Router id ${ospf.routerId}, area ${ospf.area}. Neighbours on: ${ospf.segments.join(", ")}` +
      `${ospf.passive.length ? `; advertised without neighbours (passive): ${ospf.passive.join(", ")}` : ""}. ` +
      `Redistributed: ${redistributed.length ? redistributed.join("; ") : "nothing"}. ` +
      `Installs from OSPF only routes inside ${ospf.accept.join(", ")}; never the default route, nor a route inside ` +
      `${ospfNeverInstalled(site, plan).join(", ")} (the router's own subnets and cluster networks). ` +
      (ospf.authentication
        ? ospf.authentication.next
          ? `Authentication: ${ospfAuthentication(site)} on every packet of those segments (the keys are the secrets router:ospfKey and router:ospfNextKey; a packet with neither is dropped). The key is changing: see docs/operations.md, "Change the OSPF key".`
          : `Authentication: ${ospfAuthentication(site)} on every packet of those segments (the key is the secret router:ospfKey; a packet without it is dropped).`
        : "No authentication: any host on those segments can speak OSPF to the router (set routing.ospf.authentication)."),
    "",
  ];
}

function bgpLines(site: Site): string[] {
  const bgp = site.routing.bgp;
  if (!bgp) return [];
  return [
    "### BGP (Talos)",
    "",
    `AS ${bgp.asn}, router id ${bgp.routerId}; advertises the segments ${bgp.advertise.join(", ") || "none"}.`,
    "",
    mdTable(
      ["neighbour", "AS", "BFD", "description"],
      bgp.neighbors.map((n) => [n.address, String(n.asn), n.bfd ? "yes" : "no", n.description ?? "—"]),
    ),
    "",
    ...bfdAdvice(bgp.neighbors.filter((n) => n.bfd).map((n) => n.address)),
  ];
}

/**
 * What the neighbours with BFD must do: Talos' BGP (GoBGP v4.7.0) can stay in BFD Init for good when a neighbour
 * replaces its BFD session while it is in Init, which FRR's `neighbor X bfd` does once BGP comes up (README, "The
 * network layer"; test/network/gobgp-bfd.kernel.test.ts).
 */
function bfdAdvice(addresses: string[]): string[] {
  if (addresses.length === 0) return [];
  return [
    `BFD neighbours (${addresses.join(", ")}): give each one's BFD session its own local address and interface ` +
      "(FRR: a `bfd` block with `peer ROUTER local-address SELF interface IF`, not `neighbor X bfd` alone). " +
      "Talos' BGP can stay in BFD Init for good when a neighbour replaces its session, and BGP then runs without " +
      "BFD's fast failover, silently.",
    "",
  ];
}

const OPENING: Record<RoutingOpening["protocol"], string> = {
  ospf: "OSPF (IP protocol 89)",
  bgp: "BGP (TCP 179)",
  bfd: "BFD (UDP 3784, 4784)",
};

function openingLines(site: Site, plan: SitePlan): string[] {
  const openings = routingOpenings(site, plan);
  if (!openings.length) return [];
  return [
    "### What the firewall opens for routing",
    "",
    mdTable(
      ["protocol", "from", "on link", "to"],
      openings.map((o) => [OPENING[o.protocol], o.source, o.link ?? "any", o.destinations?.join(", ") ?? "the router"]),
    ),
    "",
  ];
}

/** The routing section: static routes, the routing protocols, and what the firewall opens for them. */
export function routingSection(site: Site, plan: SitePlan): string {
  const dynamic = [...ospfLines(site, plan), ...bgpLines(site), ...openingLines(site, plan)];
  return [
    "## Routing",
    "",
    ...staticRoutes(site, plan),
    ...(dynamic.length ? dynamic : ["No dynamic routing (router:routing has neither OSPF nor BGP).", ""]),
  ].join("\n");
}

/** `daemons`: the names of the DaemonSets the component creates. */
export function renderServicesSummary(site: Site, plan: SitePlan, daemons: readonly string[]): LayerSummary {
  return {
    deploys: daemons.length
      ? [
          {
            order: 40,
            text: `**Network services** on the host network, from the services image pinned by digest: ${[...daemons].sort().join(", ")}.`,
          },
        ]
      : [],
    sections: [
      { order: SECTION.segments, markdown: segments(plan) },
      { order: SECTION.routing, markdown: routingSection(site, plan) },
    ],
  };
}
