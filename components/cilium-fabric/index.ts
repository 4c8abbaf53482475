/**
 * CiliumFabric: Cilium on the router's cluster through Helm, with the values Talos requires and the router's
 * choices (see values.ts). Installed once the Kubernetes API answers; the node becomes Ready when it is up.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { renderCiliumValues } from "./values";
import type { LayerSummary } from "../summary";

export interface CiliumFabricArgs {
  /** The validated site. */
  site: Site;
  /** Facts derived from the site (segment links become Cilium devices). */
  plan: SitePlan;
  /** Provider for the router's cluster (built from TalosNode's kubeconfig). */
  provider: k8s.Provider;
  /** Completes once the Kubernetes API answers (TalosNode.apiReady): the release waits for it. */
  clusterReady: pulumi.Resource;
}

export const CILIUM_CHART_REPO = "https://helm.cilium.io/";

export class CiliumFabric extends pulumi.ComponentResource {
  /** Name of the Helm release. */
  readonly releaseName = "cilium";
  /** Helm values as applied. */
  readonly values: Record<string, unknown>;
  /** The Helm release (what cluster services depend on). */
  readonly release: k8s.helm.v3.Release;

  constructor(name: string, args: CiliumFabricArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:cilium:CiliumFabric", name, {}, opts);
    this.values = renderCiliumValues(args.site, args.plan);
    this.release = new k8s.helm.v3.Release(
      `${name}-release`,
      {
        name: this.releaseName,
        chart: "cilium",
        version: args.site.cilium.version,
        namespace: "kube-system",
        repositoryOpts: { repo: CILIUM_CHART_REPO },
        values: this.values,
        // A failed upgrade is rolled back by Helm rather than leaving a half-updated datapath.
        atomic: true,
        cleanupOnFail: true,
        timeout: 600,
      },
      { parent: this, provider: args.provider, dependsOn: [args.clusterReady] },
    );
    const summary: LayerSummary = {
      deploys: [
        {
          order: 20,
          text: `Helm release **${this.releaseName}**: chart cilium ${args.site.cilium.version} in kube-system.`,
        },
      ],
      sections: [],
    };
    this.registerOutputs({ release: this.releaseName, summary });
  }
}
