/**
 * The IPS queue: which routed packets go to Suricata, as one model rendered two ways.
 *
 * - For the router (nftables in `table inet router`): a base chain `ips` on the forward hook at priority
 *   `security` (50), after the zone policy's forward chain (priority `filter`, 0). A packet reaches it only once
 *   the policy accepted it, so Suricata sees exactly the accepted connections of the selected zone pairs, every
 *   packet of them (established ones too) and their replies (conntrack's reply direction, the links the other way
 *   round: without them Suricata never sees a TCP handshake complete and inspects no session), and a policy drop
 *   never costs a queue round trip. The verdict is
 *   `queue flags bypass to FIRST-LAST`: spread over the queues by the kernel's symmetric flow hash, so both
 *   directions of a flow meet in one Suricata thread (nft's `fanout` flag spreads by CPU instead, which can split
 *   a flow's packets over two threads and break its stream reassembly); bypass lets packets through uninspected
 *   while no Suricata listens (traffic keeps flowing when it is down).
 * - For kernels without nft's queue expression (this test machine's; Talos has NFT_QUEUE): iptables-nft rules in
 *   the `security` table's FORWARD chain (the same hook and priority) with `-j NFQUEUE --queue-balance
 *   FIRST:LAST --queue-bypass` — the same packets to the same queues.
 *
 * The router's ruleset has no flowtable, so no connection of an inspected pair can skip the forward hook; were
 * one added, these pairs would have to stay out of it. Pure.
 */
import type { RulesetContribution } from "../dataplane/ruleset/common";
import type { IdsPlan } from "./plan";

/** How a link is named in the ruleset: a define for a Talos alias, else the quoted name. */
export type LinkRef = (link: string) => string;

/** Every (in-link, out-link) pair the queue takes, in plan order, without repeats. */
export function queuedLinkPairs(ids: IdsPlan): [string, string][] {
  const seen = new Set<string>();
  const out: [string, string][] = [];
  for (const p of ids.pairs)
    for (const i of p.inLinks)
      for (const o of p.outLinks) {
        // A packet never leaves by the link it came in on through the forward path of one pair.
        if (i === o || seen.has(`${i}\0${o}`)) continue;
        seen.add(`${i}\0${o}`);
        out.push([i, o]);
      }
  return out;
}

/** The contribution to `table inet router`: the pair set and the `ips` chain; nothing without pairs. */
export function ipsRuleset(ids: IdsPlan, ref: LinkRef): RulesetContribution {
  const pairs = queuedLinkPairs(ids);
  if (!pairs.length) return { by: "IDS (no inline zone pairs)" };
  const [first, last] = ids.queues;
  const to = first === last ? `${first}` : `${first}-${last}`;
  return {
    by: `IDS: inline inspection of ${ids.pairs.map((p) => `${p.from}>${p.to}`).join(", ")}`,
    objects: [
      "set ips_pairs {",
      "\ttype ifname . ifname",
      `\telements = { ${pairs.map(([i, o]) => `${ref(i)} . ${ref(o)}`).join(", ")} }`,
      "}",
      "chain ips {",
      "\ttype filter hook forward priority security; policy accept;",
      `\tiifname . oifname @ips_pairs queue flags bypass to ${to}`,
      // the replies of those connections too: Suricata follows a TCP session only when it sees both directions
      `\toifname . iifname @ips_pairs ct direction reply queue flags bypass to ${to}`,
      "}",
    ],
  };
}

/** The same queue as iptables-restore input (`security` table), for iptables and ip6tables alike. */
export function ipsIptables(ids: IdsPlan): string {
  const [first, last] = ids.queues;
  const target =
    first === last
      ? `-j NFQUEUE --queue-num ${first} --queue-bypass`
      : `-j NFQUEUE --queue-balance ${first}:${last} --queue-bypass`;
  return [
    "*security",
    ":ROUTER-IPS - [0:0]",
    "-A FORWARD -j ROUTER-IPS",
    ...queuedLinkPairs(ids).flatMap(([i, o]) => [
      `-A ROUTER-IPS -i ${i} -o ${o} ${target}`,
      `-A ROUTER-IPS -i ${o} -o ${i} -m conntrack --ctdir REPLY ${target}`,
    ]),
    "COMMIT",
    "",
  ].join("\n");
}
