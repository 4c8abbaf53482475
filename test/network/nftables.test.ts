/** The rendered nftables ruleset: its structure, and `nft -c` on sites that stress it. */
import { describe, expect, it } from "vitest";
import { renderRuleset, linkDefines } from "../../components/dataplane/nftables";
import { devSite } from "../helpers/dev-site";
import { evaluate } from "../../components/site/policy";
import { nftCheck, validatorsTier } from "../helpers/validators";

const t = validatorsTier();

function chainBody(ruleset: string, name: string): string[] {
  const m = new RegExp(`\\tchain ${name} \\{\\n((?:\\t\\t.*\\n)*)\\t\\}`).exec(ruleset);
  if (!m) throw new Error(`no chain ${name}`);
  return m[1]
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

describe("the nftables ruleset", () => {
  const { site, plan, policy } = devSite();
  const rs = renderRuleset(site, plan, policy);

  it("defines only table inet router (the loader refuses anything else)", () => {
    expect(rs.match(/^table /gm)).toEqual(["table "]);
    expect(rs).toMatch(/^table inet router \{$/m);
    expect(rs).not.toMatch(/flush ruleset|table inet talos|table ip /);
  });

  it("names physical links through defines the loader resolves to kernel names", () => {
    expect([...linkDefines(site, plan)]).toEqual([
      ["wan0", "if_wan0"],
      ["wan1", "if_wan1"],
      ["lan0", "if_lan0"],
    ]);
    expect(rs).toMatch(/^define if_wan0 = "wan0"$/m);
    expect(rs).toMatch(/set wan_links \{\n\t\ttype ifname\n\t\telements = \{ \$if_wan0, \$if_wan1 \}/);
  });

  it("accepts established traffic first and drops what no zone pair allows", () => {
    const fwd = chainBody(rs, "forward");
    expect(fwd[0]).toBe("type filter hook forward priority filter; policy drop;");
    expect(fwd[1]).toBe("ct state established,related accept");
    expect(fwd[2]).toBe("ct state invalid drop");
    expect(fwd.at(-1)).toBe("counter drop");
    expect(fwd.some((l) => l.startsWith("iifname vmap {"))).toBe(true);
  });

  it("dispatches a new connection to one chain per zone pair holding only that pair's rules, then its policy", () => {
    expect(chainBody(rs, "fwd_iot_servers")).toEqual([
      "ip daddr 10.50.0.10/32 tcp dport { 445, 554 } accept",
      "ip6 daddr fd12:3456:789a:50::10/128 tcp dport { 445, 554 } accept",
      'limit rate 10/minute log prefix "router iot>servers drop: "',
      "drop",
    ]);
    expect(chainBody(rs, "fwd_trusted_wan")).toEqual(["accept"]);
    expect(chainBody(rs, "fwd_guest_wan")).toEqual([
      'meta l4proto { tcp, udp } th dport { 53, 853 } limit rate 10/minute log prefix "router guest>wan no-guest-dns-bypass: "',
      "meta l4proto { tcp, udp } th dport { 53, 853 } reject with icmpx admin-prohibited",
      "accept",
    ]);
    expect(chainBody(rs, "fwd_guest_trusted")).toEqual(["reject with icmpx admin-prohibited"]);
    expect(chainBody(rs, "fwd_wan_servers")).toEqual([
      'limit rate 10/minute log prefix "router wan>servers drop: "',
      "drop",
    ]);
    expect(chainBody(rs, "fwd_from_trusted")[0]).toMatch(
      /^oifname vmap \{ "lan0.10" : jump fwd_trusted_mgmt, .* \$if_wan1 : jump fwd_trusted_wan \}$/,
    );
  });

  it("opens the router to management zones and to each zone's services only", () => {
    // Talos API, trustd, Kubernetes API, the loader's metrics, the observability stack's UIs and APIs, then the
    // DNS stack's metrics (the dev site serves DNS) — to management zones only.
    expect(chainBody(rs, "in_mgmt")).toContain(
      "tcp dport { 50000, 50001, 6443, 9430, 9090, 9093, 9100, 9428, 8080, 9433 } accept",
    );
    expect(rs.split("\n").filter((l) => l.includes("9433"))).toHaveLength(1);
    expect(chainBody(rs, "in_guest")).toEqual(["tcp dport 53 accept", "udp dport { 53, 67, 547 } accept"]);
    expect(chainBody(rs, "in_wan")).toEqual([]);
  });

  it("forwards ports from every WAN, with hairpin and source restriction, and NATs per WAN", () => {
    const pre = chainBody(rs, "nat_prerouting");
    // Each forward marks its connections (0x4): the forward chain accepts exactly those.
    const fwd = "ct mark set ct mark or 0x4";
    // IPv4 only (an inet table would otherwise mark IPv6 connections too); IPv6 to the NAS (a unique local
    // address) goes through wan0's own address, the WAN that masquerades IPv6.
    expect(pre).toContain(
      `iifname { $if_wan0, $if_wan1 } meta nfproto ipv4 fib daddr type local tcp dport 443 ${fwd} dnat ip to 10.50.0.10`,
    );
    expect(pre).toContain(
      `iifname $if_wan0 meta nfproto ipv6 fib daddr type local tcp dport 443 ${fwd} dnat ip6 to fd12:3456:789a:50::10`,
    );
    expect(pre).toContain(
      `iifname @lan_links fib daddr type local ip daddr != @internal4 tcp dport 443 ${fwd} dnat ip to 10.50.0.10`,
    );
    expect(pre).toContain(
      `iifname { $if_wan0, $if_wan1 } ip saddr 81.2.69.160/27 fib daddr type local tcp dport 8443 ${fwd} dnat ip to 10.50.0.10:5001`,
    );
    // The hairpin of a source-limited forward serves the same sources: the office's range, no inside client.
    expect(pre.filter((l) => l.includes("8443") && l.includes("@lan_links"))).toEqual([
      `iifname @lan_links ip saddr 81.2.69.160/27 fib daddr type local ip daddr != @internal4 tcp dport 8443 ${fwd} dnat ip to 10.50.0.10:5001`,
    ]);
    expect(pre.filter((l) => l.includes("51820"))).toEqual([
      `iifname { $if_wan0, $if_wan1 } meta nfproto ipv4 fib daddr type local udp dport 51820 ${fwd} dnat ip to 10.50.0.11`,
    ]);
    expect(chainBody(rs, "forward")).toContain("ct mark and 0x4 == 0x4 accept");
    expect(rs).not.toContain("ct status dnat accept");
    const post = chainBody(rs, "nat_postrouting");
    expect(post).toEqual([
      "type nat hook postrouting priority srcnat; policy accept;",
      "ct mark and 0x4 == 0x4 oifname @lan_links ip saddr @internal4 masquerade",
      "oifname $if_wan0 ip saddr @internal4 masquerade",
      "oifname $if_wan0 ip6 saddr @internal6 masquerade",
      "oifname $if_wan1 ip saddr @internal4 masquerade",
    ]);
  });

  it("keeps every connection on the WAN it uses: replies of inbound ones, later packets of outbound ones", () => {
    expect(chainBody(rs, "mangle_prerouting")).toEqual([
      "type filter hook prerouting priority mangle; policy accept;",
      "iifname $if_wan0 ct state new ct mark set ct mark and 0xffffff07 or 0x10",
      "iifname $if_wan1 ct state new ct mark set ct mark and 0xffffff07 or 0x20",
      "ct direction reply ct mark and 0x8 == 0 ct mark and 0xf0 != 0 meta mark set ct mark and 0xf0",
      "ct direction original ct mark and 0x8 == 0x8 meta mark set ct mark and 0xf0",
      // the forward gate opens last, after the restore that replaces the whole mark
      "meta mark set meta mark or 0x1000",
    ]);
    // Outbound connections take the WAN of their first packet (bit 3 says "opened from inside").
    expect(chainBody(rs, "mangle_postrouting")).toEqual([
      "type filter hook postrouting priority mangle; policy accept;",
      "oifname $if_wan0 ct state new ct mark and 0xf0 == 0 ct mark set ct mark and 0xffffff07 or 0x18",
      "oifname $if_wan1 ct state new ct mark and 0xf0 == 0 ct mark set ct mark and 0xffffff07 or 0x28",
    ]);
    expect(chainBody(rs, "mangle_output").slice(1)).toEqual(chainBody(rs, "mangle_prerouting").slice(3, 5));
  });

  it("offers a forward's hairpin to the inside prefixes it lists, and none to a forward listing only IPv6 sources", () => {
    const r = devSite((raw) => {
      raw.portForwards.push(
        {
          name: "admin-ui",
          protocol: "tcp",
          port: 9443,
          to: "10.50.0.10",
          sources: ["81.2.69.160/27", "10.20.0.0/24"],
        },
        { name: "v6-only", protocol: "tcp", port: 9444, to: "10.50.0.10", sources: ["2001:db8:77::/48"] },
      );
      raw.dataplane.allowlist = ["2001:db8:77::/48"];
    });
    const pre = chainBody(renderRuleset(r.site, r.plan, r.policy), "nat_prerouting");
    expect(pre.filter((l) => l.includes("@lan_links") && l.includes("944"))).toEqual([
      "iifname @lan_links ip saddr { 81.2.69.160/27, 10.20.0.0/24 } fib daddr type local ip daddr != @internal4 tcp dport 9443 ct mark set ct mark or 0x4 dnat ip to 10.50.0.10",
    ]);
  });

  it("hairpins a forward limited to some WANs at their addresses, a DHCP WAN's included, through sets the loader keeps", () => {
    // wan1 gets a static address; wan0 keeps DHCP. One forward on each, one on both.
    const r = devSite((raw) => {
      const wan1 = raw.links.find((l: { name: string }) => l.name === "wan1");
      wan1.ipv4 = { mode: "static", address: "198.51.100.6/29", gateway: "198.51.100.1" };
      raw.portForwards.push(
        { name: "on-static", protocol: "tcp", port: 9445, to: "10.50.0.10", wans: ["wan1"] },
        { name: "on-dhcp", protocol: "tcp", port: 9446, to: "10.50.0.10", wans: ["wan0"] },
        { name: "on-both", protocol: "tcp", port: 9447, to: "10.50.0.10" },
      );
    });
    const text = renderRuleset(r.site, r.plan, r.policy);
    const hairpins = chainBody(text, "nat_prerouting").filter(
      (l) => l.includes("@lan_links") && /dport 944[567]/.test(l),
    );
    expect(hairpins).toEqual([
      "iifname @lan_links fib daddr type local ip daddr @wan_addr4_wan1 tcp dport 9445 ct mark set ct mark or 0x4 dnat ip to 10.50.0.10",
      "iifname @lan_links fib daddr type local ip daddr @wan_addr4_wan0 tcp dport 9446 ct mark set ct mark or 0x4 dnat ip to 10.50.0.10",
      "iifname @lan_links fib daddr type local ip daddr != @internal4 tcp dport 9447 ct mark set ct mark or 0x4 dnat ip to 10.50.0.10",
    ]);
    // the static WAN's set carries its address; the DHCP WAN's starts empty (the loader fills both from the links,
    // ebpf/loader/nft.h DP_NFT_WAN_ADDR4)
    expect(text).toContain("\tset wan_addr4_wan0 {\n\t\ttype ipv4_addr\n\t}\n");
    expect(text).toContain("\tset wan_addr4_wan1 {\n\t\ttype ipv4_addr\n\t\telements = { 198.51.100.6 }\n\t}\n");
    // the policy model says the same: a trusted client at each public address (203.0.113.9 stands for wan0's lease)
    const at = (port: number, dst: string, wan?: string) =>
      evaluate(r.policy, { from: "trusted", to: "router", proto: "tcp", port, src: "10.20.0.50", dst, wan }).by;
    expect([
      at(9445, "198.51.100.6"),
      at(9445, "203.0.113.9", "wan0"),
      at(9446, "203.0.113.9", "wan0"),
      at(9446, "198.51.100.6"),
      at(9447, "203.0.113.9", "wan0"),
    ]).toEqual(["hairpin:on-static", "input-default", "hairpin:on-dhcp", "input-default", "hairpin:on-both"]);
  });

  it("treats a private prefix routed to the inside as the site's own: NATed to the WANs, never sourced from them", () => {
    const r = devSite((raw) => {
      raw.routes = [
        { destination: "172.20.99.0/24", gateway: "10.20.0.254" },
        { destination: "fd12:3456:789b::/48", gateway: "fd12:3456:789a:20::fe" },
        { destination: "198.18.40.0/24", gateway: "10.20.0.254" },
      ];
    });
    const text = renderRuleset(r.site, r.plan, r.policy);
    const set = (name: string) =>
      new RegExp(`set ${name} \\{[^}]*elements = \\{ ([^}]*) \\}`).exec(text)?.[1].split(", ");
    expect(set("internal4")).toContain("172.20.99.0/24");
    expect(set("internal6")).toContain("fd12:3456:789b::/48");
    // A public prefix behind an inside router is routed as it is, not NATed.
    expect(set("internal4")).not.toContain("198.18.40.0/24");
    expect(chainBody(text, "nat_postrouting")).toContain("oifname $if_wan0 ip saddr @internal4 masquerade");
    expect(chainBody(text, "raw_prerouting")).toContain("iifname @wan_links ip saddr @internal4 drop");
  });

  it("moves a forwarded port range port for port", () => {
    const r = devSite((raw) =>
      raw.portForwards.push({
        name: "game",
        protocol: "tcp+udp",
        port: "27015-27017",
        to: "10.50.0.20",
        toPort: 28015,
      }),
    );
    expect(chainBody(renderRuleset(r.site, r.plan, r.policy), "nat_prerouting")).toContain(
      "iifname { $if_wan0, $if_wan1 } meta nfproto ipv4 fib daddr type local meta l4proto { tcp, udp } th dport 27015-27017 ct mark set ct mark or 0x4 dnat ip to th dport map { 27015 : 10.50.0.20 . 28015, 27016 : 10.50.0.20 . 28016, 27017 : 10.50.0.20 . 28017 }",
    );
  });

  it.skipIf(!t.ok)("passes nft -c for the dev site", () => {
    expect(nftCheck(rs)).toEqual([]);
  });

  it.skipIf(!t.ok)(
    "passes nft -c with 1,000 rules reached by destination port, and keeps them out of other zone pairs' chains",
    () => {
      const big = devSite((raw) => {
        for (let i = 0; i < 1000; i++)
          raw.firewall.rules.push({
            name: `generated-${i}`,
            from: "trusted",
            to: "wan",
            protocol: i % 2 ? "tcp" : "udp",
            ports: [1000 + i, `${20000 + 11 * i}-${20010 + 11 * i}`],
            destination: [`172.${16 + (i % 16)}.${Math.floor(i / 16)}.0/24`],
            action: i % 3 ? "drop" : "reject",
          });
        raw.firewall.rules.push({ name: "no-ports", from: "trusted", to: "wan", protocol: "icmp", action: "drop" });
      });
      const text = renderRuleset(big.site, big.plan, big.policy);
      expect(nftCheck(text)).toEqual([]);
      // One lookup on the port, then the rule without ports, then the pair's policy.
      expect(chainBody(text, "fwd_trusted_wan")).toEqual([
        "th dport vmap @fwd_trusted_wan_ports",
        "meta l4proto { icmp, ipv6-icmp } drop",
        "accept",
      ]);
      // Each rule's two port ranges lead to one chain: that rule, then the rule without ports.
      expect(text).toContain("\t\t\t1007 : jump fwd_trusted_wan_p8,");
      expect(text).toContain("\t\t\t20077-20087 : jump fwd_trusted_wan_p8,");
      expect(chainBody(text, "fwd_trusted_wan_p8")).toEqual([
        "ip daddr 172.23.0.0/24 tcp dport { 1007, 20077-20087 } drop",
        "meta l4proto { icmp, ipv6-icmp } drop",
      ]);
      expect(chainBody(text, "fwd_iot_wan")).toEqual(["accept"]);
    },
  );
});
