/**
 * dnsdist: the router's DNS front. It listens on the router's addresses in every zone the router answers DNS
 * in (53, and DoT on 853 and DoH on 443 where the zone has encrypted DNS), answers what its packet cache holds,
 * filters by the client's zone (allow lists first, then block lists, or allow-only), and sends the rest to
 * Unbound. The site's own names bypass the cache and the filters. Every answer is reported to the stats
 * collector (dnsdist's protobuf remote logger) under an identity that names the client's zone and how it was
 * answered: `<zone>` from the resolver, `<zone>\tcache` from the cache, `<zone>\tblocked\t<list>` blocked.
 *
 * Lists fetched from feeds are constant databases (CDB) that the feeds job replaces atomically; dnsdist notices
 * a new file within REFRESH_SECONDS and swaps it without dropping a query. Inline entries are suffix sets in this
 * file. A name on a list also covers every name below it (the lookup tries the name and each parent). Pure.
 */
import type { Site } from "../site/schema";
import { PATHS, PORTS, type DnsPlan, type DnsZonePlan, type ListPlan } from "./plan";

/** How often dnsdist checks whether a list's file was replaced. */
export const REFRESH_SECONDS = 5;
/** The certificate and key of DoT/DoH, from the stack's Secret. */
export const TLS_CERT = `${PATHS.secrets}/tls.crt`;
export const TLS_KEY = `${PATHS.secrets}/tls.key`;
/** Tag dnsdist puts on a query a list blocks; its value names the list (or ALLOW_ONLY). */
export const BLOCKED_TAG = "blocked-by";
export const ALLOW_ONLY = "allow-only";

const q = (s: string) => JSON.stringify(s);
const lua = (s: string) => s.replace(/-/g, "_");

function endpoint(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

function listeners(dns: DnsPlan): string[] {
  const out: string[] = [];
  let first = true;
  for (const z of dns.zones)
    for (const a of z.listen) {
      out.push(`${first ? "setLocal" : "addLocal"}(${q(endpoint(a, 53))}, {reusePort=true})`);
      first = false;
      if (!z.encrypted) continue;
      out.push(`addTLSLocal(${q(endpoint(a, 853))}, ${q(TLS_CERT)}, ${q(TLS_KEY)}, {minTLSVersion="tls1.2"})`);
      out.push(
        `addDOHLocal(${q(endpoint(a, 443))}, ${q(TLS_CERT)}, ${q(TLS_KEY)}, "/dns-query", {minTLSVersion="tls1.2"})`,
      );
    }
  return out;
}

function zoneGroups(dns: DnsPlan): string[] {
  return dns.zones.flatMap((z) => [
    `zone_${lua(z.name)} = newNMG()`,
    ...z.clients.map((c) => `zone_${lua(z.name)}:addMask(${q(c)})`),
  ]);
}

/** A suffix set of inline names and/or the feed's database, as one rule expression. */
function listRule(l: ListPlan): string {
  const parts: string[] = [];
  if (l.entries.length) parts.push(`SuffixMatchNodeRule(inline_${lua(l.name)})`);
  if (l.file) parts.push(`KeyValueStoreLookupRule(feed_${lua(l.name)}, KeyValueLookupKeySuffix(1, false))`);
  return parts.length === 1 ? parts[0] : `OrRule({${parts.join(", ")}})`;
}

function listObjects(dns: DnsPlan): string[] {
  const used = new Set(dns.profiles.flatMap((p) => [...p.block, ...p.allow]));
  return dns.lists
    .filter((l) => used.has(l.name))
    .flatMap((l) => [
      ...(l.entries.length
        ? [
            `inline_${lua(l.name)} = newSuffixMatchNode()`,
            ...l.entries.map((e) => `inline_${lua(l.name)}:add(newDNSName(${q(e)}))`),
          ]
        : []),
      ...(l.file ? [`feed_${lua(l.name)} = newCDBKVStore(${q(l.file)}, ${REFRESH_SECONDS})`] : []),
    ]);
}

/** The filtering rules of one profile, for the clients of the zones that use it. */
function profileRules(dns: DnsPlan, profile: DnsPlan["profiles"][number]): string[] {
  const zones = dns.zones.filter((z) => z.profile === profile.name);
  if (zones.length === 0) return [];
  const group = `profile_${lua(profile.name)}`;
  const lists = new Map(dns.lists.map((l) => [l.name, l]));
  const clients = `NetmaskGroupRule(${group})`;
  const out = [
    `-- profile ${profile.name}: zones ${zones.map((z) => z.name).join(", ")}`,
    `${group} = newNMG()`,
    ...zones.flatMap((z) => z.clients.map((c) => `${group}:addMask(${q(c)})`)),
  ];
  for (const name of profile.allow)
    out.push(`addAction(AndRule({${clients}, ${listRule(lists.get(name)!)}}), PoolAction(""))`);
  if (profile.allowOnly) out.push(`addAction(${clients}, SetTagAction(${q(BLOCKED_TAG)}, ${q(ALLOW_ONLY)}))`);
  for (const name of profile.block)
    out.push(
      `addAction(AndRule({${clients}, NotRule(TagRule(${q(BLOCKED_TAG)})), ${listRule(lists.get(name)!)}}), SetTagAction(${q(BLOCKED_TAG)}, ${q(name)}))`,
    );
  const answer = profile.blockedAnswer === "null" ? 'SpoofAction({"0.0.0.0", "::"})' : "RCodeAction(DNSRCode.NXDOMAIN)";
  out.push(`addAction(AndRule({${clients}, TagRule(${q(BLOCKED_TAG)})}), ${answer})`);
  return out;
}

/** The names a zone's blocked answers may carry in their identity: its profile's lists. */
function blockers(dns: DnsPlan, z: DnsZonePlan): string[] {
  const p = dns.profiles.find((x) => x.name === z.profile);
  if (!p) return [];
  return p.allowOnly ? [ALLOW_ONLY] : [...p.block];
}

function reporting(dns: DnsPlan): string[] {
  const out = [`stats = newRemoteLogger(${q(`127.0.0.1:${PORTS.statsInput}`)}, 2, 100000, 1)`];
  for (const z of dns.zones) {
    const rule = `NetmaskGroupRule(zone_${lua(z.name)})`;
    const log = (id: string) => `RemoteLogResponseAction(stats, nil, true, {serverID=${q(id)}})`;
    for (const b of blockers(dns, z))
      out.push(
        `addSelfAnsweredResponseAction(AndRule({${rule}, TagRule(${q(BLOCKED_TAG)}, ${q(b)})}), ${log(`${z.name}\tblocked\t${b}`)})`,
      );
    out.push(`addCacheHitResponseAction(${rule}, ${log(`${z.name}\tcache`)})`);
    out.push(`addResponseAction(${rule}, ${log(z.name)})`);
  }
  return out;
}

export function renderDnsdist(site: Site, dns: DnsPlan): string {
  const local = dns.authZones.map((z) => z.name);
  return [
    `-- dnsdist of site ${site.site.name}: the DNS front of the zones ${dns.zones.map((z) => z.name).join(", ")} (rendered).`,
    "-- No security polling: it would query the internet through the node's resolver.",
    'setSecurityPollSuffix("")',
    ...listeners(dns),
    `setACL({${dns.zones.flatMap((z) => z.clients.map(q)).join(", ")}})`,
    "-- the resolver; always used (a health check failing on the WAN would take the site's own names down too)",
    `newServer({address=${q(`127.0.0.1:${PORTS.resolver}`)}, name="unbound"})`,
    "getServer(0):setUp()",
    "cache = newPacketCache(100000, {maxTTL=86400, minTTL=0, temporaryFailureTTL=5, staleTTL=60})",
    'getPool(""):setCache(cache)',
    "-- clients by zone",
    ...zoneGroups(dns),
    "-- the site's own names: never cached here (a released lease's name must go at once), never filtered",
    "site_names = newSuffixMatchNode()",
    ...local.map((z) => `site_names:add(newDNSName(${q(z)}))`),
    "addAction(SuffixMatchNodeRule(site_names), SetSkipCacheAction())",
    'addAction(SuffixMatchNodeRule(site_names), PoolAction(""))',
    "-- lists",
    ...listObjects(dns),
    ...dns.profiles.flatMap((p) => profileRules(dns, p)),
    "-- every answer to the stats collector, under an identity naming its zone and how it was answered",
    ...reporting(dns),
    `webserver(${q(`127.0.0.1:${PORTS.dnsdistWeb}`)})`,
    'setWebserverConfig({acl="127.0.0.0/8", statsRequireAuthentication=false, apiRequiresAuthentication=false})',
    "",
  ].join("\n");
}
