/**
 * The forward gate: nothing is routed through the router before its ruleset is in (DESIGN decision 11).
 *
 * Talos turns IPv4 forwarding on at boot (its kernel-parameter defaults), and Kubernetes and Cilium need it on
 * (Cilium's agent switches it on again when it starts), so the gate cannot be the forwarding switch — Talos would
 * also rewrite it on every configuration change. Instead the node boots with three policy-routing rules, both
 * families, applied by Talos itself from the machine configuration long before our extension starts:
 *
 *   GATE_LOCAL   iif lo                    → lookup main     the node's own traffic is routed as always
 *   GATE_OPEN    fwmark GATE/GATE          → lookup main     packets `table inet router` has seen
 *   GATE_CLOSED  (anything else)           → blackhole       routed traffic before the ruleset is in
 *
 * and `table inet router` sets the gate bit on every packet in its prerouting chain. Local delivery is decided by
 * the `local` table at priority 0, before these rules, so the router still answers DHCP, neighbour discovery and
 * its management ports while the gate is closed; the multi-WAN rules of the loader (priority 1000 and up) match
 * WAN marks and come first, and they exist only once the loader runs. Removing the table — or a loader that never
 * loaded a ruleset, or loaded only its fallback — closes the gate again: fail closed without anyone to notice.
 * Talos validation rejects `fwMark 0` with a mask, hence the open rule instead of a "not marked" match.
 * The bit lies outside the WAN marks (0xf0), Cilium's (0x0f00 and the identity bits) and kube-proxy's
 * (0x4000, 0x8000). Pure.
 */
import type { TalosDocument } from "../talos-node/documents";

/** Packet-mark bit `table inet router` sets on everything it sees in prerouting. */
export const FORWARD_GATE_MARK = 0x1000;
/** Rule priorities: after the loader's WAN rules (1000 + n), before main (32766); 32500 is Talos' KubeSpan. */
export const GATE_LOCAL_PRIORITY = 32000;
export const GATE_OPEN_PRIORITY = 32001;
export const GATE_CLOSED_PRIORITY = 32002;
/**
 * Talos decodes a rule's action by name (nethelpers.RoutingRuleAction's text form: unicast, blackhole,
 * unreachable, prohibit). Its published JSON schema lists the field as an integer, but Talos refuses a number:
 * "6 does not belong to RoutingRuleAction values", and the whole machine configuration fails to load.
 */
const ACTION_BLACKHOLE = "blackhole";

export function gateDocuments(): TalosDocument[] {
  const rule = (priority: number, body: Record<string, unknown>): TalosDocument => ({
    apiVersion: "v1alpha1",
    kind: "RoutingRuleConfig",
    name: String(priority),
    ...body,
  });
  return [
    rule(GATE_LOCAL_PRIORITY, { iifName: "lo", table: "main" }),
    rule(GATE_OPEN_PRIORITY, { fwMark: FORWARD_GATE_MARK, fwMask: FORWARD_GATE_MARK, table: "main" }),
    // The schema requires a table; a blackhole rule never looks it up.
    rule(GATE_CLOSED_PRIORITY, { action: ACTION_BLACKHOLE, table: "main" }),
  ];
}
