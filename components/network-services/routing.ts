/**
 * Dynamic routing on the host side: BGP through Talos' native BGP (a BGPInstanceConfig document in the machine
 * configuration). OSPF, which Talos does not speak, runs in BIRD (bird.ts). Pure.
 * Both share the kernel's main table: Talos installs learned paths with protocol bgp at metric 0; BIRD counts only
 * protocol bird routes as its own, so neither its start nor its kernel sync touches Talos' routes
 * (test/network/bird-restart.kernel.test.ts).
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
