/**
 * Facts every layer derives from the site: link names, gateway addresses, DHCP pools, zone membership. Pure
 * functions of a validated Site; the order of every list follows the site (segments by VLAN id), so renderers
 * built on a plan are deterministic.
 */
import type { Link, Segment, Site, WanNat, WanProbe } from "./schema";
import { contains, familyOf, netmask4, nthAddress, parsePrefix, prefixSize, toBigInt } from "./ip";

/** The router's IPv4 address in a segment: configured, else the first host address (none when IPv6-only). */
export function segmentGateway4(seg: Pick<Segment, "ipv4">): string | undefined {
  if (!seg.ipv4) return undefined;
  return seg.ipv4.gateway ?? nthAddress(seg.ipv4.cidr, 1);
}

/** The router's IPv6 address in a segment: configured, else `<prefix>::1`. */
export function segmentGateway6(seg: Pick<Segment, "ipv6">): string | undefined {
  if (!seg.ipv6) return undefined;
  return seg.ipv6.gateway ?? nthAddress(seg.ipv6.prefix, 1);
}

/** Default dynamic pool: the upper half of the subnet, without the broadcast address. */
export function defaultDhcpRange(cidr: string): { start: string; end: string } {
  const size = prefixSize(cidr);
  return { start: nthAddress(cidr, size / 2n), end: nthAddress(cidr, -2) };
}

/** Name of the VLAN link the router creates for a segment on its trunk (`lan0.10`). */
export function vlanLinkName(parent: string, vlan: number): string {
  return `${parent}.${vlan}`;
}

/** The trunk a segment rides on: its `link`, else the site's only trunk. */
export function segmentParent(site: Pick<Site, "links">, seg: Pick<Segment, "link">): string | undefined {
  if (seg.link) return seg.link;
  const trunks = site.links.filter((l) => l.role === "trunk");
  return trunks.length === 1 ? trunks[0].name : undefined;
}

/** Zone of a WAN link when it names none. */
export const DEFAULT_WAN_ZONE = "wan";

export function wanZone(link: Pick<Link, "zone">): string {
  return link.zone ?? DEFAULT_WAN_ZONE;
}

export interface DhcpPool {
  start: string;
  end: string;
  /** Number of addresses in the pool. */
  size: number;
}

export interface ReservationPlan {
  name: string;
  mac: string;
  ipv4?: string;
  ipv6?: string;
}

export interface SegmentPlan {
  name: string;
  description?: string;
  vlan: number;
  zone: string;
  /** Trunk (or bond) the VLAN rides on. */
  parent: string;
  /** Kernel link name of the segment (`lan0.10`). */
  link: string;
  mtu?: number;
  /** `<segment>.<site domain>` */
  domain: string;
  /** Undefined for an IPv6-only segment. */
  ipv4?: {
    cidr: string;
    prefixLength: number;
    network: string;
    netmask: string;
    broadcast: string;
    gateway: string;
    /** Gateway with prefix length, as assigned to the link. */
    gatewayCidr: string;
    /** Usable host addresses (network and broadcast excluded). */
    hosts: number;
  };
  ipv6?: {
    prefix: string;
    prefixLength: number;
    gateway: string;
    gatewayCidr: string;
  };
  /** DHCPv4 (enabled only with an IPv4 subnet); the reservations also hold the segment's DHCPv6 ones. */
  dhcp: {
    enabled: boolean;
    leaseTime: number;
    pool?: DhcpPool;
    reservations: ReservationPlan[];
  };
  /** Static routes whose next hop is on this segment (router:routes). */
  routes: { destination: string; gateway: string; metric?: number }[];
}

/** IPv4 private space (RFC 1918, RFC 6598 shared space) and IPv6 unique local addresses (RFC 4193). */
export const PRIVATE_PREFIXES = ["10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"] as const;

/** True when a prefix lies wholly in private or unique-local space. */
export function isPrivatePrefix(cidr: string): boolean {
  return PRIVATE_PREFIXES.some(
    (p) => familyOf(p) === familyOf(cidr) && contains(p, nthAddress(cidr, 0)) && contains(p, nthAddress(cidr, -1)),
  );
}

/** A static route whose next hop is on a segment: the prefix behind it is inside, on that segment's side. */
export interface InsideRoute {
  destination: string;
  gateway: string;
  /** Segment whose subnet holds the next hop; hosts behind the route are in its zone and come in on its link. */
  segment: string;
  zone: string;
  /** A private or unique-local prefix: the site's own addresses, NATed to the WANs, never sourced from them. */
  internal: boolean;
}

export interface WanPlan {
  name: string;
  zone: string;
  priority: number;
  /** Default-route metric: Talos' DHCP default is 1024; lower priority numbers get lower metrics. */
  routeMetric: number;
  mtu?: number;
  bond?: Link["bond"];
  ipv4: NonNullable<Link["ipv4"]>;
  ipv6: NonNullable<Link["ipv6"]>;
  nat: WanNat;
  probe: WanProbe;
  /**
   * Connection mark of flows that arrived on this WAN (bits 4–7: clear of kube-proxy's 0x4000/0x8000 and
   * Cilium's 0x0f00 magic), so their replies leave through it; and the routing table holding its default route.
   */
  mark: number;
  table: number;
}

/** Mask of the WAN bits in a connection mark. */
export const WAN_MARK_MASK = 0xf0;
/** Connection-mark bit of connections opened from inside (their later packets stick to their WAN). */
export const OUTBOUND_BIT = 0x08;

export interface TrunkPlan {
  name: string;
  mtu?: number;
  bond?: Link["bond"];
  /** Segment link names carried by this trunk, by VLAN id. */
  vlans: string[];
}

export interface ZonePlan {
  name: string;
  description?: string;
  management: boolean;
  /** Segments in the zone, by VLAN id. */
  segments: string[];
  /** Kernel link names in the zone (WAN links and segment VLAN links). */
  links: string[];
}

export interface SitePlan {
  siteName: string;
  domain: string;
  hostname: string;
  fqdn: string;
  managementAddress: string;
  /** Segment that carries the management address. */
  managementSegment: string;
  /** Address talosctl uses for the first apply (maintenance mode). */
  maintenanceAddress: string;
  wans: WanPlan[];
  trunks: TrunkPlan[];
  segments: SegmentPlan[];
  zones: ZonePlan[];
  /** Every kernel link name the router configures, sorted. */
  linkNames: string[];
  /** Static routes to the inside (next hop on a segment), by segment then destination. */
  insideRoutes: InsideRoute[];
}

function plainSize(cidr: string): number {
  return Number(prefixSize(cidr));
}

/** The IPv4 side of a segment's plan. */
function planIpv4(cidr: string, gateway: string): NonNullable<SegmentPlan["ipv4"]> {
  const p4 = parsePrefix(cidr);
  return {
    cidr,
    prefixLength: p4.length,
    network: nthAddress(cidr, 0),
    netmask: netmask4(p4.length),
    broadcast: nthAddress(cidr, -1),
    gateway,
    gatewayCidr: `${gateway}/${p4.length}`,
    hosts: plainSize(cidr) - 2,
  };
}

/** A planned segment's prefixes: its IPv4 subnet and its IPv6 prefix, those it has. */
export function segmentPrefixes(seg: Pick<SegmentPlan, "ipv4" | "ipv6">): string[] {
  return [...(seg.ipv4 ? [seg.ipv4.cidr] : []), ...(seg.ipv6 ? [seg.ipv6.prefix] : [])];
}

/** Plans one segment. The site must be valid. */
export function planSegment(
  site: Pick<Site, "links" | "site"> & Partial<Pick<Site, "routes">>,
  seg: Segment,
): SegmentPlan {
  const parent = segmentParent(site, seg);
  if (!parent) throw new Error(`segment ${seg.name}: no trunk to ride on (site not validated?)`);
  const gw6 = segmentGateway6(seg);
  const v4 = seg.ipv4 && planIpv4(seg.ipv4.cidr, segmentGateway4(seg)!);
  const dhcp4 = !!v4 && seg.dhcp.enabled;
  const range = seg.ipv4 ? (seg.dhcp.range ?? defaultDhcpRange(seg.ipv4.cidr)) : undefined;
  const reservations = [...seg.dhcp.reservations]
    .map((r) => ({ name: r.name, mac: r.mac, ipv4: r.ipv4, ipv6: r.ipv6 }))
    .sort((a, b) => a.mac.localeCompare(b.mac));
  return {
    name: seg.name,
    description: seg.description,
    vlan: seg.vlan,
    zone: seg.zone,
    parent,
    link: vlanLinkName(parent, seg.vlan),
    mtu: seg.mtu,
    domain: `${seg.name}.${site.site.domain}`,
    ipv4: v4,
    ipv6:
      seg.ipv6 && gw6
        ? {
            prefix: seg.ipv6.prefix,
            prefixLength: parsePrefix(seg.ipv6.prefix).length,
            gateway: gw6,
            gatewayCidr: `${gw6}/${parsePrefix(seg.ipv6.prefix).length}`,
          }
        : undefined,
    dhcp: {
      enabled: dhcp4,
      leaseTime: seg.dhcp.leaseTime,
      pool: dhcp4 && range ? { ...range, size: Number(toBigInt(range.end) - toBigInt(range.start)) + 1 } : undefined,
      reservations,
    },
    routes: (site.routes ?? [])
      .filter((r) =>
        familyOf(r.gateway) === 4
          ? !!seg.ipv4 && contains(seg.ipv4.cidr, r.gateway)
          : !!seg.ipv6 && contains(seg.ipv6.prefix, r.gateway),
      )
      .map((r) => ({
        destination: r.destination,
        gateway: r.gateway,
        ...(r.metric !== undefined ? { metric: r.metric } : {}),
      })),
  };
}

/** Plans the whole site. The site must be valid (see parseSite). */
export function planSite(site: Site): SitePlan {
  const hostname = site.node.hostname ?? site.site.name;
  const segments = [...site.segments]
    .sort((a, b) => a.vlan - b.vlan || a.name.localeCompare(b.name))
    .map((s) => planSegment(site, s));
  const wanLinks = site.links.filter((l) => l.role === "wan");
  // WANs without a priority come after those with one, in site order, never on a priority already taken (equal
  // priorities would give equal default-route metrics).
  const taken = new Set(wanLinks.flatMap((l) => (l.priority === undefined ? [] : [l.priority])));
  let next = 100;
  const defaultPriority = () => {
    while (taken.has(next)) next++;
    taken.add(next);
    return next;
  };
  const wans: WanPlan[] = wanLinks
    .map((l) => {
      const priority = l.priority ?? defaultPriority();
      return {
        name: l.name,
        zone: wanZone(l),
        priority,
        routeMetric: 1000 + priority,
        mtu: l.mtu,
        bond: l.bond,
        ipv4: l.ipv4 ?? { mode: "dhcp" as const },
        ipv6: l.ipv6 ?? { mode: "slaac" as const },
        nat: l.nat ?? { ipv4: "masquerade" as const, ipv6: "none" as const },
        probe: l.probe ?? { targets: ["1.1.1.1", "9.9.9.9"], interval: "2s", timeout: "1s", failures: 3, successes: 2 },
        mark: 0,
        table: 0,
      };
    })
    .sort((a, b) => a.priority - b.priority || a.name.localeCompare(b.name))
    .map((w, i) => ({ ...w, mark: (i + 1) << 4, table: 101 + i }));
  const trunks: TrunkPlan[] = site.links
    .filter((l) => l.role === "trunk")
    .map((l) => ({
      name: l.name,
      mtu: l.mtu,
      bond: l.bond,
      vlans: segments.filter((s) => s.parent === l.name).map((s) => s.link),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const zones: ZonePlan[] = site.zones
    .map((z) => ({
      name: z.name,
      description: z.description,
      management: z.management,
      segments: segments.filter((s) => s.zone === z.name).map((s) => s.name),
      links: [
        ...wans.filter((w) => w.zone === z.name).map((w) => w.name),
        ...segments.filter((s) => s.zone === z.name).map((s) => s.link),
      ],
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const mgmt = segments.find(
    (s) =>
      zones.find((z) => z.name === s.zone)?.management &&
      (s.ipv4?.gateway === site.node.managementAddress || s.ipv6?.gateway === site.node.managementAddress),
  );
  if (!mgmt) throw new Error("no management segment carries node.managementAddress (site not validated?)");
  const linkNames = [
    ...new Set([...wans.map((w) => w.name), ...trunks.map((t) => t.name), ...segments.map((s) => s.link)]),
  ].sort();
  const insideRoutes = segments.flatMap((seg) =>
    seg.routes.map((r) => ({
      destination: r.destination,
      gateway: r.gateway,
      segment: seg.name,
      zone: seg.zone,
      internal: isPrivatePrefix(r.destination),
    })),
  );
  return {
    siteName: site.site.name,
    domain: site.site.domain,
    hostname,
    fqdn: `${hostname}.${site.site.domain}`,
    managementAddress: site.node.managementAddress,
    managementSegment: mgmt.name,
    maintenanceAddress: site.node.maintenanceAddress ?? site.node.managementAddress,
    wans,
    trunks,
    segments,
    zones,
    linkNames,
    insideRoutes,
  };
}
