/**
 * DnsStack's part of SUMMARY.md: what it deploys, the zones it serves and how, the filtering profiles and
 * lists, the resolver's upstreams and the names it is authoritative for. Pure.
 */
import { SECTION, mdTable, type LayerSummary } from "../summary";
import type { DnsPlan } from "./plan";

function resolver(dns: DnsPlan): string {
  const how = dns.forwarders.length
    ? `forwards to ${dns.forwarders
        .map((f) => `${f.address}${f.tlsName ? ` over DoT (certificate name ${f.tlsName})` : " (plain DNS)"}`)
        .join(", ")}`
    : "recurses from the root servers itself";
  return [
    `The resolver ${how}; ${dns.dnssec ? "it validates DNSSEC" : "DNSSEC validation is **off**"}, and drops`,
    `private addresses from public answers except in ${dns.privateDomains.join(", ")} (rebinding protection).`,
  ].join(" ");
}

function zones(dns: DnsPlan): string {
  return mdTable(
    ["zone", "answers on", "profile", "other resolvers", "DoT/DoH", "query log"],
    dns.zones.map((z) => [
      z.name,
      z.listen.join(", "),
      z.profile ?? "none",
      z.force === "off"
        ? "allowed"
        : z.force === "redirect"
          ? "port 53 answered by the router, DoT rejected"
          : "rejected",
      z.encrypted ? "yes" : "no",
      z.queryLog ? "on" : "off",
    ]),
  );
}

function profiles(dns: DnsPlan): string[] {
  if (dns.profiles.length === 0) return [];
  const lists = mdTable(
    ["list", "kind", "inline names", "feed", "refresh"],
    dns.lists.map((l) => [
      l.name,
      l.kind,
      String(l.entries.length),
      l.feed?.url ?? "—",
      l.feed ? `${l.feed.refreshSeconds / 3600} h` : "—",
    ]),
  );
  const table = mdTable(
    ["profile", "zones", "blocks", "lets through", "blocked answer"],
    dns.profiles.map((p) => [
      p.name,
      dns.zones
        .filter((z) => z.profile === p.name)
        .map((z) => z.name)
        .join(", "),
      p.allowOnly ? "everything not allowed" : p.block.join(", ") || "—",
      p.allow.join(", ") || "—",
      p.blockedAnswer === "null" ? "0.0.0.0 / ::" : "NXDOMAIN",
    ]),
  );
  return ["### Filtering", "", table, "", lists, ""];
}

function names(dns: DnsPlan): string[] {
  const forward = dns.authZones[0];
  const reverse = dns.authZones.slice(1).map((z) => z.name);
  return [
    "### Local names",
    "",
    `Authoritative for ${forward.name} and ${reverse.length} reverse zone${reverse.length === 1 ? "" : "s"} (${reverse.join(", ")}).`,
    "DHCPv4 and DHCPv6 clients of the served zones that send a host name get `<host>.<segment>." +
      `${forward.name}` +
      "` (A/AAAA and PTR) while their lease lasts; a reserved name or another client's stays theirs (RFC 4703).",
    "",
    mdTable(
      ["name", "type", "data"],
      forward.records.map((r) => [r.name, r.type, r.data]),
    ),
    "",
  ];
}

/** `daemons`: the names of the DaemonSets the component creates. */
export function renderDnsSummary(dns: DnsPlan, daemons: readonly string[]): LayerSummary {
  if (dns.zones.length === 0) return { deploys: [], sections: [] };
  return {
    deploys: [
      {
        order: 45,
        text: `**DNS** on the host network, from the DNS image pinned by digest: ${[...daemons].sort().join(", ")}.`,
      },
    ],
    sections: [
      {
        order: SECTION.dns,
        markdown: [
          "## DNS",
          "",
          resolver(dns),
          "",
          zones(dns),
          "",
          ...profiles(dns),
          ...names(dns),
          `Per-zone metrics (queries, cache hits, blocked by list, SERVFAIL, latency) on port ${dns.metricsPort}.`,
          "",
        ].join("\n"),
      },
    ],
  };
}
