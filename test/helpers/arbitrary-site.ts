/**
 * Valid raw sites for property tests and benchmarks.
 *
 * `validRawSite` draws the choices of a site (WANs, trunks, segments, zones, cluster ranges, …) and
 * `buildRawSite` turns them into the raw config values `parseSite` takes. Validity holds by construction, not
 * by filtering: segment subnets are carved one after another from 10.0.0.0/8, WAN subnets come from the
 * documentation ranges and the cluster ranges from 172.16.0.0/12, 100.64.0.0/10 and 198.18.0.0/15, so nothing
 * overlaps; gateways sit in the lower half of a subnet and default pools in the upper half. Address arithmetic
 * here is the test's own, independent of components/site/ip.ts.
 */
import fc from "fast-check";
import type { RawSite } from "./site-fixtures";

// ---------------------------------------------------------------------------------------------------------------
// Address arithmetic (IPv4 as unsigned 32-bit numbers).

export function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function ipv4Int(text: string): number {
  return text.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

/** The address `offset` positions into an IPv4 CIDR (negative: from its end, -1 = broadcast). */
export function ipv4At(cidr: string, offset: number): string {
  const [net, len] = cidr.split("/");
  const size = 2 ** (32 - Number(len));
  return ipv4(ipv4Int(net) + (offset >= 0 ? offset : size + offset));
}

/** Number of addresses of an IPv4 CIDR. */
export function ipv4Size(cidr: string): number {
  return 2 ** (32 - Number(cidr.split("/")[1]));
}

// ---------------------------------------------------------------------------------------------------------------
// Choices.

export type Wan4Mode = "dhcp" | "static" | "none" | "omitted";
export type Wan6Mode = "slaac" | "dhcpv6" | "static" | "none" | "omitted";

export interface WanChoice {
  ipv4: Wan4Mode;
  ipv6: Wan6Mode;
  /** Explicit priority (1–99, distinct among WANs) or none. */
  priority?: number;
  /** Zone name; undefined leaves the default ("wan"). */
  zone?: "uplink" | "isp";
  mtu?: number;
  /** IPv6 gateway of a static WAN: on the prefix, or link-local. */
  linkLocalGateway6: boolean;
}

export interface TrunkChoice {
  bond: boolean;
  mtu?: 1500 | 9000;
}

export type DhcpMode = "omitted" | "default" | "range" | "disabled";

export interface SegmentChoice {
  /** IPv4 prefix length, 16–30. */
  prefixLength: number;
  /** Unused blocks of the segment's size left before it, so subnets are not always adjacent. */
  gap: number;
  vlan: number;
  /** Index into the LAN zones (modulo their number); the management segment ignores it. */
  zone: number;
  /** Index of the trunk (modulo their number). */
  trunk: number;
  /** Name the trunk even when it is the only one. */
  explicitLink: boolean;
  /** Gateway: 0 leaves the default (first host); otherwise picks a lower-half host address. */
  gateway: number;
  ipv6: boolean;
  explicitGateway6: boolean;
  dhcp: DhcpMode;
  /** Picks for the explicit range bounds (upper half) and the reservation addresses. */
  rangePick: [number, number];
  leaseTime?: number;
  reservations: { pick: number; ipv6: boolean; withIpv4: boolean }[];
  mtu?: number;
  description: boolean;
}

export interface SiteChoices {
  siteName: string;
  /** Second byte of the NIC MACs, so sites differ in MACs too. */
  macSeed: number;
  hostname: boolean;
  maintenanceAddress: boolean;
  disk: 0 | 1 | 2 | 3 | 4;
  talosPatch: number;
  wans: WanChoice[];
  trunks: TrunkChoice[];
  segments: SegmentChoice[];
  /** Index of the management segment (modulo the number of segments). */
  management: number;
  /** The management address is the management segment's IPv6 gateway (when it has IPv6). */
  management6: boolean;
  mgmtZone: "mgmt" | "admin" | "infra";
  lanZones: number;
  /** Put the LAN zones before the management zone in router:zones. */
  zonesReversed: boolean;
  pod: 0 | 1 | 2;
  service: 0 | 1 | 2;
  clusterIpv6: boolean;
  registry: "none" | "anonymous" | "authenticated";
  dnsProtocol: "Do53" | "DoT";
}

const LAN_ZONES = ["trusted", "iot", "guest", "servers"] as const;
const POD_CIDRS = ["172.16.0.0/16", "172.20.0.0/14", "172.24.0.0/13"] as const;
const SERVICE_CIDRS = ["100.64.0.0/16", "100.96.0.0/12", "198.18.0.0/16"] as const;
const WAN_NETS = ["203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24"] as const;
const SEGMENT_SPACE = { first: ipv4Int("10.0.0.0"), end: ipv4Int("11.0.0.0") };
const INSTALLER = "factory.talos.dev/metal-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

const hex2 = (n: number) => n.toString(16).padStart(2, "0");

/** Lower-half host offsets of a subnet of `size` addresses, without the gateway: where reservations may go. */
function reservable(size: number, gatewayOffset: number, dhcp: DhcpMode, range: [number, number]): [number, number][] {
  const half = size / 2;
  const spans: [number, number][] = [];
  if (gatewayOffset > 1) spans.push([1, gatewayOffset - 1]);
  if (gatewayOffset < half - 1) spans.push([gatewayOffset + 1, half - 1]);
  // Outside the pool, the upper half is free too: after an explicit range, or all of it when DHCP is off.
  if (dhcp === "range" && range[1] < size - 2) spans.push([range[1] + 1, size - 2]);
  if (dhcp === "disabled") spans.push([half, size - 2]);
  return spans;
}

/** Picks `count` distinct offsets from spans, deterministically from `picks`. */
function pickDistinct(spans: [number, number][], picks: number[]): number[] {
  const total = spans.reduce((n, [a, b]) => n + (b - a + 1), 0);
  const out: number[] = [];
  for (const p of picks) {
    if (out.length >= total) break;
    let k = p % total;
    // Walk forward to the next offset not taken yet.
    for (;;) {
      let rest = k;
      let offset = -1;
      for (const [a, b] of spans) {
        if (rest <= b - a) {
          offset = a + rest;
          break;
        }
        rest -= b - a + 1;
      }
      if (!out.includes(offset)) {
        out.push(offset);
        break;
      }
      k = (k + 1) % total;
    }
  }
  return out;
}

/** Turns choices into a raw site (config values by key, as rawSiteConfig returns them). Valid by construction. */
export function buildRawSite(c: SiteChoices): RawSite {
  const talosVersion = `v1.14.${c.talosPatch}`;
  const mgmtIndex = c.management % c.segments.length;
  const lanZones = LAN_ZONES.slice(0, Math.max(1, c.lanZones));

  // NICs and links: WANs first, then trunks (a bond trunk enslaves two NICs of its own).
  const nics: { alias: string; mac: string }[] = [];
  const nic = (alias: string) => {
    nics.push({ alias, mac: `02:${hex2(c.macSeed)}:00:00:00:${hex2(nics.length + 1)}` });
    return alias;
  };
  const links: Record<string, unknown>[] = [];
  const usedPriorities = new Set<number>();
  c.wans.forEach((w, i) => {
    const link: Record<string, unknown> = { name: nic(`wan${i}`), role: "wan" };
    const v4: Wan4Mode = w.ipv4;
    // A WAN needs at least one family.
    const v6: Wan6Mode = v4 === "none" && w.ipv6 === "none" ? "slaac" : w.ipv6;
    const net = WAN_NETS[i];
    if (v4 === "static") link.ipv4 = { mode: "static", address: `${ipv4At(net, 10)}/24`, gateway: ipv4At(net, 1) };
    else if (v4 !== "omitted") link.ipv4 = { mode: v4 };
    if (v6 === "static")
      link.ipv6 = {
        mode: "static",
        address: `2001:db8:${i + 1}::10/64`,
        gateway: w.linkLocalGateway6 ? "fe80::1" : `2001:db8:${i + 1}::1`,
      };
    else if (v6 !== "omitted") link.ipv6 = { mode: v6 };
    if (w.priority !== undefined && !usedPriorities.has(w.priority)) {
      usedPriorities.add(w.priority);
      link.priority = w.priority;
    }
    if (w.zone) link.zone = w.zone;
    if (w.mtu) link.mtu = w.mtu;
    links.push(link);
  });
  const trunkNames: string[] = [];
  const trunkMtu: number[] = [];
  c.trunks.forEach((t, i) => {
    const link: Record<string, unknown> = { role: "trunk" };
    if (t.bond) {
      link.name = `bond${i}`;
      link.bond = { members: [nic(`eth${i}a`), nic(`eth${i}b`)], mode: "802.3ad", lacpRate: "fast" };
    } else {
      link.name = nic(`lan${i}`);
    }
    if (t.mtu) link.mtu = t.mtu;
    trunkNames.push(String(link.name));
    trunkMtu.push(t.mtu ?? 1500);
    links.push(link);
  });

  // Segments: subnets carved in list order from 10.0.0.0/8.
  let cursor = SEGMENT_SPACE.first;
  let macCounter = 0;
  const segments = c.segments.map((s, i) => {
    const size = 2 ** (32 - s.prefixLength);
    cursor = Math.ceil(cursor / size) * size + s.gap * size;
    if (cursor + size > SEGMENT_SPACE.end) throw new Error(`buildRawSite: segment ${i} does not fit into 10.0.0.0/8`);
    const cidr = `${ipv4(cursor)}/${s.prefixLength}`;
    cursor += size;
    const half = size / 2;
    const gatewayOffset = s.gateway === 0 || half <= 2 ? 1 : 1 + (s.gateway % (half - 1));
    const trunk = s.trunk % trunkNames.length;
    const seg: Record<string, unknown> = {
      name: `seg${i}-${s.vlan}`,
      vlan: s.vlan,
      // Other segments may share the management zone: only the management address has to be on one of them.
      zone: i === mgmtIndex ? c.mgmtZone : [...lanZones, c.mgmtZone][s.zone % (lanZones.length + 1)],
    };
    if (s.description) seg.description = `segment ${i}`;
    if (trunkNames.length > 1 || s.explicitLink) seg.link = trunkNames[trunk];
    if (s.mtu) seg.mtu = Math.min(s.mtu, trunkMtu[trunk]);
    seg.ipv4 = { cidr, ...(s.gateway === 0 ? {} : { gateway: ipv4At(cidr, gatewayOffset) }) };
    const prefix6 = `fd10:${c.macSeed.toString(16)}:${(i + 1).toString(16)}::`;
    if (s.ipv6) seg.ipv6 = { prefix: `${prefix6}/64`, ...(s.explicitGateway6 ? { gateway: `${prefix6}fe` } : {}) };

    // Explicit pool: inside the upper half, so the lower-half gateway stays out of it.
    const lo = half + (s.rangePick[0] % (size - 1 - half));
    const hi = lo + (s.rangePick[1] % (size - 1 - lo));
    const range: [number, number] = [lo, hi];
    if (s.dhcp !== "omitted") {
      const dhcp: Record<string, unknown> = { enabled: s.dhcp !== "disabled" };
      if (s.dhcp === "range") dhcp.range = { start: ipv4At(cidr, lo), end: ipv4At(cidr, hi) };
      if (s.leaseTime) dhcp.leaseTime = s.leaseTime;
      const offsets = pickDistinct(
        reservable(size, gatewayOffset, s.dhcp, range),
        s.reservations.map((r) => r.pick),
      );
      dhcp.reservations = offsets.map((offset, k) => {
        const r = s.reservations[k];
        macCounter += 1;
        const mac = `0a:${hex2(c.macSeed)}:${hex2(i >> 8)}:${hex2(i & 255)}:${hex2(macCounter >> 8)}:${hex2(macCounter & 255)}`;
        return {
          name: `host-${k}`,
          mac,
          ...(r.withIpv4 || !(s.ipv6 && r.ipv6) ? { ipv4: ipv4At(cidr, offset) } : {}),
          ...(s.ipv6 && r.ipv6 ? { ipv6: `${prefix6}${(0x100 + k).toString(16)}` } : {}),
        };
      });
      seg.dhcp = dhcp;
      // An IPv6 reservation is handed out by DHCPv6 (the site model requires it on the segment).
      if ((dhcp.reservations as { ipv6?: string }[]).some((r) => r.ipv6)) seg.dhcpv6 = { enabled: true };
    }
    return seg;
  });

  const mgmtSeg = segments[mgmtIndex] as {
    ipv4: { cidr: string; gateway?: string };
    ipv6?: { prefix: string; gateway?: string };
  };
  const managementAddress =
    c.management6 && mgmtSeg.ipv6
      ? (mgmtSeg.ipv6.gateway ?? mgmtSeg.ipv6.prefix.replace("::/64", "::1"))
      : (mgmtSeg.ipv4.gateway ?? ipv4At(mgmtSeg.ipv4.cidr, 1));

  const wanZones = [...new Set(c.wans.map((w) => w.zone ?? "wan"))];
  const lanZoneRecords = lanZones.map((name) => ({ name, description: `${name} devices` }));
  const mgmtZoneRecord = { name: c.mgmtZone, management: true };
  const zones = [
    ...wanZones.map((name) => ({ name })),
    ...(c.zonesReversed ? [...lanZoneRecords, mgmtZoneRecord] : [mgmtZoneRecord, ...lanZoneRecords]),
  ];

  const disks = [
    { type: "nvme", minSizeGiB: 100 },
    { path: "/dev/sda" },
    { model: "Samsung SSD 870", type: "ssd" },
    { match: 'disk.transport == "nvme"' },
    { model: "Samsung SSD 9*", type: "nvme" },
  ];

  const raw: RawSite = {
    site: { name: c.siteName, domain: `${c.siteName}.home.arpa` },
    node: {
      ...(c.hostname ? { hostname: `${c.siteName}-rtr1` } : {}),
      managementAddress,
      ...(c.maintenanceAddress ? { maintenanceAddress: "192.168.1.150" } : {}),
      installDisk: disks[c.disk],
      nics,
    },
    talos: {
      version: talosVersion,
      kubernetesVersion: "v1.37.1",
      installerImage: `${INSTALLER}:${talosVersion}`,
    },
    links,
    segments,
    zones,
    cluster: {
      podCidrs: [POD_CIDRS[c.pod], ...(c.clusterIpv6 ? ["fd9c:5a1e:244::/56"] : [])],
      serviceCidrs: [SERVICE_CIDRS[c.service], ...(c.clusterIpv6 ? ["fd9c:5a1e:96::/112"] : [])],
    },
    cilium: { version: "1.20.0" },
    dns: {
      upstreams: [
        c.dnsProtocol === "DoT"
          ? { address: "1.1.1.1", protocol: "DoT", tlsServerName: "cloudflare-dns.com" }
          : { address: "9.9.9.9" },
        { address: "2606:4700:4700::1111", protocol: "DoT", tlsServerName: "cloudflare-dns.com" },
      ],
    },
    // With only encrypted resolvers, one NTP server by address lets the clock be set before DNS works.
    ntp: { servers: c.dnsProtocol === "DoT" ? ["162.159.200.1", "time.cloudflare.com"] : ["time.cloudflare.com"] },
  };
  if (c.registry !== "none")
    raw.registry = {
      server: "registry.lab.home.arpa:5000",
      ...(c.registry === "authenticated" ? { username: "router" } : {}),
    };
  if (c.registry === "authenticated") raw.registryPassword = "registry-password-for-tests";
  // The data-plane extension is pushed to router:registry; without one, the site ships no extension.
  if (c.registry === "none") raw.dataplane = { enabled: false, extension: { build: false } };
  return raw;
}

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries.

const wanChoice: fc.Arbitrary<WanChoice> = fc.record(
  {
    ipv4: fc.constantFrom<Wan4Mode>("dhcp", "static", "none", "omitted"),
    ipv6: fc.constantFrom<Wan6Mode>("slaac", "dhcpv6", "static", "none", "omitted"),
    priority: fc.integer({ min: 1, max: 99 }),
    zone: fc.constantFrom("uplink" as const, "isp" as const),
    mtu: fc.constantFrom(1492, 1500),
    linkLocalGateway6: fc.boolean(),
  },
  { requiredKeys: ["ipv4", "ipv6", "linkLocalGateway6"] },
);

const trunkChoice: fc.Arbitrary<TrunkChoice> = fc.record(
  { bond: fc.boolean(), mtu: fc.constantFrom(1500 as const, 9000 as const) },
  { requiredKeys: ["bond"] },
);

const segmentChoice = (vlan: number): fc.Arbitrary<SegmentChoice> =>
  fc.record(
    {
      prefixLength: fc.oneof(fc.integer({ min: 16, max: 30 }), fc.constantFrom(24, 30)),
      gap: fc.nat(2),
      vlan: fc.constant(vlan),
      zone: fc.nat(4),
      trunk: fc.nat(1),
      explicitLink: fc.boolean(),
      gateway: fc.oneof(fc.constant(0), fc.nat(1_000_000)),
      ipv6: fc.boolean(),
      explicitGateway6: fc.boolean(),
      dhcp: fc.constantFrom<DhcpMode>("omitted", "default", "range", "disabled"),
      rangePick: fc.tuple(fc.nat(1_000_000), fc.nat(1_000_000)),
      leaseTime: fc.integer({ min: 60, max: 7_776_000 }),
      reservations: fc.array(fc.record({ pick: fc.nat(1_000_000), ipv6: fc.boolean(), withIpv4: fc.boolean() }), {
        maxLength: 3,
      }),
      mtu: fc.constantFrom(1280, 1400, 1500, 9000),
      description: fc.boolean(),
    },
    {
      requiredKeys: [
        "prefixLength",
        "gap",
        "vlan",
        "zone",
        "trunk",
        "explicitLink",
        "gateway",
        "ipv6",
        "explicitGateway6",
        "dhcp",
        "rangePick",
        "reservations",
        "description",
      ],
    },
  );

/** The choices behind a valid site: 1–3 WANs, 1–2 trunks, 1–24 segments. */
export const siteChoices: fc.Arbitrary<SiteChoices> = fc
  // Half small sites, half large ones: fast-check's default size bias would rarely reach 24 segments.
  .oneof(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 7, max: 24 }))
  .chain((n) => fc.uniqueArray(fc.integer({ min: 1, max: 4094 }), { minLength: n, maxLength: n }))
  .chain((vlans) =>
    fc.record({
      siteName: fc.constantFrom("lab", "branch-1", "home", "shop"),
      macSeed: fc.nat(255),
      hostname: fc.boolean(),
      maintenanceAddress: fc.boolean(),
      disk: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const, 4 as const),
      talosPatch: fc.nat(9),
      wans: fc.array(wanChoice, { minLength: 1, maxLength: 3 }),
      trunks: fc.array(trunkChoice, { minLength: 1, maxLength: 2 }),
      segments: fc.tuple(...vlans.map(segmentChoice)),
      management: fc.nat(23),
      management6: fc.boolean(),
      mgmtZone: fc.constantFrom("mgmt" as const, "admin" as const, "infra" as const),
      lanZones: fc.integer({ min: 1, max: 4 }),
      zonesReversed: fc.boolean(),
      pod: fc.constantFrom(0 as const, 1 as const, 2 as const),
      service: fc.constantFrom(0 as const, 1 as const, 2 as const),
      clusterIpv6: fc.boolean(),
      // router:registry is required (the services image and the extension are pushed there).
      registry: fc.constantFrom("anonymous" as const, "authenticated" as const),
      dnsProtocol: fc.constantFrom("Do53" as const, "DoT" as const),
    }),
  );

/** Valid raw sites (config values by key, without the `router:` namespace). */
export const validRawSite: fc.Arbitrary<RawSite> = siteChoices.map(buildRawSite);

/**
 * A valid raw site with exactly `n` segments (1–4000), the same on every call: one DHCP WAN, one trunk, /24
 * segments with IPv6, reservations on every other segment, the first segment in the management zone.
 */
export function rawSiteWithSegments(n: number): RawSite {
  if (!Number.isInteger(n) || n < 1 || n > 4000) throw new Error(`rawSiteWithSegments: n must be 1–4000, got ${n}`);
  const segments: SegmentChoice[] = Array.from({ length: n }, (_, i) => ({
    prefixLength: 24,
    gap: 0,
    vlan: 10 + i,
    zone: i,
    trunk: 0,
    explicitLink: false,
    gateway: 0,
    ipv6: true,
    explicitGateway6: false,
    dhcp: i % 2 === 0 ? "default" : "omitted",
    rangePick: [0, 0],
    reservations: i % 2 === 0 ? [{ pick: i, ipv6: true, withIpv4: true }] : [],
    description: true,
  }));
  return buildRawSite({
    siteName: "bench",
    macSeed: 1,
    hostname: true,
    maintenanceAddress: false,
    disk: 0,
    talosPatch: 6,
    wans: [{ ipv4: "dhcp", ipv6: "slaac", priority: 10, linkLocalGateway6: false }],
    trunks: [{ bond: false, mtu: 1500 }],
    segments,
    management: 0,
    management6: false,
    mgmtZone: "mgmt",
    lanZones: 4,
    zonesReversed: false,
    pod: 0,
    service: 0,
    clusterIpv6: true,
    registry: "anonymous",
    dnsProtocol: "DoT",
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Network policy: firewall, port forwards, routes, dynamic routing, mDNS, WAN NAT and probes, and the per-segment
// DHCPv6, RA, DHCP option and QoS settings.
//
// The choices are picks (plain numbers) resolved against the site they are added to, so a policy arbitrary
// shrinks independently of the site's. Validity again holds by construction:
//  - addresses are taken from what the site holds: a segment's free hosts (neither the router, the network or
//    broadcast address, nor the dynamic pool), its prefixes, IPv6 hosts at <prefix>::53 (a resolver) and from
//    ::200 up (the router is ::1 or ::fe, reservations ::100 and up, DHCPv6 pools ::1000 and up), static WAN
//    subnets, and a few disjoint outside prefixes;
//  - an address group never holds two entries of which one contains the other (a named nftables interval set
//    refuses them, see validators.property.test.ts);
//  - every original port forward has a port block of its own (4000 ports per forward); a "twin" reuses its
//    original's port on the other protocol or on the other WANs, which is still one forward per WAN, protocol
//    and port;
//  - a drop or reject rule to the router that could match the Talos or Kubernetes API from the management zone
//    is changed to spare it (other zones, udp, or other ports);
//  - routes go to prefixes in 192.168.0.0/16, 192.170.0.0/15 and up, fd99::/16 and 2001:db8:100::/40, which no
//    segment uses, via a free host of a segment or of a static WAN subnet (never the router's own address);
//  - mDNS groups partition a rotation of the LAN zones, two or three zones each.

const ROUTER_SERVICES = ["dhcp", "dns", "ntp", "mdns", "ping"] as const;
const RULE_PROTOCOLS = ["tcp", "udp", "tcp+udp", "icmp", "any"] as const;
const FORWARD_PROTOCOLS = ["tcp", "udp", "tcp+udp"] as const;
const ACTIONS = ["accept", "drop", "reject"] as const;
/** Outside addresses and prefixes, pairwise disjoint. */
const OUTSIDE = ["1.1.1.1", "185.199.108.0/22", "8.8.8.8", "2001:db8:ff::/48", "2606:4700::/32"] as const;
/** Sources a forward may be limited to: public (the XDP guard drops bogon sources first), pairwise disjoint. */
const FORWARD_SOURCES = [
  "81.2.69.0/24",
  "93.184.216.128/25",
  "185.1.0.0/16",
  "45.33.32.64/26",
  "2a00:1450:4001::/48",
  "2a03:2880:f000::/56",
] as const;
const PROBE_TARGETS = ["1.1.1.1", "9.9.9.9", "8.8.8.8", "2606:4700:4700::1111", "2620:fe::fe"] as const;
const MANAGEMENT_API_PORTS = [6443, 50000, 50001];
const MDNS_GROUPS = ["casting", "printing", "home"] as const;
const OSPF_AREAS = ["0.0.0.0", "0.0.0.1", "10.0.0.0"] as const;

export type AddressKind = "host4" | "net4" | "host6" | "net6" | "outside";

export interface AddressPick {
  kind: AddressKind;
  pick: number;
}

/** An address reference of a rule: an address pick, or one of the site's address groups. */
export type RefPick = AddressPick | { kind: "group"; pick: number };

export interface PortPick {
  /** Low port (modulo 65535, plus 1). */
  low: number;
  /** 0: a single port; otherwise the range's width (modulo 2000). */
  width: number;
}

export interface ZonePolicyChoice {
  /** Index into ["any", ...zones]. */
  from: number;
  to: number;
  action: (typeof ACTIONS)[number];
  log?: boolean;
}

export interface RuleChoice {
  /** Indices into ["any", ...zones]; a list when fromList (duplicates dropped). */
  from: number[];
  fromList: boolean;
  /** Indices into ["any", ...zones]. */
  to: number[];
  toList: boolean;
  /** Add "router" to the destinations. */
  toRouter: boolean;
  /** Left out: the default (any). */
  protocol?: (typeof RULE_PROTOCOLS)[number];
  /** Used with tcp, udp and tcp+udp only; empty: no ports. */
  ports: PortPick[];
  source: RefPick[];
  destination: RefPick[];
  action: (typeof ACTIONS)[number];
  log?: boolean;
  description: boolean;
  /** How a rule that could cut the management path is made to spare it: 0 other zones, 1 udp, 2 other ports. */
  spare: number;
}

export interface GroupChoice {
  addresses: AddressPick[];
  description: boolean;
}

export interface ForwardChoice {
  /** Reuse the previous forward's port on the other protocol or the other WANs, when it allows that. */
  twin: boolean;
  /** Bit mask over the WANs; 0 leaves wans out (all WANs). */
  wans: number;
  protocol: (typeof FORWARD_PROTOCOLS)[number];
  port: PortPick;
  /** Segment and host of the inside address. */
  segment: number;
  host: number;
  /** Shift to this inside port (modulo what fits); "edge": the largest start that fits the range. */
  toPort?: number | "edge";
  /** Bit mask over FORWARD_SOURCES; 0 leaves sources out. */
  sources: number;
  hairpin?: boolean;
  /** Open an IPv6 pinhole to a host of an IPv6 segment (picked by this number). */
  ipv6?: number;
  description: boolean;
}

export interface RouteChoice {
  family: 4 | 6;
  /** 0–2: prefix shape of the destination. */
  shape: number;
  /** Next hop: a segment host or a static WAN host. */
  via: number;
  metric?: number;
  description: boolean;
}

export interface BgpChoice {
  asn: number;
  neighbors: { via: number; asn: number; description: boolean }[];
  advertise: number[];
}

export interface OspfChoice {
  area: number;
  segments: number[];
  passive: number[];
  redistribute: ("connected" | "static")[];
}

export interface NatChoice {
  ipv4?: "masquerade" | "none";
  ipv6?: "none" | "masquerade" | "prefix";
  /** Length of the translated prefixes when ipv6 is prefix. */
  prefixLength: 48 | 56 | 60 | 64;
}

export interface ProbeChoice {
  /** Bit mask over PROBE_TARGETS; 0 leaves targets out (the default). */
  targets: number;
  interval?: "1s" | "2s" | "5s" | "10s";
  timeout?: "1s" | "2s" | "3s";
  failures?: number;
  successes?: number;
}

export interface SegmentPolicyChoice {
  /** IPv6 segments: stateful DHCPv6, optionally with an explicit pool; others may say enabled: false. */
  dhcpv6?: { enabled: boolean; range?: [number, number]; leaseTime?: number };
  /** IPv6 segments only. */
  ra?: {
    enabled?: boolean;
    slaac?: boolean;
    otherConfig?: boolean;
    maxInterval?: number;
    lifetime?: number;
    /** 0: the router, 1: the router and a host, 2: a host. */
    dnsServers?: number;
  };
  dhcpOptions?: { dnsServers?: number; ntpServers?: boolean; searchDomains?: number };
  qos?: {
    defaultPriority?: number;
    dscpPriority: [number, number][];
    rewriteDscp?: number;
    trustPcp?: boolean;
  };
}

export interface PolicyChoices {
  defaultAction?: "drop" | "reject";
  logDrops?: boolean;
  logRate?: "10/minute" | "5/second" | "100/hour";
  /** Per zone (by position in router:zones): explicit services (a LAN zone) or ping/nothing (a WAN zone). */
  zoneServices: ({ services: number } | undefined)[];
  groups: GroupChoice[];
  policies: ZonePolicyChoice[];
  rules: RuleChoice[];
  forwards: ForwardChoice[];
  routes: RouteChoice[];
  bgp?: BgpChoice;
  ospf?: OspfChoice;
  /** Number of mDNS reflection groups (as many as the LAN zones allow), their sizes and a rotation of the zones. */
  mdns: { groups: number; sizes: number[]; rotation: number };
  /** Per WAN (by position). */
  wans: { nat?: NatChoice; probe?: ProbeChoice }[];
  /** Per segment (by position). */
  segments: (SegmentPolicyChoice | undefined)[];
}

interface SegmentFacts {
  index: number;
  name: string;
  zone: string;
  cidr: string;
  /** Offsets of hosts that are neither the router nor in the dynamic pool. */
  free: [number, number][];
  /** `<prefix>::` of an IPv6 segment. */
  base6?: string;
  gateway6?: string;
}

interface SiteFacts {
  zones: string[];
  wanZones: string[];
  lanZones: string[];
  mgmtZone: string;
  wans: string[];
  segments: SegmentFacts[];
  /** Static WAN subnets: IPv4 `net/24` and IPv6 `2001:db8:N::` bases. */
  static4: string[];
  static6: string[];
  mgmtGateway4: string;
}

type Json = Record<string, unknown>;

function spanTotal(spans: [number, number][]): number {
  return spans.reduce((n, [a, b]) => n + (b - a + 1), 0);
}

function spanAt(spans: [number, number][], pick: number): number {
  let rest = pick % spanTotal(spans);
  for (const [a, b] of spans) {
    if (rest <= b - a) return a + rest;
    rest -= b - a + 1;
  }
  throw new Error("spanAt: empty spans");
}

/** Host offsets of [1, size-2] without the gateway and the pool. */
function freeHosts(size: number, gateway: number, pool?: [number, number]): [number, number][] {
  const taken = [[gateway, gateway] as [number, number], ...(pool ? [pool] : [])].sort((x, y) => x[0] - y[0]);
  const spans: [number, number][] = [];
  let next = 1;
  for (const [a, b] of taken) {
    if (a > next) spans.push([next, Math.min(a - 1, size - 2)]);
    next = Math.max(next, b + 1);
  }
  if (next <= size - 2) spans.push([next, size - 2]);
  return spans.filter(([a, b]) => a <= b);
}

function siteFacts(raw: RawSite): SiteFacts {
  const links = raw.links as Json[];
  const zones = (raw.zones as Json[]).map((z) => String(z.name));
  const wanLinks = links.filter((l) => l.role === "wan");
  const wanZones = [...new Set(wanLinks.map((l) => String(l.zone ?? "wan")))];
  const mgmtZone = String((raw.zones as Json[]).find((z) => z.management)!.name);
  const segments = (raw.segments as Json[]).map((s, index): SegmentFacts => {
    const v4 = s.ipv4 as { cidr: string; gateway?: string };
    const size = ipv4Size(v4.cidr);
    const net = ipv4Int(v4.cidr.split("/")[0]);
    const gateway = v4.gateway ? ipv4Int(v4.gateway) - net : 1;
    const dhcp = s.dhcp as { enabled?: boolean; range?: { start: string; end: string } } | undefined;
    const enabled = dhcp?.enabled ?? true;
    const pool: [number, number] | undefined = !enabled
      ? undefined
      : dhcp?.range
        ? [ipv4Int(dhcp.range.start) - net, ipv4Int(dhcp.range.end) - net]
        : [size / 2, size - 2];
    const v6 = s.ipv6 as { prefix: string; gateway?: string } | undefined;
    const base6 = v6?.prefix.replace(/\/64$/, "");
    return {
      index,
      name: String(s.name),
      zone: String(s.zone),
      cidr: v4.cidr,
      free: freeHosts(size, gateway, pool),
      base6,
      gateway6: v6 ? (v6.gateway ?? `${base6}1`) : undefined,
    };
  });
  const mgmtSeg = (raw.segments as Json[]).find((s) => s.zone === mgmtZone)!;
  const mgmt4 = mgmtSeg.ipv4 as { cidr: string; gateway?: string };
  return {
    zones,
    wanZones,
    lanZones: zones.filter((z) => !wanZones.includes(z)),
    mgmtZone,
    wans: wanLinks.map((l) => String(l.name)),
    segments,
    static4: wanLinks.flatMap((l) => {
      const v4 = l.ipv4 as { mode: string; address?: string } | undefined;
      // buildRawSite puts a static WAN at .10 of a /24.
      return v4?.mode === "static" ? [v4.address!.replace(/\.10\/24$/, ".0/24")] : [];
    }),
    static6: wanLinks.flatMap((l) => {
      const v6 = l.ipv6 as { mode: string; address?: string } | undefined;
      return v6?.mode === "static" ? [v6.address!.replace(/10\/64$/, "")] : [];
    }),
    mgmtGateway4: mgmt4.gateway ?? ipv4At(mgmt4.cidr, 1),
  };
}

const hex = (n: number) => n.toString(16);

/** The IPv6 address `n` (< 2^32) positions into the /64 whose `<prefix>::` is `base`. */
function host6(base: string, n: number): string {
  return n > 0xffff ? `${base}${hex(Math.floor(n / 0x10000))}:${hex(n % 0x10000)}` : `${base}${hex(n)}`;
}

/** One resolved address: its text, and the region it lies in (entries of one region may overlap). */
interface Address {
  text: string;
  region: string;
  prefix: boolean;
}

function resolveAddress(f: SiteFacts, a: AddressPick, salt: number): Address {
  const hosts4 = f.segments.filter((s) => spanTotal(s.free) > 0);
  const v6 = f.segments.filter((s) => s.base6);
  const outside = (): Address => {
    const text = OUTSIDE[a.pick % OUTSIDE.length];
    return { text, region: `outside-${text}`, prefix: text.includes("/") };
  };
  switch (a.kind) {
    case "host4":
      if (hosts4.length === 0) return resolveAddress(f, { kind: "net4", pick: a.pick }, salt);
      {
        const s = hosts4[a.pick % hosts4.length];
        const text = ipv4At(s.cidr, spanAt(s.free, Math.floor(a.pick / hosts4.length) + salt));
        return { text, region: `${s.name}/4`, prefix: false };
      }
    case "net4": {
      const s = f.segments[a.pick % f.segments.length];
      return { text: s.cidr, region: `${s.name}/4`, prefix: true };
    }
    case "host6": {
      if (v6.length === 0) return outside();
      const s = v6[a.pick % v6.length];
      return { text: `${s.base6}${hex(0x400 + ((a.pick + salt) % 0x400))}`, region: `${s.name}/6`, prefix: false };
    }
    case "net6": {
      if (v6.length === 0) return outside();
      const s = v6[a.pick % v6.length];
      return { text: `${s.base6}/64`, region: `${s.name}/6`, prefix: true };
    }
    case "outside":
      return outside();
  }
}

function portSpec(p: PortPick): number | string {
  const low = 1 + (p.low % 65535);
  const high = Math.min(65535, low + (p.width % 2000));
  return p.width === 0 || high === low ? low : `${low}-${high}`;
}

function portBounds(spec: number | string): [number, number] {
  if (typeof spec === "number") return [spec, spec];
  const [a, b] = spec.split("-").map(Number);
  return [a, b];
}

function bits<T>(mask: number, items: readonly T[]): T[] {
  return items.filter((_, i) => (mask >> i) & 1);
}

function uniq<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

function buildFirewall(f: SiteFacts, p: PolicyChoices): Json {
  const fromZones = ["any", ...f.zones];
  const groups: Json[] = p.groups.map((g, gi) => {
    const taken: Address[] = [];
    for (const [k, pick] of g.addresses.entries()) {
      const a = resolveAddress(f, pick, k);
      const clash = taken.some((t) => t.text === a.text || (t.region === a.region && (t.prefix || a.prefix)));
      if (!clash) taken.push(a);
    }
    return {
      name: `grp-${gi}`,
      ...(g.description ? { description: `address group ${gi}` } : {}),
      addresses: taken.map((t) => t.text),
    };
  });
  const refs = (picks: RefPick[]): string[] | undefined => {
    if (picks.length === 0) return undefined;
    return uniq(
      picks.map((r, k) =>
        r.kind === "group"
          ? groups.length
            ? `@${String(groups[r.pick % groups.length].name)}`
            : resolveAddress(f, { kind: "outside", pick: r.pick }, k).text
          : resolveAddress(f, r, k).text,
      ),
    );
  };

  const seenPairs = new Set<string>();
  const policies = p.policies.flatMap((c) => {
    const from = fromZones[c.from % fromZones.length];
    const to = fromZones[c.to % fromZones.length];
    if (seenPairs.has(`${from}>${to}`)) return [];
    seenPairs.add(`${from}>${to}`);
    return [{ from, to, action: c.action, ...(c.log !== undefined ? { log: c.log } : {}) }];
  });

  const rules = p.rules.map((c, k) => {
    let from = uniq((c.fromList ? c.from : c.from.slice(0, 1)).map((i) => fromZones[i % fromZones.length]));
    let to: string[] = uniq((c.toList ? c.to : c.to.slice(0, 1)).map((i) => fromZones[i % fromZones.length]));
    if (c.toRouter) to = c.toList ? uniq(["router", ...to]) : ["router"];
    let protocol: string | undefined = c.protocol;
    const portProtocol = (x: string | undefined) => x === "tcp" || x === "udp" || x === "tcp+udp";
    let ports = portProtocol(protocol) && c.ports.length ? c.ports.map(portSpec) : undefined;
    const cutsManagement =
      to.includes("router") &&
      c.action !== "accept" &&
      (from.includes("any") || from.includes(f.mgmtZone)) &&
      protocol !== "udp" &&
      protocol !== "icmp" &&
      (!ports || ports.some((s) => MANAGEMENT_API_PORTS.some((m) => portBounds(s)[0] <= m && m <= portBounds(s)[1])));
    if (cutsManagement) {
      const spare = c.spare % 3;
      if (spare === 0) {
        from = from.filter((z) => z !== "any" && z !== f.mgmtZone);
        if (from.length === 0) from = [f.wanZones[0]];
      } else if (spare === 1) protocol = "udp";
      else {
        ports = (ports ?? []).filter(
          (s) => !MANAGEMENT_API_PORTS.some((m) => portBounds(s)[0] <= m && m <= portBounds(s)[1]),
        );
        if (ports.length === 0) ports = [22, "8000-8099"];
        if (!portProtocol(protocol)) protocol = "tcp";
      }
    }
    const rule: Json = { name: `rule-${k}` };
    if (c.description) rule.description = `rule ${k}`;
    rule.from = from.length === 1 && !c.fromList ? from[0] : from;
    rule.to = to.length === 1 && !c.toList ? to[0] : to;
    if (protocol !== undefined) rule.protocol = protocol;
    if (ports) rule.ports = ports;
    const source = refs(c.source);
    const destination = refs(c.destination);
    if (source) rule.source = source;
    if (destination) rule.destination = destination;
    rule.action = c.action;
    if (c.log !== undefined) rule.log = c.log;
    return rule;
  });

  return {
    ...(p.defaultAction ? { defaultAction: p.defaultAction } : {}),
    ...(p.logDrops !== undefined ? { logDrops: p.logDrops } : {}),
    ...(p.logRate ? { logRate: p.logRate } : {}),
    policies,
    rules,
    addressGroups: groups,
  };
}

function buildForwards(f: SiteFacts, p: PolicyChoices): Json[] {
  const hosts = f.segments.filter((s) => spanTotal(s.free) > 0);
  const v6 = f.segments.filter((s) => s.base6);
  // Segment prefixes are unique local: an IPv6 forward needs NAT66 on one of its WANs.
  const nat66 = f.wans.filter((_, i) => {
    const mode = p.wans[i]?.nat?.ipv6;
    return mode === "masquerade" || mode === "prefix";
  });
  if (hosts.length === 0) return [];
  const out: Json[] = [];
  let blocks = 0;
  // The last original forward while its port may still be shared by a twin.
  let open: { protocol: string; port: number | string; wans?: string[] } | undefined;
  for (const c of p.forwards) {
    const k = out.length;
    let protocol: string = c.protocol;
    let port: number | string;
    let wans = c.wans % 2 ** f.wans.length ? bits(c.wans, f.wans) : undefined;
    const twinOtherProtocol = open && open.protocol !== "tcp+udp";
    const twinOtherWans = open?.wans && open.wans.length < f.wans.length;
    if (c.twin && open && (twinOtherProtocol || twinOtherWans)) {
      port = open.port;
      if (twinOtherProtocol) protocol = open.protocol === "tcp" ? "udp" : "tcp";
      else wans = f.wans.filter((w) => !open!.wans!.includes(w));
      open = undefined;
    } else {
      const low = blocks * 4000 + 1 + (c.port.low % 3000);
      const width = c.port.width % 4 === 0 ? 0 : c.port.width % 500;
      port = width === 0 ? low : `${low}-${low + width}`;
      blocks += 1;
      open = { protocol, port, wans };
    }
    const s = hosts[c.segment % hosts.length];
    const forward: Json = { name: `fwd-${k}` };
    if (c.description) forward.description = `forward ${k}`;
    if (wans) forward.wans = wans;
    forward.protocol = protocol;
    forward.port = port;
    forward.to = ipv4At(s.cidr, spanAt(s.free, c.host));
    if (c.toPort !== undefined) {
      const [lo, hi] = portBounds(port);
      forward.toPort = c.toPort === "edge" ? 65535 - (hi - lo) : 1 + (c.toPort % (65535 - (hi - lo)));
    }
    const sources = bits(c.sources, FORWARD_SOURCES);
    if (sources.length) forward.sources = sources;
    if (c.hairpin !== undefined) forward.hairpin = c.hairpin;
    if (c.ipv6 !== undefined && v6.length && (wans ?? f.wans).some((w) => nat66.includes(w)))
      forward.ipv6 = `${v6[c.ipv6 % v6.length].base6}${hex(0x200 + k)}`;
    out.push(forward);
  }
  return out;
}

/** A next hop of the family: a free segment host, or a host of a static WAN subnet. */
function nextHop(f: SiteFacts, family: 4 | 6, via: number, salt: number): string | undefined {
  if (family === 4) {
    const hops = [
      ...f.segments.filter((s) => spanTotal(s.free) > 0).map((s) => ipv4At(s.cidr, spanAt(s.free, via + salt))),
      ...f.static4.map((net) => ipv4At(net, 20 + ((via + salt) % 200))),
    ];
    return hops.length ? hops[via % hops.length] : undefined;
  }
  const hops = [
    ...f.segments.filter((s) => s.base6).map((s) => `${s.base6}${hex(0x300 + (salt % 0x100))}`),
    ...f.static6.map((base) => `${base}${hex(0x20 + (salt % 0x100))}`),
  ];
  return hops.length ? hops[via % hops.length] : undefined;
}

function buildRoutes(f: SiteFacts, p: PolicyChoices): Json[] {
  return p.routes.flatMap((c, k) => {
    const gateway = nextHop(f, c.family, c.via, k);
    if (!gateway) return [];
    const shape = c.shape % 3;
    const destination =
      c.family === 4
        ? [`192.168.${k}.0/24`, `192.${170 + k}.0.0/16`, `192.168.${100 + k}.16/28`][shape]
        : [`fd99:${hex(k + 1)}::/48`, `2001:db8:${hex(0x100 + k)}::/48`, `fd99:${hex(0x100 + k)}:1::/64`][shape];
    return [
      {
        destination,
        gateway,
        ...(c.metric !== undefined ? { metric: c.metric } : {}),
        ...(c.description ? { description: `route ${k}` } : {}),
      },
    ];
  });
}

function buildRouting(f: SiteFacts, p: PolicyChoices, routes: Json[]): Json {
  const names = f.segments.map((s) => s.name);
  const routing: Json = {};
  if (p.bgp) {
    const neighbors = p.bgp.neighbors.flatMap((n, k) => {
      const address = nextHop(f, n.via % 3 === 2 ? 6 : 4, n.via, 0x40 + k);
      return address
        ? [
            {
              address,
              asn: 64512 + (n.asn % 1000),
              ...(n.description ? { description: `peer ${k}` } : {}),
              ...(n.asn % 3 === 0 ? { bfd: true } : {}),
            },
          ]
        : [];
    });
    if (neighbors.length)
      routing.bgp = {
        asn: 64512 + (p.bgp.asn % 1000),
        routerId: f.mgmtGateway4,
        neighbors: uniqBy(neighbors, (n) => n.address),
        advertise: uniq(p.bgp.advertise.map((i) => names[i % names.length])),
      };
  }
  if (p.ospf) {
    const active = uniq(p.ospf.segments.map((i) => names[i % names.length]));
    const passive = uniq(p.ospf.passive.map((i) => names[i % names.length])).filter((n) => !active.includes(n));
    // Each redistribution must have something to advertise: an IPv4 static route, a segment outside OSPF.
    const has = {
      static: routes.some((r) => !String(r.destination).includes(":")),
      connected: names.some((n) => !active.includes(n) && !passive.includes(n)),
    };
    routing.ospf = {
      routerId: f.mgmtGateway4,
      area: OSPF_AREAS[p.ospf.area % OSPF_AREAS.length],
      segments: active,
      passive,
      redistribute: uniq(p.ospf.redistribute).filter((r) => has[r]),
    };
  }
  return routing;
}

function uniqBy<T>(xs: T[], key: (x: T) => string): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => !seen.has(key(x)) && !!seen.add(key(x)));
}

function buildMdns(f: SiteFacts, p: PolicyChoices): Json {
  const r = p.mdns.rotation % f.lanZones.length;
  const zones = [...f.lanZones.slice(r), ...f.lanZones.slice(0, r)];
  const reflect: Json[] = [];
  // Avahi names a group's links on one line of at most 255 characters: with link names of up to 15 characters,
  // 14 segment links always fit.
  const segmentsIn = (z: string) => f.segments.filter((x) => x.zone === z).length;
  for (let g = 0; g < p.mdns.groups; g++) {
    const size = 2 + ((p.mdns.sizes[g] ?? 0) % 2);
    if (zones.length < 2) break;
    const group = zones.splice(0, Math.min(size, zones.length));
    while (group.length > 2 && group.reduce((n, z) => n + segmentsIn(z), 0) > 14) group.pop();
    if (group.reduce((n, z) => n + segmentsIn(z), 0) > 14) continue;
    reflect.push({ name: MDNS_GROUPS[g % MDNS_GROUPS.length], zones: group });
  }
  return { reflect };
}

function applyWans(raw: RawSite, p: PolicyChoices, macSeed: number): void {
  (raw.links as Json[])
    .filter((l) => l.role === "wan")
    .forEach((link, i) => {
      const c = p.wans[i];
      if (!c) return;
      if (c.nat) {
        const nat: Json = {};
        if (c.nat.ipv4) nat.ipv4 = c.nat.ipv4;
        if (c.nat.ipv6) nat.ipv6 = c.nat.ipv6;
        if (c.nat.ipv6 === "prefix") {
          nat.ipv6Internal = `fd10:${hex(macSeed)}::/${c.nat.prefixLength}`;
          nat.ipv6External = `2001:db8:${hex(0x10 + i)}::/${c.nat.prefixLength}`;
        }
        link.nat = nat;
      }
      if (c.probe) {
        const probe: Json = {};
        const targets = bits(c.probe.targets, PROBE_TARGETS);
        if (targets.length) probe.targets = targets;
        if (c.probe.interval) probe.interval = c.probe.interval;
        if (c.probe.timeout) probe.timeout = c.probe.timeout;
        if (c.probe.failures !== undefined) probe.failures = c.probe.failures;
        if (c.probe.successes !== undefined) probe.successes = c.probe.successes;
        link.probe = probe;
      }
    });
}

function applySegments(raw: RawSite, f: SiteFacts, p: PolicyChoices): void {
  (raw.segments as Json[]).forEach((seg, i) => {
    const c = p.segments[i];
    if (!c) return;
    const facts = f.segments[i];
    const base6 = facts.base6;
    // IPv6 reservations need DHCPv6 on their segment: only segments without them may turn it off.
    const reserves6 = ((seg.dhcp as { reservations?: { ipv6?: string }[] } | undefined)?.reservations ?? []).some(
      (r) => r.ipv6,
    );
    const enabled = c.dhcpv6 ? c.dhcpv6.enabled || reserves6 : false;
    if (c.dhcpv6 && base6) {
      const v6: Json = { enabled };
      if (c.dhcpv6.range) {
        const start = 0x1000 + (c.dhcpv6.range[0] % 0xf000);
        const end = start + (c.dhcpv6.range[1] % 0x10000);
        v6.range = { start: host6(base6, start), end: host6(base6, end) };
      }
      if (c.dhcpv6.leaseTime !== undefined) v6.leaseTime = c.dhcpv6.leaseTime;
      seg.dhcpv6 = v6;
    } else if (c.dhcpv6 && !enabled) seg.dhcpv6 = { enabled: false };
    if (c.ra && base6) {
      const ra: Json = {};
      for (const k of ["enabled", "slaac", "otherConfig", "maxInterval", "lifetime"] as const)
        if (c.ra[k] !== undefined) ra[k] = c.ra[k];
      if (c.ra.dnsServers !== undefined)
        ra.dnsServers = [[facts.gateway6!], [facts.gateway6!, `${base6}53`], [`${base6}53`]][c.ra.dnsServers % 3];
      seg.ra = ra;
    }
    if (c.dhcpOptions) {
      const dhcp = (seg.dhcp ?? {}) as Json;
      const router = (seg.ipv4 as { gateway?: string }).gateway ?? ipv4At(facts.cidr, 1);
      if (c.dhcpOptions.dnsServers !== undefined)
        dhcp.dnsServers = [[router], [router, "9.9.9.9"], ["1.1.1.1", "9.9.9.9"]][c.dhcpOptions.dnsServers % 3];
      if (c.dhcpOptions.ntpServers) dhcp.ntpServers = [router];
      if (c.dhcpOptions.searchDomains !== undefined)
        dhcp.searchDomains = [["corp.example"], [`${facts.name}.corp.example`, "corp.example"]][
          c.dhcpOptions.searchDomains % 2
        ];
      seg.dhcp = dhcp;
    }
    if (c.qos) {
      const qos: Json = {};
      if (c.qos.defaultPriority !== undefined) qos.defaultPriority = c.qos.defaultPriority;
      if (c.qos.dscpPriority.length)
        qos.dscpPriority = Object.fromEntries(c.qos.dscpPriority.map(([d, pr]) => [String(d), pr]));
      if (c.qos.rewriteDscp !== undefined) qos.rewriteDscp = c.qos.rewriteDscp;
      if (c.qos.trustPcp !== undefined) qos.trustPcp = c.qos.trustPcp;
      seg.qos = qos;
    }
  });
}

function applyZoneServices(raw: RawSite, f: SiteFacts, p: PolicyChoices): void {
  (raw.zones as Json[]).forEach((z, i) => {
    const c = p.zoneServices[i];
    if (!c) return;
    z.services = f.wanZones.includes(String(z.name))
      ? c.services % 2
        ? ["ping"]
        : []
      : bits(c.services, ROUTER_SERVICES);
  });
}

/** Adds a network policy to a raw site built by buildRawSite (a copy; `raw` is not changed). Valid by construction. */
export function withPolicy(raw: RawSite, p: PolicyChoices): RawSite {
  const out = structuredClone(raw);
  const f = siteFacts(out);
  const macSeed = parseInt(String((out.node as { nics: { mac: string }[] }).nics[0].mac.split(":")[1]), 16);
  applyZoneServices(out, f, p);
  applyWans(out, p, macSeed);
  applySegments(out, f, p);
  out.firewall = buildFirewall(f, p);
  out.portForwards = buildForwards(f, p);
  out.routes = buildRoutes(f, p);
  out.routing = buildRouting(f, p, out.routes as Json[]);
  out.mdns = buildMdns(f, p);
  return out;
}

/** Turns site and policy choices into a raw site. */
export function buildRawSiteWithPolicy(c: SiteChoices, p: PolicyChoices): RawSite {
  return withPolicy(buildRawSite(c), p);
}

// Arbitraries of the policy choices.

const bool = fc.boolean();
const pick = fc.nat(1_000_000);
const portPick: fc.Arbitrary<PortPick> = fc.record({
  low: fc.oneof(pick, fc.constantFrom(21, 52, 442, 6442, 49999, 65534)),
  width: fc.oneof(fc.constant(0), pick),
});
const addressPick: fc.Arbitrary<AddressPick> = fc.record({
  kind: fc.constantFrom<AddressKind>("host4", "net4", "host6", "net6", "outside"),
  pick,
});
const refPick: fc.Arbitrary<RefPick> = fc.oneof(addressPick, fc.record({ kind: fc.constant("group" as const), pick }));
const action = fc.constantFrom(...ACTIONS);

const ruleChoice: fc.Arbitrary<RuleChoice> = fc.record(
  {
    from: fc.array(pick, { minLength: 1, maxLength: 3 }),
    fromList: bool,
    to: fc.array(pick, { minLength: 1, maxLength: 3 }),
    toList: bool,
    toRouter: bool,
    protocol: fc.constantFrom(...RULE_PROTOCOLS),
    ports: fc.array(portPick, { maxLength: 3 }),
    source: fc.array(refPick, { maxLength: 3 }),
    destination: fc.array(refPick, { maxLength: 3 }),
    action,
    log: bool,
    description: bool,
    spare: fc.nat(2),
  },
  {
    requiredKeys: [
      "from",
      "fromList",
      "to",
      "toList",
      "toRouter",
      "ports",
      "source",
      "destination",
      "action",
      "description",
      "spare",
    ],
  },
);

const forwardChoice: fc.Arbitrary<ForwardChoice> = fc.record(
  {
    twin: bool,
    wans: fc.nat(7),
    protocol: fc.constantFrom(...FORWARD_PROTOCOLS),
    port: portPick,
    segment: pick,
    host: pick,
    toPort: fc.oneof(pick, fc.constant("edge" as const)),
    sources: fc.oneof(fc.constant(0), fc.nat(63)),
    hairpin: bool,
    ipv6: pick,
    description: bool,
  },
  { requiredKeys: ["twin", "wans", "protocol", "port", "segment", "host", "sources", "description"] },
);

const routeChoice: fc.Arbitrary<RouteChoice> = fc.record(
  {
    family: fc.constantFrom(4 as const, 6 as const),
    shape: fc.nat(2),
    via: pick,
    metric: fc.integer({ min: 1, max: 65535 }),
    description: bool,
  },
  { requiredKeys: ["family", "shape", "via", "description"] },
);

const segmentPolicyChoice: fc.Arbitrary<SegmentPolicyChoice> = fc.record(
  {
    dhcpv6: fc.record(
      {
        enabled: bool,
        range: fc.tuple(pick, pick),
        leaseTime: fc.integer({ min: 60, max: 7_776_000 }),
      },
      { requiredKeys: ["enabled"] },
    ),
    ra: fc.record(
      {
        enabled: bool,
        slaac: bool,
        otherConfig: bool,
        maxInterval: fc.integer({ min: 4, max: 1800 }),
        lifetime: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 9000 })),
        dnsServers: fc.nat(2),
      },
      { requiredKeys: [] },
    ),
    dhcpOptions: fc.record({ dnsServers: fc.nat(2), ntpServers: bool, searchDomains: fc.nat(1) }, { requiredKeys: [] }),
    qos: fc.record(
      {
        defaultPriority: fc.nat(7),
        dscpPriority: fc.array(fc.tuple(fc.nat(63), fc.nat(7)), { maxLength: 4 }),
        rewriteDscp: fc.nat(63),
        trustPcp: bool,
      },
      { requiredKeys: ["dscpPriority"] },
    ),
  },
  { requiredKeys: [] },
);

/** The choices behind a site's network policy (resolved against the site by withPolicy). */
export const policyChoices: fc.Arbitrary<PolicyChoices> = fc.record(
  {
    defaultAction: fc.constantFrom("drop" as const, "reject" as const),
    logDrops: bool,
    logRate: fc.constantFrom("10/minute" as const, "5/second" as const, "100/hour" as const),
    zoneServices: fc.array(fc.option(fc.record({ services: fc.nat(31) }), { nil: undefined }), { maxLength: 8 }),
    groups: fc.array(
      fc.record({ addresses: fc.array(addressPick, { minLength: 1, maxLength: 4 }), description: bool }),
      {
        maxLength: 3,
      },
    ),
    policies: fc.array(
      fc.record({ from: pick, to: pick, action, log: bool }, { requiredKeys: ["from", "to", "action"] }),
      { maxLength: 6 },
    ),
    rules: fc.array(ruleChoice, { maxLength: 8 }),
    forwards: fc.array(forwardChoice, { maxLength: 5 }),
    routes: fc.array(routeChoice, { maxLength: 4 }),
    bgp: fc.record({
      asn: pick,
      neighbors: fc.array(fc.record({ via: pick, asn: pick, description: bool }), { minLength: 1, maxLength: 2 }),
      advertise: fc.array(pick, { maxLength: 3 }),
    }),
    ospf: fc.record({
      area: fc.nat(2),
      segments: fc.array(pick, { minLength: 1, maxLength: 3 }),
      passive: fc.array(pick, { maxLength: 3 }),
      redistribute: fc.subarray(["connected", "static"] as ("connected" | "static")[]),
    }),
    mdns: fc.record({ groups: fc.nat(2), sizes: fc.array(fc.nat(1), { minLength: 2, maxLength: 2 }), rotation: pick }),
    wans: fc.array(
      fc.record(
        {
          nat: fc.record(
            {
              ipv4: fc.constantFrom("masquerade" as const, "none" as const),
              ipv6: fc.constantFrom("none" as const, "masquerade" as const, "prefix" as const),
              prefixLength: fc.constantFrom(48 as const, 56 as const, 60 as const, 64 as const),
            },
            { requiredKeys: ["prefixLength"] },
          ),
          probe: fc.record(
            {
              targets: fc.nat(31),
              interval: fc.constantFrom("1s" as const, "2s" as const, "5s" as const, "10s" as const),
              timeout: fc.constantFrom("1s" as const, "2s" as const, "3s" as const),
              failures: fc.integer({ min: 1, max: 20 }),
              successes: fc.integer({ min: 1, max: 20 }),
            },
            { requiredKeys: ["targets"] },
          ),
        },
        { requiredKeys: [] },
      ),
      { minLength: 3, maxLength: 3 },
    ),
    segments: fc.array(fc.option(segmentPolicyChoice, { nil: undefined, freq: 3 }), { maxLength: 24 }),
  },
  {
    requiredKeys: ["zoneServices", "groups", "policies", "rules", "forwards", "routes", "mdns", "wans", "segments"],
  },
);

/** True when an address lies in an IPv4 prefix (own arithmetic; both in text form). */
function in4(cidr: string, address: string): boolean {
  if (address.includes(":") || !/^[\d.]+$/.test(address.split("/")[0])) return false;
  const size = ipv4Size(cidr);
  const net = ipv4Int(cidr.split("/")[0]);
  const a = ipv4Int(address.split("/")[0]);
  return a >= net && a < net + size;
}

/**
 * Makes the picked segments IPv6-only where nothing else leans on their IPv4 subnet: a non-management segment
 * with an IPv6 prefix, outside OSPF, that no port forward, route, BGP neighbour, firewall address or reservation
 * of IPv4 alone points into. Its IPv4 subnet and DHCPv4 settings go; IPv4 addresses of its reservations go.
 */
export function withIpv6Only(raw: RawSite, picks: number[]): RawSite {
  const out = structuredClone(raw);
  const segs = out.segments as Json[];
  const mgmt = new Set((out.zones as Json[]).filter((z) => z.management).map((z) => z.name));
  const text = JSON.stringify({
    f: out.portForwards,
    r: out.routes,
    b: (out.routing as Json | undefined)?.bgp,
    w: out.firewall,
  });
  const addresses = [...text.matchAll(/"(\d+\.\d+\.\d+\.\d+(?:\/\d+)?)"/g)].map((m) => m[1]);
  const ospf = ((out.routing as Json | undefined)?.ospf as
    { segments: string[]; passive: string[]; redistribute: string[] } | undefined) ?? {
    segments: [],
    passive: [],
    redistribute: [],
  };
  // OSPF's connected redistribution needs a segment with IPv4 outside OSPF: keep them all.
  if (ospf.redistribute.includes("connected")) return out;
  for (const pick of picks) {
    const seg = segs[pick % segs.length];
    const v4 = seg.ipv4 as { cidr: string } | undefined;
    if (!v4 || !seg.ipv6 || mgmt.has(seg.zone)) continue;
    if ([...ospf.segments, ...ospf.passive].includes(String(seg.name))) continue;
    if (addresses.some((a) => in4(v4.cidr, a) || (a.includes("/") && in4(a, v4.cidr.split("/")[0])))) continue;
    delete seg.ipv4;
    const dhcp = seg.dhcp as Json | undefined;
    if (!dhcp) continue;
    for (const k of ["range", "dnsServers", "ntpServers", "enabled"]) delete dhcp[k];
    dhcp.reservations = ((dhcp.reservations as Json[] | undefined) ?? [])
      .filter((r) => r.ipv6)
      .map(({ ipv4: _, ...r }) => r);
  }
  return out;
}

/** Valid raw sites with a random network policy: firewall, forwards, routes, routing, mDNS, NAT, probes, … */
export const validRawSiteWithPolicy: fc.Arbitrary<RawSite> = fc
  .tuple(siteChoices, policyChoices, fc.array(fc.nat(), { maxLength: 3 }))
  .map(([c, p, v6only]) => withIpv6Only(buildRawSiteWithPolicy(c, p), v6only));

// ---------------------------------------------------------------------------------------------------------------
// DNS: records, lists, profiles and per-zone settings (router:dns), resolved against the site they are added to.
// Validity by construction: record owners are `rec-<i>` names (no reservation, router or other record uses them,
// so a CNAME stands alone), SRV owners `_svc-<i>._tcp.` below them; addresses are a segment's gateway plus one
// (a host of its subnet) or documentation addresses; block and allow lists are referenced by kind; allowOnly only
// with allow lists and without block lists; per-zone settings only for zones that serve DNS.

export interface DnsRecordChoice {
  type: "A" | "AAAA" | "CNAME" | "TXT" | "SRV";
  /** Below the apex (0), a segment's domain (1), or at the apex (2, TXT only). */
  place: number;
  ttl?: number;
  pick: number;
}

export interface DnsListChoice {
  kind: "block" | "allow";
  entries: number[];
  feed: boolean;
  refresh: "5m" | "1h" | "12h" | "168h";
  minEntries?: number;
}

export interface DnsProfileChoice {
  block: number[];
  allow: number[];
  allowOnly: boolean;
  blockedAnswer?: "nxdomain" | "null";
}

export interface DnsZoneChoice {
  profile?: number;
  force?: "off" | "redirect" | "reject";
  encrypted?: boolean;
  queryLog?: boolean;
}

export interface DnsChoices {
  forward?: boolean;
  dnssec?: boolean;
  trustAnchor: boolean;
  privateDomains: number;
  ttl?: number;
  records: DnsRecordChoice[];
  lists: DnsListChoice[];
  profiles: DnsProfileChoice[];
  zones: (DnsZoneChoice | undefined)[];
  metricsPort?: number;
}

const DNS_ENTRIES = ["ads.example.com", "tracker.example.net", "example.org", "cdn.example", "telemetry.example.io"];

/** The zones whose services (their own, or the LAN defaults) include dns. */
function dnsZones(raw: RawSite): string[] {
  const wans = new Set(
    (raw.links as { role: string; zone?: string }[]).filter((l) => l.role === "wan").map((l) => l.zone ?? "wan"),
  );
  return (raw.zones as { name: string; services?: string[] }[])
    .filter((z) => !wans.has(z.name) && (z.services ?? ["dns"]).includes("dns"))
    .map((z) => z.name);
}

function dnsRecord(raw: RawSite, r: DnsRecordChoice, i: number): Record<string, unknown> {
  const domain = (raw.site as { domain: string }).domain;
  const segs = raw.segments as { name: string; ipv4: { cidr: string } }[];
  const seg = segs[r.pick % segs.length];
  const base = r.place % 2 === 1 ? `${seg.name}.${domain}` : domain;
  const name = r.type === "TXT" && r.place === 2 ? domain : `rec-${i}.${base}`;
  const ttl = r.ttl === undefined ? {} : { ttl: r.ttl };
  switch (r.type) {
    case "A":
      return { name, type: "A", address: r.pick % 2 ? ipv4At(seg.ipv4.cidr, 2) : "192.0.2.10", ...ttl };
    case "AAAA":
      return { name, type: "AAAA", address: `2001:db8::${(r.pick % 4000) + 1}`, ...ttl };
    case "CNAME":
      return { name, type: "CNAME", target: r.pick % 2 ? `www.${domain}` : "www.example.com", ...ttl };
    case "TXT":
      return { name, type: "TXT", text: `v=test ${"x".repeat(r.pick % 300)} "quoted"`, ...ttl };
    case "SRV":
      return {
        name: `_svc-${i}._tcp.${name}`,
        type: "SRV",
        priority: r.pick % 10,
        weight: 5,
        port: 443,
        target: name,
        ...ttl,
      };
  }
}

/** Adds a router:dns section to a raw site (a copy). Valid by construction. */
export function withDns(raw: RawSite, d: DnsChoices): RawSite {
  const out = structuredClone(raw);
  const upstreams = (out.dns as { upstreams: unknown[] }).upstreams;
  const lists = d.lists.map((l, i) => ({
    name: `list-${i}`,
    kind: l.kind,
    ...(l.entries.length || !l.feed
      ? { entries: [...new Set([...l.entries, i].map((e) => DNS_ENTRIES[e % DNS_ENTRIES.length]))] }
      : {}),
    ...(l.feed ? { url: `https://lists.example.com/${l.kind}/${i}.txt`, refresh: l.refresh } : {}),
    ...(l.minEntries !== undefined ? { minEntries: l.minEntries } : {}),
  }));
  const named = (kind: string, picks: number[]) => {
    const of = lists.filter((l) => l.kind === kind).map((l) => l.name);
    return of.length ? [...new Set(picks.map((p) => of[p % of.length]))] : [];
  };
  const profiles = d.profiles.map((p, i) => {
    const allow = named("allow", p.allow);
    const allowOnly = p.allowOnly && allow.length > 0;
    return {
      name: `profile-${i}`,
      ...(allowOnly ? { allowOnly: true } : { block: named("block", p.block) }),
      allow,
      ...(p.blockedAnswer ? { blockedAnswer: p.blockedAnswer } : {}),
    };
  });
  const zones = dnsZones(out).flatMap((zone, i) => {
    const z = d.zones[i];
    if (!z) return [];
    return [
      {
        zone,
        ...(z.profile !== undefined && profiles.length ? { profile: profiles[z.profile % profiles.length].name } : {}),
        ...(z.force ? { force: z.force } : {}),
        ...(z.encrypted !== undefined ? { encrypted: z.encrypted } : {}),
        ...(z.queryLog !== undefined ? { queryLog: z.queryLog } : {}),
      },
    ];
  });
  out.dns = {
    upstreams,
    ...(d.forward !== undefined ? { forward: d.forward } : {}),
    ...(d.dnssec !== undefined ? { dnssec: d.dnssec } : {}),
    ...(d.trustAnchor ? { trustAnchors: ["example.net. DS 12345 13 2 " + "ab".repeat(32)] } : {}),
    privateDomains: ["corp.example", "intranet.example.org"].slice(0, d.privateDomains),
    ...(d.ttl !== undefined ? { ttl: d.ttl } : {}),
    records: d.records.map((r, i) => dnsRecord(out, r, i)),
    lists,
    profiles,
    zones,
    ...(d.metricsPort !== undefined ? { metricsPort: d.metricsPort } : {}),
  };
  return out;
}

const dnsRecordChoice: fc.Arbitrary<DnsRecordChoice> = fc.record(
  {
    type: fc.constantFrom("A" as const, "AAAA" as const, "CNAME" as const, "TXT" as const, "SRV" as const),
    place: fc.nat(2),
    ttl: fc.integer({ min: 1, max: 604_800 }),
    pick: fc.nat(1_000_000),
  },
  { requiredKeys: ["type", "place", "pick"] },
);

/** The choices behind a site's router:dns section (resolved against the site by withDns). */
export const dnsChoices: fc.Arbitrary<DnsChoices> = fc.record(
  {
    forward: fc.boolean(),
    dnssec: fc.boolean(),
    trustAnchor: fc.boolean(),
    privateDomains: fc.nat(2),
    ttl: fc.integer({ min: 1, max: 604_800 }),
    records: fc.array(dnsRecordChoice, { maxLength: 6 }),
    lists: fc.array(
      fc.record(
        {
          kind: fc.constantFrom("block" as const, "allow" as const),
          entries: fc.array(fc.nat(20), { maxLength: 3 }),
          feed: fc.boolean(),
          refresh: fc.constantFrom("5m" as const, "1h" as const, "12h" as const, "168h" as const),
          minEntries: fc.integer({ min: 1, max: 100_000 }),
        },
        { requiredKeys: ["kind", "entries", "feed", "refresh"] },
      ),
      { maxLength: 4 },
    ),
    profiles: fc.array(
      fc.record(
        {
          block: fc.array(fc.nat(10), { maxLength: 3 }),
          allow: fc.array(fc.nat(10), { maxLength: 2 }),
          allowOnly: fc.boolean(),
          blockedAnswer: fc.constantFrom("nxdomain" as const, "null" as const),
        },
        { requiredKeys: ["block", "allow", "allowOnly"] },
      ),
      { maxLength: 3 },
    ),
    zones: fc.array(
      fc.option(
        fc.record(
          {
            profile: fc.nat(10),
            force: fc.constantFrom("off" as const, "redirect" as const, "reject" as const),
            encrypted: fc.boolean(),
            queryLog: fc.boolean(),
          },
          { requiredKeys: [] },
        ),
        { nil: undefined, freq: 3 },
      ),
      { maxLength: 8 },
    ),
    metricsPort: fc.constantFrom(9433, 9500, 19433),
  },
  { requiredKeys: ["trustAnchor", "privateDomains", "records", "lists", "profiles", "zones"] },
);

/** Valid raw sites with a network policy and a router:dns section. */
export const validRawSiteWithDns: fc.Arbitrary<RawSite> = fc
  .tuple(siteChoices, policyChoices, dnsChoices)
  .map(([c, p, d]) => withDns(buildRawSiteWithPolicy(c, p), d));
