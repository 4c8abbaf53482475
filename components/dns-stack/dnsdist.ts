/**
 * dnsdist: the router's DNS front. It listens on the router's addresses in every zone the router answers DNS
 * in (53, and DoT on 853 and DoH on 443 where the zone has encrypted DNS), answers what its packet cache holds,
 * filters by the client's zone (allow lists first, then block lists, or allow-only), and sends the rest to
 * Unbound. The site's own names go to Unbound through a pool without cache and are never filtered.
 *
 * Analytics cost nothing per query beyond a few rule checks: each zone's answers are counted by named rules
 * (dnsdist counts every rule's matches; the stats collector reads them from dnsdist's metrics and names them by
 * zone: `<zone>/cache`, `<zone>/resolved`, `<zone>/servfail`, `<zone>/blocked/<list>`). Answers are reported
 * to the collector (dnsdist's protobuf remote logger) for the query log and the latency histograms — every
 * answer where the zone's query log is on, one in SAMPLE otherwise — under an identity naming the zone and how
 * the answer was made: `<zone>`, `<zone>\tcache`, `<zone>\tblocked\t<list>`.
 *
 * Lists fetched from feeds are constant databases (CDB) that the feeds job replaces atomically; dnsdist notices
 * a new file within REFRESH_SECONDS and swaps it without dropping a query. Inline entries are suffix sets in this
 * file. A name on a list also covers every name below it (the lookup tries the name and each parent). Pure.
 */
import type { Site } from "../site/schema";
import { PATHS, PORTS, type DnsPlan, type DnsZonePlan, type ListPlan } from "./plan";

/** How often dnsdist checks whether a list's file was replaced (a stat(2) at most this often: cheap). */
export const REFRESH_SECONDS = 1;
/** The certificate and key of DoT/DoH, from the stack's Secret. */
export const TLS_CERT = `${PATHS.secrets}/tls.crt`;
export const TLS_KEY = `${PATHS.secrets}/tls.key`;
/** Tag dnsdist puts on a query a list blocks; its value names the list (or ALLOW_ONLY). */
export const BLOCKED_TAG = "blocked-by";
export const ALLOW_ONLY = "allow-only";
/** Tag dnsdist puts on a query whose client a profile filters; its value names the profile. */
export const PROFILE_TAG = "profile";
/**
 * One answer in SAMPLE is reported from a zone whose query log is off (for its latency histogram). A report is the
 * front's most costly step per answer (a protobuf message of the answer, queued to the logger's thread): with one
 * in 8 instead of 32 the front spent 5–9 % more CPU per cached answer in the DNS benchmark (README). One in 32 still
 * gives a busy zone thousands of samples a minute; a quiet zone fewer (switch its query log on to report them all).
 */
export const SAMPLE = 32;
/**
 * Queries a listener takes in one recvmmsg(2); the cached answers of a batch leave in one sendmmsg(2). Under load
 * this saves most of the per-query system calls; a lone query is still answered at once (MSG_WAITFORONE).
 */
export const UDP_BATCH = 32;
/** Shards of the packet cache: listener threads looking answers up at once rarely wait on the same lock. */
export const CACHE_SHARDS = 16;
/** The pool of the site's own names: the resolver without the front's cache. */
const LOCAL_POOL = "site";

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
      // Each listener is a thread of its own; with SO_REUSEPORT the kernel spreads the address's queries over them.
      for (let i = 0; i < dns.frontThreads; i++) {
        out.push(`${first ? "setLocal" : "addLocal"}(${q(endpoint(a, 53))}, {reusePort=true})`);
        first = false;
      }
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
  // The name and each parent down to two labels: router-fetch refuses a top-level domain on a list, so a lookup
  // of the last label alone could never match (one database lookup per query saved).
  if (l.file) parts.push(`KeyValueStoreLookupRule(feed_${lua(l.name)}, KeyValueLookupKeySuffix(2, false))`);
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

/**
 * The filtering rules of one profile, for the clients of the zones that use it. The client's address is looked up
 * once (PROFILE_TAG names the profile); the profile's other rules test the tag. A lookup in the prefix tree was the
 * front's most costly step of its own per query (a bit-by-bit walk, one per rule that named the clients).
 */
function profileRules(dns: DnsPlan, profile: DnsPlan["profiles"][number]): string[] {
  const zones = dns.zones.filter((z) => z.profile === profile.name);
  if (zones.length === 0) return [];
  const group = `profile_${lua(profile.name)}`;
  const lists = new Map(dns.lists.map((l) => [l.name, l]));
  const clients = `TagRule(${q(PROFILE_TAG)}, ${q(profile.name)})`;
  const out = [
    `-- profile ${profile.name}: zones ${zones.map((z) => z.name).join(", ")}`,
    `${group} = newNMG()`,
    ...zones.flatMap((z) => z.clients.map((c) => `${group}:addMask(${q(c)})`)),
    `addAction(NetmaskGroupRule(${group}), SetTagAction(${q(PROFILE_TAG)}, ${q(profile.name)}))`,
  ];
  for (const name of profile.allow)
    out.push(`addAction(AndRule({${clients}, ${listRule(lists.get(name)!)}}), PoolAction(""))`);
  if (profile.allowOnly) out.push(`addAction(${clients}, SetTagAction(${q(BLOCKED_TAG)}, ${q(ALLOW_ONLY)}))`);
  for (const name of profile.block)
    out.push(
      `addAction(AndRule({${clients}, NotRule(TagRule(${q(BLOCKED_TAG)})), ${listRule(lists.get(name)!)}}), SetTagAction(${q(BLOCKED_TAG)}, ${q(name)}))`,
    );
  const answer = profile.blockedAnswer === "null" ? 'SpoofAction({"0.0.0.0", "::"})' : "RCodeAction(DNSRCode.NXDOMAIN)";
  out.push(`addAction(AndRule({TagRule(${q(BLOCKED_TAG)}), ${clients}}), ${answer})`);
  // Filtering done for these clients: a pool action ends the chain, so the later profiles' rules are not tried
  // (an allow-only profile answered every query it did not let through already).
  if (!profile.allowOnly) out.push(`addAction(${clients}, PoolAction(""))`);
  return out;
}

/** Zones without a profile end the chain at once (no profile's rule is tried for them). */
function unfilteredRules(dns: DnsPlan): string[] {
  const zones = dns.zones.filter((z) => !dns.profiles.some((p) => p.name === z.profile));
  if (zones.length === 0) return [];
  return [
    `-- no filtering: zones ${zones.map((z) => z.name).join(", ")}`,
    "unfiltered = newNMG()",
    ...zones.flatMap((z) => z.clients.map((c) => `unfiltered:addMask(${q(c)})`)),
    'addAction(NetmaskGroupRule(unfiltered), PoolAction(""))',
  ];
}

/** The names a zone's blocked answers may carry in their identity: its profile's lists. */
function blockers(dns: DnsPlan, z: DnsZonePlan): string[] {
  const p = dns.profiles.find((x) => x.name === z.profile);
  if (!p) return [];
  return p.allowOnly ? [ALLOW_ONLY] : [...p.block];
}

/** The name of a counting rule (what the collector reads back from dnsdist's metrics). */
export function ruleName(zone: string, what: "cache" | "resolved" | "servfail" | `blocked/${string}`): string {
  return `${zone}/${what}`;
}

/** Counting rules and reports of one zone's answers (see the header). */
function zoneReporting(dns: DnsPlan, z: DnsZonePlan): string[] {
  const zone = `NetmaskGroupRule(zone_${lua(z.name)})`;
  const count = (name: string) => `{name=${q(name)}}`;
  const log = (id: string) => `RemoteLogResponseAction(stats, nil, true, {serverID=${q(id)}})`;
  const noop = 'SetTagResponseAction("counted", "")';
  // Where the log is on, the reporting rule is the counting rule; else a sampled report, then a cheap counter.
  // A cache hit's counter ends its chain (an allow action): the later zones' rules are not tried for it.
  const rules = (chain: string, match: string, name: string, id: string) =>
    z.queryLog
      ? [`${chain}(${match}, ${log(id)}, ${count(name)})`]
      : [
          `${chain}(AndRule({ProbaRule(${1 / SAMPLE}), ${match}}), ${log(id)})`,
          `${chain}(${match}, ${chain === "addCacheHitResponseAction" ? "AllowResponseAction()" : noop}, ${count(name)})`,
        ];
  return [
    `-- zone ${z.name}: query log ${z.queryLog ? "on" : `off (1 answer in ${SAMPLE} reported)`}`,
    ...blockers(dns, z).flatMap((b) =>
      rules(
        "addSelfAnsweredResponseAction",
        `AndRule({TagRule(${q(BLOCKED_TAG)}, ${q(b)}), ${zone}})`,
        ruleName(z.name, `blocked/${b}`),
        `${z.name}\tblocked\t${b}`,
      ),
    ),
    ...rules("addCacheHitResponseAction", zone, ruleName(z.name, "cache"), `${z.name}\tcache`),
    ...rules("addResponseAction", zone, ruleName(z.name, "resolved"), z.name),
    `addResponseAction(AndRule({RCodeRule(DNSRCode.SERVFAIL), ${zone}}), ${noop}, ${count(ruleName(z.name, "servfail"))})`,
  ];
}

function reporting(dns: DnsPlan): string[] {
  return [
    `stats = newRemoteLogger(${q(`127.0.0.1:${PORTS.statsInput}`)}, 2, 100000, 1)`,
    ...dns.zones.flatMap((z) => zoneReporting(dns, z)),
  ];
}

export function renderDnsdist(site: Site, dns: DnsPlan): string {
  const local = dns.authZones.map((z) => z.name);
  return [
    `-- dnsdist of site ${site.site.name}: the DNS front of the zones ${dns.zones.map((z) => z.name).join(", ")} (rendered).`,
    "-- No security polling: it would query the internet through the node's resolver.",
    'setSecurityPollSuffix("")',
    "-- No ring buffers of recent queries: nothing here reads them (dynamic blocks, top queries), and every query",
    "-- would pay for a locked copy of its name and every answer for another.",
    "setRingBuffersSize(0, 1)",
    `setUDPMultipleMessagesVectorSize(${UDP_BATCH})`,
    ...listeners(dns),
    `setACL({${dns.zones.flatMap((z) => z.clients.map(q)).join(", ")}})`,
    "-- the resolver; always used (a health check failing on the WAN would take the site's own names down too)",
    `newServer({address=${q(`127.0.0.1:${PORTS.resolver}`)}, name="unbound", pool={"", ${q(LOCAL_POOL)}}})`,
    "getServer(0):setUp()",
    `cache = newPacketCache(100000, {maxTTL=86400, minTTL=0, temporaryFailureTTL=5, staleTTL=60, numberOfShards=${CACHE_SHARDS}})`,
    'getPool(""):setCache(cache)',
    "-- clients by zone",
    ...zoneGroups(dns),
    "-- the site's own names: never cached here (a released lease's name must go at once), never filtered",
    "site_names = newSuffixMatchNode()",
    ...local.map((z) => `site_names:add(newDNSName(${q(z)}))`),
    `addAction(SuffixMatchNodeRule(site_names), PoolAction(${q(LOCAL_POOL)}))`,
    ...unfilteredRules(dns),
    "-- lists",
    ...listObjects(dns),
    ...dns.profiles.flatMap((p) => profileRules(dns, p)),
    "-- answers counted by zone (named rules) and reported to the stats collector",
    ...reporting(dns),
    `webserver(${q(`127.0.0.1:${PORTS.dnsdistWeb}`)})`,
    'setWebserverConfig({acl="127.0.0.0/8", statsRequireAuthentication=false, apiRequiresAuthentication=false})',
    "",
  ].join("\n");
}
