/**
 * The DNS stack's rules in the router's nftables table (a RulesetContribution): forcing zones to the router's
 * resolver — their port-53 queries to any other server are answered by the router (DNAT to the segment's
 * gateway) or rejected, and DoT to other servers is rejected (it cannot be answered in their name) — and DoT and
 * DoH where a zone has encrypted DNS. What is forced and encrypted is the policy model's (site/policy.ts
 * `dnsForcing`), the one statement of it that the policy's evaluation and the review read too; the metrics port is
 * one of the model's management ports (the input chain opens it to management zones). Pure.
 */
import type { SitePlan, SegmentPlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import type { RulesetContribution } from "../dataplane/ruleset/common";

const q = (s: string) => JSON.stringify(s);

function linkSet(segments: SegmentPlan[]): string {
  const names = segments.map((s) => q(s.link));
  return names.length === 1 ? names[0] : `{ ${names.join(", ")} }`;
}

/** Port-53 queries to servers other than the router, answered by the router's address in the segment. */
function redirects(segments: SegmentPlan[]): string[] {
  return segments.flatMap((s) => [
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

function rejects(rejecting: SegmentPlan[], redirecting: SegmentPlan[]): string[] {
  const reject = (from: string, ports: string) => [
    `iifname ${from} tcp dport ${ports} reject with tcp reset`,
    `iifname ${from} udp dport ${ports} reject with icmpx admin-prohibited`,
  ];
  return [
    ...(rejecting.length ? reject(linkSet(rejecting), "{ 53, 853 }") : []),
    ...(redirecting.length ? reject(linkSet(redirecting), "853") : []),
  ];
}

export function renderDnsRuleset(plan: SitePlan, model: PolicyModel): RulesetContribution {
  const by = "DNS: forced zones, encrypted DNS (components/dns-stack/ruleset.ts)";
  const { dns } = model;
  // No zone with DNS: the stack deploys nothing, so it opens and redirects nothing.
  if (dns.served.length === 0) return { by };
  const forced = (how: "redirect" | "reject") => plan.segments.filter((s) => dns.force.get(s.zone) === how);
  const encrypted = plan.segments.filter((s) => dns.encrypted.includes(s.zone));
  return {
    by,
    natPrerouting: redirects(forced("redirect")),
    forward: rejects(forced("reject"), forced("redirect")),
    input: encrypted.length ? [`iifname ${linkSet(encrypted)} tcp dport { 443, 853 } accept`] : [],
  };
}
