/**
 * Helm values of the Cilium fabric on the router: what Talos requires (Kubernetes IPAM, kube-proxy replacement
 * through KubePrism, no cgroup automount, no SYS_MODULE) plus the router's choices. Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { familyOf } from "../site/ip";
import { KUBEPRISM_PORT } from "../talos-node/machine-config";

/** Capabilities Talos allows the agent: the chart's defaults without SYS_MODULE (Talos forbids module loads). */
export const CILIUM_AGENT_CAPABILITIES = [
  "CHOWN",
  "KILL",
  "NET_ADMIN",
  "NET_RAW",
  "IPC_LOCK",
  "SYS_ADMIN",
  "SYS_RESOURCE",
  "DAC_OVERRIDE",
  "FOWNER",
  "SETGID",
  "SETUID",
];
export const CILIUM_CLEAN_STATE_CAPABILITIES = ["NET_ADMIN", "SYS_ADMIN", "SYS_RESOURCE"];

export function renderCiliumValues(site: Site, plan: SitePlan): Record<string, unknown> {
  const pod4 = site.cluster.podCidrs.find((c) => familyOf(c) === 4);
  const pod6 = site.cluster.podCidrs.find((c) => familyOf(c) === 6);
  const dual = pod6 !== undefined;
  const c = site.cilium;
  return {
    ipam: { mode: "kubernetes" },
    kubeProxyReplacement: true,
    // KubePrism: Talos' node-local API endpoint, up before any CNI.
    k8sServiceHost: "localhost",
    k8sServicePort: KUBEPRISM_PORT,
    securityContext: {
      capabilities: { ciliumAgent: CILIUM_AGENT_CAPABILITIES, cleanCiliumState: CILIUM_CLEAN_STATE_CAPABILITIES },
    },
    cgroup: { autoMount: { enabled: false }, hostRoot: "/sys/fs/cgroup" },
    ipv4: { enabled: true },
    ipv6: { enabled: dual },
    k8s: { requireIPv4PodCIDR: true, requireIPv6PodCIDR: dual },
    // One node: pods are routed natively, no tunnel.
    routingMode: "native",
    ...(pod4 ? { ipv4NativeRoutingCIDR: pod4 } : {}),
    ...(pod6 ? { ipv6NativeRoutingCIDR: pod6 } : {}),
    enableIPv4Masquerade: true,
    enableIPv6Masquerade: dual,
    bpf: {
      // iptables masquerade works on every egress link; BPF masquerade only on Cilium's devices, and the WAN
      // is not one of them.
      masquerade: false,
      // Pod traffic traverses the host stack, so the router's nftables zone policy governs pods like any client.
      hostLegacyRouting: true,
    },
    // Cilium runs on the segment links only. The WAN belongs to the XDP guard and nftables: Cilium's NodePort
    // handling at tc ingress would otherwise publish services on the internet side before netfilter sees them.
    // The trunk parent carries tagged frames and is not a Cilium device either, so no bpf.vlanBypass is needed.
    devices: plan.segments.map((s) => s.link),
    loadBalancer: { acceleration: "disabled" },
    hostFirewall: { enabled: c.hostFirewall },
    bandwidthManager: { enabled: c.bandwidthManager.enabled, bbr: c.bandwidthManager.bbr },
    hubble: {
      enabled: c.hubble.enabled,
      relay: { enabled: c.hubble.enabled && c.hubble.relay },
      ui: { enabled: c.hubble.enabled && c.hubble.ui },
      metrics: { enabled: c.hubble.enabled ? [...c.hubble.metrics] : null },
    },
    // The router's TSDB scrapes the agent and the operator on the host network (observability-stack/targets.ts).
    prometheus: { enabled: site.observability.enabled },
    operator: { replicas: 1, prometheus: { enabled: site.observability.enabled } },
    rollOutCiliumPods: true,
  };
}
