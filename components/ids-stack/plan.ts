/**
 * What the IDS stack derives from the site: the links Suricata watches, HOME_NET, the zone pairs it inspects
 * inline with the links on each side, the queues, and the addresses an alert may never block. Pure; every
 * renderer of the stack (Suricata, the queue rules, the block agent, Zeek, the summary) reads this one plan.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { familyOf } from "../site/ip";
import { durationSeconds } from "../site/duration";
import { internalPrefixes } from "../dataplane/ruleset/common";

export interface IpsPair {
  from: string;
  to: string;
  /** Kernel link names of the zones (WAN links and segment VLAN links), sorted. */
  inLinks: string[];
  outLinks: string[];
}

export interface IdsPlan {
  /** Links watched in IDS mode (AF_PACKET): the WANs first, then the selected segments' VLAN links. */
  links: string[];
  /** HOME_NET: the site's segments and pod networks, IPv4 then IPv6. */
  homeNet: string[];
  /** Zone pairs inspected inline, in the site's order. */
  pairs: IpsPair[];
  /** Queue numbers of the IPS fanout, first and last. */
  queues: [number, number];
  /** Addresses an alert never blocks: the home network, the management segments, the guard's allowlist, the
   * site's static lifelines and block.never (the loader adds the live gateways and resolvers). Sorted. */
  protected: string[];
  /** Block duration in seconds. */
  blockSeconds: number;
  /** Alerts of this severity or a worse one (1 is the worst) block their source; undefined: alerts block nothing. */
  blockSeverity?: number;
  /** Update interval of the rule sources in seconds. */
  updateSeconds: number;
  /** Zeek's image (pinned by digest) when Zeek runs; undefined: Zeek is off. */
  zeekImage?: string;
  /** Events go to the site's log store and alert and drop counts to its TSDB (the observability stack is on). */
  ship: boolean;
}

function linksOf(plan: SitePlan, zone: string): string[] {
  return [...(plan.zones.find((z) => z.name === zone)?.links ?? [])].sort();
}

/** The site's static lifelines: WAN gateways and probe targets, the router's resolvers. */
function lifelines(site: Site, plan: SitePlan): string[] {
  const out: string[] = [];
  for (const w of plan.wans) {
    if (w.ipv4.mode === "static") out.push(w.ipv4.gateway);
    if (w.ipv6.mode === "static") out.push(w.ipv6.gateway);
    out.push(...w.probe.targets);
  }
  out.push(...site.dns.upstreams.map((u) => u.address));
  return out;
}

function asPrefix(a: string): string {
  return a.includes("/") ? a : `${a}/${familyOf(a) === 4 ? 32 : 128}`;
}

export function planIds(site: Site, plan: SitePlan): IdsPlan {
  const ids = site.ids;
  const segLinks = ids.segments.map((n) => plan.segments.find((s) => s.name === n)!.link);
  const homeNet = [...internalPrefixes(site, plan, 4), ...internalPrefixes(site, plan, 6)];
  const mgmt = plan.segments
    .filter((s) => plan.zones.find((z) => z.name === s.zone)?.management)
    .flatMap((s) => [...(s.ipv4 ? [s.ipv4.cidr] : []), ...(s.ipv6 ? [s.ipv6.prefix] : [])]);
  const protectedSet = new Set(
    [...homeNet, ...mgmt, ...site.dataplane.allowlist, ...lifelines(site, plan), ...ids.block.never].map(asPrefix),
  );
  return {
    links: [...plan.wans.map((w) => w.name), ...segLinks],
    homeNet,
    pairs: ids.ips.pairs.map((p) => ({
      from: p.from,
      to: p.to,
      inLinks: linksOf(plan, p.from),
      outLinks: linksOf(plan, p.to),
    })),
    queues: [ids.ips.firstQueue, ids.ips.firstQueue + ids.ips.queues - 1],
    protected: [...protectedSet].sort((a, b) => a.localeCompare(b, "en", { numeric: true })),
    blockSeconds: durationSeconds(ids.block.duration),
    blockSeverity: ids.block.enabled ? ids.block.severity : undefined,
    updateSeconds: durationSeconds(ids.rules.updateInterval),
    zeekImage: ids.zeek.enabled ? ids.zeek.image : undefined,
    ship: site.observability.enabled,
  };
}
