/**
 * Input: what reaches the router itself. Established traffic, the ICMP the network needs, the router's DHCP
 * clients, its own pods, then per zone: management ports for management zones and each zone's services. Pure.
 */
import { MANAGEMENT_TCP_PORTS, servicePorts } from "../../site/policy";
import { chain, contributed, ident, link, logGroupOf, logStatement, setOf, type Ctx } from "./common";
import { rulesInto } from "./rules";

function inputZoneChain(ctx: Ctx, zone: string): string[] {
  const rules = ctx.model.rules.filter((r) => r.toRouter && (r.from === "any" || r.from.includes(zone)));
  const body = rulesInto(ctx, rules, `in_${ident(zone)}`, `${zone}>router`);
  if (ctx.model.managementZones.includes(zone)) {
    body.push("# management: Talos API, trustd, Kubernetes API, data-plane metrics");
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
