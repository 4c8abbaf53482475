/**
 * DataPlane: our eBPF data plane on the router. Its host side (the loader's configuration) is rendered by
 * host.ts into the machine configuration; this component ships the extension itself: at `pulumi up` it builds
 * the extension image from ebpf/, pushes it to the site's registry and builds the Talos installer that includes
 * it. TalosNode installs or upgrades to that installer, so a new extension digest means a Talos upgrade.
 */
import * as pulumi from "@pulumi/pulumi";
import * as command from "@pulumi/command";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { HostContribution } from "../talos-node/documents";
import { renderDataplaneHost } from "./host";
import { renderLoaderConfig } from "./loader-config";
import { renderRuleset, type RulesetContribution } from "./nftables";
import { renderDataplaneSummary } from "./summary";
import { renderFirewallFacts } from "./review";
import type { PolicyModel } from "../site/policy";
import { pushTarget, registryEnvironment, shipImage } from "../images";
import { EXTENSION_IMAGE, installerScript } from "./images";

export interface DataPlaneArgs {
  /** The validated site. */
  site: Site;
  /** Facts derived from the site. */
  plan: SitePlan;
  /** The compiled zone policy: the nftables ruleset the loader applies. */
  policy: PolicyModel;
  /** Password of router:registry (secret), when the registry needs one. */
  registryPassword?: pulumi.Input<string>;
  /** Rules and log settings other layers add to the ruleset. */
  contributions?: readonly RulesetContribution[];
}

export class DataPlane extends pulumi.ComponentResource {
  /** Installer image the node runs: built with the extension, or the site's plain installer without one. */
  readonly installerImage: pulumi.Output<string>;
  /** The extension image pinned by digest (undefined when the site uses none). */
  readonly extensionImage?: pulumi.Output<string>;
  /** The loader's configuration (and the firewall's ruleset) as machine-config contributions, for TalosNode. */
  readonly host: HostContribution[];

  constructor(name: string, args: DataPlaneArgs, opts?: pulumi.ComponentResourceOptions) {
    super("router:dataplane:DataPlane", name, {}, opts);
    const { site, plan, policy } = args;
    const nftRuleset = renderRuleset(site, plan, policy, { contributions: args.contributions });
    this.host = renderDataplaneHost(site, plan, { nftRuleset });
    const artifacts = Object.fromEntries(
      [...renderLoaderConfig(site, plan, { nftRuleset }).files].map(([path, content]) => [
        `dataplane/${path.split("/router-dataplane/")[1]}`,
        content,
      ]),
    );
    const summary = renderDataplaneSummary(site, plan, policy);
    const review = { firewall: renderFirewallFacts(site, plan, policy) };
    const ext = site.dataplane.extension;
    if (!ext.build && !ext.image) {
      this.installerImage = pulumi.output(site.talos.installerImage);
      this.registerOutputs({ installerImage: this.installerImage, artifacts, summary, review });
      return;
    }
    const target = pushTarget(site, "the data-plane extension", this);
    const environment = registryEnvironment(site, args.registryPassword);
    this.extensionImage = ext.build
      ? shipImage(this, `${name}-extension`, {
          site,
          image: EXTENSION_IMAGE,
          sources: ["ebpf"],
          registryPassword: args.registryPassword,
        })
      : pulumi.output(ext.image!);

    const installer = new command.local.Command(
      `${name}-installer`,
      {
        interpreter: ["/bin/bash", "-c"],
        environment: pulumi.secret(
          pulumi.all([environment, this.extensionImage]).apply(([env, image]) => ({ ...env, EXTENSION_IMAGE: image })),
        ),
        create: installerScript(ext.engine, site.talos.version, target),
        triggers: [this.extensionImage, site.talos.version],
      },
      { parent: this },
    );
    this.installerImage = installer.stdout.apply((s) => s.trim());
    this.registerOutputs({
      installerImage: this.installerImage,
      extensionImage: this.extensionImage,
      artifacts,
      summary,
      review,
    });
  }
}
