/**
 * The node's whole machine configuration from the pure renderers, with every layer's host contribution as the
 * appliance hands them to TalosNode (components/host-layers.ts). The
 * Talos validator tests check that this equals what the program itself renders for the dev site, so random
 * sites rendered here stand for what the program would render for them.
 */
import { hostContributions } from "../../components/host-layers";
import type { SitePlan } from "../../components/site/plan";
import { compilePolicy } from "../../components/site/policy";
import type { Site } from "../../components/site/schema";
import { renderMachineConfig } from "../../components/talos-node/machine-config";
import type { SecretText, TalosSecrets } from "../../components/talos-node/secrets";

export interface WholeMachineConfigInput {
  site: Site;
  plan: SitePlan;
  secrets: TalosSecrets;
  /** The registry password; given only when the site's registry has a username, as the program does. */
  registryPassword?: SecretText;
  /** The installer image (the program's data-plane build output); default: the site's installer. */
  installerImage?: string;
}

/** The machine-config stream with the host contributions of every layer. */
export function renderWholeMachineConfig(input: WholeMachineConfigInput): string {
  const { site, plan } = input;
  return renderMachineConfig({
    site,
    plan,
    secrets: input.secrets,
    installerImage: input.installerImage,
    registryPassword: site.registry?.username ? input.registryPassword : undefined,
    contributions: hostContributions(site, plan, compilePolicy(site, plan)),
  });
}
