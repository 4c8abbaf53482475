/**
 * How the virtual appliance boots like Talos (test/helpers/talos-network.ts): the routing rules Talos installs
 * for RoutingRuleConfig and the `inet talos` table it builds for its ingress firewall, checked against tables
 * written by hand from Talos' sources, and against nft's own parser.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { routedAddresses, routingRuleCommands, talosFirewall, type TalosFirewallDocs } from "../helpers/talos-network";
import { tier } from "../helpers/tier";

const mgmt: TalosFirewallDocs = {
  defaultAction: "accept",
  clusterNetworks: ["10.244.0.0/16", "fd9c::/56"],
  rules: [
    {
      name: "api",
      portSelector: { ports: [50000, "2379-2380"], protocol: "tcp" },
      ingress: [{ subnet: "10.10.0.0/24" }, { subnet: "fd12::/64" }],
    },
    { name: "metrics", portSelector: { ports: [9430], protocol: "tcp" }, ingress: [{ subnet: "10.10.0.0/24" }] },
  ],
};

describe("Talos' network documents as the node applies them", () => {
  it.each<[string, Parameters<typeof routingRuleCommands>[0], string[]]>([
    [
      "a rule without addresses is installed for both families, unicast to its table by default",
      { name: "32000", iifName: "lo", table: "main" },
      ["-6 rule add priority 32000 iif lo lookup main", "-4 rule add priority 32000 iif lo lookup main"],
    ],
    [
      "a mark with its mask",
      { name: "32001", fwMark: 4096, fwMask: 4096, table: "main" },
      [
        "-6 rule add priority 32001 fwmark 4096/4096 lookup main",
        "-4 rule add priority 32001 fwmark 4096/4096 lookup main",
      ],
    ],
    [
      "a blackhole never looks its table up",
      { name: "32002", action: "blackhole", table: "main" },
      ["-6 rule add priority 32002 blackhole", "-4 rule add priority 32002 blackhole"],
    ],
    [
      "an IPv6 source makes an IPv6 rule only",
      { name: "100", src: "fd00::/8", table: "10" },
      ["-6 rule add priority 100 from fd00::/8 lookup 10"],
    ],
    ["a reserved priority is skipped", { name: "32766", table: "main" }, []],
  ])("%s", (_name, doc, want) => {
    expect(routingRuleCommands(doc).map((a) => a.join(" "))).toEqual(want);
  });

  it("builds no table for default accept without rules", () => {
    expect(talosFirewall({ ...mgmt, rules: [] }, ["10.10.0.1"])).toBeUndefined();
  });

  it("builds accept mode as Talos does: each rule drops its ports from sources outside its subnets, a family it names no subnet of whole, in the input chain and for new connections to the node's addresses in prerouting", () => {
    expect(talosFirewall(mgmt, ["10.10.0.1", "81.23.10.2", "fd12::1"])).toBe(
      [
        "table inet talos",
        "delete table inet talos",
        "table inet talos {",
        "\tchain ingress {",
        "\t\ttype filter hook input priority mangle + 10; policy accept;",
        '\t\tiifname { "lo", "siderolink", "kubespan" } counter accept',
        "\t\tmeta l4proto tcp meta nfproto ipv4 ip saddr != { 10.10.0.0/24 } th dport { 50000, 2379-2380 } counter drop",
        "\t\tmeta l4proto tcp meta nfproto ipv6 ip6 saddr != { fd12::/64 } th dport { 50000, 2379-2380 } counter drop",
        "\t\tmeta l4proto tcp meta nfproto ipv4 ip saddr != { 10.10.0.0/24 } th dport { 9430 } counter drop",
        "\t\tmeta l4proto tcp meta nfproto ipv6 th dport { 9430 } counter drop",
        "\t}",
        "\tchain prerouting {",
        "\t\ttype filter hook prerouting priority dstnat - 10; policy accept;",
        '\t\tiifname { "lo", "siderolink", "kubespan" } counter accept',
        "\t\tmeta nfproto ipv4 ip daddr != { 10.10.0.1, 81.23.10.2 } counter accept",
        "\t\tmeta nfproto ipv6 ip6 daddr != { fd12::1 } counter accept",
        "\t\tct state new meta l4proto tcp meta nfproto ipv4 ip saddr != { 10.10.0.0/24 } th dport { 50000, 2379-2380 } counter drop",
        "\t\tct state new meta l4proto tcp meta nfproto ipv6 ip6 saddr != { fd12::/64 } th dport { 50000, 2379-2380 } counter drop",
        "\t\tct state new meta l4proto tcp meta nfproto ipv4 ip saddr != { 10.10.0.0/24 } th dport { 9430 } counter drop",
        "\t\tct state new meta l4proto tcp meta nfproto ipv6 th dport { 9430 } counter drop",
        "\t}",
        "}",
        "",
      ].join("\n"),
    );
  });

  it("builds block mode as Talos does: established first, ICMP at 5/s, the cluster's networks, the rules' members accepted, every other new TCP and UDP connection dropped", () => {
    const text = talosFirewall({ ...mgmt, defaultAction: "block" }, ["10.10.0.1"])!;
    const chain = (name: string) => text.split(`\tchain ${name} {\n`)[1].split("\n\t}")[0].split("\n");
    expect(chain("ingress")).toEqual([
      "\t\ttype filter hook input priority mangle + 10; policy drop;",
      '\t\tiifname { "lo", "siderolink", "kubespan" } counter accept',
      "\t\tct state established,related counter accept",
      "\t\tct state invalid counter drop",
      "\t\ticmp type { timestamp-request, timestamp-reply, address-mask-request, address-mask-reply } counter drop",
      "\t\tmeta l4proto icmp limit rate 5/second burst 5 packets counter accept",
      "\t\tmeta l4proto ipv6-icmp limit rate 5/second burst 5 packets counter accept",
      "\t\tip saddr { 10.244.0.0/16 } ip daddr { 10.244.0.0/16 } counter accept",
      "\t\tip6 saddr { fd9c::/56 } ip6 daddr { fd9c::/56 } counter accept",
      "\t\tmeta l4proto tcp meta nfproto ipv4 ip saddr { 10.10.0.0/24 } th dport { 50000, 2379-2380 } counter accept",
      "\t\tmeta l4proto tcp meta nfproto ipv6 ip6 saddr { fd12::/64 } th dport { 50000, 2379-2380 } counter accept",
      "\t\tmeta l4proto tcp meta nfproto ipv4 ip saddr { 10.10.0.0/24 } th dport { 9430 } counter accept",
    ]);
    expect(chain("prerouting").slice(-2)).toEqual([
      "\t\tct state new meta l4proto tcp counter drop",
      "\t\tct state new meta l4proto udp counter drop",
    ]);
    // no address of a family: nothing of that family is the node's
    expect(chain("prerouting")).toContain("\t\tmeta nfproto ipv6 counter accept");
  });

  it("takes the node's routed addresses: global ones on links that are up, not the cluster's", () => {
    const links = [
      {
        ifname: "lo",
        operstate: "UNKNOWN",
        flags: [],
        addr_info: [{ local: "127.0.0.1", scope: "host", family: "inet" }],
      },
      {
        ifname: "wan0",
        operstate: "UP",
        flags: ["UP"],
        addr_info: [
          { local: "81.23.10.2", scope: "global", family: "inet" },
          { local: "fe80::1", scope: "link", family: "inet6" },
          { local: "2a02::2", scope: "global", family: "inet6" },
        ],
      },
      {
        ifname: "lan0.10",
        operstate: "DOWN",
        flags: [],
        addr_info: [{ local: "10.10.0.1", scope: "global", family: "inet" }],
      },
      {
        ifname: "cilium_host",
        operstate: "UP",
        flags: ["UP"],
        addr_info: [{ local: "10.244.0.1", scope: "global", family: "inet" }],
      },
    ];
    expect(routedAddresses(JSON.stringify(links), (a) => a.startsWith("10.244."))).toEqual(["2a02::2", "81.23.10.2"]);
  });

  const t = tier("nft syntax", { root: true, commands: ["nft", "unshare"] });
  it.skipIf(!t.ok)("writes tables nft accepts, in both modes", () => {
    for (const mode of ["accept", "block"] as const) {
      const text = talosFirewall({ ...mgmt, defaultAction: mode }, ["10.10.0.1", "fd12::1"])!;
      // first half only: `delete table` of a table the check's empty namespace lacks is not the point
      const table = text.split("\n").slice(2).join("\n");
      const r = spawnSync("unshare", ["-n", "nft", "-c", "-f", "-"], { input: table, encoding: "utf8" });
      expect(r.status, `${mode}: ${r.stderr}`).toBe(0);
    }
  });
});
