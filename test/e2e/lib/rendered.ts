/**
 * What the virtual appliance runs, read from a site's offline render: the Talos machine configuration (kernel
 * parameters, links and their addresses, DHCP clients, the data-plane extension's files) and the network
 * services' DaemonSets with their ConfigMap. Nothing here re-derives configuration from the site model; the
 * appliance runs exactly these artifacts.
 */
import { parse, parseAllDocuments } from "yaml";
import { renderStack } from "../../../cli/render";
import type { StackConfig } from "../../../cli/stack-config";
import { rawSiteConfig } from "../../../components/site/load";
import { parseSite } from "../../../components/site/parse";
import { planSite, type SitePlan } from "../../../components/site/plan";
import type { Site } from "../../../components/site/schema";
import { devStack } from "../../helpers/stacks";
import type { NetworkRuleDoc, RoutingRuleDoc, TalosFirewallDocs } from "../../helpers/talos-network";

export interface RenderedSite {
  site: Site;
  plan: SitePlan;
  /** Relative artifact path → content, as `npm run render` writes them. */
  files: Map<string, string>;
}

/** Renders a stack in memory (the dev stack when no configuration is given). */
export async function renderSite(config?: StackConfig): Promise<RenderedSite> {
  const cfg = config ?? devStack();
  const { files } = await renderStack({ stack: cfg.stack, config: cfg });
  const parsed = parseSite(rawSiteConfig(cfg.values));
  if (!parsed.ok) throw new Error(`site does not parse: ${JSON.stringify(parsed.issues)}`);
  return { site: parsed.site, plan: planSite(parsed.site), files };
}

export interface LinkDoc {
  kind: "LinkConfig" | "VLANConfig";
  name: string;
  parent?: string;
  vlanID?: number;
  mtu?: number;
  addresses: string[];
  routes: { destination?: string; gateway: string; metric?: number }[];
}

/** A BGPInstanceConfig document (siderolabs/talos pkg/machinery/config/types/network/bgp.go), the fields we render. */
export interface BgpInstanceDoc {
  name: string;
  localASN: number;
  routerID?: string;
  /** Links whose addresses are originated as connected networks. */
  advertise?: string[];
  installRoutes?: boolean;
  neighbors: { address: string; peerASN: number; passive?: boolean; bfd?: Record<string, unknown> }[];
}

export interface HostConfig {
  /** SysctlConfig params, in document order. */
  sysctls: [string, string][];
  /** Link alias → permanent MAC (LinkAliasConfig selectors). */
  macs: Map<string, string>;
  links: Map<string, LinkDoc>;
  /** Links with a DHCPv4 client, and the metric of the default route it installs. */
  dhcp4: Map<string, { routeMetric: number }>;
  dhcp6: Map<string, { routeMetric: number }>;
  /** Extension service name → file path inside the service → content. */
  extensionFiles: Map<string, Map<string, string>>;
  /** RoutingRuleConfig documents. */
  routingRules: RoutingRuleDoc[];
  /** NetworkDefaultActionConfig and NetworkRuleConfig documents, with the cluster's networks. */
  firewall: TalosFirewallDocs;
  /** BGPInstanceConfig documents. */
  bgp: BgpInstanceDoc[];
}

type Doc = Record<string, unknown>;

/** Reads the documents of the node's machine configuration. */
export function hostConfig(r: RenderedSite): HostConfig {
  const text = r.files.get(`talos/${r.plan.hostname}.yaml`);
  if (!text) throw new Error(`render has no talos/${r.plan.hostname}.yaml`);
  const docs = parseAllDocuments(text).map((d) => d.toJSON() as Doc);
  const out: HostConfig = {
    sysctls: [],
    macs: new Map(),
    links: new Map(),
    dhcp4: new Map(),
    dhcp6: new Map(),
    extensionFiles: new Map(),
    routingRules: [],
    firewall: { defaultAction: "accept", rules: [], clusterNetworks: [] },
    bgp: [],
  };
  for (const d of docs) {
    switch (d.kind) {
      case "SysctlConfig":
        out.sysctls.push(...Object.entries(d.params as Record<string, string>));
        break;
      case "LinkAliasConfig": {
        const m = /mac\(link\.permanent_addr\) == "([0-9a-f:]+)"/.exec(String((d.selector as Doc).match));
        if (!m) throw new Error(`LinkAliasConfig ${String(d.name)}: selector is not a MAC match`);
        out.macs.set(String(d.name), m[1]);
        break;
      }
      case "LinkConfig":
      case "VLANConfig":
        out.links.set(String(d.name), {
          kind: d.kind,
          name: String(d.name),
          parent: d.parent as string | undefined,
          vlanID: d.vlanID as number | undefined,
          mtu: d.mtu as number | undefined,
          addresses: ((d.addresses as { address: string }[] | undefined) ?? []).map((a) => a.address),
          routes: (d.routes as LinkDoc["routes"] | undefined) ?? [],
        });
        break;
      case "DHCPv4Config":
        out.dhcp4.set(String(d.name), { routeMetric: Number(d.routeMetric) });
        break;
      case "DHCPv6Config":
        out.dhcp6.set(String(d.name), { routeMetric: Number(d.routeMetric) });
        break;
      case "RoutingRuleConfig":
        out.routingRules.push(d as unknown as RoutingRuleDoc);
        break;
      case "BGPInstanceConfig":
        out.bgp.push(d as unknown as BgpInstanceDoc);
        break;
      case "NetworkDefaultActionConfig":
        out.firewall.defaultAction = d.ingress as "accept" | "block";
        break;
      case "NetworkRuleConfig":
        out.firewall.rules.push(d as unknown as NetworkRuleDoc);
        break;
      case "KubeNetworkConfig":
        out.firewall.clusterNetworks.push(
          ...((d.podSubnets as string[] | undefined) ?? []),
          ...((d.serviceSubnets as string[] | undefined) ?? []),
        );
        break;
      case "ExtensionServiceConfig":
        out.extensionFiles.set(
          String(d.name),
          new Map((d.configFiles as { mountPath: string; content: string }[]).map((f) => [f.mountPath, f.content])),
        );
        break;
    }
  }
  return out;
}

export interface PodVolume {
  mountPath: string;
  readOnly: boolean;
  /** A directory inside the volume mounted in its place (the kubelet makes it when missing). */
  subPath?: string;
  source:
    | { kind: "configMap"; name: string; items?: { key: string; path: string }[] }
    | { kind: "hostPath"; path: string }
    | { kind: "secret"; name: string; items?: { key: string; path: string }[] }
    | { kind: "emptyDir"; volume: string }
    /** An OCI image's files (Kubernetes image volume). */
    | { kind: "image"; reference: string };
}

/** One DaemonSet of the network services: its container command, environment, mounts and privileges. */
export interface PodSpec {
  name: string;
  /** The DaemonSet it belongs to (its containers share their emptyDir volumes). */
  daemonSet: string;
  /** The DaemonSet's namespace, the container's name and image (the labels the kubelet's cAdvisor gives it). */
  namespace: string;
  container: string;
  image: string;
  /**
   * The service account whose token the kubelet mounts in the pod (at SA_DIR): the pod's serviceAccountName
   * ("default" when unnamed) unless automountServiceAccountToken is false.
   */
  serviceAccount?: string;
  command: string[];
  env: Record<string, string>;
  volumes: PodVolume[];
  hostNetwork: boolean;
  /** The container's securityContext user and group, when it names them. */
  runAs?: { uid: number; gid: number };
  /** The capabilities the container holds (its securityContext's `add` after `drop: [ALL]`), upper case. */
  capabilities: string[];
  /** `allowPrivilegeEscalation: false`: the runtime sets no_new_privs. */
  noNewPrivs: boolean;
}

/**
 * The capability set a container runtime gives a container running as uid 0 with this securityContext: with
 * `drop: [ALL]` exactly the `add` list (bounding, permitted and effective sets; no inheritable or ambient ones, as
 * containerd and CRI-O set them). Only that form is modelled: a privileged container, or one keeping the
 * runtime's default set, is refused here rather than run with a guessed set.
 */
export function containerCapabilities(where: string, sc: Doc | undefined): string[] {
  const caps = sc?.capabilities as { add?: string[]; drop?: string[] } | undefined;
  if (sc?.privileged === true) throw new Error(`${where}: securityContext.privileged is not modelled by the harness`);
  if (!caps?.drop?.some((c) => c.toUpperCase() === "ALL"))
    throw new Error(`${where}: securityContext.capabilities.drop must contain ALL (the harness models only that)`);
  return [...new Set((caps.add ?? []).map((c) => c.toUpperCase().replace(/^CAP_/, "")))].sort();
}

function runAs(sc: Doc | undefined): PodSpec["runAs"] {
  if (typeof sc?.runAsUser !== "number") return undefined;
  return { uid: sc.runAsUser, gid: typeof sc.runAsGroup === "number" ? sc.runAsGroup : sc.runAsUser };
}

/** Every DaemonSet of the render (k8s/*.yaml) and the ConfigMaps they mount (name → key → content). */
export function servicePods(r: RenderedSite): { pods: PodSpec[]; configMaps: Map<string, Map<string, string>> } {
  const pods: PodSpec[] = [];
  const configMaps = new Map<string, Map<string, string>>();
  for (const [path, text] of r.files) {
    if (!path.startsWith("k8s/")) continue;
    const obj = parse(text) as Doc;
    if (obj.kind === "ConfigMap")
      configMaps.set(
        String((obj.metadata as Doc).name),
        new Map(Object.entries((obj.data as Record<string, string> | undefined) ?? {})),
      );
    if (obj.kind !== "DaemonSet") continue;
    const spec = ((obj.spec as Doc).template as Doc).spec as Doc;
    const containers = spec.containers as Doc[];
    const volumes = new Map(((spec.volumes as Doc[] | undefined) ?? []).map((v) => [String(v.name), v]));
    const name = String((obj.metadata as Doc).name);
    const namespace = String((obj.metadata as Doc).namespace ?? "default");
    const serviceAccount =
      spec.automountServiceAccountToken === false
        ? {}
        : { serviceAccount: String(spec.serviceAccountName ?? "default") };
    // A pod of several containers runs each as a process of its own, named after the container.
    for (const c of containers)
      pods.push({
        name: containers.length === 1 ? name : `${name}-${String(c.name)}`,
        daemonSet: name,
        namespace,
        container: String(c.name),
        image: String(c.image ?? ""),
        ...serviceAccount,
        command: [...((c.command as string[] | undefined) ?? []), ...((c.args as string[] | undefined) ?? [])],
        env: Object.fromEntries(
          ((c.env as { name: string; value: string }[] | undefined) ?? []).map((e) => [e.name, e.value]),
        ),
        hostNetwork: spec.hostNetwork === true,
        runAs: runAs(c.securityContext as Doc | undefined),
        capabilities: containerCapabilities(
          `${path} container ${String(c.name)}`,
          c.securityContext as Doc | undefined,
        ),
        noNewPrivs: (c.securityContext as Doc | undefined)?.allowPrivilegeEscalation === false,
        volumes: ((c.volumeMounts as Doc[] | undefined) ?? []).map((m) => {
          const v = volumes.get(String(m.name));
          if (!v) throw new Error(`${path}: volume ${String(m.name)} is not defined`);
          const source: PodVolume["source"] = v.configMap
            ? {
                kind: "configMap",
                name: String((v.configMap as Doc).name),
                // without items, every key of the ConfigMap becomes a file of its name
                items: (v.configMap as Doc).items as { key: string; path: string }[] | undefined,
              }
            : v.hostPath
              ? { kind: "hostPath", path: String((v.hostPath as Doc).path) }
              : v.secret
                ? {
                    kind: "secret",
                    name: String((v.secret as Doc).secretName),
                    items: (v.secret as Doc).items as { key: string; path: string }[] | undefined,
                  }
                : v.image
                  ? { kind: "image", reference: String((v.image as Doc).reference) }
                  : { kind: "emptyDir", volume: String(m.name) };
          const sub = m.subPath === undefined ? {} : { subPath: String(m.subPath) };
          return { mountPath: String(m.mountPath), readOnly: m.readOnly === true, ...sub, source };
        }),
      });
  }
  return { pods: pods.sort((a, b) => a.name.localeCompare(b.name)), configMaps };
}
