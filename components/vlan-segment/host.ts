/**
 * The host side of one segment, for the node's machine configuration: its VLAN link on the trunk with the
 * router's gateway addresses, and the per-link kernel parameters of a LAN-facing interface.
 */
import type { SegmentPlan } from "../site/plan";
import type { HostContribution, TalosDocument } from "../talos-node/documents";

/** Per-link sysctl keys use the slash form because the link name contains a dot (`lan0.10`). */
function linkSysctl(family: "ipv4" | "ipv6", link: string, param: string): string {
  return `net/${family}/conf/${link}/${param}`;
}

export function renderSegmentHost(seg: SegmentPlan): HostContribution {
  const routes = seg.routes;
  const addresses = [seg.ipv4?.gatewayCidr, seg.ipv6?.gatewayCidr].flatMap((a) => (a ? [{ address: a }] : []));
  const vlan: TalosDocument = {
    apiVersion: "v1alpha1",
    kind: "VLANConfig",
    name: seg.link,
    vlanID: seg.vlan,
    parent: seg.parent,
    vlanMode: "802.1q",
    up: true,
    ...(seg.mtu ? { mtu: seg.mtu } : {}),
    addresses,
    ...(routes.length
      ? {
          routes: routes.map((r) => ({
            destination: r.destination,
            gateway: r.gateway,
            ...(r.metric !== undefined ? { metric: r.metric } : {}),
          })),
        }
      : {}),
  };
  return {
    layer: "segments",
    documents: [vlan],
    sysctls: {
      // The router is the one sending router advertisements here; a rogue RA from a client must not
      // reconfigure it, and it must not autoconfigure addresses of its own on a LAN.
      [linkSysctl("ipv6", seg.link, "accept_ra")]: "0",
      [linkSysctl("ipv6", seg.link, "autoconf")]: "0",
      // No kernel reverse-path check on LAN links (talos-node/machine-config.ts says why: the forward gate).
      // The ruleset's raw_prerouting fib check is the strict anti-spoofing here (a client may only source
      // addresses routed back through its link), for both families; before it is in, the gate routes nothing.
      [linkSysctl("ipv4", seg.link, "rp_filter")]: "0",
    },
  };
}
