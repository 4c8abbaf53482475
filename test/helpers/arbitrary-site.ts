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
  disk: 0 | 1 | 2 | 3;
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
    ntp: { servers: ["time.cloudflare.com"] },
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
      disk: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const),
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
