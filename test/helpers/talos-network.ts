/**
 * What Talos itself makes of the node's network documents, for tests that boot a router namespace the way the
 * node boots: the policy-routing rules of RoutingRuleConfig and the ingress firewall (`table inet talos`) of
 * NetworkDefaultActionConfig + NetworkRuleConfig. This follows Talos' own code, not our renderer:
 *
 * - siderolabs/talos internal/app/machined/pkg/controllers/network/routing_rule_config.go (e85d01a0): a rule at
 *   a reserved priority (0, 32766, 32767, KubeSpan's) is skipped; one without src and dst is installed for both
 *   families; an unset action is unicast. routing_rule_spec.go passes priority, iif, oif, fwmark/mask, table and
 *   action to the kernel as they are.
 * - internal/app/machined/pkg/controllers/network/nftables_chain_config.go (248c6047): with default action
 *   accept and no rules there is no table at all. Otherwise chain `ingress` (hook input, priority mangle + 10,
 *   policy accept, or drop in block mode) starts by accepting lo, siderolink and kubespan; block mode then
 *   accepts established/related, drops invalid and ICMP timestamp and address-mask messages, accepts ICMP and
 *   ICMPv6 at 5 packets/s and the cluster's pod and service networks among themselves; then one rule per
 *   NetworkRuleConfig — in accept mode it drops sources outside the rule's subnets on its ports, in block mode
 *   it accepts sources inside them. Chain `prerouting` (hook prerouting, priority dstnat - 10, policy accept)
 *   accepts the trusted interfaces and everything not addressed to the node's own (routed) addresses, then
 *   repeats each rule for new connections, and in block mode drops every other new TCP and UDP connection.
 * - internal/app/machined/pkg/adapters/network/nftables_rule.go (0b111ecb): an address match becomes one rule
 *   per family; with the match inverted (accept mode), a family the rule names no subnet of is matched whole,
 *   so an IPv4-only rule drops its ports to every IPv6 source.
 * - internal/app/machined/pkg/controllers/network/node_address.go: the node's routed addresses are its global
 *   addresses on links that are up (not loopback, link-local or multicast), the cluster's networks left out.
 * Not modelled: `except` subnets and the NAT chains (the rendered configuration uses neither), and host DNS
 * forwarding (ResolverConfig.hostDNS.forwardKubeDNSToHost: the host resolver's listener on 169.254.116.108 for
 * CoreDNS, which the virtual appliance does not run).
 */

export interface RoutingRuleDoc {
  name: string;
  src?: string;
  dst?: string;
  iifName?: string;
  oifName?: string;
  fwMark?: number;
  fwMask?: number;
  table?: string;
  /** By name, as Talos decodes it (nethelpers.RoutingRuleAction is a text enum; a number is refused). */
  action?: string;
}

export interface NetworkRuleDoc {
  name: string;
  portSelector: { ports: (number | string)[]; protocol: "tcp" | "udp" | "icmp" | "icmpv6" };
  ingress: { subnet: string; except?: string }[];
}

export interface TalosFirewallDocs {
  defaultAction: "accept" | "block";
  rules: NetworkRuleDoc[];
  /** The cluster's pod and service networks (block mode lets them talk among themselves). */
  clusterNetworks: string[];
}

/** linux/fib_rules.h: local, main, default; Talos' KubeSpan rule (constants.KubeSpanDefaultRulePriority). */
const RESERVED_PRIORITIES = new Set([0, 32766, 32767, 32500]);
/** nethelpers.RoutingRuleAction's names → `ip rule` action. */
const ACTIONS: Record<string, string> = {
  unicast: "lookup",
  blackhole: "blackhole",
  unreachable: "unreachable",
  prohibit: "prohibit",
};

/** `ip` arguments installing a RoutingRuleConfig, one per family it applies to; none at a reserved priority. */
export function routingRuleCommands(d: RoutingRuleDoc): string[][] {
  const priority = Number(d.name);
  if (RESERVED_PRIORITIES.has(priority)) return [];
  const args = ["priority", String(priority)];
  if (d.src) args.push("from", d.src);
  if (d.dst) args.push("to", d.dst);
  if (d.iifName) args.push("iif", d.iifName);
  if (d.oifName) args.push("oif", d.oifName);
  if (d.fwMark !== undefined) args.push("fwmark", `${d.fwMark}/${d.fwMask ?? 0xffffffff}`);
  const action = ACTIONS[d.action ?? "unicast"];
  if (!action) throw new Error(`RoutingRuleConfig ${d.name}: unknown action ${d.action}`);
  args.push(...(action === "lookup" ? ["lookup", d.table ?? "main"] : [action]));
  const v6 = [d.src, d.dst].some((a) => a?.includes(":"));
  const v4 = [d.src, d.dst].some((a) => a && !a.includes(":"));
  const families = v6 ? ["-6"] : v4 ? ["-4"] : ["-6", "-4"];
  return families.map((f) => [f, "rule", "add", ...args]);
}

function portSet(ports: (number | string)[]): string {
  return `{ ${ports.map(String).join(", ")} }`;
}

/** One NetworkRuleConfig as nft rules, per family: accept mode drops outsiders, block mode accepts members. */
function ruleLines(r: NetworkRuleDoc, block: boolean, prefix: string): string[] {
  if (r.ingress.some((i) => i.except)) throw new Error(`NetworkRuleConfig ${r.name}: except is not modelled`);
  const proto = r.portSelector.protocol === "icmpv6" ? "ipv6-icmp" : r.portSelector.protocol;
  const ports = ["tcp", "udp"].includes(proto) ? ` th dport ${portSet(r.portSelector.ports)}` : "";
  const verdict = block ? "accept" : "drop";
  const lines: string[] = [];
  for (const [fam, key] of [
    ["ipv4", "ip"],
    ["ipv6", "ip6"],
  ] as const) {
    const subnets = r.ingress.map((i) => i.subnet).filter((s) => s.includes(":") === (fam === "ipv6"));
    // accept mode: sources outside the subnets (all of a family the rule names none of); block: those inside
    if (block && !subnets.length) continue;
    const match = subnets.length ? ` ${key} saddr ${block ? "" : "!= "}{ ${subnets.join(", ")} }` : "";
    lines.push(`${prefix}meta l4proto ${proto} meta nfproto ${fam}${match}${ports} counter ${verdict}`);
  }
  return lines;
}

const TRUSTED = 'iifname { "lo", "siderolink", "kubespan" } counter accept';

/**
 * `table inet talos` as Talos builds it from the documents and the node's routed addresses, as an nft script
 * that replaces the table; undefined when Talos builds no table (default accept, no rules).
 */
export function talosFirewall(docs: TalosFirewallDocs, nodeAddresses: string[]): string | undefined {
  const block = docs.defaultAction === "block";
  if (!block && !docs.rules.length) return undefined;
  const v4 = docs.clusterNetworks.filter((c) => !c.includes(":"));
  const v6 = docs.clusterNetworks.filter((c) => c.includes(":"));
  const ingress = [
    `\t\ttype filter hook input priority mangle + 10; policy ${block ? "drop" : "accept"};`,
    `\t\t${TRUSTED}`,
    ...(block
      ? [
          "\t\tct state established,related counter accept",
          "\t\tct state invalid counter drop",
          "\t\ticmp type { timestamp-request, timestamp-reply, address-mask-request, address-mask-reply } counter drop",
          "\t\tmeta l4proto icmp limit rate 5/second burst 5 packets counter accept",
          "\t\tmeta l4proto ipv6-icmp limit rate 5/second burst 5 packets counter accept",
          ...(v4.length ? [`\t\tip saddr { ${v4.join(", ")} } ip daddr { ${v4.join(", ")} } counter accept`] : []),
          ...(v6.length ? [`\t\tip6 saddr { ${v6.join(", ")} } ip6 daddr { ${v6.join(", ")} } counter accept`] : []),
        ]
      : []),
    ...docs.rules.flatMap((r) => ruleLines(r, block, "\t\t")),
  ];
  const mine4 = nodeAddresses.filter((a) => !a.includes(":"));
  const mine6 = nodeAddresses.filter((a) => a.includes(":"));
  const notMine = [
    mine4.length
      ? `\t\tmeta nfproto ipv4 ip daddr != { ${mine4.join(", ")} } counter accept`
      : "\t\tmeta nfproto ipv4 counter accept",
    mine6.length
      ? `\t\tmeta nfproto ipv6 ip6 daddr != { ${mine6.join(", ")} } counter accept`
      : "\t\tmeta nfproto ipv6 counter accept",
  ];
  const prerouting = [
    "\t\ttype filter hook prerouting priority dstnat - 10; policy accept;",
    `\t\t${TRUSTED}`,
    ...notMine,
    ...docs.rules.flatMap((r) => ruleLines(r, block, "\t\tct state new ")),
    ...(block
      ? ["\t\tct state new meta l4proto tcp counter drop", "\t\tct state new meta l4proto udp counter drop"]
      : []),
  ];
  return [
    "table inet talos",
    "delete table inet talos",
    "table inet talos {",
    "\tchain ingress {",
    ...ingress,
    "\t}",
    "\tchain prerouting {",
    ...prerouting,
    "\t}",
    "}",
    "",
  ].join("\n");
}

/**
 * The node's routed addresses (node_address.go): global-scope addresses of links that are up, neither
 * loopback, link-local nor multicast, minus the cluster's networks; from `ip -j addr` output.
 */
export function routedAddresses(ipJson: string, inCluster: (addr: string) => boolean): string[] {
  const links = JSON.parse(ipJson) as {
    ifname: string;
    operstate: string;
    flags: string[];
    addr_info: { local: string; scope: string; family: string }[];
  }[];
  const out = new Set<string>();
  for (const l of links) {
    if (l.ifname === "lo" || !["UP", "UNKNOWN"].includes(l.operstate)) continue;
    for (const a of l.addr_info ?? [])
      if (a.scope === "global" && !/^fe80:/i.test(a.local) && !inCluster(a.local)) out.add(a.local);
  }
  return [...out].sort();
}
