/**
 * Dynamic routing on the host side: BGP through Talos' native BGP (a BGPInstanceConfig document in the machine
 * configuration). OSPF, which Talos does not speak, runs in FRR (config.ts). Pure.
 * Both share the kernel's main table: Talos installs learned paths with protocol bgp at metric 0, which FRR's
 * zebra also counts as its own, but zebra installs and sweeps only at its fixed metric 20, so a start of the frr
 * pod leaves Talos' routes in place (test/network/frr-start-sweep.kernel.test.ts).
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { HostContribution } from "../talos-node/documents";

export function renderRoutingHost(site: Site, plan: SitePlan): HostContribution {
  const bgp = site.routing.bgp;
  if (!bgp) return { layer: "routing", documents: [] };
  return {
    layer: "routing",
    documents: [
      {
        apiVersion: "v1alpha1",
        kind: "BGPInstanceConfig",
        name: "default",
        localASN: bgp.asn,
        routerID: bgp.routerId,
        advertise: plan.segments.filter((s) => bgp.advertise.includes(s.name)).map((s) => s.link),
        installRoutes: true,
        // An empty bfd block turns BFD on with Talos' defaults (BGPNeighborConfig.bfd).
        neighbors: bgp.neighbors.map((n) => ({ address: n.address, peerASN: n.asn, ...(n.bfd ? { bfd: {} } : {}) })),
      },
    ],
  };
}
