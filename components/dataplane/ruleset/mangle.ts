/**
 * Mangle: the connection marks of multi-WAN (replies leave through the WAN a connection came in on, and a live
 * NATed connection keeps its uplink across a failback). Pure.
 */
import { OUTBOUND_BIT, WAN_MARK_MASK } from "../../site/plan";
import { FORWARD_GATE_MARK } from "../gate";
import { chain, link, type Ctx } from "./common";

export function mangleChains(ctx: Ctx): string[] {
  const { plan } = ctx;
  // Every connection through a WAN remembers it in its ct mark (bits 4–7: the WAN, bit 3: the connection was
  // opened from inside). Packets of the connection that must leave through that WAN carry the WAN bits as packet
  // mark, and the loader's `fwmark … lookup <WAN table>` rule sends them there: replies to connections that came
  // in on a WAN, and later packets of connections opened through a WAN — so a failback does not move a live
  // NATed connection to another uplink with the wrong source address.
  const mask = `0x${WAN_MARK_MASK.toString(16)}`;
  const keep = `0x${((0xffffffff ^ (WAN_MARK_MASK | OUTBOUND_BIT)) >>> 0).toString(16)}`;
  const outbound = `0x${OUTBOUND_BIT.toString(16)}`;
  const inbound = plan.wans.map(
    (w) => `iifname ${link(ctx, w.name)} ct state new ct mark set ct mark and ${keep} or 0x${w.mark.toString(16)}`,
  );
  const restore = [
    `ct direction reply ct mark and ${outbound} == 0 ct mark and ${mask} != 0 meta mark set ct mark and ${mask}`,
    `ct direction original ct mark and ${outbound} == ${outbound} meta mark set ct mark and ${mask}`,
  ];
  const egress = plan.wans.map(
    (w) =>
      `oifname ${link(ctx, w.name)} ct state new ct mark and ${mask} == 0 ct mark set ct mark and ${keep} or 0x${(w.mark | OUTBOUND_BIT).toString(16)}`,
  );
  return [
    ...chain(
      "mangle_prerouting",
      [
        ...inbound,
        ...restore,
        "# open the forward gate (gate.ts): the node's routing rules blackhole routed packets this table has not seen",
        `meta mark set meta mark or 0x${FORWARD_GATE_MARK.toString(16)}`,
      ],
      "type filter hook prerouting priority mangle; policy accept;",
    ),
    ...chain("mangle_output", restore, "type route hook output priority mangle; policy accept;"),
    ...chain("mangle_postrouting", egress, "type filter hook postrouting priority mangle; policy accept;"),
  ];
}
