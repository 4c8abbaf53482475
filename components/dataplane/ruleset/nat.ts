/**
 * NAT: port forwards (DNAT, NAT66 to unique local addresses, hairpin), masquerade per WAN and IPv6 prefix
 * translation. Pure.
 */
import { contains, familyOf } from "../../site/ip";
import { FWD, TAB, chain, contributed, link, setOf, type Ctx } from "./common";
import { hairpinAddresses } from "../../site/policy";

/** The DNAT statement of a forward: same ports, one port moved, or a range moved port for port (a map). */
function dnatTarget(
  family: "ip" | "ip6",
  to: string,
  port: number | string,
  toPort: number | undefined,
  proto: string,
): string {
  if (toPort === undefined) return `dnat ${family} to ${to}`;
  if (typeof port === "number") return `dnat ${family} to ${family === "ip6" ? `[${to}]` : to}:${toPort}`;
  const [a, b] = port.split("-").map(Number);
  const entries = Array.from({ length: b - a + 1 }, (_, k) => `${a + k} : ${to} . ${toPort + k}`);
  const key = proto === "tcp" || proto === "udp" ? `${proto} dport` : "th dport";
  return `dnat ${family} to ${key} map { ${entries.join(", ")} }`;
}

/**
 * Whether a forward's IPv6 host is a global address reached at a port other than the public one (toPort): the
 * router moves the port as it does for the IPv4 host (a DNAT to the same address), so the service is published at
 * the public port in both families and its own port stays closed to the WAN. Without toPort the pinhole needs no
 * NAT (forward.ts opens it).
 */
export function pinholeMovesPort(f: { ipv6?: string; port: number | string; toPort?: number }): boolean {
  if (!f.ipv6 || contains("fc00::/7", f.ipv6) || f.toPort === undefined) return false;
  return f.toPort !== Number(String(f.port).split("-")[0]);
}

/** The set of a WAN's IPv4 addresses (the data-plane loader fills it: nft.h DP_NFT_WAN_ADDR4). */
function wanAddressSet(wan: string): string {
  return `wan_addr4_${wan}`;
}

/**
 * The sets the hairpin of forwards limited to some WANs matches: one per such WAN, declared with its static address
 * (a DHCP WAN's starts empty); the loader adds each WAN link's current addresses in the transaction that loads the
 * ruleset and reloads it when they change (a DHCP renewal).
 */
export function wanAddressSets(ctx: Ctx): string[] {
  const wans = new Map<string, string | undefined>();
  for (const f of ctx.site.portForwards)
    if (f.hairpin) for (const w of hairpinAddresses(f, ctx.plan) ?? []) wans.set(w.wan, w.address);
  return ctx.plan.wans
    .filter((w) => wans.has(w.name))
    .flatMap((w) => {
      const address = wans.get(w.name);
      return [
        `set ${wanAddressSet(w.name)} {`,
        `${TAB}type ipv4_addr`,
        ...(address ? [`${TAB}elements = { ${address} }`] : []),
        "}",
      ];
    });
}

/** Port forwards' DNAT rules (nat prerouting). */
function forwardRules(ctx: Ctx): string[] {
  const { site, plan } = ctx;
  const pre: string[] = [];
  for (const f of site.portForwards) {
    const proto = f.protocol === "tcp+udp" ? "meta l4proto { tcp, udp } th" : f.protocol;
    const wans = (f.wans ?? plan.wans.map((w) => w.name)).map((w) => link(ctx, w));
    const src4 = f.sources?.filter((c) => familyOf(c) === 4);
    const dnat = dnatTarget("ip", f.to, f.port, f.toPort, proto);
    const mark = `ct mark set ct mark or ${FWD}`;
    pre.push(`# port forward ${f.name}`);
    // IPv4 only: in an inet table a rule without an IPv4 match would also mark IPv6 connections as forwarded.
    // Only what is addressed to the router itself: a packet on its way to another address (an inside host, or
    // transit a WAN neighbour routes through the router) on the forward's port is not the forward's.
    if (!f.sources || src4!.length)
      pre.push(
        `iifname ${setOf(wans)} ${src4 ? `ip saddr ${setOf(src4)}` : "meta nfproto ipv4"} fib daddr type local ${proto} dport ${f.port} ${mark} ${dnat}`,
      );
    // IPv6 to a unique local address: DNAT from the router's own address on WANs that masquerade IPv6.
    if (f.ipv6 && contains("fc00::/7", f.ipv6)) {
      const nat66 = (f.wans ?? plan.wans.map((w) => w.name)).filter(
        (w) => plan.wans.find((x) => x.name === w)?.nat.ipv6 === "masquerade",
      );
      const src6 = f.sources?.filter((c) => familyOf(c) === 6);
      if (nat66.length && (!f.sources || src6!.length))
        pre.push(
          `iifname ${setOf(nat66.map((w) => link(ctx, w)))} ${src6 ? `ip6 saddr ${setOf(src6)}` : "meta nfproto ipv6"} fib daddr type local ${proto} dport ${f.port} ${mark} ${dnatTarget("ip6", f.ipv6, f.port, f.toPort, proto)}`,
        );
    }
    // IPv6 to a global address at another port: the same address, the port moved like the IPv4 host's; marked a
    // forward, so the forward chain takes it at its first rules (no pinhole for the public port is needed)
    if (f.ipv6 && pinholeMovesPort(f)) {
      const src6 = f.sources?.filter((c) => familyOf(c) === 6);
      if (!f.sources || src6!.length)
        pre.push(
          `iifname ${setOf(wans)} ${src6 ? `ip6 saddr ${setOf(src6)} ` : ""}ip6 daddr ${f.ipv6} ${proto} dport ${f.port} ${mark} ${dnatTarget("ip6", f.ipv6, f.port, f.toPort, proto)}`,
        );
    }
    // Hairpin: an inside client at the public address gets what the forward publishes to its sources, no more
    // (policy.ts: an inside client uses the hairpin only when the forward has no source limit or lists it).
    // A forward limited to some WANs is taken at their addresses only (policy.ts hairpinAddresses): the set the
    // loader keeps at each WAN's current addresses (wanAddressSets), one rule per WAN.
    const at = hairpinAddresses(f, plan);
    if (f.hairpin && (!f.sources || src4!.length))
      for (const daddr of at ? at.map((w) => `ip daddr @${wanAddressSet(w.wan)}`) : ["ip daddr != @internal4"])
        pre.push(
          `iifname @lan_links ${src4 ? `ip saddr ${setOf(src4)} ` : ""}fib daddr type local ${daddr} ${proto} dport ${f.port} ${mark} ${dnat}`,
        );
  }
  return pre;
}

export function natChains(ctx: Ctx, f: { internal6: string[] }): string[] {
  const { site, plan } = ctx;
  const pre = [...contributed(ctx, "natPrerouting"), ...forwardRules(ctx)];
  const post: string[] = [];
  if (site.portForwards.some((x) => x.hairpin))
    post.push(
      "# hairpin: inside clients reaching a forward through the public address get the router as source",
      `ct mark and ${FWD} == ${FWD} oifname @lan_links ip saddr @internal4 masquerade`,
    );
  for (const w of plan.wans) {
    const l = link(ctx, w.name);
    if (w.nat.ipv4 === "masquerade") post.push(`oifname ${l} ip saddr @internal4 masquerade`);
    if (w.nat.ipv6 === "masquerade" && f.internal6.length) post.push(`oifname ${l} ip6 saddr @internal6 masquerade`);
    if (w.nat.ipv6 === "prefix" && w.nat.ipv6Internal && w.nat.ipv6External) {
      post.push(`oifname ${l} ip6 saddr ${w.nat.ipv6Internal} snat ip6 prefix to ${w.nat.ipv6External}`);
      pre.push(`iifname ${l} ip6 daddr ${w.nat.ipv6External} dnat ip6 prefix to ${w.nat.ipv6Internal}`);
    }
  }
  return [
    ...chain("nat_prerouting", pre, "type nat hook prerouting priority dstnat; policy accept;"),
    ...chain("nat_postrouting", post, "type nat hook postrouting priority srcnat; policy accept;"),
  ];
}
