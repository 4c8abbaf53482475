/**
 * The zone policy as data, and its meaning: which new connections the router accepts, forwards, drops or rejects.
 * `compilePolicy` resolves zones, address groups, port forwards and defaults; `evaluate` answers one flow. The
 * nftables renderer compiles the same model, the anti-lockout check asks it about the management path, the zone
 * matrix of the summary reads it, and the virtual appliance's reachability matrix uses it as the oracle. Pure.
 *
 * A port forward publishes an inside host to its sources (everyone when it names none): from the WANs it
 * listens on, and — through the hairpin — to inside clients reaching the router's public address, where the
 * same sources decide (an inside client uses the hairpin only when the forward has no source limit or lists it).
 */
import { OBSERVABILITY_PORTS } from "./schema-observability";
import type { FirewallRule, PortForward, Site } from "./schema";
import { segmentPrefixes, type SitePlan } from "./plan";
import { contains, familyOf, isAddress, overlaps, parsePrefix } from "./ip";

export type Verdict = "accept" | "drop" | "reject";
export type Proto = "tcp" | "udp" | "icmp";
export type RouterService = "dhcp" | "dns" | "ntp" | "mdns" | "ping";

/** Talos API (apid, trustd), Kubernetes API: what management zones may always reach. */
export const MANAGEMENT_TCP_PORTS = [50000, 50001, 6443] as const;

export interface ServicePorts {
  tcp: number[];
  udp: number[];
  /** ICMP echo request (ping) answered. */
  echo: boolean;
}

/** Ports the router listens on for each service (IPv4 and IPv6 alike; DHCPv6 is 547). */
export function servicePorts(services: readonly RouterService[]): ServicePorts {
  const tcp = new Set<number>();
  const udp = new Set<number>();
  for (const s of services) {
    if (s === "dhcp") udp.add(67).add(547);
    if (s === "dns") {
      tcp.add(53);
      udp.add(53);
    }
    if (s === "ntp") udp.add(123);
    if (s === "mdns") udp.add(5353);
  }
  return {
    tcp: [...tcp].sort((a, b) => a - b),
    udp: [...udp].sort((a, b) => a - b),
    echo: services.includes("ping"),
  };
}

export interface CompiledRule {
  name: string;
  /** Position in router:firewall.rules (first match wins). */
  index: number;
  from: string[] | "any";
  /** Zones, or "router"; "any" = every zone (not the router). */
  to: string[] | "any";
  toRouter: boolean;
  protos: Proto[] | "any";
  /** Inclusive destination port ranges (tcp/udp rules only). */
  ports?: [number, number][];
  /** Source/destination prefixes by family; undefined = any. */
  src?: { 4: string[]; 6: string[] };
  dst?: { 4: string[]; 6: string[] };
  action: Verdict;
  log: boolean;
}

/** A port forward as the policy reads it. */
export interface CompiledForward {
  name: string;
  protos: ("tcp" | "udp")[];
  /** Public ports, inclusive. */
  ports: [number, number];
  /** The inside IPv4 host, and its zone (its segment's, or the segment's behind which an inside route leads). */
  to: string;
  zone?: string;
  /** The inside IPv6 host: a pinhole (global) or NAT66 (unique local) target. */
  to6?: string;
  zone6?: string;
  /** WAN links the forward listens on, and those of them that masquerade IPv6 (NAT66 to a unique local to6). */
  wans: string[];
  nat66Wans: string[];
  /** Zones of those WANs. */
  wanZones: string[];
  /** The ruleset opens an IPv6 pinhole to to6 (a global address, or a unique local one behind prefix translation). */
  pinhole: boolean;
  /** Who may use the forward, by family; undefined = everyone. */
  sources?: { 4: string[]; 6: string[] };
  hairpin: boolean;
  /**
   * Where the hairpin takes the forward: undefined = at every public address (a forward on every WAN); else at the
   * current IPv4 addresses of its WANs, each with its static address when it has one (a DHCP WAN's address is
   * known at run time only: the data-plane loader keeps the ruleset's `wan_addr4_<wan>` set at it). A forward
   * limited to some WANs publishes the service at their addresses only, as the outside sees it (hairpinAddresses).
   */
  hairpinAt?: HairpinWan[];
}

/** An inside prefix and the zone its hosts are in. */
export interface InsidePrefix {
  prefix: string;
  zone: string;
  /** The static route leading there, when the prefix is behind one. */
  via?: string;
}

export interface PolicyModel {
  zones: string[];
  wanZones: string[];
  lanZones: string[];
  managementZones: string[];
  rules: CompiledRule[];
  /** `${from}>${to}` (zones or "any") → action. */
  policies: Map<string, { action: Verdict; log: boolean }>;
  defaultAction: Verdict;
  /** Router services per zone, defaults applied. */
  services: Map<string, RouterService[]>;
  /** Extra management TCP ports (the data plane's metrics). */
  managementPorts: number[];
  /** Address groups by name: prefixes per family. */
  groups: Map<string, { 4: string[]; 6: string[] }>;
  logDrops: boolean;
  logRate: string;
  forwards: CompiledForward[];
  /** Segment prefixes and the prefixes behind inside routes, longest first: the zone of an inside address. */
  inside: InsidePrefix[];
  /** The site's own prefixes (segments, private inside routes, pods, services): never the router's public address. */
  internal: string[];
  /** The DNS stack's hold on the zones it serves (router:dns.zones; see components/dns-stack/ruleset.ts). */
  dns: DnsForcing;
}

/**
 * What the DNS stack does to zones that have the dns service and segments: `force` redirects their port-53
 * queries to other servers to the router (and rejects DoT to them), or rejects both; `encrypted` zones reach
 * DoT (tcp/853) and DoH (tcp/443) on every router address, before any rule.
 */
export interface DnsForcing {
  /** The zones the router serves DNS to (the dns service and at least one segment): the stack runs when any. */
  served: string[];
  /** The DNS stack's metrics port, which management zones reach like the loader's (when the stack runs). */
  metricsPort?: number;
  force: Map<string, "redirect" | "reject">;
  encrypted: string[];
  /** The router's address in each segment of a forced zone, by family: where a redirected query goes. */
  gateways: { zone: string; prefix: string; gateway: string }[];
}

function toPrefix(a: string): string {
  return a.includes("/") ? a : `${a}/${familyOf(a) === 4 ? 32 : 128}`;
}

function resolveRefs(
  refs: string[] | undefined,
  groups: PolicyModel["groups"],
): { 4: string[]; 6: string[] } | undefined {
  if (!refs) return undefined;
  const out: { 4: string[]; 6: string[] } = { 4: [], 6: [] };
  for (const r of refs) {
    if (r.startsWith("@")) {
      const g = groups.get(r.slice(1));
      if (g) {
        out[4].push(...g[4]);
        out[6].push(...g[6]);
      }
    } else out[familyOf(r.split("/")[0]) ?? 4].push(toPrefix(r));
  }
  return out;
}

function portRange(p: number | string): [number, number] {
  if (typeof p === "number") return [p, p];
  const [a, b] = p.split("-").map(Number);
  return [a, b];
}

function protosOf(p: FirewallRule["protocol"]): Proto[] | "any" {
  if (p === "any") return "any";
  if (p === "tcp+udp") return ["tcp", "udp"];
  return [p];
}

/** Default router services of a zone: DHCP, DNS, NTP and ping on LAN zones, nothing on WAN zones. */
export function defaultServices(isWan: boolean): RouterService[] {
  return isWan ? [] : ["dhcp", "dns", "ntp", "ping"];
}

export function compilePolicy(site: Site, plan: SitePlan): PolicyModel {
  const wanZones = [...new Set(plan.wans.map((w) => w.zone))].sort();
  const zones = site.zones.map((z) => z.name);
  const groups: PolicyModel["groups"] = new Map();
  for (const g of site.firewall.addressGroups) {
    const v: { 4: string[]; 6: string[] } = { 4: [], 6: [] };
    for (const a of g.addresses) v[familyOf(a.split("/")[0]) ?? 4].push(toPrefix(a));
    groups.set(g.name, v);
  }
  const services = new Map<string, RouterService[]>();
  for (const z of site.zones) {
    const base = z.services ?? defaultServices(wanZones.includes(z.name));
    const mdns = site.mdns.reflect.some((g) => g.zones.includes(z.name));
    services.set(z.name, [...new Set([...base, ...(mdns ? (["mdns"] as RouterService[]) : [])])].sort());
  }
  const rules: CompiledRule[] = site.firewall.rules.map((r, index) => {
    const zonesTo = r.to.filter((t) => t !== "router");
    return {
      name: r.name,
      index,
      from: r.from.includes("any") ? "any" : [...r.from],
      to: zonesTo.includes("any") ? "any" : zonesTo,
      toRouter: r.to.includes("router"),
      protos: protosOf(r.protocol),
      ports: r.ports?.map(portRange),
      src: resolveRefs(r.source, groups),
      dst: resolveRefs(r.destination, groups),
      action: r.action,
      log: r.log,
    };
  });
  const policies = new Map<string, { action: Verdict; log: boolean }>();
  for (const p of site.firewall.policies) policies.set(`${p.from}>${p.to}`, { action: p.action, log: p.log });
  const inside = insidePrefixes(plan);
  const dns = dnsForcing(site, plan, services);
  return {
    zones,
    wanZones,
    lanZones: zones.filter((z) => !wanZones.includes(z)),
    managementZones: site.zones.filter((z) => z.management).map((z) => z.name),
    rules,
    policies,
    defaultAction: site.firewall.defaultAction,
    services,
    // The observability stack's UIs and APIs answer management zones like the loader's metrics do.
    managementPorts: [
      site.dataplane.metricsPort,
      ...(site.observability.enabled ? Object.values(OBSERVABILITY_PORTS) : []),
      ...(dns.metricsPort !== undefined ? [dns.metricsPort] : []),
    ],
    groups,
    logDrops: site.firewall.logDrops,
    logRate: site.firewall.logRate,
    forwards: site.portForwards.map((f) => compileForward(f, plan, inside)),
    inside,
    internal: [
      ...plan.segments.flatMap(segmentPrefixes),
      ...plan.insideRoutes.filter((r) => r.internal).map((r) => r.destination),
      ...site.cluster.podCidrs,
      ...site.cluster.serviceCidrs,
    ],
    dns,
  };
}

/** The DNS stack's served, forcing and encrypted zones (the dns service and at least one segment), and its metrics port. */
function dnsForcing(site: Site, plan: SitePlan, services: Map<string, RouterService[]>): DnsForcing {
  const served = (zone: string) =>
    (services.get(zone) ?? []).includes("dns") && plan.segments.some((s) => s.zone === zone);
  // a site whose router:dns failed to parse is still checked for lockout (every problem at once): no forcing then
  const settings = (site.dns?.zones ?? []).filter((z) => served(z.zone));
  const force = new Map<string, "redirect" | "reject">();
  for (const z of settings) if (z.force !== "off") force.set(z.zone, z.force);
  const zones = site.zones.map((z) => z.name).filter(served);
  return {
    served: zones,
    metricsPort: zones.length && site.dns ? site.dns.metricsPort : undefined,
    force,
    encrypted: settings.filter((z) => z.encrypted).map((z) => z.zone),
    gateways: plan.segments
      .filter((s) => force.has(s.zone))
      .flatMap((s) => [
        ...(s.ipv4 ? [{ zone: s.zone, prefix: s.ipv4.cidr, gateway: s.ipv4.gateway }] : []),
        ...(s.ipv6 ? [{ zone: s.zone, prefix: s.ipv6.prefix, gateway: s.ipv6.gateway }] : []),
      ]),
  };
}

function insidePrefixes(plan: SitePlan): InsidePrefix[] {
  const out: InsidePrefix[] = [
    ...plan.segments.flatMap((x) => segmentPrefixes(x).map((prefix) => ({ prefix, zone: x.zone }))),
    ...plan.insideRoutes.map((r) => ({ prefix: r.destination, zone: r.zone, via: r.gateway })),
  ];
  return out.sort((a, b) => parsePrefix(b.prefix).length - parsePrefix(a.prefix).length);
}

/** The zone of an inside address (the longest inside prefix holding it), or undefined for an outside address. */
export function zoneOfAddress(m: Pick<PolicyModel, "inside">, address: string): string | undefined {
  return m.inside.find((p) => contains(p.prefix, address))?.zone;
}

function compileForward(f: PortForward, plan: SitePlan, inside: InsidePrefix[]): CompiledForward {
  const wans = f.wans ?? plan.wans.map((w) => w.name);
  const zone = (a: string | undefined) => (a ? inside.find((p) => contains(p.prefix, a))?.zone : undefined);
  let sources: CompiledForward["sources"];
  if (f.sources) {
    sources = { 4: [], 6: [] };
    for (const c of f.sources) sources[familyOf(c) ?? 4].push(c);
  }
  return {
    name: f.name,
    protos: f.protocol === "tcp+udp" ? ["tcp", "udp"] : [f.protocol],
    ports: portRange(f.port),
    to: f.to,
    zone: zone(f.to),
    to6: f.ipv6,
    zone6: zone(f.ipv6),
    wans,
    nat66Wans: wans.filter((w) => plan.wans.find((x) => x.name === w)?.nat.ipv6 === "masquerade"),
    wanZones: [...new Set(wans.map((w) => plan.wans.find((x) => x.name === w)?.zone).filter((z): z is string => !!z))],
    pinhole: f.ipv6 !== undefined && (!contains("fc00::/7", f.ipv6) || plan.wans.some((w) => w.nat.ipv6 === "prefix")),
    sources,
    hairpin: f.hairpin,
    hairpinAt: hairpinAddresses(f, plan),
  };
}

/** A WAN at whose IPv4 address a hairpin answers: its static address, none when it takes one by DHCP. */
export interface HairpinWan {
  wan: string;
  address?: string;
}

/**
 * Where the hairpin of a forward answers: undefined = at every public address of the router (the forward is on
 * every WAN); else at the IPv4 addresses of the WANs it names, in the plan's order, whatever their mode.
 */
export function hairpinAddresses(f: Pick<PortForward, "wans">, plan: SitePlan): HairpinWan[] | undefined {
  const wans = f.wans ?? plan.wans.map((w) => w.name);
  if (plan.wans.every((w) => wans.includes(w.name))) return undefined;
  return plan.wans
    .filter((w) => wans.includes(w.name))
    .map((w) => (w.ipv4.mode === "static" ? { wan: w.name, address: w.ipv4.address.split("/")[0] } : { wan: w.name }));
}

/** Whether a flow from inside to the router's public address dst (of WAN `wan`, when known) reaches the hairpin. */
function hairpinTakes(at: HairpinWan[] | undefined, dst: string, wan: string | undefined): boolean {
  if (!at) return true;
  return at.some((w) => (wan === undefined ? w.address === dst : w.wan === wan));
}

/** One new connection (or ICMP echo) as the router sees it. */
export interface Flow {
  /** Zone the packet arrives from. */
  from: string;
  /** Zone it leaves to, or "router" when addressed to the router itself. */
  to: string | "router";
  proto: Proto;
  /** Destination port (tcp/udp). */
  port?: number;
  src: string;
  dst: string;
  /**
   * The WAN link a flow from the internet arrives on (a forward listens on some WANs only); default: any. For a
   * flow from inside to the router's public address: the WAN whose address dst is (a DHCP WAN's address is known
   * at run time only); default: the WAN whose static address it is.
   */
  wan?: string;
}

export interface Decision {
  verdict: Verdict;
  /**
   * What decided: `rule:<name>`, `policy:<from>><to>`, `intra-zone`, `default`, `management`, `service:<s>`,
   * `input-default`, or a port forward: `forward:<name>` (DNAT from a WAN), `forward6:<name>` (NAT66 from a WAN),
   * `pinhole:<name>` (IPv6 to a global inside address), `hairpin:<name>` (an inside client at the public address).
   */
  by: string;
  log: boolean;
  /** "router": the router answers instead of the addressed host (a forced zone's DNS query, redirected). */
  answeredBy?: "router";
}

function inPrefixes(addr: string, set: { 4: string[]; 6: string[] } | undefined): boolean {
  if (!set) return true;
  const fam = familyOf(addr);
  if (fam === undefined) return false;
  return set[fam].some((p) => contains(p, addr));
}

/** True when a rule applies to a flow. A rule whose addresses are of the other family does not match. */
export function ruleMatches(r: CompiledRule, f: Flow): boolean {
  if (r.from !== "any" && !r.from.includes(f.from)) return false;
  if (f.to === "router") {
    if (!r.toRouter) return false;
  } else if (r.to !== "any" && !r.to.includes(f.to)) return false;
  if (r.protos !== "any" && !r.protos.includes(f.proto)) return false;
  if (r.ports) {
    if (f.port === undefined || f.proto === "icmp") return false;
    if (!r.ports.some(([a, b]) => f.port! >= a && f.port! <= b)) return false;
  }
  if (!inPrefixes(f.src, r.src) || !inPrefixes(f.dst, r.dst)) return false;
  return true;
}

/** True when a forward takes this protocol and port from this source. */
function forwardTakes(fw: CompiledForward, f: Flow): boolean {
  if (f.proto === "icmp" || f.port === undefined || !fw.protos.includes(f.proto)) return false;
  if (f.port < fw.ports[0] || f.port > fw.ports[1]) return false;
  const fam = familyOf(f.src);
  return !fw.sources || (fam !== undefined && fw.sources[fam].some((c) => contains(c, f.src)));
}

/**
 * The port forward that takes a new connection, if any: its DNAT (prerouting) and its accept (the forward chain's
 * first rules) come before the zone policy, so a forward that applies decides.
 */
export function forwardDecision(m: PolicyModel, f: Flow): Decision | undefined {
  const fromWan = m.wanZones.includes(f.from);
  const v4 = familyOf(f.dst) === 4;
  // The router's public address: a local address (to: router) that is none of the site's own.
  const publicDst = f.to === "router" && !m.internal.some((c) => contains(c, f.dst));
  for (const fw of m.forwards) {
    if (!forwardTakes(fw, f)) continue;
    if (fromWan) {
      const onWan = f.wan === undefined ? fw.wanZones.includes(f.from) : fw.wans.includes(f.wan);
      if (!onWan) continue;
      if (publicDst && v4) return { verdict: "accept", by: `forward:${fw.name}`, log: false };
      const nat66 = fw.to6 !== undefined && contains("fc00::/7", fw.to6);
      if (publicDst && !v4 && nat66 && (f.wan ? fw.nat66Wans.includes(f.wan) : fw.nat66Wans.length > 0))
        return { verdict: "accept", by: `forward6:${fw.name}`, log: false };
      if (fw.pinhole && f.dst === fw.to6) return { verdict: "accept", by: `pinhole:${fw.name}`, log: false };
    } else if (fw.hairpin && publicDst && v4 && hairpinTakes(fw.hairpinAt, f.dst, f.wan)) {
      return { verdict: "accept", by: `hairpin:${fw.name}`, log: false };
    }
  }
  return undefined;
}

/** The verdict for a new connection (or ping). */
export function evaluate(m: PolicyModel, f: Flow): Decision {
  if (!isAddress(f.src) || !isAddress(f.dst))
    throw new Error(`flow addresses must be plain addresses: ${f.src} → ${f.dst}`);
  const forward = forwardDecision(m, f);
  if (forward) return forward;
  const dns = dnsDecision(m, f);
  if (dns) return dns;
  for (const r of m.rules) if (ruleMatches(r, f)) return { verdict: r.action, by: `rule:${r.name}`, log: r.log };
  if (f.to === "router") {
    if (m.managementZones.includes(f.from) && f.proto === "tcp" && f.port !== undefined)
      if ((MANAGEMENT_TCP_PORTS as readonly number[]).includes(f.port) || m.managementPorts.includes(f.port))
        return { verdict: "accept", by: "management", log: false };
    const sp = servicePorts(m.services.get(f.from) ?? []);
    if (f.proto === "icmp" && sp.echo) return { verdict: "accept", by: "service:ping", log: false };
    if (f.proto === "tcp" && f.port !== undefined && sp.tcp.includes(f.port))
      return { verdict: "accept", by: `service:tcp/${f.port}`, log: false };
    if (f.proto === "udp" && f.port !== undefined && sp.udp.includes(f.port))
      return { verdict: "accept", by: `service:udp/${f.port}`, log: false };
    return { verdict: "drop", by: "input-default", log: m.logDrops };
  }
  for (const key of [`${f.from}>${f.to}`, `${f.from}>any`, `any>${f.to}`, "any>any"]) {
    const p = m.policies.get(key);
    if (p) return { verdict: p.action, by: `policy:${key}`, log: p.log };
  }
  if (f.from === f.to) return { verdict: "accept", by: "intra-zone", log: false };
  return { verdict: m.defaultAction, by: "default", log: m.logDrops };
}

/**
 * The DNS stack's rules, which come before the zone rules: encrypted DNS on the router for encrypted zones, a
 * forced zone's DoT to other servers rejected, its port-53 queries to other servers rejected or redirected to the
 * router's address in its segment (then decided as a connection to the router).
 */
function dnsDecision(m: PolicyModel, f: Flow): Decision | undefined {
  if ((f.proto !== "tcp" && f.proto !== "udp") || f.port === undefined) return undefined;
  if (f.to === "router") {
    if (f.proto === "tcp" && (f.port === 443 || f.port === 853) && m.dns.encrypted.includes(f.from))
      return { verdict: "accept", by: `dns:encrypted/${f.port}`, log: false };
    return undefined;
  }
  const force = m.dns.force.get(f.from);
  if (!force || (f.port !== 53 && f.port !== 853)) return undefined;
  if (force === "reject" || f.port === 853) return { verdict: "reject", by: `dns:force-${force}`, log: false };
  const fam = familyOf(f.src);
  const segs = m.dns.gateways.filter((g) => g.zone === f.from && familyOf(g.gateway) === fam);
  // a family the zone's segments lack is not redirected (nothing to answer it)
  const gw = (segs.find((g) => contains(g.prefix, f.src)) ?? segs[0])?.gateway;
  if (!gw) return undefined;
  const d = evaluate(m, { ...f, to: "router", dst: gw });
  return { ...d, by: `dns:redirect ${d.by}`, answeredBy: "router" };
}

export interface MatrixCell {
  /** Verdict for traffic no rule singles out. */
  verdict: Verdict;
  /** Names of the rules that refine this pair (first match wins, before the verdict). */
  rules: string[];
  /** Port forwards through which the row's zone reaches hosts of the column's zone, whatever the verdict. */
  forwards: { name: string; sources?: string[]; hairpin: boolean }[];
}

/** The inside zones a forward's hairpin serves: every LAN zone, or those whose prefixes its IPv4 sources touch. */
export function hairpinZones(m: Pick<PolicyModel, "inside" | "lanZones">, fw: CompiledForward): string[] {
  if (!fw.hairpin) return [];
  if (!fw.sources) return m.lanZones;
  const src = fw.sources[4];
  return m.lanZones.filter((z) => m.inside.some((p) => p.zone === z && src.some((c) => overlaps(c, p.prefix))));
}

/** The zone matrix a reviewer reads: for each source zone, each destination zone and the router itself. */
export function zoneMatrix(m: PolicyModel): Map<string, Map<string, MatrixCell>> {
  const out = new Map<string, Map<string, MatrixCell>>();
  for (const from of m.zones) {
    const row = new Map<string, MatrixCell>();
    for (const to of [...m.zones, "router"]) {
      const rules = m.rules
        .filter(
          (r) =>
            (r.from === "any" || r.from.includes(from)) &&
            (to === "router" ? r.toRouter : r.to === "any" || r.to.includes(to)),
        )
        .map((r) => r.name);
      const base =
        to === "router"
          ? m.managementZones.includes(from)
            ? "accept"
            : "drop"
          : evaluate(
              { ...m, rules: [], forwards: [] },
              { from, to, proto: "tcp", port: 1, src: "0.0.0.0", dst: "0.0.0.0" },
            ).verdict;
      const forwards = m.forwards
        .filter((fw) => fw.zone === to || fw.zone6 === to)
        .flatMap((fw) => {
          const fromWan = fw.wanZones.includes(from);
          const hairpin = hairpinZones(m, fw).includes(from) && fw.zone === to;
          if (!fromWan && !hairpin) return [];
          const sources = fw.sources ? [...fw.sources[4], ...fw.sources[6]] : undefined;
          return [{ name: fw.name, sources, hairpin: !fromWan }];
        });
      row.set(to, { verdict: base as Verdict, rules, forwards });
    }
    out.set(from, row);
  }
  return out;
}
