/**
 * The zone policy as data, and its meaning: which new connections the router accepts, forwards, drops or rejects.
 * `compilePolicy` resolves zones, address groups and defaults; `evaluate` answers one flow. The nftables
 * renderer compiles the same model, the anti-lockout check asks it about the management path, and the virtual
 * appliance's reachability matrix uses it as the oracle. Pure.
 */
import { OBSERVABILITY_PORTS } from "./schema-observability";
import type { FirewallRule, Site } from "./schema";
import type { SitePlan } from "./plan";
import { contains, familyOf, isAddress } from "./ip";

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
  /** The DNS stack's hold on the zones it serves (router:dns.zones; see components/dns-stack/ruleset.ts). */
  dns: DnsForcing;
}

/**
 * What the DNS stack does to zones that have the dns service and segments: `force` redirects their port-53
 * queries to other servers to the router (and rejects DoT to them), or rejects both; `encrypted` zones reach
 * DoT (tcp/853) and DoH (tcp/443) on every router address, before any rule.
 */
export interface DnsForcing {
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
    ],
    groups,
    logDrops: site.firewall.logDrops,
    logRate: site.firewall.logRate,
    dns,
  };
}

/** The DNS stack's forcing and encrypted zones: those with the dns service and at least one segment. */
function dnsForcing(site: Site, plan: SitePlan, services: Map<string, RouterService[]>): DnsForcing {
  const served = (zone: string) =>
    (services.get(zone) ?? []).includes("dns") && plan.segments.some((s) => s.zone === zone);
  const settings = site.dns.zones.filter((z) => served(z.zone));
  const force = new Map<string, "redirect" | "reject">();
  for (const z of settings) if (z.force !== "off") force.set(z.zone, z.force);
  return {
    force,
    encrypted: settings.filter((z) => z.encrypted).map((z) => z.zone),
    gateways: plan.segments
      .filter((s) => force.has(s.zone))
      .flatMap((s) => [
        { zone: s.zone, prefix: s.ipv4.cidr, gateway: s.ipv4.gateway },
        ...(s.ipv6 ? [{ zone: s.zone, prefix: s.ipv6.prefix, gateway: s.ipv6.gateway }] : []),
      ]),
  };
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
}

export interface Decision {
  verdict: Verdict;
  /** What decided: `rule:<name>`, `policy:<from>><to>`, `intra-zone`, `default`, `management`, `service:<s>`, `input-default`. */
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

/** The verdict for a new connection (or ping). */
export function evaluate(m: PolicyModel, f: Flow): Decision {
  if (!isAddress(f.src) || !isAddress(f.dst))
    throw new Error(`flow addresses must be plain addresses: ${f.src} → ${f.dst}`);
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
          : evaluate({ ...m, rules: [] }, { from, to, proto: "tcp", port: 1, src: "0.0.0.0", dst: "0.0.0.0" }).verdict;
      row.set(to, { verdict: base as Verdict, rules });
    }
    out.set(from, row);
  }
  return out;
}
