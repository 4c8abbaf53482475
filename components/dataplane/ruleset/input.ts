/**
 * Input: what reaches the router itself. Established traffic, the ICMP the network needs, the router's DHCP
 * clients, its own pods, dynamic routing from its peers, then per zone: management ports for management zones
 * and each zone's services. Pure.
 */
import { contains, familyOf } from "../../site/ip";
import { segmentPrefixes, type SitePlan } from "../../site/plan";
import type { Site } from "../../site/schema";
import { MANAGEMENT_TCP_PORTS, servicePorts } from "../../site/policy";
import { chain, contributed, ident, link, logGroupOf, logStatement, setOf, type Ctx } from "./common";
import { rulesInto } from "./rules";

/** OSPF's IP protocol number (RFC 2328); nft resolves names through /etc/protocols, which Talos does not ship. */
const OSPF = 89;
/** OSPF's AllSPFRouters and AllDRouters groups (RFC 2328 §A.1). */
const OSPF_GROUPS = ["224.0.0.5", "224.0.0.6"];
/** BGP (RFC 4271 §8.2.1), BFD single-hop control (RFC 5881) and multihop (RFC 5883). */
const BGP_PORT = 179;
const BFD_PORTS = [3784, 4784];

/** The link a peer is directly on: the segment or static WAN subnet holding its address. */
function peerLink(plan: SitePlan, address: string): string | undefined {
  const seg = plan.segments.find((x) => segmentPrefixes(x).some((p) => contains(p, address)));
  if (seg) return seg.link;
  const wan = plan.wans.find((w) => {
    const v = familyOf(address) === 4 ? w.ipv4 : w.ipv6;
    return v.mode === "static" && contains(v.address, address);
  });
  return wan?.name;
}

/** One opening the routing section makes in the input chain. */
export interface RoutingOpening {
  /** ospf: IP protocol 89; bgp: TCP 179; bfd: UDP 3784 and 4784. */
  protocol: "ospf" | "bgp" | "bfd";
  /** Who may send it: an OSPF segment's subnet, or a BGP neighbour's address. */
  source: string;
  /** The kernel link it must arrive on; undefined for a neighbour on no directly connected subnet. */
  link?: string;
  /** OSPF only: its groups and the router's own address on the segment. */
  destinations?: string[];
}

/**
 * What the routing section needs from its peers, and nothing more: OSPF (to its groups and to the router's own
 * address) on the links of its active segments from their subnets; BGP and, when a session uses it, BFD from
 * each configured neighbour, on the link it is on. The ruleset and the summary both read it.
 */
export function routingOpenings(site: Site, plan: SitePlan): RoutingOpening[] {
  const out: RoutingOpening[] = [];
  const ospf = site.routing.ospf;
  // OSPFv2 runs over IPv4: validation keeps IPv6-only segments out of it.
  for (const seg of plan.segments.filter((s) => ospf?.segments.includes(s.name) && s.ipv4))
    out.push({
      protocol: "ospf",
      source: seg.ipv4!.cidr,
      link: seg.link,
      destinations: [...OSPF_GROUPS, seg.ipv4!.gateway],
    });
  for (const n of site.routing.bgp?.neighbors ?? []) {
    const link = peerLink(plan, n.address);
    out.push({ protocol: "bgp", source: n.address, link });
    if (n.bfd) out.push({ protocol: "bfd", source: n.address, link });
  }
  return out;
}

/** The input chain's rules for the routing section's openings. */
export function routingInput(ctx: Ctx): string[] {
  const out = routingOpenings(ctx.site, ctx.plan).map((o) => {
    const on = o.link ? `iifname ${link(ctx, o.link)} ` : "";
    const from = `${on}${familyOf(o.source.split("/")[0]) === 4 ? "ip" : "ip6"} saddr ${o.source}`;
    if (o.protocol === "ospf") return `${from} ip daddr ${setOf(o.destinations!)} meta l4proto ${OSPF} accept`;
    if (o.protocol === "bgp") return `${from} tcp dport ${BGP_PORT} accept`;
    return `${from} udp dport ${setOf(BFD_PORTS)} accept`;
  });
  return out.length ? ["# dynamic routing (router:routing): its protocols from its peers only", ...out] : [];
}

function inputZoneChain(ctx: Ctx, zone: string): string[] {
  const rules = ctx.model.rules.filter((r) => r.toRouter && (r.from === "any" || r.from.includes(zone)));
  const body = rulesInto(ctx, rules, `in_${ident(zone)}`, `${zone}>router`);
  if (ctx.model.managementZones.includes(zone)) {
    body.push("# management: Talos API, trustd, Kubernetes API, the data plane's and the stacks' metrics and UIs");
    body.push(`tcp dport ${setOf([...MANAGEMENT_TCP_PORTS, ...ctx.model.managementPorts])} accept`);
  }
  const services = ctx.model.services.get(zone) ?? [];
  const sp = servicePorts(services);
  if (services.length) body.push(`# services: ${services.join(", ")}`);
  if (sp.tcp.length) body.push(`tcp dport ${setOf(sp.tcp)} accept`);
  if (sp.udp.length) body.push(`udp dport ${setOf(sp.udp)} accept`);
  if (sp.echo) body.push("icmp type echo-request accept", "icmpv6 type echo-request accept");
  return chain(`in_${ident(zone)}`, body);
}

export function inputChains(ctx: Ctx, f: { wanLinks: string[] }): string[] {
  const { model } = ctx;
  const inputDispatch = ctx.byLink.map(([l, z]) => `${link(ctx, l)} : jump in_${ident(z)}`);
  const out = chain(
    "input",
    [
      "iif lo accept",
      "ct state established,related accept",
      "ct state invalid drop",
      "# ICMP the network needs (RFC 792 errors; RFC 4890 §4.4 for ICMPv6, neighbour discovery only on-link)",
      "icmp type { destination-unreachable, time-exceeded, parameter-problem } accept",
      "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept",
      "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept",
      "icmpv6 type { mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } ip6 saddr fe80::/10 accept",
      "# the router's own DHCP clients on its uplinks",
      ...(f.wanLinks.length
        ? [
            "iifname @wan_links udp sport 67 udp dport 68 accept",
            "iifname @wan_links ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept",
          ]
        : []),
      "# the router's own pods",
      'iifname "lxc*" accept',
      'iifname "cilium_*" accept',
      ...routingInput(ctx),
      ...contributed(ctx, "input"),
      ...(inputDispatch.length ? [`iifname vmap { ${inputDispatch.join(", ")} }`] : []),
      ...(model.logDrops ? [logStatement(model.logRate, "router input drop", logGroupOf(ctx.contributions))] : []),
      "counter drop",
    ],
    "type filter hook input priority filter; policy drop;",
  );
  for (const z of model.zones) out.push(...inputZoneChain(ctx, z));
  return out;
}
