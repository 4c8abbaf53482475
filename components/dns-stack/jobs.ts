/**
 * The configuration of the stack's own programs: router-dns-stats (images/dns/stats: the per-zone counters,
 * latency histograms and query log from dnsdist's reports) and dns-feeds (images/dns/dns-feeds: fetches each
 * list with router-fetch as an unprivileged user and turns a list that passed its checks into the constant
 * database dnsdist reads). Pure.
 */
import type { Site } from "../site/schema";
import { PATHS, PORTS, type DnsPlan } from "./plan";
import { ALLOW_ONLY, SAMPLE } from "./dnsdist";

/** The query log's size limit before it rotates once (to .1): bounded, so it cannot fill the node's disk. */
export const QUERY_LOG_MAX_BYTES = 64 * 1024 * 1024;

export function renderStatsConf(site: Site, dns: DnsPlan): string {
  const lists = dns.lists.map((l) => `list ${l.name} ${l.feed ? "feed" : "inline"}`);
  if (dns.profiles.some((p) => p.allowOnly)) lists.push(`list ${ALLOW_ONLY} inline`);
  return [
    `# router-dns-stats of site ${site.site.name} (rendered)`,
    `logger 127.0.0.1:${PORTS.statsInput}`,
    // Scraped by Prometheus on the node (pods) and from management zones (ruleset.ts opens the port to them).
    `metrics 0.0.0.0:${dns.metricsPort}`,
    // dnsdist's web server: the per-zone counters are its rule counters, read at every scrape.
    `front 127.0.0.1:${PORTS.dnsdistWeb}`,
    `sample ${SAMPLE}`,
    `query-log ${PATHS.queryLog}/queries.log ${QUERY_LOG_MAX_BYTES}`,
    `lists ${PATHS.lists}`,
    ...dns.zones.map((z) => `zone ${z.name} ${z.queryLog ? "log" : "nolog"}`),
    ...lists,
    "",
  ].join("\n");
}

/** The feeds job's schedule: one `feed NAME URL REFRESH_SECONDS MIN_ENTRIES` line per fetched list. */
export function renderFeedsConf(site: Site, dns: DnsPlan): string {
  return [
    `# dns-feeds of site ${site.site.name} (rendered)`,
    `dir ${PATHS.lists}`,
    `ca ${PATHS.caBundle}`,
    // A list may never block the site's own names (router-fetch refuses an entry equal to or above them).
    ...dns.authZones.map((z) => `protect ${z.name}`),
    ...dns.lists.flatMap((l) =>
      l.feed ? [`feed ${l.name} ${l.feed.url} ${l.feed.refreshSeconds} ${l.feed.minEntries}`] : [],
    ),
    "",
  ].join("\n");
}
