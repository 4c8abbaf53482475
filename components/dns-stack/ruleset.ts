/**
 * The DNS stack's rules in the router's nftables table (a RulesetContribution): forcing zones to the router's
 * resolver — their port-53 queries to any other server are answered by the router (DNAT to the segment's
 * gateway) or rejected, and DoT to other servers is rejected (it cannot be answered in their name) — and the
 * ports the stack serves beyond the zone's dns service: DoT and DoH where a zone has encrypted DNS, and the
 * metrics port to management zones. Pure.
 */
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import type { RulesetContribution } from "../dataplane/ruleset/common";
import type { DnsPlan, DnsZonePlan } from "./plan";

const q = (s: string) => JSON.stringify(s);

function links(plan: SitePlan, zones: DnsZonePlan[]): string {
  const names = plan.segments.filter((s) => zones.some((z) => z.segments.includes(s.name))).map((s) => q(s.link));
  return names.length === 1 ? names[0] : `{ ${names.join(", ")} }`;
}

/** Port-53 queries to servers other than the router, answered by the router's address in the segment. */
function redirects(plan: SitePlan, dns: DnsPlan): string[] {
  return dns.zones
    .filter((z) => z.force === "redirect")
    .flatMap((z) => plan.segments.filter((s) => z.segments.includes(s.name)))
    .flatMap((s) => [
      ...(s.ipv4
        ? [
            `iifname ${q(s.link)} meta nfproto ipv4 meta l4proto { tcp, udp } th dport 53 fib daddr type != local dnat ip to ${s.ipv4.gateway}`,
          ]
        : []),
      ...(s.ipv6
        ? [
            `iifname ${q(s.link)} meta nfproto ipv6 meta l4proto { tcp, udp } th dport 53 fib daddr type != local dnat ip6 to ${s.ipv6.gateway}`,
          ]
        : []),
    ]);
}

function rejects(plan: SitePlan, dns: DnsPlan): string[] {
  const out: string[] = [];
  const forced = dns.zones.filter((z) => z.force !== "off");
  const rejecting = dns.zones.filter((z) => z.force === "reject");
  const reject = (from: string, ports: string) => [
    `iifname ${from} tcp dport ${ports} reject with tcp reset`,
    `iifname ${from} udp dport ${ports} reject with icmpx admin-prohibited`,
  ];
  if (rejecting.length) out.push(...reject(links(plan, rejecting), "{ 53, 853 }"));
  const redirecting = forced.filter((z) => z.force === "redirect");
  if (redirecting.length) out.push(...reject(links(plan, redirecting), "853"));
  return out;
}

function inputs(plan: SitePlan, model: PolicyModel, dns: DnsPlan): string[] {
  const out: string[] = [];
  const encrypted = dns.zones.filter((z) => z.encrypted);
  if (encrypted.length) out.push(`iifname ${links(plan, encrypted)} tcp dport { 443, 853 } accept`);
  const mgmt = plan.segments.filter((s) => model.managementZones.includes(s.zone)).map((s) => q(s.link));
  if (mgmt.length)
    out.push(`iifname ${mgmt.length === 1 ? mgmt[0] : `{ ${mgmt.join(", ")} }`} tcp dport ${dns.metricsPort} accept`);
  return out;
}

export function renderDnsRuleset(plan: SitePlan, model: PolicyModel, dns: DnsPlan): RulesetContribution {
  const by = "DNS: forced zones, encrypted DNS, metrics (components/dns-stack/ruleset.ts)";
  // No zone with DNS: the stack deploys nothing, so it opens and redirects nothing.
  if (dns.zones.length === 0) return { by };
  return {
    by,
    natPrerouting: redirects(plan, dns),
    forward: rejects(plan, dns),
    input: inputs(plan, model, dns),
  };
}
