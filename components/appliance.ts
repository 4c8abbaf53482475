/**
 * The appliance: the layers of one router in order. Host-side pieces of every layer are rendered first and
 * handed to TalosNode as machine-config documents; the Kubernetes side of each layer follows once the cluster
 * answers. Talos config is complete before the cluster exists, so there is no cycle.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import type { LoadedSite } from "./site/load";
import { TalosNode } from "./talos-node";
import { CiliumFabric } from "./cilium-fabric";
import { VlanSegment } from "./vlan-segment";
import { NetworkServices } from "./network-services";
import { compilePolicy } from "./site/policy";
import { DataPlane } from "./dataplane";
import { DnsStack } from "./dns-stack";
import { dnsScrapes } from "./dns-stack/scrape";
import { ObservabilityStack } from "./observability-stack";
import { hostContributions, rulesetContributions } from "./host-layers";
import { IdsStack } from "./ids-stack";

export interface ApplianceArgs {
  /** The loaded site: validated config, its plan and its secrets. */
  loaded: LoadedSite;
}

export class Appliance extends pulumi.ComponentResource {
  readonly segments: VlanSegment[];
  readonly dataplane: DataPlane;
  readonly services: NetworkServices;
  readonly dns: DnsStack;
  readonly ids: IdsStack;
  readonly node: TalosNode;
  readonly fabric: CiliumFabric;
  /** Metrics, alerts, dashboards, logs and flows (undefined when router:observability.enabled is false). */
  readonly observability?: ObservabilityStack;
  /** Admin kubeconfig (secret). */
  readonly kubeconfig: pulumi.Output<string>;
  /** talosctl configuration (secret). */
  readonly talosconfig: pulumi.Output<string>;

  constructor(name: string, args: ApplianceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:appliance:Appliance", name, {}, opts);
    const { site, plan, secrets } = args.loaded;

    const policy = compilePolicy(site, plan);
    this.segments = plan.segments.map(
      (segment) =>
        new VlanSegment(`${name}-segment-${segment.name}`, { site, plan, segment, policy }, { parent: this }),
    );
    // The data plane ships first: its installer image is what the node installs.
    this.dataplane = new DataPlane(
      `${name}-dataplane`,
      {
        site,
        plan,
        policy,
        registryPassword: secrets.registryPassword,
        contributions: rulesetContributions(site, plan, policy),
      },
      { parent: this },
    );
    // Every layer's host side, rendered by the same pure functions the layers' components use (host-layers.ts).
    const contributions = hostContributions(site, plan, policy);
    this.node = new TalosNode(
      `${name}-node`,
      {
        site,
        plan,
        contributions,
        registryPassword: secrets.registryPassword,
        installerImage: this.dataplane.installerImage,
      },
      { parent: this },
    );

    const provider = new k8s.Provider(
      `${name}-k8s`,
      { kubeconfig: this.node.kubeconfig, enableServerSideApply: true },
      { parent: this, dependsOn: [this.node.apiReady] },
    );
    // The cluster side follows a confirmed host: a host change that may still revert (try window) never has
    // services or the fabric configured for it ahead of time.
    this.fabric = new CiliumFabric(
      `${name}-cilium`,
      { site, plan, provider, clusterReady: this.node.hostConfigured },
      { parent: this },
    );
    this.services = new NetworkServices(
      `${name}-services`,
      {
        site,
        plan,
        policy,
        provider,
        fabric: this.fabric.release,
        hostReady: this.node.hostConfigured,
        kubeconfig: this.node.kubeconfig,
        registryPassword: secrets.registryPassword,
        ospfKey: secrets.ospfKey,
        ospfNextKey: secrets.ospfNextKey,
      },
      { parent: this },
    );
    this.dns = new DnsStack(
      `${name}-dns`,
      {
        site,
        plan,
        policy,
        provider,
        after: [this.fabric.release, this.node.hostConfigured, this.services],
        kubeconfig: this.node.kubeconfig,
        registryPassword: secrets.registryPassword,
      },
      { parent: this },
    );
    if (site.observability.enabled)
      this.observability = new ObservabilityStack(
        `${name}-observability`,
        {
          site,
          plan,
          policy,
          provider,
          hostReady: this.node.hostConfigured,
          secrets,
          scrapes: [dnsScrapes(site, plan, policy)],
        },
        { parent: this },
      );
    const obs = this.observability;
    this.ids = new IdsStack(
      `${name}-ids`,
      {
        site,
        plan,
        policy,
        provider,
        after: [this.fabric.release, this.node.hostConfigured],
        registryPassword: secrets.registryPassword,
      },
      { parent: this },
    );
    this.node.healthGate(
      [this.fabric.release, this.services, this.services.rollout, this.dns, this.ids, ...(obs ? [obs] : [])],
      [
        this.services.digest,
        this.dns.digest,
        this.ids.digest,
        JSON.stringify(this.fabric.values),
        ...(obs ? [obs.digest] : []),
      ],
    );

    this.kubeconfig = this.node.kubeconfig;
    this.talosconfig = this.node.talosconfig;
    this.registerOutputs({ kubeconfig: this.kubeconfig, talosconfig: this.talosconfig });
  }
}
