/**
 * Forward: routed traffic between zones. Established traffic first, ICMPv6 errors, port forwards and IPv6
 * pinholes, then a new connection is dispatched by verdict maps (in-link → source zone, out-link → zone pair) to
 * a chain holding only that pair's rules and then its policy. Pure.
 */
import { contains, familyOf } from "../../site/ip";
import { evaluate } from "../../site/policy";
import { FWD, VERDICTS, chain, contributed, ident, link, logGroupOf, logStatement, setOf, type Ctx } from "./common";
import { rulesInto } from "./rules";
import { pinholeMovesPort } from "./nat";

/** Forward chain of one zone pair: that pair's rules in order, then the policy's verdict. */
function pairChain(ctx: Ctx, from: string, to: string): string[] {
  const name = `fwd_${ident(from)}_${ident(to)}`;
  const rules = ctx.model.rules.filter(
    (r) => (r.from === "any" || r.from.includes(from)) && (r.to === "any" || r.to.includes(to)),
  );
  const body = rulesInto(ctx, rules, name, `${from}>${to}`);
  // The fallback verdict: what `evaluate` gives once no rule matched (addresses do not matter any more).
  const rest = evaluate(
    { ...ctx.model, rules: [] },
    { from, to, proto: "tcp", port: 1, src: "0.0.0.0", dst: "0.0.0.0" },
  );
  body.push(`# ${rest.by}`);
  if (rest.verdict !== "accept" && rest.log)
    body.push(logStatement(ctx.model.logRate, `router ${from}>${to} ${rest.verdict}`, logGroupOf(ctx.contributions)));
  body.push(VERDICTS(rest.verdict));
  return chain(name, body);
}

/** IPv6 pinholes of port forwards to global (or prefix-translated) addresses. */
function pinholes(ctx: Ctx): string[] {
  const { site, plan } = ctx;
  return site.portForwards.flatMap((f) => {
    // A pinhole opens a global address; a unique local one is reached through NAT66 (DNAT in nat.ts) or, with
    // prefix translation, at its translated address — then the pinhole names the inside address.
    if (!f.ipv6) return [];
    if (contains("fc00::/7", f.ipv6) && !plan.wans.some((w) => w.nat.ipv6 === "prefix")) return [];
    // a global host at another port than the public one is DNATed and marked a forward (nat.ts)
    if (pinholeMovesPort(f)) return [];
    const proto = f.protocol === "tcp+udp" ? "meta l4proto { tcp, udp } th" : f.protocol;
    const wans = (f.wans ?? plan.wans.map((w) => w.name)).map((w) => link(ctx, w));
    const src = f.sources?.filter((c) => familyOf(c) === 6);
    if (f.sources && !src?.length) return [];
    return [
      `# port forward ${f.name}: IPv6 pinhole`,
      `iifname ${setOf(wans)} ${src ? `ip6 saddr ${setOf(src)} ` : ""}ip6 daddr ${f.ipv6} ${proto} dport ${f.port} accept`,
    ];
  });
}

export function forwardChains(ctx: Ctx): string[] {
  const { model } = ctx;
  const fwdDispatch = ctx.byLink.map(([l, z]) => `${link(ctx, l)} : jump fwd_from_${ident(z)}`);
  const out = chain(
    "forward",
    [
      "ct state established,related accept",
      "ct state invalid drop",
      "# ICMPv6 errors must pass (RFC 4890 §4.3.1)",
      "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept",
      "# port forwards: their DNAT rules already checked WAN, port and source, and marked the connection",
      `ct mark and ${FWD} == ${FWD} accept`,
      ...pinholes(ctx),
      "# the router's own pods may reach every zone",
      'iifname "lxc*" accept',
      'iifname "cilium_*" accept',
      ...contributed(ctx, "forward"),
      ...(fwdDispatch.length ? [`iifname vmap { ${fwdDispatch.join(", ")} }`] : []),
      ...(model.logDrops ? [logStatement(model.logRate, "router forward drop", logGroupOf(ctx.contributions))] : []),
      "counter drop",
    ],
    "type filter hook forward priority filter; policy drop;",
  );
  for (const from of model.zones) {
    const targets = ctx.byLink.map(([l, z]) => `${link(ctx, l)} : jump fwd_${ident(from)}_${ident(z)}`);
    out.push(...chain(`fwd_from_${ident(from)}`, targets.length ? [`oifname vmap { ${targets.join(", ")} }`] : []));
    for (const to of model.zones) out.push(...pairChain(ctx, from, to));
  }
  return out;
}
