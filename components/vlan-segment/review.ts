/**
 * One segment's facts for review tooling (components/review.ts): its addressing, pools, reservations, and the
 * DNS and NTP servers its clients are told to use — read from the Kea subnets the network services render
 * (services.ts), so a reviewer and the policy pack see what the daemons hand out. Pure.
 */
import type { Site } from "../site/schema";
import type { SegmentPlan, SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import type { SegmentFacts } from "../review";
import { dhcpv6Range, keaSubnet4, keaSubnet6, type KeaOption } from "./services";

/** Addresses of one Kea option (`a, b`), none when the subnet lacks it. */
function optionAddresses(subnet: Record<string, unknown> | undefined, name: string): string[] {
  const opt = ((subnet?.["option-data"] as KeaOption[] | undefined) ?? []).find((o) => o.name === name);
  return opt ? opt.data.split(",").map((a) => a.trim()) : [];
}

export function renderSegmentFacts(site: Site, plan: SitePlan, model: PolicyModel, seg: SegmentPlan): SegmentFacts {
  const s = site.segments.find((x) => x.name === seg.name)!;
  const v4 = seg.dhcp.enabled ? keaSubnet4(site, plan, model, seg) : undefined;
  const v6 = keaSubnet6(site, plan, seg);
  // Router advertisements carry RDNSS whenever the segment advertises (radvdInterface in services.ts).
  const rdnss = seg.ipv6 && s.ra.enabled ? (s.ra.dnsServers ?? [seg.ipv6.gateway]) : [];
  const range6 = dhcpv6Range(site, seg);
  return {
    name: seg.name,
    vlan: seg.vlan,
    zone: seg.zone,
    link: seg.link,
    ipv4: seg.ipv4?.cidr ?? null,
    gateway4: seg.ipv4?.gateway ?? null,
    ipv6: seg.ipv6?.prefix ?? null,
    gateway6: seg.ipv6?.gateway ?? null,
    pools: [
      ...(seg.dhcp.pool ? [`${seg.dhcp.pool.start}-${seg.dhcp.pool.end}`] : []),
      ...(range6 ? [`${range6.start}-${range6.end}`] : []),
    ],
    reservations: seg.dhcp.reservations.map((r) => [r.name, r.ipv4, r.ipv6].filter(Boolean).join(" ")),
    dnsServers: [
      ...new Set([...optionAddresses(v4, "domain-name-servers"), ...optionAddresses(v6, "dns-servers"), ...rdnss]),
    ],
    ntpServers: optionAddresses(v4, "ntp-servers"),
  };
}
