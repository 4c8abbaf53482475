/**
 * NetworkServices: the daemons every segment shares — Kea DHCPv4/DHCPv6, radvd, chrony, Avahi reflectors and,
 * with OSPF, FRR — as host-network workloads on the router's cluster, from our services image (built from
 * images/services at `pulumi up`, pushed to the site's registry, pinned by digest). Its host side (BGP through
 * Talos, routing.ts) is rendered into the machine configuration before the cluster exists.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { shipImage, type ImageBuild } from "../images";
import { renderServiceObjects, serviceConfigs, type K8sObject } from "./k8s";
import { renderServicesSummary } from "./summary";

export interface NetworkServicesArgs {
  /** The validated site. */
  site: Site;
  /** Facts derived from the site. */
  plan: SitePlan;
  /** The compiled zone policy (which services each zone gets). */
  policy: PolicyModel;
  /** Provider for the router's cluster. */
  provider: k8s.Provider;
  /** The fabric: the workloads wait for it (no pod networking before Cilium). */
  fabric: pulumi.Resource;
  /** Password of router:registry (secret). */
  registryPassword?: pulumi.Input<string>;
}

export const SERVICES_IMAGE: ImageBuild = {
  name: "router-services",
  build: "make -C images/services",
  oci: "images/services/out/oci",
};

function createObject(name: string, obj: K8sObject, opts: pulumi.CustomResourceOptions): pulumi.CustomResource {
  const { apiVersion: _a, kind, ...rest } = obj;
  switch (kind) {
    case "Namespace":
      return new k8s.core.v1.Namespace(name, rest as k8s.core.v1.NamespaceArgs, opts);
    case "ConfigMap":
      return new k8s.core.v1.ConfigMap(name, rest as k8s.core.v1.ConfigMapArgs, opts);
    case "DaemonSet":
      return new k8s.apps.v1.DaemonSet(name, rest as unknown as k8s.apps.v1.DaemonSetArgs, opts);
    default:
      throw new Error(`no resource class for kind ${kind}`);
  }
}

export class NetworkServices extends pulumi.ComponentResource {
  /** The services image pinned by digest. */
  readonly image: pulumi.Output<string>;

  constructor(name: string, args: NetworkServicesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:network:NetworkServices", name, {}, opts);
    const { site, plan, policy } = args;
    this.image = shipImage(this, `${name}-image`, {
      site,
      image: SERVICES_IMAGE,
      sources: ["images/services"],
      registryPassword: args.registryPassword,
    });

    // The image reference is the only computed value in the objects; it rides inside them as an output.
    let namespace: pulumi.Resource | undefined;
    const objects = renderServiceObjects(site, plan, policy, this.image);
    for (const obj of objects) {
      const res = createObject(`${name}-${obj.kind.toLowerCase()}-${obj.metadata.name}`, obj, {
        parent: this,
        provider: args.provider,
        dependsOn: [args.fabric, ...(namespace ? [namespace] : [])],
      });
      if (obj.kind === "Namespace") namespace = res;
    }

    const artifacts = Object.fromEntries(
      [...serviceConfigs(site, plan, policy)].map(([file, content]) => [`services/${file}`, content]),
    );
    const daemons = objects.filter((o) => o.kind === "DaemonSet").map((o) => o.metadata.name);
    this.registerOutputs({ image: this.image, artifacts, summary: renderServicesSummary(plan, daemons) });
  }
}
