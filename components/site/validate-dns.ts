/**
 * Cross-field rules of router:dns: records inside the site's domain and consistent with the names the router
 * publishes itself, lists and profiles that refer to each other correctly, per-zone settings only for zones the
 * router answers DNS in, and upstreams the resolver can actually forward to.
 */
import type { Dns, DnsRecord } from "./schema-dns";
import { configPath, type SiteIssue } from "./issues";
import { durationSeconds } from "./duration";
import { defaultServices } from "./policy";
import { wanZone } from "./plan";
import type { PartialSite } from "./validate";
import { isIncomplete } from "./partial";

type Issues = SiteIssue[];

const at = (...p: (string | number)[]) => configPath("dns", p);

/** True when `name` is `domain` or below it. */
export function inDomain(name: string, domain: string): boolean {
  return name === domain || name.endsWith(`.${domain}`);
}

function firstDuplicate<T>(items: T[], key: (t: T) => string): Map<number, number> {
  const seen = new Map<string, number>();
  const dupes = new Map<number, number>();
  items.forEach((item, i) => {
    const k = key(item);
    const first = seen.get(k);
    if (first === undefined) seen.set(k, i);
    else dupes.set(i, first);
  });
  return dupes;
}

function checkUpstreams(dns: Dns, out: Issues): void {
  if (!dns.forward) return;
  dns.upstreams.forEach((u, i) => {
    if (u.protocol === "DoH")
      out.push({
        path: at("upstreams", i, "protocol"),
        message:
          "DoH cannot carry the resolver's forwarding (allowed: Do53 or DoT upstreams, or forward: false to recurse from the root servers)",
      });
  });
}

/** Names the router publishes itself in the site's domain: its own per segment and the reservations'. */
function generatedNames(s: PartialSite): Map<string, string> {
  const names = new Map<string, string>();
  if (!s.site) return names;
  const domain = s.site.domain;
  const host = s.node?.hostname ?? s.site.name;
  names.set(`${host}.${domain}`, "the router's own name");
  for (const { value: seg } of s.segments ?? []) {
    const segDomain = `${seg.name}.${domain}`;
    names.set(`${host}.${segDomain}`, `the router's name in segment ${seg.name}`);
    for (const r of seg.dhcp.reservations) names.set(`${r.name}.${segDomain}`, `reservation ${r.name} of ${seg.name}`);
  }
  return names;
}

function recordKey(r: DnsRecord): string {
  switch (r.type) {
    case "A":
    case "AAAA":
      return `${r.name} ${r.type} ${r.address}`;
    case "CNAME":
      return `${r.name} CNAME`;
    case "TXT":
      return `${r.name} TXT ${r.text}`;
    case "SRV":
      return `${r.name} SRV ${r.priority} ${r.weight} ${r.port} ${r.target}`;
  }
}

function checkRecords(s: PartialSite, dns: Dns, out: Issues): void {
  const domain = s.site?.domain;
  const generated = generatedNames(s);
  dns.records.forEach((r, i) => {
    if (domain && !inDomain(r.name, domain))
      out.push({
        path: at("records", i, "name"),
        message: `${r.name} is outside the site's domain ${domain} (allowed: ${domain} or a name below it; the router is authoritative for nothing else)`,
      });
    if (r.type === "SRV" && !/^_[a-z0-9-]+\._[a-z0-9-]+\./.test(r.name))
      out.push({
        path: at("records", i, "name"),
        message: `${r.name} does not name a service (allowed: _service._proto.name, e.g. _ipp._tcp.printer.${domain ?? "lab.home.arpa"})`,
      });
    if ((r.type === "A" || r.type === "AAAA" || r.type === "CNAME") && generated.has(r.name))
      out.push({
        path: at("records", i, "name"),
        message: `${r.name} is ${generated.get(r.name)} (allowed: another name; the router publishes that one itself)`,
      });
    if (r.type === "CNAME" && domain && r.name === domain)
      out.push({
        path: at("records", i, "name"),
        message: `a CNAME at the zone's apex ${domain} would sit beside its SOA and NS records (allowed: a name below ${domain})`,
      });
  });
  for (const [i, first] of firstDuplicate(dns.records, recordKey))
    out.push({
      path: at("records", i),
      message: `${dns.records[i].type === "CNAME" ? "a second CNAME for" : "the same record as"} records[${first}] (${dns.records[i].name}) (allowed: each record once, one CNAME per name)`,
    });
  const cnames = new Map<string, number>();
  dns.records.forEach((r, i) => r.type === "CNAME" && !cnames.has(r.name) && cnames.set(r.name, i));
  dns.records.forEach((r, i) => {
    const c = cnames.get(r.name);
    if (c !== undefined && r.type !== "CNAME")
      out.push({
        path: at("records", i),
        message: `${r.name} has a CNAME (records[${c}]), so it can hold no other data (allowed: the CNAME alone, or another name for this ${r.type} record)`,
      });
  });
}

function checkLists(dns: Dns, out: Issues): void {
  for (const [i, first] of firstDuplicate(dns.lists, (l) => l.name))
    out.push({
      path: at("lists", i, "name"),
      message: `duplicate list "${dns.lists[i].name}" (also at lists[${first}]; allowed: each name once)`,
    });
  dns.lists.forEach((l, i) => {
    if (l.entries.length === 0 && !l.url)
      out.push({
        path: at("lists", i),
        message: "has neither entries nor a url, so it would hold no name (allowed: inline entries, a url, or both)",
      });
    if (l.url === undefined) return;
    const s = durationSeconds(l.refresh);
    if (s < 300 || s > 7 * 86400)
      out.push({
        path: at("lists", i, "refresh"),
        message: `${l.refresh} (allowed: 5m to 168h; more often would hammer the list's server, less often leaves it stale)`,
      });
  });
}

function checkProfiles(dns: Dns, out: Issues): void {
  for (const [i, first] of firstDuplicate(dns.profiles, (p) => p.name))
    out.push({
      path: at("profiles", i, "name"),
      message: `duplicate profile "${dns.profiles[i].name}" (also at profiles[${first}]; allowed: each name once)`,
    });
  const kinds = new Map(dns.lists.map((l) => [l.name, l.kind]));
  const names = (kind: string) =>
    dns.lists
      .filter((l) => l.kind === kind)
      .map((l) => l.name)
      .join(", ") || `none: add a list of kind ${kind} to router:dns.lists`;
  dns.profiles.forEach((p, i) => {
    for (const field of ["block", "allow"] as const)
      p[field].forEach((name, j) => {
        const kind = kinds.get(name);
        if (kind !== field)
          out.push({
            path: at("profiles", i, field, j),
            message: `${kind ? `"${name}" is a list of kind ${kind}` : `unknown list "${name}"`} (allowed: ${names(field)})`,
          });
      });
    if (p.allowOnly && p.allow.length === 0)
      out.push({
        path: at("profiles", i, "allowOnly"),
        message:
          "with no allow list, every name outside the site would be blocked (allowed: name allow lists, or allowOnly: false)",
      });
    if (p.allowOnly && p.block.length > 0)
      out.push({
        path: at("profiles", i, "block"),
        message:
          "has no effect with allowOnly: every name not on an allow list is blocked already (allowed: no block lists here, or allowOnly: false)",
      });
  });
}

/** Services of each zone as the policy sees them (its own list, or the defaults). */
function zoneServices(s: PartialSite): Map<string, { index: number; services: string[]; wan: boolean }> {
  const wans = new Set((s.links ?? []).filter((l) => l.value.role === "wan").map((l) => wanZone(l.value)));
  return new Map(
    (s.zones ?? []).map(({ index, value: z }) => [
      z.name,
      { index, services: z.services ?? defaultServices(wans.has(z.name)), wan: wans.has(z.name) },
    ]),
  );
}

function checkZones(s: PartialSite, dns: Dns, out: Issues): void {
  for (const [i, first] of firstDuplicate(dns.zones, (z) => z.zone))
    out.push({
      path: at("zones", i, "zone"),
      message: `zone "${dns.zones[i].zone}" is already set at zones[${first}] (allowed: one entry per zone)`,
    });
  const profiles = new Set(dns.profiles.map((p) => p.name));
  const zones = s.zones && !isIncomplete(s, "zones") ? zoneServices(s) : undefined;
  const served = zones ? [...zones].filter(([, z]) => z.services.includes("dns")).map(([n]) => n) : [];
  dns.zones.forEach((z, i) => {
    if (z.profile !== undefined && !profiles.has(z.profile))
      out.push({
        path: at("zones", i, "profile"),
        message: `unknown profile "${z.profile}" (allowed: ${[...profiles].join(", ") || "a profile from router:dns.profiles"})`,
      });
    if (!zones) return;
    const zone = zones.get(z.zone);
    if (!zone)
      out.push({
        path: at("zones", i, "zone"),
        message: `unknown zone "${z.zone}" (allowed: a zone with the dns service: ${served.join(", ") || "none"})`,
      });
    else if (!zone.services.includes("dns"))
      out.push({
        path: at("zones", i, "zone"),
        message: `zone "${z.zone}" ${zone.wan ? "is a WAN zone, where the router never answers DNS" : `does not have the dns service (router:zones[${zone.index}].services)`} (allowed: ${served.join(", ") || "a zone with the dns service"})`,
      });
  });
}

function checkPorts(s: PartialSite, dns: Dns, out: Issues): void {
  if (s.dataplane && s.dataplane.metricsPort === dns.metricsPort)
    out.push({
      path: at("metricsPort"),
      message: `${dns.metricsPort} is the data plane's metrics port (allowed: another port from 1024 to 65535)`,
    });
}

/** Runs the DNS rules. */
export function validateDns(s: PartialSite): SiteIssue[] {
  const dns = s.dns;
  if (!dns) return [];
  const out: Issues = [];
  checkUpstreams(dns, out);
  checkRecords(s, dns, out);
  checkLists(dns, out);
  checkProfiles(dns, out);
  checkZones(s, dns, out);
  checkPorts(s, dns, out);
  return out;
}
