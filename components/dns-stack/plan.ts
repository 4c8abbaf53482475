/**
 * What the router's DNS serves, derived from the site: the zones it answers in (those whose services include
 * dns) with their clients, listening addresses and filtering profile; the authoritative zones (the site's domain
 * and the reverse zones of every segment prefix) with their static records; the domain lists and where they live
 * on the router; and how the resolver reaches the internet. Every renderer of the stack reads this plan, so the
 * daemons agree on addresses, names and paths. Pure and deterministic.
 */
import type { DnsList, DnsProfile, Site } from "../site/schema";
import { segmentPrefixes, type SegmentPlan, type SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { compareAddresses, familyOf, fromBigInt, parsePrefix, contains } from "../site/ip";
import { durationSeconds } from "../site/duration";

/** Where each daemon of the stack listens on the node's loopback (host network). */
export const PORTS = {
  /** Unbound, the recursive resolver (only dnsdist asks it). */
  resolver: 5335,
  /** Knot, the authoritative server of the site's zones (Unbound stubs to it, D2 updates it). */
  authoritative: 5300,
  /** Kea's DHCP-DDNS daemon (D2), where the DHCP servers send name-change requests. */
  ddns: 53001,
  /** The stats collector's protobuf input (dnsdist's remote logger). */
  statsInput: 5342,
  /** dnsdist's own web server: its built-in metrics and the probes. */
  dnsdistWeb: 8083,
} as const;

/** Paths inside the DNS containers (ConfigMap, Secret and host directories are mounted there; see k8s.ts). */
export const PATHS = {
  config: "/etc/router/dns",
  secrets: "/etc/router/dns-secrets",
  /** Host directory of the stack's state (zone journals, trust anchor, list caches, query log). */
  state: "/var/lib/router/dns",
  /** Where the checked lists are, one `<name>.cdb` each (written by the feeds job, read by dnsdist). */
  lists: "/var/lib/router/dns/lists",
  knotDb: "/var/lib/router/dns/knot",
  unboundState: "/var/lib/router/dns/unbound",
  queryLog: "/var/lib/router/dns/querylog",
  /** CA bundle the resolver checks DoT upstreams and the fetcher checks feed servers with. */
  caBundle: "/etc/ssl/certs/ca-certificates.crt",
} as const;

/** Name of the TSIG key D2 signs its updates with. */
export const TSIG_KEY_NAME = "router-ddns";

export interface DnsZonePlan {
  /** Zone name (router:zones). */
  name: string;
  /** Its segments, by VLAN id. */
  segments: string[];
  /** Client prefixes: every IPv4 and IPv6 prefix of its segments. */
  clients: string[];
  /** The router's addresses in the zone (its segments' gateways), where the zone's clients reach the resolver. */
  listen: string[];
  /** Filtering profile, when it has one. */
  profile?: string;
  force: "off" | "redirect" | "reject";
  encrypted: boolean;
  queryLog: boolean;
}

export interface RecordPlan {
  /** Owner, fully qualified without the trailing dot. */
  name: string;
  type: "A" | "AAAA" | "CNAME" | "TXT" | "SRV" | "PTR";
  /** Data in zone-file presentation (names with the trailing dot, TXT quoted). */
  data: string;
  ttl: number;
}

export interface AuthZonePlan {
  /** Zone name without the trailing dot. */
  name: string;
  kind: "forward" | "reverse4" | "reverse6";
  records: RecordPlan[];
}

export interface ListPlan {
  name: string;
  kind: DnsList["kind"];
  /** Inline names (lower case, sorted, unique). */
  entries: string[];
  feed?: { url: string; refreshSeconds: number; minEntries: number };
  /** The fetched list on the router, in the constant database dnsdist reads. */
  file?: string;
}

export interface DnsPlan {
  /** The site's domain, authoritative on the router. */
  domain: string;
  /** Served zones, in the site's order. */
  zones: DnsZonePlan[];
  /** Authoritative zones: the site's domain first, then the reverse zones by name. */
  authZones: AuthZonePlan[];
  lists: ListPlan[];
  /** Profiles some zone uses, in the site's order. */
  profiles: DnsProfile[];
  /** DoT upstreams when any is set, else the Do53 ones; empty when the resolver recurses itself. */
  forwarders: { address: string; port: number; tlsName?: string }[];
  dnssec: boolean;
  trustAnchors: string[];
  /** Domains whose answers may hold private addresses: the site's own, its reverse zones and the extra ones. */
  privateDomains: string[];
  /** Addresses that public answers may not hold (rebinding protection). */
  privateAddresses: string[];
  metricsPort: number;
  /** Threads of the front per listening address. */
  frontThreads: number;
  /** True when some WAN may carry IPv6 (the resolver then also asks over IPv6). */
  ipv6Upstream: boolean;
}

/** Private and special-purpose ranges a public name never points at (RFC 1918, 6598, 3927, 4193, 4291). */
const SPECIAL_RANGES = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "::1/128",
  "::ffff:0:0/96",
  "fc00::/7",
  "fe80::/10",
];

/** True when the router answers DNS in the zone. */
export function servesDns(model: PolicyModel, zone: string): boolean {
  return (model.services.get(zone) ?? []).includes("dns");
}

/** The owner of an address's PTR record (`4.3.2.1.in-addr.arpa`, nibbles under ip6.arpa). */
export function reverseName(address: string): string {
  if (familyOf(address) === 4) return `${address.split(".").reverse().join(".")}.in-addr.arpa`;
  const hex = parsePrefix(`${address}/128`).first.toString(16).padStart(32, "0");
  return `${[...hex].reverse().join(".")}.ip6.arpa`;
}

/**
 * The reverse zones that cover a prefix exactly, at the next label boundary (octets for IPv4, nibbles for
 * IPv6): a /23 gives two /24 zones, a /64 one nibble zone. Longer than /24 gives the /24 holding it.
 */
export function reverseZones(cidr: string): string[] {
  const p = parsePrefix(cidr);
  const unit = p.family === 4 ? 8 : 4;
  const width = p.family === 4 ? 32 : 128;
  const boundary = p.family === 4 && p.length > 24 ? 24 : Math.ceil(p.length / unit) * unit;
  const base = p.family === 4 && p.length > 24 ? (p.first >> 8n) << 8n : p.first;
  const count = p.length < boundary ? 1 << (boundary - p.length) : 1;
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const first = base + (BigInt(i) << BigInt(width - boundary));
    const labels = boundary / unit;
    if (p.family === 4)
      out.push(`${fromBigInt(first, 4).split(".").slice(0, labels).reverse().join(".")}.in-addr.arpa`);
    else {
      const hex = first.toString(16).padStart(32, "0").slice(0, labels);
      out.push(`${[...hex].reverse().join(".")}.ip6.arpa`);
    }
  }
  return out;
}

function zonePlans(site: Site, plan: SitePlan, model: PolicyModel): DnsZonePlan[] {
  return site.zones
    .filter((z) => servesDns(model, z.name))
    .map((z) => {
      const segs = plan.segments.filter((s) => s.zone === z.name);
      const setting = site.dns.zones.find((x) => x.zone === z.name);
      return {
        name: z.name,
        segments: segs.map((s) => s.name),
        clients: segs.flatMap(segmentPrefixes),
        listen: segs.flatMap((s) => [...(s.ipv4 ? [s.ipv4.gateway] : []), ...(s.ipv6 ? [s.ipv6.gateway] : [])]),
        profile: setting?.profile,
        // forcing and encryption are the policy model's (one statement: the ruleset and the review read it too)
        force: model.dns.force.get(z.name) ?? ("off" as const),
        encrypted: model.dns.encrypted.includes(z.name),
        queryLog: setting?.queryLog ?? true,
      };
    })
    .filter((z) => z.segments.length > 0);
}

const dot = (name: string) => `${name}.`;

/** The static records of the site's domain: the router (apex and per segment), reservations, the site's own. */
function forwardRecords(site: Site, plan: SitePlan): RecordPlan[] {
  const ttl = site.dns.ttl;
  const out: RecordPlan[] = [];
  const addr = (name: string, a: string) => out.push({ name, type: familyOf(a) === 4 ? "A" : "AAAA", data: a, ttl });
  const mgmt = plan.segments.find((s) => s.name === plan.managementSegment)!;
  if (mgmt.ipv4) addr(plan.fqdn, mgmt.ipv4.gateway);
  if (mgmt.ipv6) addr(plan.fqdn, mgmt.ipv6.gateway);
  for (const seg of plan.segments) {
    if (seg.ipv4) addr(`${plan.hostname}.${seg.domain}`, seg.ipv4.gateway);
    if (seg.ipv6) addr(`${plan.hostname}.${seg.domain}`, seg.ipv6.gateway);
    for (const r of seg.dhcp.reservations) {
      if (r.ipv4) addr(`${r.name}.${seg.domain}`, r.ipv4);
      if (r.ipv6) addr(`${r.name}.${seg.domain}`, r.ipv6);
    }
  }
  for (const r of site.dns.records) {
    const t = r.ttl ?? ttl;
    if (r.type === "A" || r.type === "AAAA") out.push({ name: r.name, type: r.type, data: r.address, ttl: t });
    else if (r.type === "CNAME") out.push({ name: r.name, type: "CNAME", data: dot(r.target), ttl: t });
    else if (r.type === "SRV")
      out.push({ name: r.name, type: "SRV", data: `${r.priority} ${r.weight} ${r.port} ${dot(r.target)}`, ttl: t });
    else out.push({ name: r.name, type: "TXT", data: txtData(r.text), ttl: t });
  }
  return out;
}

/** TXT data as zone-file strings of at most 255 characters each (RFC 1035 §3.3.14). */
export function txtData(text: string): string {
  const chunks: string[] = [];
  for (let i = 0; i < text.length; i += 255) chunks.push(text.slice(i, i + 255));
  return chunks.map((c) => `"${c.replace(/[\\"]/g, (m) => `\\${m}`)}"`).join(" ");
}

/** PTR records for the router's and the reservations' addresses, then the site's own A/AAAA records. */
function ptrRecords(site: Site, plan: SitePlan, forward: RecordPlan[]): RecordPlan[] {
  const seen = new Set<string>();
  const out: RecordPlan[] = [];
  for (const r of forward) {
    if (r.type !== "A" && r.type !== "AAAA") continue;
    const owner = reverseName(r.data);
    if (seen.has(owner) || r.name === plan.fqdn) continue;
    seen.add(owner);
    out.push({ name: owner, type: "PTR", data: dot(r.name), ttl: site.dns.ttl });
  }
  return out;
}

function authZones(site: Site, plan: SitePlan): AuthZonePlan[] {
  const forward = forwardRecords(site, plan);
  const reverse = new Map<string, AuthZonePlan>();
  const add = (name: string, kind: AuthZonePlan["kind"]) =>
    reverse.has(name) || reverse.set(name, { name, kind, records: [] });
  for (const seg of plan.segments) {
    if (seg.ipv4) for (const z of reverseZones(seg.ipv4.cidr)) add(z, "reverse4");
    if (seg.ipv6) for (const z of reverseZones(seg.ipv6.prefix)) add(z, "reverse6");
  }
  for (const ptr of ptrRecords(site, plan, forward)) {
    const zone = [...reverse.values()].find((z) => ptr.name.endsWith(`.${z.name}`));
    if (zone) zone.records.push(ptr);
  }
  const reverseList = [...reverse.values()].sort((a, b) => a.name.localeCompare(b.name));
  return [{ name: plan.domain, kind: "forward", records: forward }, ...reverseList];
}

function listPlans(site: Site): ListPlan[] {
  return site.dns.lists.map((l) => ({
    name: l.name,
    kind: l.kind,
    entries: [...new Set(l.entries.map((e) => e.toLowerCase()))].sort(),
    ...(l.url
      ? {
          feed: { url: l.url, refreshSeconds: durationSeconds(l.refresh), minEntries: l.minEntries },
          file: `${PATHS.lists}/${l.name}.cdb`,
        }
      : {}),
  }));
}

function forwarders(site: Site): DnsPlan["forwarders"] {
  if (!site.dns.forward) return [];
  const dot = site.dns.upstreams.filter((u) => u.protocol === "DoT");
  // Never mix: when any upstream speaks DoT, no query leaves in plain text.
  const chosen = dot.length ? dot : site.dns.upstreams.filter((u) => u.protocol === "Do53");
  return chosen.map((u) => ({
    address: u.address,
    port: u.protocol === "DoT" ? 853 : 53,
    ...(u.protocol === "DoT" ? { tlsName: u.tlsServerName } : {}),
  }));
}

/** Addresses public answers may not hold: special ranges, the site's own prefixes and the cluster's networks. */
function privateAddresses(site: Site, plan: SitePlan): string[] {
  const own = [
    ...plan.segments.flatMap((s: SegmentPlan) => segmentPrefixes(s)),
    ...site.cluster.podCidrs,
    ...site.cluster.serviceCidrs,
  ];
  const covered = (c: string) =>
    SPECIAL_RANGES.some(
      (r) =>
        familyOf(r) === familyOf(c) &&
        contains(r, parsePrefix(c).cidr.split("/")[0]) &&
        parsePrefix(r).length <= parsePrefix(c).length,
    );
  const extra = [...new Set(own)].filter((c) => !covered(c));
  const byFamily = (a: string, b: string) =>
    (familyOf(a) ?? 0) - (familyOf(b) ?? 0) || compareAddresses(a.split("/")[0], b.split("/")[0]);
  return [...SPECIAL_RANGES, ...extra.sort(byFamily)];
}

/** Plans the DNS of a valid site. */
export function planDns(site: Site, plan: SitePlan, model: PolicyModel): DnsPlan {
  const zones = zonePlans(site, plan, model);
  const used = new Set(zones.flatMap((z) => (z.profile ? [z.profile] : [])));
  const auth = authZones(site, plan);
  return {
    domain: plan.domain,
    zones,
    authZones: auth,
    lists: listPlans(site),
    profiles: site.dns.profiles.filter((p) => used.has(p.name)),
    forwarders: forwarders(site),
    dnssec: site.dns.dnssec,
    trustAnchors: [...site.dns.trustAnchors],
    privateDomains: [...new Set([plan.domain, ...site.dns.privateDomains])],
    privateAddresses: privateAddresses(site, plan),
    metricsPort: site.dns.metricsPort,
    frontThreads: site.dns.frontThreads,
    ipv6Upstream: plan.wans.some((w) => w.ipv6.mode !== "none"),
  };
}
