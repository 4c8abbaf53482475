/**
 * One segment's share of the shared network services: its Kea DHCPv4/DHCPv6 subnet, its radvd interface, the
 * prefixes chrony serves, and its DNS records (data for the DNS layer). Pure.
 */
import type { Site } from "../site/schema";
import { segmentPrefixes, type SegmentPlan, type SitePlan } from "../site/plan";
import { nthAddress } from "../site/ip";
import { defaultServices, type PolicyModel } from "../site/policy";

/** Kea subnet ids must stay stable across config changes (leases refer to them): derived from the VLAN id. */
export function subnetId(plan: SitePlan, seg: SegmentPlan): number {
  const trunk = plan.trunks.findIndex((t) => t.name === seg.parent);
  return seg.vlan + 4096 * Math.max(trunk, 0);
}

function siteSegment(site: Site, seg: SegmentPlan) {
  const s = site.segments.find((x) => x.name === seg.name);
  if (!s) throw new Error(`segment ${seg.name} not in site`);
  return s;
}

/**
 * True when the router answers DNS in the segment's zone: only then is it advertised as the segment's resolver
 * (DHCPv4, DHCPv6, RA RDNSS). A segment's zone is never a WAN zone, so its services are its own or the LAN
 * defaults, as in compilePolicy.
 */
export function servesDns(site: Site, seg: SegmentPlan): boolean {
  const zone = site.zones.find((z) => z.name === seg.zone);
  return (zone?.services ?? defaultServices(false)).includes("dns");
}

/** True when the router answers NTP in the segment's zone. */
function servesNtp(model: PolicyModel, seg: SegmentPlan): boolean {
  return (model.services.get(seg.zone) ?? []).includes("ntp");
}

export interface KeaOption {
  name: string;
  data: string;
}

/** The segment's DHCPv4 subnet in Kea's configuration, when it hands out IPv4 leases (an IPv4 subnet, DHCP on). */
export function keaSubnet4(
  site: Site,
  plan: SitePlan,
  model: PolicyModel,
  seg: SegmentPlan,
): Record<string, unknown> | undefined {
  const s = siteSegment(site, seg);
  const v4 = seg.ipv4;
  if (!v4 || !seg.dhcp.enabled) return undefined;
  const dns = s.dhcp.dnsServers ?? (servesDns(site, seg) ? [v4.gateway] : undefined);
  const options: KeaOption[] = [
    { name: "routers", data: v4.gateway },
    ...(dns ? [{ name: "domain-name-servers", data: dns.join(", ") }] : []),
    { name: "domain-name", data: seg.domain },
    { name: "domain-search", data: (s.dhcp.searchDomains ?? [seg.domain]).join(", ") },
  ];
  const ntp = s.dhcp.ntpServers ?? (servesNtp(model, seg) ? [v4.gateway] : undefined);
  if (ntp) options.push({ name: "ntp-servers", data: ntp.join(", ") });
  if (seg.mtu) options.push({ name: "interface-mtu", data: String(seg.mtu) });
  return {
    id: subnetId(plan, seg),
    subnet: v4.cidr,
    interface: seg.link,
    "valid-lifetime": seg.dhcp.leaseTime,
    "max-valid-lifetime": seg.dhcp.leaseTime,
    pools: seg.dhcp.pool ? [{ pool: `${seg.dhcp.pool.start} - ${seg.dhcp.pool.end}` }] : [],
    "option-data": options,
    reservations: seg.dhcp.reservations
      .filter((r) => r.ipv4)
      .map((r) => ({ "hw-address": r.mac, "ip-address": r.ipv4, hostname: r.name })),
    "user-context": { segment: seg.name, zone: seg.zone, vlan: seg.vlan },
  };
}

/** DHCPv6 pool of a segment: configured, else <prefix>::1000 – <prefix>::1fff. */
export function dhcpv6Range(site: Site, seg: SegmentPlan): { start: string; end: string } | undefined {
  const s = siteSegment(site, seg);
  if (!seg.ipv6 || !s.dhcpv6.enabled) return undefined;
  return s.dhcpv6.range ?? { start: nthAddress(seg.ipv6.prefix, 0x1000), end: nthAddress(seg.ipv6.prefix, 0x1fff) };
}

/**
 * What the segment's DHCPv6 serves: stateful (addresses from its pool, and options; dhcpv6.enabled), stateless
 * (options only, RFC 8415 §6.1: the router advertisements' other-config flag is set without dhcpv6.enabled), or
 * nothing (undefined).
 */
export function dhcpv6Mode(site: Site, seg: SegmentPlan): "stateful" | "stateless" | undefined {
  const s = siteSegment(site, seg);
  if (!seg.ipv6) return undefined;
  if (s.dhcpv6.enabled) return "stateful";
  return s.ra.enabled && s.ra.otherConfig === true ? "stateless" : undefined;
}

/**
 * The segment's DHCPv6 subnet, when its DHCPv6 serves it (dhcpv6Mode): with its pool and reservations when
 * stateful, without a pool when stateless (Kea then answers information requests with the options only).
 */
export function keaSubnet6(site: Site, plan: SitePlan, seg: SegmentPlan): Record<string, unknown> | undefined {
  const s = siteSegment(site, seg);
  const range = dhcpv6Range(site, seg);
  if (!seg.ipv6 || !dhcpv6Mode(site, seg)) return undefined;
  const dns = s.ra.dnsServers ?? (servesDns(site, seg) ? [seg.ipv6.gateway] : undefined);
  return {
    id: subnetId(plan, seg),
    subnet: seg.ipv6.prefix,
    interface: seg.link,
    "preferred-lifetime": Math.floor((s.dhcpv6.leaseTime * 5) / 8),
    "valid-lifetime": s.dhcpv6.leaseTime,
    pools: range ? [{ pool: `${range.start}-${range.end}` }] : [],
    "option-data": [
      ...(dns ? [{ name: "dns-servers", data: dns.join(", ") }] : []),
      { name: "domain-search", data: (s.dhcp.searchDomains ?? [seg.domain]).join(", ") },
    ],
    reservations: seg.dhcp.reservations
      .filter((r) => r.ipv6)
      .map((r) => ({ "hw-address": r.mac, "ip-addresses": [r.ipv6], hostname: r.name })),
    "user-context": { segment: seg.name, zone: seg.zone, vlan: seg.vlan },
  };
}

/** The segment's block of radvd.conf, or undefined when it sends no advertisements. */
export function radvdInterface(site: Site, seg: SegmentPlan): string | undefined {
  const s = siteSegment(site, seg);
  if (!seg.ipv6 || !s.ra.enabled) return undefined;
  const managed = s.dhcpv6.enabled;
  const other = s.ra.otherConfig ?? s.dhcpv6.enabled;
  const rdnss = s.ra.dnsServers ?? (servesDns(site, seg) ? [seg.ipv6.gateway] : []);
  const lines = [
    `interface ${seg.link} {`,
    "\tAdvSendAdvert on;",
    `\tMinRtrAdvInterval ${Math.max(3, Math.floor(s.ra.maxInterval / 3))};`,
    `\tMaxRtrAdvInterval ${s.ra.maxInterval};`,
    `\tAdvDefaultLifetime ${s.ra.lifetime};`,
    `\tAdvManagedFlag ${managed ? "on" : "off"};`,
    `\tAdvOtherConfigFlag ${other ? "on" : "off"};`,
    ...(seg.mtu ? [`\tAdvLinkMTU ${seg.mtu};`] : []),
    `\tprefix ${seg.ipv6.prefix} {`,
    "\t\tAdvOnLink on;",
    `\t\tAdvAutonomous ${s.ra.slaac ? "on" : "off"};`,
    "\t};",
    ...(rdnss.length
      ? [`\tRDNSS ${rdnss.join(" ")} {`, `\t\tAdvRDNSSLifetime ${Math.max(s.ra.maxInterval * 3, 1200)};`, "\t};"]
      : []),
    `\tDNSSL ${(s.dhcp.searchDomains ?? [seg.domain]).join(" ")} {`,
    `\t\tAdvDNSSLLifetime ${Math.max(s.ra.maxInterval * 3, 1200)};`,
    "\t};",
    "};",
  ];
  return lines.join("\n");
}

/** Prefixes whose clients may use the router's NTP service. */
export function ntpAllows(model: PolicyModel, seg: SegmentPlan): string[] {
  if (!servesNtp(model, seg)) return [];
  return segmentPrefixes(seg);
}

export interface DnsRecord {
  name: string;
  type: "A" | "AAAA";
  value: string;
}

/** Names the DNS layer publishes for the segment: the router's own name in it, and every reservation. */
export function dnsRecords(plan: SitePlan, seg: SegmentPlan): DnsRecord[] {
  const out: DnsRecord[] = [];
  if (seg.ipv4) out.push({ name: `${plan.hostname}.${seg.domain}`, type: "A", value: seg.ipv4.gateway });
  if (seg.ipv6) out.push({ name: `${plan.hostname}.${seg.domain}`, type: "AAAA", value: seg.ipv6.gateway });
  for (const r of seg.dhcp.reservations) {
    if (r.ipv4) out.push({ name: `${r.name}.${seg.domain}`, type: "A", value: r.ipv4 });
    if (r.ipv6) out.push({ name: `${r.name}.${seg.domain}`, type: "AAAA", value: r.ipv6 });
  }
  return out;
}
