/**
 * NetworkServices: the daemons every segment shares — Kea DHCPv4/DHCPv6, radvd, chrony, Avahi reflectors and,
 * with OSPF, BIRD — as host-network workloads on the router's cluster, from our services image (built from
 * images/services at `pulumi up`, pushed to the site's registry, pinned by digest). Its host side (BGP through
 * Talos, routing.ts) is rendered into the machine configuration before the cluster exists.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import { createHash } from "node:crypto";
import type { Site } from "../site/schema";
import { segmentPrefixes, type SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { shipImage, type ImageBuild } from "../images";
import {
  BIRD_SECRET,
  BIRD_SECRET_KEYS,
  DAEMON_LABEL,
  daemonNames,
  renderServiceObjects,
  serviceConfigs,
  type K8sObject,
} from "./k8s";
import { renderOspfKeyFile } from "./bird";
import { daemonSecret } from "../daemonset";
import { rolloutGateScript } from "./rollout";
import { segmentProbes, servicesProbeStep } from "./probe";
import { renderServicesSummary } from "./summary";
import { renderServicesFacts } from "./review";
import { ROUTER_NAMESPACE } from "../talos-node/machine-config";
import { durationSeconds } from "../site/duration";

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
  /**
   * The node's host configuration, tried and confirmed (TalosNode.hostConfigured): the services change only after
   * the host change they depend on can no longer revert.
   */
  hostReady: pulumi.Resource;
  /** Admin kubeconfig (secret): the rollout gate reads the DaemonSets' status with it. */
  kubeconfig: pulumi.Input<string>;
  /** Password of router:registry (secret). */
  registryPassword?: pulumi.Input<string>;
  /** router:ospfKey (secret): the OSPF key, with routing.ospf.authentication. */
  ospfKey?: pulumi.Input<string>;
  /** router:ospfNextKey (secret): the next OSPF key, with routing.ospf.authentication.next. */
  ospfNextKey?: pulumi.Input<string>;
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
  /** Completes once every DaemonSet rolled out (or fails the update after rolling a failed one back). */
  readonly rollout: command.local.Command;
  /** Changes whenever any of the services' objects changes (the health gate's trigger). */
  readonly digest: pulumi.Output<string>;

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
    const objects = renderServiceObjects(site, plan, policy, this.image);
    let namespace: pulumi.Resource | undefined;
    // The OSPF key file, a Pulumi secret from the config to the Secret's data: never in a ConfigMap or artifact.
    const auth = site.routing.ospf?.authentication;
    const { ospfKey, ospfNextKey } = args;
    if (auth && ospfKey === undefined)
      throw new Error("routing.ospf.authentication is set but the secret router:ospfKey is not");
    if (auth?.next && ospfNextKey === undefined)
      throw new Error("routing.ospf.authentication.next is set but the secret router:ospfNextKey is not");
    const configMaps = new Map<string, pulumi.Resource>();
    const daemonSets: pulumi.Resource[] = [];
    for (const obj of objects) {
      const after = [args.fabric, args.hostReady, ...(namespace ? [namespace] : [])];
      if (obj.kind === "DaemonSet") {
        const cm = configMaps.get(obj.metadata.name);
        if (cm) after.push(cm);
        if (obj.metadata.name === "bird" && auth) {
          const data = pulumi.secret(
            pulumi
              .all([ospfKey!, auth.next ? ospfNextKey! : undefined])
              .apply(([key, next]) => ({ [BIRD_SECRET_KEYS[0]]: renderOspfKeyFile(auth, key, next) })),
          );
          const { apiVersion: _v, kind: _k, ...secret } = daemonSecret(BIRD_SECRET, data);
          after.push(
            new k8s.core.v1.Secret(`${name}-secret-${secret.metadata.name}`, secret, {
              parent: this,
              provider: args.provider,
              dependsOn: [...after],
            }),
          );
        }
      }
      // ConfigMaps are named by content and immutable; a replaced one stays in the cluster for a rollback to the
      // previous DaemonSet revision (the rollout gate prunes older ones).
      const role = obj.kind === "ConfigMap" ? obj.metadata.labels?.[DAEMON_LABEL] : obj.metadata.name;
      const res = createObject(`${name}-${obj.kind.toLowerCase()}-${role}`, obj, {
        parent: this,
        provider: args.provider,
        dependsOn: after,
        ...(obj.kind === "ConfigMap" ? { retainOnDelete: true } : {}),
      });
      if (obj.kind === "Namespace") namespace = res;
      if (obj.kind === "ConfigMap") configMaps.set(role!, res);
      if (obj.kind === "DaemonSet") daemonSets.push(res);
    }
    this.digest = this.image.apply((image) =>
      createHash("sha256")
        .update(JSON.stringify(renderServiceObjects(site, plan, policy, image)))
        .digest("hex"),
    );
    const probes = segmentProbes(site, plan);
    this.rollout = new command.local.Command(
      `${name}-rollout`,
      {
        interpreter: ["/bin/bash", "-c"],
        environment: pulumi.secret({ ROUTER_KUBECONFIG: args.kubeconfig }),
        // Once every daemon rolled out, the segments the change touched must answer from the node's side (DHCPv4
        // offer, router advertisement), or the daemon that changed is rolled back and the update fails.
        create: this.image.apply((image) =>
          rolloutGateScript({
            namespace: ROUTER_NAMESPACE,
            daemons: daemonNames(site, plan, policy),
            subnets: plan.segments.flatMap(segmentPrefixes),
            timeout: durationSeconds(site.node.healthTimeout),
            probe: servicesProbeStep(image, probes),
          }),
        ),
        // Any change of a DaemonSet or its configuration, or of a segment the daemons serve, re-runs the gate.
        triggers: [this.digest, ...probes.map((p) => p.fingerprint)],
      },
      { parent: this, dependsOn: daemonSets },
    );

    const artifacts = Object.fromEntries(
      [...serviceConfigs(site, plan, policy)].map(([file, content]) => [`services/${file}`, content]),
    );
    const daemons = objects.filter((o) => o.kind === "DaemonSet").map((o) => o.metadata.name);
    this.registerOutputs({
      image: this.image,
      digest: this.digest,
      artifacts,
      summary: renderServicesSummary(site, plan, daemons),
      review: renderServicesFacts(site, plan, policy, daemons),
    });
  }
}
