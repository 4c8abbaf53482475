/**
 * The node's own backstop firewall (DESIGN decision 11): Talos' ingress firewall, which Talos loads from boot
 * whether or not our data-plane extension runs, so the node's management ports answer only the management
 * prefixes even before `table inet router` is in or after the loader died.
 *
 * Default action `accept`, deliberately, with one rule per management service. Talos' `block` mode (read in
 * siderolabs/talos internal/app/machined/pkg/controllers/network/nftables_chain_config.go) accepts ICMP and ICMPv6
 * at 5 packets/s in total and matches only TCP/UDP ports, so on a busy LAN it would starve neighbour discovery
 * (every client's NS/NA and RS is ICMPv6) and drop OSPF (IP protocol 89) outright; the router's zone policy
 * (`inet router` input chain) is where everything else is judged. In `accept` mode each rule drops new
 * connections to its ports from any source outside its subnets — in Talos' input chain and, for the node's own
 * addresses, already in prerouting — which is exactly the backstop: the Talos API, trustd, etcd, the Kubernetes
 * API, the kubelet and the loader's metrics never answer the WAN or a non-management zone, from boot on.
 * Loopback is always trusted by Talos, so the node's own clients (kubelet → API server, hostNetwork pods) pass.
 * Pure.
 */
import type { Site } from "../site/schema";
import { segmentPrefixes, type SitePlan } from "../site/plan";
import type { TalosDocument } from "./documents";
import { KUBE_API_PORT } from "./machine-config";

/** Ports of the Talos API (apid) and trustd. */
export const TALOS_API_PORTS = [50000, 50001] as const;
export const ETCD_PORTS = "2379-2380";
export const KUBELET_PORT = 10250;

/** The prefixes of every segment in a management zone (IPv4 and IPv6). */
export function managementPrefixes(plan: SitePlan): string[] {
  const mgmtZones = new Set(plan.zones.filter((z) => z.management).map((z) => z.name));
  return plan.segments.filter((s) => mgmtZones.has(s.zone)).flatMap(segmentPrefixes);
}

function rule(name: string, ports: (number | string)[], subnets: string[]): TalosDocument {
  return {
    apiVersion: "v1alpha1",
    kind: "NetworkRuleConfig",
    name,
    portSelector: { ports, protocol: "tcp" },
    ingress: subnets.map((subnet) => ({ subnet })),
  };
}

/** The kinds of the documents rendered here: a reviewer reads them in the firewall layer. */
export const FIREWALL_KINDS: ReadonlySet<string> = new Set(["NetworkDefaultActionConfig", "NetworkRuleConfig"]);

/** NetworkDefaultActionConfig and one NetworkRuleConfig per management service. */
export function firewallDocuments(site: Site, plan: SitePlan): TalosDocument[] {
  const mgmt = managementPrefixes(plan);
  // The cluster's own pods reach the API server (through the kubernetes Service) and the kubelet (metrics, logs).
  const pods = [...site.cluster.podCidrs];
  return [
    { apiVersion: "v1alpha1", kind: "NetworkDefaultActionConfig", ingress: "accept" },
    rule("router-talos-api", [...TALOS_API_PORTS], mgmt),
    rule("router-etcd", [ETCD_PORTS], mgmt),
    rule("router-kubernetes-api", [KUBE_API_PORT, KUBELET_PORT], [...mgmt, ...pods]),
    rule("router-dataplane-metrics", [site.dataplane.metricsPort], [...mgmt, ...pods]),
  ];
}
