/**
 * TalosNode: one router's operating system. Renders the machine configuration (with the other layers' host-side
 * contributions), keeps the secrets bundle, and drives the node with talosctl: first install from maintenance
 * mode, etcd bootstrap, kubeconfig, then every later change through try → health checks → confirm, and Talos
 * upgrades when the installer image changes.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { ConfigLayerName, HostContribution } from "./documents";
import { renderMachineConfig } from "./machine-config";
import { diskSelector, renderCel, renderJq } from "./disk-selector";
import { bgpNeighbourChecks, dataplaneHealth, ospfAdjacencyCheck, segmentLinks } from "./health";
import { Redacted, redactedSecrets } from "./secrets";
import { createSecretsBundle } from "./secrets-bundle";
import { renderTalosconfig } from "./talosconfig";
import { renderNodeFacts, renderNodeSummary } from "./summary";
import { configLayers, layerNames, type ConfigLayerContent } from "./layers";
import { ConfigLayer } from "./config-layer";
import {
  applyTryScript,
  bootstrapScript,
  destroyScript,
  durationSeconds,
  healthScript,
  installScript,
  kubeconfigScript,
  noopScript,
  upgradeScript,
  type HealthChecks,
  type InstallIdentity,
  type NodeTarget,
} from "./scripts";

export * from "./documents";
export { ConfigLayer } from "./config-layer";

export interface TalosNodeArgs {
  /** The validated site. */
  site: Site;
  /** Facts derived from the site. */
  plan: SitePlan;
  /** Host-side pieces of the other layers (VLAN links, data-plane service config), in stream order. */
  contributions: HostContribution[];
  /** Password of router:registry, if the site's registry needs one (a Pulumi secret). */
  registryPassword?: pulumi.Input<string>;
  /** Installer image to install and upgrade with (built with our extension by DataPlane). */
  installerImage: pulumi.Input<string>;
}

const BASH = ["/bin/bash", "-c"];

export class TalosNode extends pulumi.ComponentResource {
  /** talosctl client configuration for the site's admin (secret). */
  readonly talosconfig: pulumi.Output<string>;
  /** Admin kubeconfig of the router's cluster (secret). */
  readonly kubeconfig: pulumi.Output<string>;
  /** The machine configuration with every secret replaced by a placeholder: what reviewers read and diff. */
  readonly machineConfigRedacted: pulumi.Output<string>;
  /** Talos and Kubernetes API address. */
  readonly endpoint: string;
  /** Resource that completes once the Kubernetes API answers: what cluster workloads depend on. */
  readonly apiReady: pulumi.Resource;
  /**
   * Resource that completes once the host configuration is confirmed (tried, checked, confirmed — or installed):
   * what must not run ahead of a host change that may still revert (the cluster's services).
   */
  readonly hostConfigured: pulumi.Resource;
  /** The installer image the node runs. */
  readonly installerImage: pulumi.Output<string>;

  private readonly target: NodeTarget;
  private readonly checks: HealthChecks;
  private readonly env: pulumi.Input<Record<string, pulumi.Input<string>>>;
  private readonly name: string;

  constructor(name: string, args: TalosNodeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:talos:TalosNode", name, {}, opts);
    const { site, plan } = args;
    const protect = !site.node.allowWipeOnDestroy;
    this.name = name;
    this.endpoint = plan.managementAddress;

    const bundle = createSecretsBundle(name, this, protect);
    const configInput = {
      site,
      plan,
      contributions: args.contributions,
    };
    const installerImage = pulumi.output(args.installerImage);
    this.installerImage = installerImage;
    const redactedInput = (image: string) => ({
      ...configInput,
      installerImage: image,
      secrets: redactedSecrets(),
      registryPassword: args.registryPassword === undefined ? undefined : new Redacted("registryPassword"),
    });
    this.machineConfigRedacted = installerImage.apply((image) => renderMachineConfig(redactedInput(image)));
    const layerDigests = this.configLayers(
      name,
      layerNames(args.contributions),
      installerImage.apply((image) => configLayers(redactedInput(image))),
    );
    const machineConfig = pulumi.secret(
      pulumi
        .all([bundle.secrets, args.registryPassword, installerImage])
        .apply(([secrets, registryPassword, image]) =>
          renderMachineConfig({ ...configInput, secrets, registryPassword, installerImage: image }),
        ),
    );
    this.talosconfig = pulumi.secret(
      bundle.admin.apply((a) =>
        renderTalosconfig({ context: site.site.name, endpoints: [plan.managementAddress], ...a }),
      ),
    );

    this.target = {
      address: plan.managementAddress,
      maintenanceAddress: plan.maintenanceAddress,
      healthTimeout: durationSeconds(site.node.healthTimeout),
    };
    const ext = site.dataplane.extension;
    // The data plane is part of the node's health when the node runs our extension; every segment's link always; the
    // BGP sessions and OSPF adjacencies that were up before a change.
    this.checks = {
      dataplane: ext.build || ext.image ? dataplaneHealth(args.contributions, site.dataplane.metricsPort) : undefined,
      segments: segmentLinks(plan.segments),
      bgp: bgpNeighbourChecks(site),
      ospf: ospfAdjacencyCheck(site, plan),
    };
    const selector = diskSelector(site.node.installDisk);
    const identity: InstallIdentity = {
      macs: site.node.nics.map((n) => n.mac),
      certFingerprint: site.node.maintenanceCertFingerprint,
      diskFilter: renderJq(selector),
      diskCel: renderCel(selector),
    };
    this.env = pulumi.secret({ ROUTER_TALOSCONFIG: this.talosconfig });
    const cmd = (role: string, cargs: command.local.CommandArgs, copts: pulumi.CustomResourceOptions = {}) =>
      new command.local.Command(
        `${name}-${role}`,
        { interpreter: BASH, environment: this.env, ...cargs },
        { parent: this, ...copts },
      );

    // First install. Runs once: later configuration changes go through `apply` below, never through
    // maintenance mode again. A changed input (a renewed admin certificate in the environment, an edited timeout
    // in the script) runs the no-op update, never the install again.
    const install = cmd(
      "install",
      {
        create: installScript(this.target, identity),
        update: noopScript("the node is installed; configuration changes go through the try/confirm apply"),
        delete: destroyScript(this.target, site.node.allowWipeOnDestroy),
        stdin: machineConfig,
      },
      { protect, ignoreChanges: ["stdin"] },
    );
    const bootstrap = cmd("bootstrap", { create: bootstrapScript(this.target) }, { dependsOn: [install] });
    const kubeconfig = cmd(
      "kubeconfig",
      { create: kubeconfigScript(this.target), logging: "stderr" },
      { dependsOn: [bootstrap], additionalSecretOutputs: ["stdout"] },
    );
    this.kubeconfig = pulumi.secret(kubeconfig.stdout);
    this.apiReady = kubeconfig;

    // Talos upgrades when the installer image changes (the image carries the Talos version and our extension), and
    // only then: any change of its inputs runs the update. So its checks are those that hold for whatever
    // configuration the node runs (an upgrade runs before a new configuration is tried): the data plane runs and
    // reports its ruleset applied, without the digests or segments a configuration change would alter.
    const upgradeChecks: HealthChecks = {
      dataplane: this.checks.dataplane && { metricsPort: this.checks.dataplane.metricsPort },
      // A session established before the upgrade must come back on the new image (or after the rollback), and
      // an adjacency that was Full.
      bgp: this.checks.bgp,
      ospf: this.checks.ospf,
    };
    const upgrade = cmd(
      "upgrade",
      {
        create: installerImage.apply((image) => noopScript(`installed with ${image}`)),
        update: installerImage.apply((image) => upgradeScript(this.target, image, upgradeChecks)),
      },
      { dependsOn: [kubeconfig] },
    );
    // Configuration changes after install: try, check, confirm (or fail and let the node revert by itself).
    this.hostConfigured = cmd(
      "apply",
      {
        create: noopScript("initial configuration applied at install"),
        update: applyTryScript(this.target, durationSeconds(site.node.tryTimeout), this.checks),
        stdin: machineConfig,
        // Plain: which layers the stream is made of, by digest, so the apply visibly changes with them.
        environment: { ROUTER_TALOSCONFIG: pulumi.secret(this.talosconfig), ROUTER_CONFIG_LAYERS: layerDigests },
      },
      { dependsOn: [upgrade] },
    );

    this.registerOutputs({
      endpoint: this.endpoint,
      talosconfig: this.talosconfig,
      kubeconfig: this.kubeconfig,
      artifacts: { [`talos/${plan.hostname}.yaml`]: this.machineConfigRedacted },
      summary: renderNodeSummary(site, plan),
      review: renderNodeFacts(site, plan),
    });
  }

  /**
   * One ConfigLayer per layer of the machine configuration (`${name}-layer-<layer>`); returns the line of
   * `layer=digest` pairs the apply carries, which changes exactly when a layer's content does.
   */
  private configLayers(
    name: string,
    names: ConfigLayerName[],
    layers: pulumi.Output<ConfigLayerContent[]>,
  ): pulumi.Output<string> {
    const digests = names.map((layer) => {
      const content = layers.apply((ls) => ls.find((l) => l.layer === layer)!);
      const res = new ConfigLayer(
        `${name}-layer-${layer}`,
        {
          layer,
          documents: content.apply((c) => c.documents),
          sysctls: content.apply((c) => c.sysctls),
          files: content.apply((c) => c.files),
        },
        { parent: this },
      );
      return res.digest.apply((d) => `${layer}=${d.slice(0, 16)}`);
    });
    return pulumi.all(digests).apply((ds) => ds.join(" "));
  }

  /**
   * A final gate: the whole router must be healthy once `after` (the fabric and services) is in place. It runs on
   * create and on every update; `gates` are values that change whenever anything it gates changes (the machine
   * configuration, the installer image, the services, the fabric), so any such change runs it again.
   */
  healthGate(after: pulumi.Resource[], gates: pulumi.Input<string>[]): command.local.Command {
    const script = healthScript(this.target, this.checks);
    return new command.local.Command(
      `${this.name}-healthy`,
      {
        interpreter: BASH,
        environment: this.env,
        create: script,
        update: script,
        triggers: [this.machineConfigRedacted, this.installerImage, ...gates],
      },
      { parent: this, dependsOn: after },
    );
  }
}
