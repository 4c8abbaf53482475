/**
 * The data plane's host side, for the node's machine configuration: the extension service's configuration
 * files as an ExtensionServiceConfig document (so a change rides the try/confirm path like any other machine
 * configuration change), and the forward gate's routing rules (gate.ts).
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { HostContribution } from "../talos-node/documents";
import { EXTENSION_NAME, renderLoaderConfig } from "./loader-config";
import { gateDocuments } from "./gate";

export function renderDataplaneHost(site: Site, plan: SitePlan, opts: { nftRuleset?: string } = {}): HostContribution {
  const { files } = renderLoaderConfig(site, plan, opts);
  return {
    documents: [
      ...gateDocuments(),
      {
        apiVersion: "v1alpha1",
        kind: "ExtensionServiceConfig",
        name: EXTENSION_NAME,
        configFiles: [...files].map(([mountPath, content]) => ({ content, mountPath })),
      },
    ],
  };
}
