/**
 * Random valid sites for the virtual appliance, from a seed (replayable: `E2E_SITE_SEEDS=seed,seed` picks the
 * seeds a run uses). Each site draws its WANs, trunk, zones, segments, policy, rules, port forwards, mDNS
 * reflection and blocklist, within what the appliance emulates (at most two WANs, IPv4 by DHCP or static, IPv6 by
 * SLAAC or none, public-looking WAN addresses and forward sources), and always has at least one of each case the
 * harness must derive rather than assume: a static-only segment (DHCP off), a segment whose router advertisements
 * name no default router (lifetime 0), an IPv4-only segment, two port forwards sharing a source list and two
 * sharing an inside host.
 */
import type { StackConfig } from "../../../cli/stack-config";
import { devStack } from "../../helpers/stacks";

/** mulberry32: a small, fast, seedable generator (uniform in [0, 1)). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Draw {
  constructor(readonly next: () => number) {}

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }

  /** k distinct elements, in a random order. */
  some<T>(xs: readonly T[], k: number): T[] {
    const pool = [...xs];
    const out: T[] = [];
    while (out.length < k && pool.length) out.push(pool.splice(Math.floor(this.next() * pool.length), 1)[0]);
    return out;
  }
}

type Raw = Record<string, unknown>;

interface SegmentDraw {
  name: string;
  vlan: number;
  zone: string;
  /** Third octet base of 10.X.0.0: each segment owns 10.X.0.0/16 so nothing overlaps. */
  octet: number;
  prefixLength: number;
  v6?: string;
  dhcp: boolean;
  raLifetime0: boolean;
  raEnabled: boolean;
  slaac: boolean;
  dhcpv6: boolean;
  reservations: { name: string; mac: string; ipv4: string; ipv6?: string }[];
}

/** Public-looking static WAN subnets (not the ISPs' own ranges, see lib/internet.ts). */
const STATIC_WANS = [
  { address: "37.120.3.2/29", gateway: "37.120.3.1" },
  { address: "185.76.9.10/29", gateway: "185.76.9.9" },
  { address: "46.4.100.2/29", gateway: "46.4.100.1" },
];
const LAN_ZONES = ["office", "staff", "guests", "iot", "servers", "lab", "dmz", "voice", "cameras"];
const SEGMENT_NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"];
/** Partner networks (public) that source-restricted forwards admit. */
const PARTNERS = ["91.198.174.0/28", "185.15.58.0/28", "151.101.0.0/26", "199.232.64.0/27"];
const FORWARD_PORTS = [443, 8443, 2222, 25, 1194, 3389, 8080, "5000-5002"];
const RULE_PORTS = [22, 443, 631, 5060, 9100, "8000-8010", 3306];

function mac(seed: number, i: number): string {
  const h = (n: number) => (n & 0xff).toString(16).padStart(2, "0");
  return `00:1a:2b:${h(seed >> 8)}:${h(seed)}:${h(i)}`;
}

/** The n-th host address of a segment's 10.X.0.0/len (n counts from the network address). */
function host4(s: SegmentDraw, n: number): string {
  return `10.${s.octet}.${Math.floor(n / 256)}.${n % 256}`;
}

function drawWans(d: Draw): Raw[] {
  const two = d.chance(0.8);
  const statics = d.some(STATIC_WANS, 2);
  const names = d.some(["wan0", "fiber", "uplink", "cable", "wan1", "lte", "dsl"], 2);
  const nat66 = d.chance(0.4);
  const wan = (i: number): Raw => ({
    name: names[i],
    role: "wan",
    ipv4: d.chance(0.7) ? { mode: "dhcp" } : { mode: "static", ...statics[i] },
    ipv6: i === 0 ? (d.chance(0.8) ? { mode: "slaac" } : { mode: "none" }) : { mode: "none" },
    priority: 10 + i * 10,
    nat: i === 0 ? { ipv4: "masquerade", ipv6: nat66 ? "masquerade" : "none" } : { ipv4: "masquerade" },
    probe: {
      targets: d.pick([["1.1.1.1", "9.9.9.9"], ["9.9.9.9"], ["1.1.1.1"]]),
      interval: "2s",
      timeout: "1s",
      failures: d.int(1, 2),
      successes: d.int(1, 2),
    },
  });
  return two ? [wan(0), wan(1)] : [wan(0)];
}

/** Segments with their features; the first is the management segment. Forced cases fill distinct segments. */
function drawSegments(d: Draw, zones: string[], globalV6: boolean, seed: number): SegmentDraw[] {
  const prefix6 = (vlan: number) =>
    globalV6
      ? `2a02:c207:5:${vlan.toString(16)}::/64`
      : `fd5e:e2e:${(seed & 0xffff).toString(16)}:${vlan.toString(16)}::/64`;
  const n = d.int(4, 7);
  const names = d.some(SEGMENT_NAMES, n);
  const vlans = d
    .some(
      Array.from({ length: 400 }, (_, i) => i + 2),
      n,
    )
    .sort((a, b) => a - b);
  const segs: SegmentDraw[] = names.map((name, i) => {
    const v4only = d.chance(0.25);
    const raEnabled = d.chance(0.9);
    return {
      name,
      vlan: vlans[i],
      zone: i === 0 ? "mgmt" : zones[(i - 1) % zones.length],
      octet: 40 + i * 2,
      prefixLength: d.pick([23, 24, 24, 25]),
      v6: v4only ? undefined : prefix6(vlans[i]),
      dhcp: d.chance(0.75),
      raEnabled,
      raLifetime0: raEnabled && d.chance(0.15),
      slaac: d.chance(0.9),
      dhcpv6: d.chance(0.25),
      reservations: [],
    };
  });
  // The cases every generated site has, on distinct non-management segments.
  const [staticSeg, ra0Seg, v4Seg] = d.some(segs.slice(1), 3);
  segs[0].dhcp = true;
  staticSeg.dhcp = false;
  ra0Seg.v6 ??= prefix6(ra0Seg.vlan);
  ra0Seg.raEnabled = true;
  ra0Seg.raLifetime0 = true;
  v4Seg.v6 = undefined;
  for (const s of segs) {
    if (!s.dhcp) continue;
    const k = d.int(0, 2);
    for (let i = 0; i < k; i++)
      s.reservations.push({
        name: `res-${i + 1}`,
        mac: mac(seed, s.vlan * 4 + i),
        ipv4: host4(s, 10 + i),
        ipv6: s.v6 && s.dhcpv6 && d.chance(0.5) ? s.v6.replace("::/64", `::${(0x10 + i).toString(16)}`) : undefined,
      });
  }
  return segs;
}

function segmentRaw(s: SegmentDraw): Raw {
  return {
    name: s.name,
    vlan: s.vlan,
    zone: s.zone,
    ipv4: { cidr: `10.${s.octet}.0.0/${s.prefixLength}` },
    ...(s.v6 ? { ipv6: { prefix: s.v6 } } : {}),
    dhcp: s.dhcp ? { reservations: s.reservations } : { enabled: false },
    ...(s.v6 && s.dhcpv6 ? { dhcpv6: { enabled: true } } : {}),
    ...(s.v6 ? { ra: { enabled: s.raEnabled, slaac: s.slaac, ...(s.raLifetime0 ? { lifetime: 0 } : {}) } } : {}),
  };
}

function drawZones(d: Draw, lanZones: string[], segs: SegmentDraw[]): Raw[] {
  const services = (z: string) => {
    const picked = d.some(["dns", "ntp", "mdns", "ping"], d.int(0, 4));
    // a zone whose segments run DHCP (v4 or v6) must let the requests in
    if (segs.some((s) => s.zone === z && (s.dhcp || (s.v6 && s.dhcpv6)))) picked.push("dhcp");
    return [...new Set(picked)].sort();
  };
  return [
    { name: "wan", services: d.chance(0.3) ? ["ping"] : [] },
    { name: "mgmt", management: true, services: ["dhcp", "dns", "ntp", "ping"] },
    ...lanZones.map((z) => ({ name: z, services: services(z) })),
  ];
}

function drawFirewall(d: Draw, lanZones: string[], segs: SegmentDraw[]): Raw {
  const policies: Raw[] = [{ from: "mgmt", to: "any", action: "accept" }];
  for (const z of lanZones) if (d.chance(0.75)) policies.push({ from: z, to: "wan", action: "accept" });
  for (const from of lanZones)
    for (const to of lanZones)
      if (from !== to && d.chance(0.2)) policies.push({ from, to, action: d.pick(["accept", "drop", "reject"]) });
  if (d.chance(0.4)) policies.push({ from: d.pick(lanZones), to: "any", action: d.pick(["drop", "reject"]) });
  if (d.chance(0.3)) policies.push({ from: "any", to: d.pick(lanZones), action: d.pick(["drop", "reject"]) });
  if (d.chance(0.3)) policies.push({ from: d.pick(lanZones), to: d.pick(lanZones), action: "accept" });
  policies.push({ from: "wan", to: "any", action: "drop" });
  const seen = new Set<string>();
  const unique = policies.filter((p) => {
    const k = `${String(p.from)}>${String(p.to)}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
  const groupSeg = d.pick(segs.slice(1));
  const rules: Raw[] = [];
  const populated = lanZones.filter((z) => segs.some((s) => s.zone === z));
  for (let i = 0; i < d.int(1, 4); i++) {
    const from = d.pick(populated);
    const toSeg = d.pick(segs.filter((s) => s.zone !== from));
    const toWan = d.chance(0.15);
    const proto = d.pick(["tcp", "udp", "tcp+udp", "icmp", "any"]);
    rules.push({
      name: `rule-${i + 1}`,
      from,
      to: toWan ? "wan" : toSeg.zone,
      protocol: proto,
      ...(["tcp", "udp", "tcp+udp"].includes(proto) ? { ports: d.some(RULE_PORTS, d.int(1, 2)) } : {}),
      ...(!toWan && d.chance(0.6) ? { destination: d.chance(0.5) ? ["@hosts"] : [host4(toSeg, 30 + i)] } : {}),
      ...(d.chance(0.2) ? { source: [`10.${segs.find((s) => s.zone === from)!.octet}.0.0/28`] } : {}),
      action: d.pick(["accept", "accept", "drop", "reject"]),
    });
  }
  if (d.chance(0.5))
    rules.push({
      name: "no-ssh-to-router",
      from: d.pick(lanZones),
      to: "router",
      protocol: "tcp",
      ports: [22],
      action: "reject",
    });
  return {
    defaultAction: d.pick(["drop", "reject"]),
    logDrops: true,
    logRate: "10/minute",
    addressGroups: [{ name: "hosts", addresses: [host4(groupSeg, 40), host4(groupSeg, 41)] }],
    policies: unique,
    rules,
  };
}

/**
 * Port forwards: two share a source list, two share an inside host (another port); some carry an IPv6 target,
 * some listen on one WAN only, some without hairpin. Targets sit low in their segment, below any DHCP pool.
 */
function drawForwards(d: Draw, segs: SegmentDraw[], wans: Raw[], nat66: boolean): Raw[] {
  const ports = d.some(FORWARD_PORTS, 5);
  const partners = d.some(PARTNERS, d.int(1, 2));
  const targets = d.some(segs.slice(1), 3).map((s, i) => ({ s, ipv4: host4(s, 20 + i) }));
  const wanNames = wans.map((w) => String(w.name));
  const out: Raw[] = [];
  ports.forEach((port, i) => {
    const t = i === 1 ? targets[0] : targets[i % targets.length];
    const ula = !!t.s.v6?.startsWith("fd");
    const v6 = !!t.s.v6 && (!ula || nat66) && i !== 1 && d.chance(0.5);
    // a unique local target is reached only through the NAT66 of the first WAN
    const wansOf = v6 && ula ? wanNames.slice(0, 1) : wanNames;
    out.push({
      name: `fwd-${i + 1}`,
      protocol: typeof port === "string" ? "tcp" : d.pick(["tcp", "tcp", "udp", "tcp+udp"]),
      port,
      to: t.ipv4,
      ...(d.chance(0.3) && typeof port === "number" ? { toPort: 10000 + port } : {}),
      ...(i === 2 || i === 3 ? { sources: partners } : {}),
      ...(wanNames.length > 1 && d.chance(0.3) ? { wans: [d.pick(wansOf)] } : {}),
      ...(d.chance(0.25) ? { hairpin: false } : {}),
      ...(v6 ? { ipv6: t.s.v6!.replace("::/64", `::${(20 + i).toString(16)}`) } : {}),
    });
  });
  return out;
}

/**
 * The IDS section: the dev site's settings (rules, thresholds, blocking) over this site's own segments, with the
 * IPS inline from the WAN zone to one populated zone, so the ruleset's IPS queue chain is in every generated site.
 */
function drawIds(d: Draw, dev: Raw, segs: readonly SegmentDraw[], populated: readonly string[]): Raw {
  const ips = dev.ips as Raw;
  return {
    ...dev,
    segments: d.some(
      segs.map((s) => s.name),
      d.int(1, Math.min(2, segs.length)),
    ),
    ips: { ...ips, pairs: [{ from: "wan", to: d.pick(populated) }] },
  };
}

/** A random valid site for the appliance. */
export function generatedSite(seed: number): StackConfig {
  const d = new Draw(prng(seed));
  const wans = drawWans(d);
  const w0 = wans[0] as { ipv6: { mode: string }; nat: { ipv6: string } };
  const nat66 = w0.nat.ipv6 === "masquerade";
  const globalV6 = !nat66 && w0.ipv6.mode === "slaac" && d.chance(0.8);
  const lanZones = d.some(LAN_ZONES, d.int(2, 4));
  const segs = drawSegments(d, lanZones, globalV6, seed);
  const trunk = d.pick(["lan0", "core", "trunk0"]);
  const cfg = devStack((raw) => {
    raw.site = { name: `gen${seed % 100000}`, domain: "gen.example.net", description: `generated, seed ${seed}` };
    raw.node = {
      hostname: "gen-rtr1",
      managementAddress: host4(segs[0], 1),
      installDisk: { type: "ssd" },
      nics: [
        ...wans.map((w, i) => ({ alias: w.name, mac: mac(seed, 0xf0 + i) })),
        { alias: trunk, mac: mac(seed, 0xfe) },
      ],
    };
    raw.links = [...wans, { name: trunk, role: "trunk" }];
    raw.segments = segs.map(segmentRaw);
    raw.zones = drawZones(d, lanZones, segs);
    raw.firewall = drawFirewall(d, lanZones, segs);
    raw.portForwards = drawForwards(d, segs, wans, nat66);
    const populated = lanZones.filter((z) => segs.some((s) => s.zone === z));
    const reflect = d.chance(0.5) && populated.length >= 2 ? [{ name: "reflect", zones: d.some(populated, 2) }] : [];
    raw.mdns = { reflect };
    raw.dataplane = { blocklist: ["45.155.205.0/24", ...(d.chance(0.5) ? ["2a0e:fd45:2a0c::/48"] : [])] };
    raw.routes = undefined;
    raw.routing = undefined;
    raw.ids = drawIds(d, raw.ids as Raw, segs, populated);
  });
  return { ...cfg, stack: `gen${seed}` };
}

/**
 * The seeds of this run: `E2E_SITE_SEEDS` (comma-separated) to replay a run, else `count` fresh ones. Printed,
 * so a failing run names the seed that replays it.
 */
export function siteSeeds(count: number): number[] {
  const env = process.env.E2E_SITE_SEEDS;
  const seeds = env
    ? env.split(",").map((s) => Number(s.trim()))
    : Array.from({ length: count }, () => Math.floor(Math.random() * 2 ** 31));
  console.log(`generated e2e sites: seeds ${seeds.join(",")} (replay with E2E_SITE_SEEDS=${seeds.join(",")})`);
  return seeds;
}
