/**
 * A second, deliberately simple reading of a site's policy: what the router should do with one new connection.
 * It shares nothing with components/site/policy.ts (nor its address arithmetic) but the schema types, and is
 * written from the documented meaning of the keys (README "The network layer", the doc comments of
 * components/site/schema.ts and schema-policy.ts, Pulumi.yaml's descriptions):
 *
 * - Port forwards (router:portForwards) are openings the site makes on purpose and come first: a connection from
 *   a WAN zone to a WAN address of the router, on a WAN the forward listens on (`wans`, default all), with its
 *   protocol and a port of its range, from one of its `sources` (default: any) goes to its inside host (`to`,
 *   at `toPort` + the offset into the range). Its IPv6 host, when it is a global address, is reached at its own
 *   address on the public port (a pinhole), at `toPort` like the IPv4 host when the forward names one; a unique
 *   local one is reached at the IPv6 address of a forward's WAN that translates IPv6 (nat.ipv6 masquerade or
 *   prefix), translated like the IPv4 host (at `toPort`). Hairpin: an inside client reaching a forward at a WAN
 *   address of the forward gets the same, when the forward allows hairpin and the client is one of its sources
 *   (everyone when it names none) — at the address of any of the forward's WANs, static or leased by DHCP
 *   (README, "Port forwards": the data-plane loader keeps the ruleset's per-WAN address sets at the WAN links'
 *   current addresses).
 * - Routed connections: the first matching rule (router:firewall.rules: from zones or any, to zones or any —
 *   never the router —, protocol, destination ports, source and destination addresses, prefixes or @groups, of
 *   the flow's family) decides; else the most specific zone-pair policy (from→to, from→any, any→to, any→any);
 *   else traffic within one zone is accepted; else defaultAction.
 * - Connections to the router itself: the first matching rule with `to: router`; else a management zone reaches
 *   the management ports (Talos API 50000, trustd 50001, Kubernetes API 6443, the data plane's metrics port, and
 *   with observability on its services: 9090, 9093, 9100, 9428, 8080; and where the router serves DNS to any zone,
 *   the DNS stack's metrics port, router:dns.metricsPort, 9433 by default);
 *   else the zone's services (router:zones[].services, default dhcp, dns, ntp and ping for LAN zones and nothing
 *   for WAN zones; mDNS also where the zone is in a reflection group) on their ports: dhcp udp/67 and udp/547,
 *   dns tcp+udp/53, ntp udp/123, mdns udp/5353, ping ICMP echo; else dropped.
 * - Dynamic routing (router:routing, "what the firewall opens for it") comes before the zones' own input: OSPF
 *   (IP protocol 89) from a host of a segment named in ospf.segments, arriving from that segment's zone; BGP
 *   (TCP 179) from each configured neighbour's own address, and BFD (UDP 3784 and 4784) from a neighbour with
 *   `bfd: true`. Nobody else gets them.
 * - The zone of an address: the zone of the segment whose subnet holds it, or, behind a static route (router:
 *   routes) whose gateway is on a segment, that segment's zone. A private (RFC 1918, 100.64.0.0/10) or unique
 *   local prefix behind such a route is the site's own, like its segments: it leaves to the WANs translated and
 *   may be a forward's target; a public one is routed as is.
 * - The router's DNS (router:dns.zones, schema-dns.ts; it serves only zones whose services include dns and that
 *   have segments) comes before the rules: a zone with `encrypted: true` reaches DNS over TLS (tcp/853) and over
 *   HTTPS (tcp/443) at every address of the router; a zone with `force: reject` has its DNS (tcp and udp 53) and
 *   DoT (853) to any other server rejected; one with `force: redirect` has DoT to other servers rejected and its
 *   port-53 queries to any other server answered by the router instead (sent to the router's address in the
 *   client's segment — the segment's ipv4/ipv6 gateway, by default its first address and `<prefix>::1` — and then
 *   decided like a connection to the router); a family the zone's segments lack is not redirected.
 * WAN links sit in their link's zone, "wan" when they name none.
 */
import type { FirewallRule, PortForward, Site } from "../../../components/site/schema";

export type OracleVerdict = "accept" | "drop" | "reject";

export interface OracleFlow {
  /** Zone of the link the connection comes in on. */
  from: string;
  /** Zone of the destination, or "router" for one of the router's own addresses. */
  to: string;
  /** ospf: IP protocol 89 (hellos and updates of an OSPF neighbour). */
  proto: "tcp" | "udp" | "icmp" | "ospf";
  /** Destination port (tcp, udp). */
  port?: number;
  src: string;
  dst: string;
  /** The WAN link a connection from a WAN zone arrives on. */
  via?: string;
  /** When `dst` is an address the router holds on a WAN: that WAN link. */
  wanAddressOf?: string;
}

export interface OracleAnswer {
  verdict: OracleVerdict;
  /** What decided: rule:NAME, policy:FROM>TO, intra-zone, default, management, service:PROTO/PORT, input-default,
   * forward:NAME, forward6:NAME, pinhole:NAME, hairpin:NAME, routing:ospf, routing:bgp, routing:bfd. */
  by: string;
  /** Where a forward delivers the connection. */
  deliverTo?: { address: string; port?: number };
  /** The router answers instead of the addressed host (forced DNS, redirected). */
  answeredByRouter?: boolean;
}

// ------------------------------------------------------------------------------------------------ addresses

/** An address as a number and its family; undefined when the text is not an address. */
function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split(".").map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return { family: 4, value: parts.reduce((acc, p) => acc * 256n + BigInt(p), 0n) };
  }
  if (!text.includes(":")) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const all = [...head, ...Array<string>(fill).fill("0"), ...tail];
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  return { family: 6, value: all.reduce((acc, g) => acc * 65536n + BigInt(parseInt(g, 16)), 0n) };
}

/** True when `addr` lies in `ref` (an address or a prefix), both of one family. */
export function within(ref: string, addr: string): boolean {
  const [base, len] = ref.split("/");
  const a = parseAddress(addr);
  const b = parseAddress(base);
  if (!a || !b || a.family !== b.family) return false;
  const bits = a.family === 4 ? 32 : 128;
  const keep = BigInt(len === undefined ? bits : Number(len));
  const shift = BigInt(bits) - keep;
  return a.value >> shift === b.value >> shift;
}

/** The address `offset` after a prefix's first one, as text (IPv4 dotted, IPv6 as eight full groups). */
function nthOf(prefix: string, offset: bigint): string | undefined {
  const [base, len] = prefix.split("/");
  const a = parseAddress(base);
  if (!a) return undefined;
  const bits = a.family === 4 ? 32n : 128n;
  const host = bits - BigInt(len ?? bits);
  const v = ((a.value >> host) << host) + offset;
  if (a.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join(".");
  return Array.from({ length: 8 }, (_, i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(":");
}

export function familyOfAddress(addr: string): 4 | 6 | undefined {
  return parseAddress(addr)?.family;
}

// ------------------------------------------------------------------------------------------------ the oracle

const SERVICE_PORTS: Record<string, { tcp: number[]; udp: number[]; echo: boolean }> = {
  dhcp: { tcp: [], udp: [67, 547], echo: false },
  dns: { tcp: [53], udp: [53], echo: false },
  ntp: { tcp: [], udp: [123], echo: false },
  mdns: { tcp: [], udp: [5353], echo: false },
  ping: { tcp: [], udp: [], echo: true },
};

/** Talos API (apid), trustd, Kubernetes API. */
const MANAGEMENT_PORTS = [50000, 50001, 6443];
/** The observability stack's services on the router, for management zones (README, "Observability"): Prometheus
 * 9090, Alertmanager 9093, node exporter 9100, the log store 9428, dashboards 8080. */
const OBSERVABILITY_UI_PORTS = [9090, 9093, 9100, 9428, 8080];

function portRange(p: number | string): [number, number] {
  if (typeof p === "number") return [p, p];
  const [a, b] = p.split("-").map(Number);
  return [a, b];
}

function inPorts(ports: (number | string)[], port: number | undefined): boolean {
  return port !== undefined && ports.some((p) => port >= portRange(p)[0] && port <= portRange(p)[1]);
}

export class PolicyOracle {
  private readonly wanZones: Set<string>;
  private readonly wanLinks: { name: string; zone: string; nat6: boolean }[];

  constructor(private readonly site: Site) {
    this.wanLinks = site.links
      .filter((l) => l.role === "wan")
      .map((l) => ({
        name: l.name,
        zone: l.zone ?? "wan",
        nat6: ["masquerade", "prefix"].includes(l.nat?.ipv6 ?? "none"),
      }));
    this.wanZones = new Set(this.wanLinks.map((l) => l.zone));
  }

  isWanZone(zone: string): boolean {
    return this.wanZones.has(zone);
  }

  /** The router's services in a zone. */
  services(zone: string): string[] {
    const z = this.site.zones.find((x) => x.name === zone);
    const declared = z?.services ?? (this.isWanZone(zone) ? [] : ["dhcp", "dns", "ntp", "ping"]);
    const reflected = this.site.mdns.reflect.some((g) => g.zones.includes(zone)) ? ["mdns"] : [];
    return [...new Set([...declared, ...reflected])];
  }

  /** What the router does with a new connection. */
  decide(f: OracleFlow): OracleAnswer {
    if (f.proto === "ospf") return f.to === "router" ? (this.routing(f) ?? this.toRouter(f)) : this.routed(f);
    return (
      this.forward(f) ?? this.dns(f) ?? (f.to === "router" ? (this.routing(f) ?? this.toRouter(f)) : this.routed(f))
    );
  }

  // --------------------------------------------------------------------------------------- addresses

  /** The segment whose subnet (IPv4 cidr or IPv6 prefix) holds an address. */
  private segmentOf(address: string): Site["segments"][number] | undefined {
    return this.site.segments.find((s) =>
      [s.ipv4?.cidr, s.ipv6?.prefix].some((p) => p !== undefined && within(p, address)),
    );
  }

  /** The static route to an address whose gateway is on a segment, the longest such destination first. */
  private insideRouteTo(address: string): { destination: string; segment: Site["segments"][number] } | undefined {
    const hits = this.site.routes
      .filter((r) => within(r.destination, address))
      .map((r) => ({ destination: r.destination, segment: this.segmentOf(r.gateway) }))
      .filter((r): r is { destination: string; segment: Site["segments"][number] } => r.segment !== undefined);
    return hits.sort((a, b) => prefixLength(b.destination) - prefixLength(a.destination))[0];
  }

  /** The zone an inside address is in, or undefined for an address outside the site. */
  zoneOf(address: string): string | undefined {
    return (this.segmentOf(address) ?? this.insideRouteTo(address)?.segment)?.zone;
  }

  /** True when an address is the site's own: a segment's, or behind an inside route to a private prefix. */
  isInternal(address: string): boolean {
    if (this.segmentOf(address)) return true;
    const r = this.insideRouteTo(address);
    return (
      !!r &&
      PRIVATE.some((p) => within(p, r.destination.split("/")[0]) && prefixLength(r.destination) >= prefixLength(p))
    );
  }

  // --------------------------------------------------------------------------------------- dynamic routing

  /** What the routing section opens for its peers, or undefined. */
  private routing(f: OracleFlow): OracleAnswer | undefined {
    const { ospf, bgp } = this.site.routing;
    if (f.proto === "ospf") {
      const seg = this.site.segments.find(
        (s) => ospf?.segments.includes(s.name) && s.ipv4 && within(s.ipv4.cidr, f.src) && s.zone === f.from,
      );
      return seg ? { verdict: "accept", by: "routing:ospf" } : undefined;
    }
    const n = bgp?.neighbors.find((x) => x.address === f.src);
    if (!n) return undefined;
    if (f.proto === "tcp" && f.port === 179) return { verdict: "accept", by: "routing:bgp" };
    if (n.bfd && f.proto === "udp" && (f.port === 3784 || f.port === 4784))
      return { verdict: "accept", by: "routing:bfd" };
    return undefined;
  }

  // --------------------------------------------------------------------------------------- the router's DNS

  /** The zone's router:dns.zones entry, when the router serves DNS there (dns service, segments). */
  private dnsZone(zone: string) {
    const served = this.services(zone).includes("dns") && this.site.segments.some((s) => s.zone === zone);
    return served ? this.site.dns.zones.find((z) => z.zone === zone) : undefined;
  }

  /** Whether the router runs its DNS stack: some zone with the dns service has a segment. */
  private servesDnsAnywhere(): boolean {
    return this.site.segments.some((s) => this.services(s.zone).includes("dns"));
  }

  /** The router's address in the segment of `zone` holding `src` (else its first segment of that family). */
  private gatewayFor(zone: string, src: string): string | undefined {
    const fam = familyOfAddress(src);
    const candidates = this.site.segments
      .filter((s) => s.zone === zone)
      .flatMap((s) => {
        if (fam === 4) return s.ipv4 ? [{ prefix: s.ipv4.cidr, gw: s.ipv4.gateway ?? nthOf(s.ipv4.cidr, 1n) }] : [];
        return s.ipv6 ? [{ prefix: s.ipv6.prefix, gw: s.ipv6.gateway ?? nthOf(s.ipv6.prefix, 1n) }] : [];
      });
    return (candidates.find((c) => within(c.prefix, src)) ?? candidates[0])?.gw;
  }

  private dns(f: OracleFlow): OracleAnswer | undefined {
    if ((f.proto !== "tcp" && f.proto !== "udp") || f.port === undefined) return undefined;
    const z = this.dnsZone(f.from);
    if (!z) return undefined;
    if (f.to === "router")
      return z.encrypted && f.proto === "tcp" && [443, 853].includes(f.port)
        ? { verdict: "accept", by: `dns-encrypted:${f.proto}/${f.port}` }
        : undefined;
    if (z.force === "off" || ![53, 853].includes(f.port)) return undefined;
    if (z.force === "reject" || f.port === 853) return { verdict: "reject", by: `dns-force-${z.force}:${z.zone}` };
    const gw = this.gatewayFor(f.from, f.src);
    if (!gw) return undefined;
    const there = this.toRouter({ ...f, to: "router", dst: gw });
    return { ...there, by: `dns-redirect:${z.zone} ${there.by}`, answeredByRouter: true };
  }

  // --------------------------------------------------------------------------------------- port forwards

  private forwardWans(pf: PortForward): string[] {
    return pf.wans ?? this.wanLinks.map((l) => l.name);
  }

  /** A forward's protocol, port and sources admit the flow. */
  private admits(pf: PortForward, f: OracleFlow): boolean {
    const protos = pf.protocol === "tcp+udp" ? ["tcp", "udp"] : [pf.protocol];
    if (!protos.includes(f.proto) || !inPorts([pf.port], f.port)) return false;
    return !pf.sources || pf.sources.some((s) => within(s, f.src));
  }

  private deliver(pf: PortForward, address: string, port: number | undefined): OracleAnswer["deliverTo"] {
    const start = portRange(pf.port)[0];
    // the host is reached at toPort (+ the offset into the range) in every family: through NAT (NAT44, NAT66), and
    // at a global IPv6 host's own address, whose port the router moves the same way; without toPort, the public port
    const to = pf.toPort !== undefined && port !== undefined ? pf.toPort + (port - start) : port;
    return { address, port: to };
  }

  private forward(f: OracleFlow): OracleAnswer | undefined {
    const fam = familyOfAddress(f.dst);
    const fromWan = this.isWanZone(f.from);
    for (const pf of this.site.portForwards) {
      if (!this.admits(pf, f)) continue;
      const wans = this.forwardWans(pf);
      if (fromWan && f.to === "router" && f.wanAddressOf && wans.includes(f.wanAddressOf)) {
        if (fam === 4)
          return { verdict: "accept", by: `forward:${pf.name}`, deliverTo: this.deliver(pf, pf.to, f.port) };
        const wan = this.wanLinks.find((l) => l.name === f.wanAddressOf);
        if (fam === 6 && pf.ipv6 && isUla(pf.ipv6) && wan?.nat6)
          return { verdict: "accept", by: `forward6:${pf.name}`, deliverTo: this.deliver(pf, pf.ipv6, f.port) };
      }
      if (
        fromWan &&
        f.to !== "router" &&
        pf.ipv6 &&
        !isUla(pf.ipv6) &&
        f.dst === pf.ipv6 &&
        f.via &&
        wans.includes(f.via)
      )
        return { verdict: "accept", by: `pinhole:${pf.name}`, deliverTo: this.deliver(pf, pf.ipv6, f.port) };
      // hairpin: an inside client at the address of one of the forward's WANs, static or leased by DHCP (the
      // loader keeps the ruleset's per-WAN address sets at the links' current addresses)
      if (!fromWan && f.to === "router" && fam === 4 && pf.hairpin && f.wanAddressOf && wans.includes(f.wanAddressOf))
        return { verdict: "accept", by: `hairpin:${pf.name}`, deliverTo: this.deliver(pf, pf.to, f.port) };
    }
    return undefined;
  }

  // --------------------------------------------------------------------------------------- rules

  /** The addresses and prefixes a rule's source or destination list names, @groups expanded. */
  private refs(list: string[]): string[] {
    return list.flatMap((r) =>
      r.startsWith("@") ? (this.site.firewall.addressGroups.find((g) => g.name === r.slice(1))?.addresses ?? []) : [r],
    );
  }

  private ruleMatches(r: FirewallRule, f: OracleFlow): boolean {
    if (!r.from.includes("any") && !r.from.includes(f.from)) return false;
    if (f.to === "router" ? !r.to.includes("router") : !r.to.includes("any") && !r.to.includes(f.to)) return false;
    const protoOk =
      r.protocol === "any" ||
      r.protocol === f.proto ||
      (r.protocol === "tcp+udp" && (f.proto === "tcp" || f.proto === "udp"));
    if (!protoOk) return false;
    if (r.ports && (f.proto === "icmp" || !inPorts(r.ports, f.port))) return false;
    if (r.source && !this.refs(r.source).some((x) => within(x, f.src))) return false;
    if (r.destination && !this.refs(r.destination).some((x) => within(x, f.dst))) return false;
    return true;
  }

  private firstRule(f: OracleFlow): OracleAnswer | undefined {
    const r = this.site.firewall.rules.find((x) => this.ruleMatches(x, f));
    return r ? { verdict: r.action, by: `rule:${r.name}` } : undefined;
  }

  private routed(f: OracleFlow): OracleAnswer {
    const rule = this.firstRule(f);
    if (rule) return rule;
    const policies = this.site.firewall.policies;
    for (const [from, to] of [
      [f.from, f.to],
      [f.from, "any"],
      ["any", f.to],
      ["any", "any"],
    ]) {
      const p = policies.find((x) => x.from === from && x.to === to);
      if (p) return { verdict: p.action, by: `policy:${p.from}>${p.to}` };
    }
    if (f.from === f.to) return { verdict: "accept", by: "intra-zone" };
    return { verdict: this.site.firewall.defaultAction, by: "default" };
  }

  private toRouter(f: OracleFlow): OracleAnswer {
    const rule = this.firstRule(f);
    if (rule) return rule;
    if (f.proto === "ospf") return { verdict: "drop", by: "input-default" };
    const zone = this.site.zones.find((z) => z.name === f.from);
    const mgmt = [
      ...MANAGEMENT_PORTS,
      this.site.dataplane.metricsPort,
      ...(this.site.observability.enabled ? OBSERVABILITY_UI_PORTS : []),
      ...(this.servesDnsAnywhere() ? [this.site.dns.metricsPort] : []),
    ];
    if (zone?.management && f.proto === "tcp" && f.port !== undefined && mgmt.includes(f.port))
      return { verdict: "accept", by: "management" };
    for (const s of this.services(f.from)) {
      const sp = SERVICE_PORTS[s];
      if (f.proto === "icmp" ? sp.echo : f.port !== undefined && sp[f.proto].includes(f.port))
        return { verdict: "accept", by: f.proto === "icmp" ? "service:ping" : `service:${f.proto}/${f.port}` };
    }
    return { verdict: "drop", by: "input-default" };
  }
}

/** Private IPv4 space (RFC 1918, RFC 6598) and unique local IPv6 (RFC 4193). */
const PRIVATE = ["10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];

function prefixLength(ref: string): number {
  const len = ref.split("/")[1];
  return len === undefined ? (ref.includes(":") ? 128 : 32) : Number(len);
}

function isUla(addr: string): boolean {
  return within("fc00::/7", addr);
}
