/**
 * ObservabilityStack: metrics, alerts, dashboards, logs and flows of the router, on the router (DESIGN decision
 * 14). Its host side — Talos' logs to the collector, the ruleset's drop logs to NFLOG — is rendered into the
 * machine configuration and the ruleset before the cluster exists (`host`, `ruleset`); this component owns the
 * Kubernetes side: our observability image (Debian daemons, built and pushed at `pulumi up`, pinned by digest),
 * the upstream images of VictoriaLogs and Grafana pinned by digest, every configuration as an immutable
 * ConfigMap named by content, and the site's credentials as Secrets mounted as files.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { createHash } from "node:crypto";
import type { SecretKey, Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import type { SiteSecrets } from "../site/load";
import { pinImage, shipImage, type ImageBuild } from "../images";
import { renderStackFiles } from "./files";
import { OBS_NAMESPACE, renderObservabilityObjects, talosctlImage, type ObsObject } from "./k8s";
import { forwardPasswordConf } from "./logs";
export { observabilityHost, observabilityRuleset } from "./host";
import { renderObservabilitySummary } from "./summary";
import { scrapeJobs, type ScrapeContribution } from "./targets";
import { endpointFacts, receiverCredentials } from "./review";
import type { ObservabilityFacts } from "../review";

export interface ObservabilityStackArgs {
  /** The validated site. */
  site: Site;
  /** Facts derived from the site. */
  plan: SitePlan;
  /** The compiled zone policy (Kea's pools come from the same rendering the DHCP server gets). */
  policy: PolicyModel;
  /** Provider for the router's cluster. */
  provider: k8s.Provider;
  /** The node's host configuration, tried and confirmed: the stack changes only after it. */
  hostReady: pulumi.Resource;
  /** The site's secrets (remote-write, log-forwarding and SMTP passwords, the webhook token, the registry's). */
  secrets: SiteSecrets;
  /** Scrape jobs other layers add (DNS, IDS). */
  scrapes?: readonly ScrapeContribution[];
}

export const OBSERVABILITY_IMAGE: ImageBuild = {
  name: "router-observability",
  build: "make -C images/observability",
  oci: "images/observability/out/oci",
};

/**
 * The layer's review facts (review.ts), with whether each receiver's credential is a Pulumi secret (only its
 * value knows).
 */
function reviewFacts(
  site: Site,
  plan: SitePlan,
  policy: PolicyModel,
  secrets: SiteSecrets,
): pulumi.Output<ObservabilityFacts> {
  const set = new Set(Object.entries(secrets).flatMap(([k, v]) => (v ? [k] : [])));
  const receivers = receiverCredentials(site, set).map(async (r) => {
    const value = r.key ? secrets[r.key as SecretKey] : undefined;
    if (!r.key) return { name: r.name };
    return {
      name: r.name,
      credential: { key: r.key, set: !!value, pulumiSecret: value ? await pulumi.isSecret(value) : false },
    };
  });
  return pulumi.all(receivers).apply((rs) => ({ endpoints: endpointFacts(site, plan, policy), receivers: rs }));
}

/** Secret files by workload, from the site's secrets (outputs, kept secret). */
function secretData(site: Site, s: SiteSecrets): Record<string, Record<string, unknown>> {
  const o = site.observability;
  const out: Record<string, Record<string, unknown>> = {};
  if (o.remoteWrite?.username && s.remoteWritePassword)
    out.prometheus = { "remote-write-password": s.remoteWritePassword };
  const am: Record<string, unknown> = {};
  if (s.alertWebhookToken && o.alerts.receivers.some((r) => r.webhook)) am["webhook-token"] = s.alertWebhookToken;
  if (s.alertSmtpPassword && o.alerts.receivers.some((r) => r.email?.username))
    am["smtp-password"] = s.alertSmtpPassword;
  if (Object.keys(am).length) out.alertmanager = am;
  if (o.logs.forward?.username && s.logForwardPassword)
    out["log-collector"] = { "forward.conf": s.logForwardPassword.apply(forwardPasswordConf) };
  return out;
}

function createObject(name: string, obj: ObsObject, opts: pulumi.CustomResourceOptions): pulumi.CustomResource {
  const { apiVersion, kind, ...rest } = obj;
  const args = rest as never;
  // Talos' own kind (its Kubernetes API access): a custom resource.
  if (apiVersion === "talos.dev/v1alpha1") return new k8s.apiextensions.CustomResource(name, obj as never, opts);
  switch (kind) {
    case "Namespace":
      return new k8s.core.v1.Namespace(name, args, opts);
    case "ServiceAccount":
      return new k8s.core.v1.ServiceAccount(name, args, opts);
    case "ClusterRole":
      return new k8s.rbac.v1.ClusterRole(name, args, opts);
    case "ClusterRoleBinding":
      return new k8s.rbac.v1.ClusterRoleBinding(name, args, opts);
    case "ConfigMap":
      return new k8s.core.v1.ConfigMap(name, args, opts);
    case "Secret":
      return new k8s.core.v1.Secret(name, args, opts);
    case "DaemonSet":
      return new k8s.apps.v1.DaemonSet(name, args, opts);
    default:
      throw new Error(`no resource class for kind ${kind}`);
  }
}

export class ObservabilityStack extends pulumi.ComponentResource {
  /** The observability image pinned by digest. */
  readonly image: pulumi.Output<string>;
  /** Changes whenever any of the stack's objects changes (the health gate's trigger). */
  readonly digest: pulumi.Output<string>;
  /** The DaemonSets. */
  readonly workloads: pulumi.Resource[] = [];

  constructor(name: string, args: ObservabilityStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:observability:ObservabilityStack", name, {}, opts);
    const { site, plan, policy } = args;
    const files = renderStackFiles(site, plan, policy, {
      webhookToken: !!args.secrets.alertWebhookToken,
      scrapes: args.scrapes,
    });
    this.image = shipImage(this, `${name}-image`, {
      site,
      image: OBSERVABILITY_IMAGE,
      sources: ["images/observability"],
      registryPassword: args.secrets.registryPassword,
    });
    const images = {
      own: this.image,
      logs: pinImage(this, `${name}-logs-image`, site.observability.images.logs),
      dashboards: pinImage(this, `${name}-dashboards-image`, site.observability.images.dashboards),
      // The BGP collector runs the talosctl of the node's Talos release.
      ...(site.routing.bgp
        ? { talosctl: pinImage(this, `${name}-talosctl-image`, talosctlImage(site.talos.version)) }
        : {}),
    };
    const secrets = secretData(site, args.secrets);
    const objects = renderObservabilityObjects(site, plan, files, images, secrets);
    let namespace: pulumi.Resource | undefined;
    const before: pulumi.Resource[] = [];
    for (const obj of objects) {
      const secret = obj.kind === "Secret";
      const role = obj.metadata.labels?.["router.edge/config"] ?? obj.metadata.name;
      const res = createObject(
        `${name}-${obj.kind.toLowerCase()}-${role}`,
        secret ? { ...obj, stringData: pulumi.secret(obj.stringData) } : obj,
        {
          parent: this,
          provider: args.provider,
          dependsOn: [args.hostReady, ...(namespace ? [namespace] : []), ...(obj.kind === "DaemonSet" ? before : [])],
          // A replaced ConfigMap stays for a rollback to the previous DaemonSet revision.
          ...(obj.kind === "ConfigMap" ? { retainOnDelete: true } : {}),
        },
      );
      if (obj.kind === "Namespace") namespace = res;
      else if (obj.kind === "DaemonSet") this.workloads.push(res);
      else before.push(res);
    }
    this.digest = pulumi.all([images.own, images.logs, images.dashboards, images.talosctl]).apply((refs) =>
      createHash("sha256")
        .update(JSON.stringify([refs, files.configMaps]))
        .digest("hex"),
    );
    this.registerOutputs({
      image: this.image,
      digest: this.digest,
      namespace: OBS_NAMESPACE,
      artifacts: files.artifacts,
      summary: renderObservabilitySummary(site, plan, scrapeJobs(site, plan, args.scrapes)),
      review: { observability: reviewFacts(site, plan, policy, args.secrets) },
    });
  }
}
