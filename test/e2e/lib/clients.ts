/**
 * The machines on the segments, derived from the site: each segment's main client, a host per DHCP reservation,
 * a host per port-forward target, and the addresses firewall rules single out. How each one gets its addresses
 * follows the segment as a real device on it would: DHCPv4 where the segment's DHCP is on (a static address and
 * gateway where it is off: servers configured by hand), SLAAC where router advertisements offer it, stateful
 * DHCPv6 where it is on, and an IPv6 default route only from an advertisement with a non-zero router lifetime
 * (or configured by hand where the segment sends no advertisements, or on a server the internet must reach).
 */
import type { Segment, Site } from "../../../components/site/schema";
import type { ReservationPlan, SegmentPlan, SitePlan } from "../../../components/site/plan";
import { contains, familyOf, nthAddress, toBigInt } from "../../../components/site/ip";
import { waitFor } from "../../helpers/wait";
import type { DhcpClients } from "./dhcp-clients";
import type { Shell } from "./exec";
import { addNamespace } from "./namespaces";

/** How a host configures itself, derived from its segment. */
export interface HostConfigMode {
  /** Runs a DHCPv4 client (else its first static address is its address and it has a static default route). */
  dhcp4: boolean;
  /** Runs a stateful DHCPv6 client. */
  dhcp6: boolean;
  /** Forms an address by SLAAC. */
  slaac: boolean;
  /** Where its IPv6 default route comes from; "none" when the segment's advertisements say the router is not one. */
  gateway6: "ra" | "static" | "none";
}

/** A machine on a segment (its own network namespace). */
export interface Host {
  ns: string;
  /** Label in its servers' answers: the segment, segment-reservation, or segment-forward. */
  name: string;
  role: "client" | "reservation" | "forward" | "extra";
  segment: SegmentPlan;
  mac: string;
  reservation?: ReservationPlan;
  mode: HostConfigMode;
  /** Addresses configured by hand (the address of a static host, forward targets, hosts named by rules). */
  static4: string[];
  static6: string[];
  /** Probe-source addresses (the segment's main client only). */
  sources4: string[];
  sources6: string[];
  /** Learnt once the appliance runs (a static host's is its first static address). */
  addr4?: string;
  slaac6?: string;
  dhcp6?: string;
}

/** Every address a host answers on. */
export function hostAddresses(h: Host): string[] {
  return [h.addr4, h.slaac6, h.dhcp6, ...h.static4, ...h.static6].filter((x): x is string => !!x);
}

/** The address a host is reached at by default in a family. */
export function hostAddress(h: Host, family: 4 | 6): string | undefined {
  return family === 4 ? h.addr4 : (h.slaac6 ?? h.dhcp6 ?? h.static6[0]);
}

/** True when a host can send traffic in a family beyond its own segment (it has a default route). */
export function routes(h: Host, family: 4 | 6): boolean {
  return family === 4 ? !!h.addr4 : !!hostAddress(h, 6) && h.mode.gateway6 !== "none";
}

/** A MAC for a host the site does not name: locally administered, from the VLAN and an index. */
export function hostMac(vlan: number, i: number): string {
  const h = (n: number) => (n & 0xff).toString(16).padStart(2, "0");
  return `02:e2:${h(vlan >> 8)}:${h(vlan)}:${h(i >> 8)}:${h(i)}`;
}

function sanitize(s: string): string {
  return s.replace(/[^a-z0-9-]/gi, "-");
}

export function siteSegment(site: Site, name: string): Segment {
  const s = site.segments.find((x) => x.name === name);
  if (!s) throw new Error(`no segment ${name} in the site`);
  return s;
}

/** How a host of a segment configures itself; `stat` for one configured by hand. */
export function segmentMode(seg: Segment, stat = false): HostConfigMode {
  const v6 = !!seg.ipv6;
  const raRoute = seg.ra.enabled && seg.ra.lifetime > 0;
  return {
    dhcp4: !stat && seg.dhcp.enabled,
    dhcp6: !stat && v6 && seg.dhcpv6.enabled,
    slaac: v6 && seg.ra.enabled && seg.ra.slaac,
    gateway6: !v6 ? "none" : raRoute ? "ra" : !seg.ra.enabled || stat ? "static" : "none",
  };
}

/** The host address that stands for a rule's address or prefix: the address itself, else the prefix's first
 * host address that is not the router's. */
export function standIn(ref: string, plan: SitePlan): string {
  const [addr, len] = ref.split("/");
  const fam = familyOf(addr);
  if (!len || (fam === 4 && len === "32") || (fam === 6 && len === "128")) return addr;
  const gateways = new Set(plan.segments.flatMap((s) => [s.ipv4!.gateway, ...(s.ipv6 ? [s.ipv6.gateway] : [])]));
  for (let i = 1; ; i++) {
    const a = nthAddress(ref, i);
    if (!gateways.has(a)) return a;
  }
}

function segmentOf(plan: SitePlan, addr: string): SegmentPlan | undefined {
  return plan.segments.find((s) =>
    familyOf(addr) === 4 ? contains(s.ipv4!.cidr, addr) : !!s.ipv6 && contains(s.ipv6.prefix, addr),
  );
}

/** Host addresses named by firewall rules, which some host must hold. */
export function ruleAddresses(site: Site, plan: SitePlan): string[] {
  const out = new Set<string>();
  const add = (ref: string) => {
    if (ref.startsWith("@")) {
      for (const a of site.firewall.addressGroups.find((x) => x.name === ref.slice(1))?.addresses ?? []) add(a);
      return;
    }
    const addr = standIn(ref, plan);
    if (segmentOf(plan, addr)) out.add(addr);
  };
  for (const r of site.firewall.rules) for (const ref of [...(r.source ?? []), ...(r.destination ?? [])]) add(ref);
  return [...out];
}

/** Plans the hosts of a site: who sits on which segment, with which MAC and addresses. Pure. */
export function planHosts(site: Site, plan: SitePlan, prefix: string, probeSources = 40): Host[] {
  const hosts: Host[] = [];
  const held = (a: string) => hosts.some((h) => hostAddresses(h).includes(a) || reservedBy(h, a));
  for (const seg of plan.segments) {
    const s = siteSegment(site, seg.name);
    for (const res of seg.dhcp.reservations) {
      const stat = !s.dhcp.enabled;
      const h = newHost(`${prefix}-${seg.name}-${sanitize(res.name)}`, `${seg.name}-${res.name}`, "reservation");
      Object.assign(h, { segment: seg, mac: res.mac, reservation: res, mode: segmentMode(s, stat) });
      if (res.ipv4 && stat) h.static4.push(res.ipv4);
      // A reservation's IPv6 address is handed out only where DHCPv6 runs; elsewhere the operator configures
      // it on the device, as here.
      if (res.ipv6 && !h.mode.dhcp6) h.static6.push(res.ipv6);
      hosts.push(h);
    }
  }
  planForwardHosts(site, plan, prefix, hosts, held);
  const extra = ruleAddresses(site, plan).filter((a) => !held(a));
  for (const seg of plan.segments) {
    const s = siteSegment(site, seg.name);
    const main = newHost(`${prefix}-${seg.name}`, seg.name, "client");
    Object.assign(main, { segment: seg, mac: hostMac(seg.vlan, 1), mode: segmentMode(s) });
    for (const a of extra.filter((x) => segmentOf(plan, x) === seg))
      (familyOf(a) === 4 ? main.static4 : main.static6).push(a);
    const taken = new Set([...hosts.flatMap(hostAddresses), ...hosts.flatMap((h) => reservedAddresses(h)), ...extra]);
    if (!main.mode.dhcp4) main.static4.unshift(staticAddress(seg, taken));
    if (seg.ipv6 && !main.mode.slaac && !main.mode.dhcp6) main.static6.unshift(nthAddress(seg.ipv6.prefix, 0xe2f00));
    main.sources4 = segmentSources(seg, 4, new Set([...taken, ...main.static4]), probeSources);
    main.sources6 = segmentSources(seg, 6, taken, probeSources);
    hosts.unshift(main);
  }
  for (const h of hosts) if (!h.mode.dhcp4) h.addr4 = h.static4[0];
  return orderHosts(hosts, plan);
}

function newHost(ns: string, name: string, role: Host["role"]): Host {
  return {
    ns,
    name,
    role,
    segment: undefined as unknown as SegmentPlan,
    mac: "",
    mode: { dhcp4: false, dhcp6: false, slaac: false, gateway6: "none" },
    static4: [],
    static6: [],
    sources4: [],
    sources6: [],
  };
}

function reservedAddresses(h: Host): string[] {
  return [h.reservation?.ipv4, h.reservation?.ipv6].filter((x): x is string => !!x);
}

function reservedBy(h: Host, a: string): boolean {
  return reservedAddresses(h).includes(a);
}

/**
 * A host per port-forward target the site does not reserve: each distinct inside IPv4 host (with the IPv6
 * targets of its forwards on the same segment), and each remaining IPv6 target. So every forward's answer
 * names the host it reached, even where two forwards lead into one segment.
 */
function planForwardHosts(
  site: Site,
  plan: SitePlan,
  prefix: string,
  hosts: Host[],
  held: (a: string) => boolean,
): void {
  const place = (addr: string, pfName: string, with6: string[]) => {
    const seg = segmentOf(plan, addr);
    if (!seg) return;
    const s = siteSegment(site, seg.name);
    const h = newHost(`${prefix}-${seg.name}-${sanitize(pfName)}`, `${seg.name}-${pfName}`, "forward");
    const index = 0x80 + hosts.filter((x) => x.role === "forward").length;
    Object.assign(h, { segment: seg, mac: hostMac(seg.vlan, index), mode: segmentMode(s, true) });
    (familyOf(addr) === 4 ? h.static4 : h.static6).push(addr);
    for (const a of with6) if (!held(a) && segmentOf(plan, a) === seg && !h.static6.includes(a)) h.static6.push(a);
    hosts.push(h);
  };
  for (const pf of site.portForwards) {
    const v6 = site.portForwards.filter((x) => x.to === pf.to && x.ipv6).map((x) => x.ipv6!);
    if (!held(pf.to)) place(pf.to, pf.name, v6);
    else {
      // a reserved or already placed host takes the IPv6 targets of its forwards on its own segment
      const h = hosts.find((x) => hostAddresses(x).includes(pf.to) || reservedBy(x, pf.to))!;
      for (const a of v6) if (!held(a) && segmentOf(plan, a) === h.segment && !h.mode.dhcp6) h.static6.push(a);
    }
  }
  for (const pf of site.portForwards) if (pf.ipv6 && !held(pf.ipv6)) place(pf.ipv6, `${pf.name}-v6`, []);
}

/** Hosts in segment order (VLAN id), main client first within each segment. */
function orderHosts(hosts: Host[], plan: SitePlan): Host[] {
  const rank = { client: 0, reservation: 1, forward: 2, extra: 3 };
  const seg = (h: Host) => plan.segments.indexOf(h.segment);
  return [...hosts].sort((a, b) => seg(a) - seg(b) || rank[a.role] - rank[b.role]);
}

/** A static segment's main client address: the highest host address nothing else holds. */
function staticAddress(seg: SegmentPlan, taken: Set<string>): string {
  for (let i = -2; i > -2 - seg.ipv4!.hosts; i--) {
    const a = nthAddress(seg.ipv4!.cidr, i);
    if (a !== seg.ipv4!.gateway && !taken.has(a)) return a;
  }
  throw new Error(`segment ${seg.name}: no free IPv4 address for its client`);
}

/** Probe-source addresses of a segment: outside the DHCP pool, the gateway and everything `taken`. */
function segmentSources(seg: SegmentPlan, family: 4 | 6, taken: Set<string>, count: number): string[] {
  if (family === 6) {
    if (!seg.ipv6) return [];
    return Array.from({ length: count }, (_, i) => nthAddress(seg.ipv6!.prefix, 0xe2e00 + i));
  }
  const pool = seg.dhcp.pool;
  const out: string[] = [];
  for (let i = 2n; i < BigInt(seg.ipv4!.hosts) && out.length < count; i++) {
    const a = nthAddress(seg.ipv4!.cidr, i);
    const v = toBigInt(a);
    if (taken.has(a) || a === seg.ipv4!.gateway) continue;
    if (pool && v >= toBigInt(pool.start) && v <= toBigInt(pool.end)) continue;
    out.push(a);
  }
  return out;
}

/** The hosts of a running appliance: their namespaces on the switch, their servers and address configuration. */
export class Clients {
  constructor(
    private readonly shell: Shell,
    private readonly dhcp: DhcpClients,
    private readonly site: Site,
    readonly hosts: Host[],
    private readonly sw: string,
    private readonly serve: (h: Host) => void,
  ) {}

  /** The main client of a segment. */
  client(segment: string): Host {
    const h = this.hosts.find((x) => x.segment.name === segment && x.role === "client");
    if (!h) throw new Error(`no client on segment ${segment}`);
    return h;
  }

  /** The host holding a reservation. */
  reserved(segment: string, name: string): Host {
    const h = this.hosts.find((x) => x.segment.name === segment && x.reservation?.name === name);
    if (!h) throw new Error(`no host for reservation ${segment}/${name}`);
    return h;
  }

  /** The host that answers on an address. */
  holder(addr: string): Host | undefined {
    return this.hosts.find((h) => hostAddresses(h).includes(addr));
  }

  /** Creates every planned host's namespace, plugs it into its segment's bridge and starts its servers. */
  build(): void {
    const counters = new Map<number, number>();
    for (const h of this.hosts) {
      const i = (counters.get(h.segment.vlan) ?? 0) + 1;
      counters.set(h.segment.vlan, i);
      addNamespace(this.shell, h.ns, true);
      this.plug(h, `h${h.segment.vlan}-${i}`);
      this.configure(h);
      this.serve(h);
    }
  }

  /** A veth from the switch's bridge of the host's segment to the host's eth0. */
  private plug(h: Host, port: string): void {
    this.shell.batch(this.sw, [
      `link add ${port} type veth peer name eth0 netns ${h.ns}`,
      `link set ${port} master br${h.segment.vlan} up`,
    ]);
  }

  /** Addresses, routes and link settings of a host; `dad`: duplicate address detection as a real client does. */
  private configure(h: Host, dad = false): void {
    const dadOn = dad ? 1 : 0;
    this.shell.exec(h.ns, [
      "sh",
      "-c",
      [
        // no DAD delay (unless asked) and no temporary addresses on the test hosts
        `echo ${dadOn} > /proc/sys/net/ipv6/conf/default/accept_dad`,
        `echo ${dadOn} > /proc/sys/net/ipv6/conf/eth0/accept_dad`,
        "echo 0 > /proc/sys/net/ipv6/conf/eth0/use_tempaddr",
        // SLAAC stops once a link has max_addresses addresses, the probe sources included
        "echo 0 > /proc/sys/net/ipv6/conf/eth0/max_addresses",
      ].join("\n"),
    ]);
    const seg = h.segment;
    this.shell.batch(h.ns, [
      `link set eth0 address ${h.mac}`,
      ...(seg.mtu ? [`link set eth0 mtu ${seg.mtu}`] : []),
      "link set eth0 up",
      ...[...h.static4, ...h.sources4].map((a) => `address add ${a}/${seg.ipv4!.prefixLength} dev eth0`),
      ...[...h.static6, ...h.sources6].map((a) => `address add ${a}/64 dev eth0 nodad`),
      ...(!h.mode.dhcp4 && h.static4.length ? [`route add default via ${seg.ipv4!.gateway} dev eth0`] : []),
      // Without router advertisements a host is configured by hand: the segment's prefix on the link (a DHCPv6
      // lease is a /128 and brings no route) and the router as its gateway.
      ...(h.mode.gateway6 === "static" && seg.ipv6 && (h.static6.length || h.sources6.length || h.mode.dhcp6)
        ? [`route replace ${seg.ipv6.prefix} dev eth0`, `route add ::/0 via ${seg.ipv6.gateway} dev eth0`]
        : []),
    ]);
  }

  /** Starts every host's address configuration; resolves once each has what its segment offers. */
  async start(): Promise<void> {
    for (const h of this.hosts) if (h.mode.dhcp4) this.dhcp.start4(h.ns, "eth0");
    await Promise.all(this.hosts.map((h) => this.addresses(h)));
  }

  private async addresses(h: Host): Promise<void> {
    if (h.mode.dhcp4) h.addr4 = await waitFor(`a DHCPv4 lease for ${h.ns}`, () => this.dhcp.lease4(h.ns)?.ip, 30_000);
    if (h.mode.slaac) h.slaac6 = await waitFor(`a SLAAC address for ${h.ns}`, () => this.slaacAddress(h), 30_000);
    if (h.mode.dhcp6) {
      this.dhcp.start6(h.ns);
      h.dhcp6 = await waitFor(`a DHCPv6 lease for ${h.ns}`, () => this.dhcp.lease6(h.ns)?.new_ip6_address, 30_000);
    }
  }

  /**
   * The host's autoconfigured address (EUI-64 from its MAC) in its segment's prefix, once usable: an address
   * still in duplicate address detection (tentative) cannot be a source yet, so a probe from it would time out.
   */
  slaacAddress(h: Host): string | undefined {
    const out = this.shell.exec(h.ns, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"]).stdout;
    for (const line of out.split("\n")) {
      if (/\btentative\b/.test(line)) continue;
      const m = /inet6 ([0-9a-f:]+)\/64 .*dynamic/.exec(line);
      if (m && contains(h.segment.ipv6!.prefix, m[1])) return m[1];
    }
    return undefined;
  }

  /**
   * Adds a client to a running appliance: a namespace on the segment configured as its main client is (no
   * servers, no DHCP client started). `index` makes its MAC and switch port unique; `dad` turns duplicate
   * address detection on, as on a real client.
   */
  addHost(segment: string, label: string, index: number, prefix: string, dad = false): Host {
    const seg = this.hosts.find((x) => x.segment.name === segment)?.segment;
    if (!seg) throw new Error(`no segment ${segment}`);
    const h = newHost(`${prefix}-${segment}-${label}`, `${segment}-${label}`, "extra");
    Object.assign(h, {
      segment: seg,
      mac: hostMac(seg.vlan, index),
      mode: segmentMode(siteSegment(this.site, segment)),
    });
    h.mode = { ...h.mode, dhcp6: false };
    addNamespace(this.shell, h.ns, true);
    this.hosts.push(h);
    this.plug(h, `x${seg.vlan}-${index}`);
    this.configure(h, dad);
    return h;
  }
}
