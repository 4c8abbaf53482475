/**
 * Renders the node's complete Talos 1.14 machine configuration: the minimal `v1alpha1` document plus the 1.14
 * multi-documents (no deprecated `machine.network`/`cluster.network` fields, no Flannel, kube-proxy off,
 * KubePrism on, CoreDNS forwarded to the host resolver). Pure and deterministic: the same site and secrets give the
 * same bytes.
 */
import { stringify } from "yaml";
import type { Site, InstallDisk } from "../site/schema";
import { segmentPrefixes, type SitePlan, type WanPlan } from "../site/plan";
import { contains, familyOf } from "../site/ip";
import { mergeContributions, type HostContribution, type TalosDocument } from "./documents";
import { firewallDocuments } from "./firewall";
import { b64, text, type SecretText, type TalosSecrets } from "./secrets";
import { diskSelector, renderCel } from "./disk-selector";

/** Kubernetes API port on the node. */
export const KUBE_API_PORT = 6443;
/** KubePrism: the node-local API load balancer Cilium's kube-proxy replacement talks to. */
export const KUBEPRISM_PORT = 7445;
/** Namespace of the router's own Kubernetes workloads (exempt from baseline pod security: hostNetwork). */
export const ROUTER_NAMESPACE = "router-system";

export interface MachineConfigInput {
  site: Site;
  plan: SitePlan;
  secrets: TalosSecrets;
  /** Host-side pieces of the other layers (VLAN links, data plane service config, …). */
  contributions?: readonly HostContribution[];
  /** Password for router:registry, when the site uses an authenticated registry. */
  registryPassword?: SecretText;
  /** Installer image to install and upgrade with (the data plane's build); default: router:talos.installerImage. */
  installerImage?: string;
}

/** `https://host:port` with IPv6 in brackets. */
export function apiEndpoint(address: string, port = KUBE_API_PORT): string {
  return `https://${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/** The CEL expression that picks the install disk; never a read-only, optical or USB device (disk-selector.ts). */
export function diskSelectorCel(d: InstallDisk): string {
  return renderCel(diskSelector(d));
}

/**
 * Kernel parameters of a router. Per-link keys for links that exist only after Talos creates them (VLANs) come
 * from the layers that own those links.
 */
export function routerSysctls(): Record<string, string> {
  return {
    // Forward both families. Talos sets only ipv4.ip_forward and ipv6 default.forwarding.
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv6.conf.default.forwarding": "1",
    // Uplinks must keep accepting router advertisements while forwarding (SLAAC/default route on WAN).
    "net.ipv6.conf.default.accept_ra": "2",
    // No kernel reverse-path filtering, on any link: its lookup goes through the node's policy-routing rules
    // without the packet's mark, so the forward gate's blackhole rule (dataplane/gate.ts) answers it and every
    // forwarded IPv4 packet — a LAN client's, a reply from the internet, a port forward's — would be dropped,
    // strict or loose alike. (A `default` value also reaches every link that exists when it is written and has
    // not set its own, the uplinks included.) Anti-spoofing is the ruleset's: strict fib checks on the
    // segments, the site's prefixes refused from the WAN, bogons in the XDP guard.
    "net.ipv4.conf.all.rp_filter": "0",
    "net.ipv4.conf.default.rp_filter": "0",
    // A router must not be steered by redirects or source routes from its own clients.
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.secure_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv6.conf.all.accept_source_route": "0",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "net.ipv4.icmp_ignore_bogus_error_responses": "1",
    "net.ipv4.tcp_syncookies": "1",
    // Connection tracking sized for a small-office edge (about 64 MiB of conntrack entries at most).
    "net.netfilter.nf_conntrack_max": "262144",
    "net.netfilter.nf_conntrack_tcp_timeout_established": "7440",
    "net.core.netdev_max_backlog": "4096",
    // Neighbour tables sized for several busy segments.
    "net.ipv4.neigh.default.gc_thresh1": "1024",
    "net.ipv4.neigh.default.gc_thresh2": "4096",
    "net.ipv4.neigh.default.gc_thresh3": "8192",
    "net.ipv6.neigh.default.gc_thresh1": "1024",
    "net.ipv6.neigh.default.gc_thresh2": "4096",
    "net.ipv6.neigh.default.gc_thresh3": "8192",
    // Harden the BPF JIT against spraying; our own programs load as root and are unaffected.
    "net.core.bpf_jit_harden": "1",
  };
}

/** Name of the node's WAN reachability probe. */
export const WAN_PROBE = "wan-reachability";

/** host:port of the probe: the first upstream resolver, on the port of its protocol. */
export function wanProbeEndpoint(site: Site): string {
  const u = site.dns.upstreams[0];
  const port = u.protocol === "DoT" ? 853 : u.protocol === "DoH" ? 443 : 53;
  return u.address.includes(":") ? `[${u.address}]:${port}` : `${u.address}:${port}`;
}

function doc(kind: string, body: Record<string, unknown>): TalosDocument {
  return { apiVersion: "v1alpha1", kind, ...body };
}

function wanDocuments(w: WanPlan, site: Site): TalosDocument[] {
  const docs: TalosDocument[] = [];
  const addresses: { address: string }[] = [];
  const routes: Record<string, unknown>[] = [];
  if (w.ipv4.mode === "static") {
    addresses.push({ address: w.ipv4.address });
    routes.push({ gateway: w.ipv4.gateway, metric: w.routeMetric });
  }
  if (w.ipv6.mode === "static") {
    addresses.push({ address: w.ipv6.address });
    // No destination: Talos makes a default route of the gateway's family, and rejects "::/0" (an unspecified
    // address) as a destination (pkg/machinery config/types/network/link.go).
    routes.push({ gateway: w.ipv6.gateway, metric: w.routeMetric });
  }
  // Static routes whose next hop is on this WAN's static subnet.
  for (const r of site.routes) {
    const subnet =
      familyOf(r.gateway) === 4
        ? w.ipv4.mode === "static"
          ? w.ipv4.address
          : undefined
        : w.ipv6.mode === "static"
          ? w.ipv6.address
          : undefined;
    if (subnet && contains(subnet, r.gateway))
      routes.push({
        destination: r.destination,
        gateway: r.gateway,
        ...(r.metric !== undefined ? { metric: r.metric } : {}),
      });
  }
  const link: Record<string, unknown> = { name: w.name, up: true };
  if (w.mtu) link.mtu = w.mtu;
  if (addresses.length) link.addresses = addresses;
  if (routes.length) link.routes = routes;
  if (w.bond) docs.push(bondDocument(w.name, w.bond, link));
  else docs.push(doc("LinkConfig", link));
  if (w.ipv4.mode === "dhcp")
    docs.push(doc("DHCPv4Config", { name: w.name, routeMetric: w.routeMetric, ignoreHostname: true }));
  if (w.ipv6.mode === "dhcpv6")
    docs.push(doc("DHCPv6Config", { name: w.name, routeMetric: w.routeMetric, ignoreHostname: true }));
  return docs;
}

function bondDocument(name: string, bond: NonNullable<WanPlan["bond"]>, link: Record<string, unknown>): TalosDocument {
  // updelay/downdelay 0 are the kernel's defaults, stated because Talos warns about an 802.3ad bond without
  // them: a member is used as soon as its carrier is back (LACP still has to agree before it carries traffic)
  // and dropped at once when its carrier is lost.
  const body: Record<string, unknown> = {
    name,
    links: [...bond.members],
    bondMode: bond.mode,
    miimon: bond.miimon,
    updelay: 0,
    downdelay: 0,
  };
  if (bond.lacpRate) body.lacpRate = bond.lacpRate;
  if (bond.xmitHashPolicy) body.xmitHashPolicy = bond.xmitHashPolicy;
  const { name: _n, ...rest } = link;
  return doc("BondConfig", { ...body, ...rest });
}

/** Documents Talos needs that no other layer owns, in stream order (after the v1alpha1 document). */
export function nodeDocuments(input: MachineConfigInput): TalosDocument[] {
  const { site, plan, secrets } = input;
  const k8sVersion = site.talos.kubernetesVersion;
  const mgmtSegment = plan.segments.find((s) => s.name === plan.managementSegment)!;
  const mgmtSubnets = segmentPrefixes(mgmtSegment);
  const docs: TalosDocument[] = [];

  docs.push(doc("HostnameConfig", { hostname: plan.hostname }));
  docs.push(
    doc("ResolverConfig", {
      nameservers: site.dns.upstreams.map((u) => ({
        address: u.address,
        protocol: u.protocol,
        ...(u.tlsServerName ? { tlsServerName: u.tlsServerName } : {}),
      })),
      searchDomains: { domains: [site.site.domain] },
      // CoreDNS forwards to the host resolver (169.254.116.108), the one client of the upstreams above, so the
      // cluster's own lookups (rule and list feeds, image names) leave over DoT where the site says so. Without
      // it CoreDNS reads the node's resolv.conf and asks the upstreams in plain DNS on port 53. The known
      // breakage of this path is under Cilium's BPF masquerade with BPF host routing (siderolabs/talos#10002,
      // cilium/cilium#36737); the fabric uses iptables masquerade and legacy host routing (cilium-fabric/values.ts).
      hostDNS: { enabled: true, forwardKubeDNSToHost: true, resolveMemberNames: true },
    }),
  );
  docs.push(doc("TimeSyncConfig", { enabled: true, ntp: { servers: [...site.ntp.servers] } }));
  docs.push(doc("SecurityProfileConfig", { workloadIsolation: true }));
  docs.push(
    doc("UnattendedInstallConfig", {
      installer: { image: input.installerImage ?? site.talos.installerImage },
      provisioning: { diskSelector: { match: diskSelectorCel(site.node.installDisk) }, wipe: site.node.wipeDisk },
    }),
  );
  if (site.registry?.username && input.registryPassword !== undefined) {
    docs.push(
      doc("RegistryAuthConfig", {
        name: site.registry.server,
        username: site.registry.username,
        password: text(input.registryPassword),
      }),
    );
  }

  // Links: aliases for the NICs, then uplinks, then trunks (VLANs come from the segment layer).
  for (const nic of [...site.node.nics].sort((a, b) => a.alias.localeCompare(b.alias)))
    docs.push(
      doc("LinkAliasConfig", { name: nic.alias, selector: { match: `mac(link.permanent_addr) == "${nic.mac}"` } }),
    );
  for (const w of plan.wans) docs.push(...wanDocuments(w, site));
  for (const t of plan.trunks) {
    const link: Record<string, unknown> = { name: t.name, up: true };
    if (t.mtu) link.mtu = t.mtu;
    docs.push(t.bond ? bondDocument(t.name, t.bond, link) : doc("LinkConfig", link));
  }

  // The WAN reachability probe the try/confirm path checks (ProbeStatus on the node itself).
  docs.push(
    doc("TCPProbeConfig", {
      name: WAN_PROBE,
      endpoint: wanProbeEndpoint(site),
      interval: "5s",
      timeout: "3s",
      failureThreshold: 3,
    }),
  );

  // The node's backstop firewall: management ports answer only the management prefixes, from boot on.
  docs.push(...firewallDocuments(site, plan));

  docs.push(
    doc("DiscoveryIdentityConfig", { clusterID: text(secrets.clusterId), clusterSecret: text(secrets.clusterSecret) }),
  );

  // Kubernetes (single node: the control plane also runs the router's workloads, so no control-plane taint).
  const endpoint = apiEndpoint(plan.managementAddress);
  docs.push(doc("KubeClusterConfig", { clusterName: site.site.name, endpoint }));
  docs.push(
    doc("KubeNodeConfig", {
      nodeIP: { validSubnets: mgmtSubnets },
      labels: { "node-role.kubernetes.io/control-plane": "", "router.edge/site": site.site.name },
    }),
  );
  docs.push(
    doc("KubeletConfig", {
      image: `ghcr.io/siderolabs/kubelet:${k8sVersion}`,
      defaultRuntimeSeccompProfileEnabled: true,
    }),
  );
  docs.push(
    doc("KubeNetworkConfig", {
      dnsDomain: site.cluster.dnsDomain,
      podSubnets: [...site.cluster.podCidrs],
      serviceSubnets: [...site.cluster.serviceCidrs],
    }),
  );
  docs.push(doc("KubeAPIServerCAConfig", { issuingCA: { cert: text(secrets.k8s.crt), key: text(secrets.k8s.key) } }));
  docs.push(doc("KubePrismConfig", { port: KUBEPRISM_PORT }));
  docs.push(
    doc("KubeAggregatorCAConfig", {
      issuingCA: { cert: text(secrets.k8sAggregator.crt), key: text(secrets.k8sAggregator.key) },
    }),
  );
  docs.push(
    doc("KubeAdmissionControlConfig", {
      name: "PodSecurity",
      configuration: {
        apiVersion: "pod-security.admission.config.k8s.io/v1alpha1",
        kind: "PodSecurityConfiguration",
        defaults: {
          audit: "restricted",
          "audit-version": "latest",
          enforce: "baseline",
          "enforce-version": "latest",
          warn: "restricted",
          "warn-version": "latest",
        },
        exemptions: { namespaces: ["kube-system", ROUTER_NAMESPACE], runtimeClasses: [], usernames: [] },
      },
    }),
  );
  docs.push(
    doc("KubeAuditPolicyConfig", {
      configuration: { apiVersion: "audit.k8s.io/v1", kind: "Policy", rules: [{ level: "Metadata" }] },
    }),
  );
  docs.push(
    doc("KubeAuthenticationConfig", {
      configuration: {
        anonymous: { conditions: [{ path: "/livez" }, { path: "/readyz" }, { path: "/healthz" }], enabled: true },
        jwt: [],
      },
    }),
  );
  docs.push(doc("KubeAuthorizerConfig", { name: "node", type: "Node" }));
  docs.push(doc("KubeAuthorizerConfig", { name: "rbac", type: "RBAC" }));
  docs.push(
    doc("KubeEtcdEncryptionConfig", {
      config: {
        resources: [
          {
            providers: [{ secretbox: { keys: [{ name: "key2", secret: text(secrets.secretboxEncryptionSecret) }] } }],
            resources: ["secrets"],
          },
        ],
      },
    }),
  );
  docs.push(
    doc("KubeServiceAccountConfig", {
      issuer: { privateKey: text(secrets.k8sServiceAccountKey), issuerURL: endpoint },
    }),
  );
  docs.push(
    doc("KubeAPIServerConfig", {
      image: `registry.k8s.io/kube-apiserver:${k8sVersion}`,
      certExtraSANs: certSANs(site, plan),
    }),
  );
  docs.push(doc("KubeControllerManagerConfig", { image: `registry.k8s.io/kube-controller-manager:${k8sVersion}` }));
  docs.push(doc("KubeSchedulerConfig", { image: `registry.k8s.io/kube-scheduler:${k8sVersion}` }));
  // Cilium replaces kube-proxy (through KubePrism); Talos deploys kube-proxy unless told not to.
  docs.push(doc("KubeProxyConfig", { enabled: false, image: `registry.k8s.io/kube-proxy:${k8sVersion}` }));
  docs.push(doc("KubeCoreDNSConfig", { enabled: true }));
  return docs;
}

/** Names the Talos and Kubernetes API certificates must carry. */
export function certSANs(site: Site, plan: SitePlan): string[] {
  return [...new Set([plan.managementAddress, plan.fqdn, ...site.node.certSANs])];
}

/** The legacy v1alpha1 document: only what 1.14 still keeps there (identity, trust, etcd CA). */
export function v1alpha1Document(input: MachineConfigInput): Record<string, unknown> {
  const { site, plan, secrets } = input;
  const mgmtSegment = plan.segments.find((s) => s.name === plan.managementSegment)!;
  const logging = mergeContributions(input.contributions ?? []).logging;
  return {
    version: "v1alpha1",
    debug: false,
    machine: {
      type: "controlplane",
      token: text(secrets.trustdToken),
      ca: { crt: b64(secrets.os.crt), key: b64(secrets.os.key) },
      certSANs: certSANs(site, plan),
      features: { diskQuotaSupport: true },
      ...(logging.destinations.length ? { logging } : {}),
    },
    cluster: {
      token: text(secrets.bootstrapToken),
      etcd: {
        ca: { crt: b64(secrets.etcd.crt), key: b64(secrets.etcd.key) },
        // etcd must advertise the static management address, never a DHCP-assigned WAN address; an IPv6-only
        // management segment has its prefix.
        advertisedSubnets: [mgmtSegment.ipv4?.cidr ?? mgmtSegment.ipv6!.prefix],
      },
    },
  };
}

const KIND_ORDER = ["VLANConfig", "BondConfig", "LinkConfig", "DHCPv4Config", "DHCPv6Config", "ExtensionServiceConfig"];

function contributedOrder(a: TalosDocument, b: TalosDocument): number {
  const ka = KIND_ORDER.indexOf(a.kind);
  const kb = KIND_ORDER.indexOf(b.kind);
  return (
    (ka < 0 ? 99 : ka) - (kb < 0 ? 99 : kb) ||
    a.kind.localeCompare(b.kind) ||
    (a.name ?? "").localeCompare(b.name ?? "", "en", { numeric: true })
  );
}

/** All documents of the stream, v1alpha1 first. Throws if two layers claim the same document. */
export function machineConfigDocuments(input: MachineConfigInput): Record<string, unknown>[] {
  const own = nodeDocuments(input);
  const merged = mergeContributions([
    { layer: "node", documents: own, sysctls: routerSysctls() },
    ...(input.contributions ?? []),
  ]);
  const contributed = merged.documents.slice(own.length).sort(contributedOrder);
  const sysctlDoc = doc("SysctlConfig", {
    params: Object.fromEntries(Object.entries(merged.sysctls).sort(([a], [b]) => a.localeCompare(b))),
  });
  // Stream order: identity and system documents, sysctls, links (own then contributed), Kubernetes.
  const firstKube = own.findIndex((d) => d.kind === "DiscoveryIdentityConfig");
  return [v1alpha1Document(input), ...own.slice(0, firstKube), sysctlDoc, ...contributed, ...own.slice(firstKube)];
}

/** The machine configuration as Talos reads it: a YAML stream. */
export function renderMachineConfig(input: MachineConfigInput): string {
  return machineConfigDocuments(input)
    .map((d) => stringify(d, { lineWidth: 0, indent: 2, aliasDuplicateObjects: false }))
    .join("---\n");
}
