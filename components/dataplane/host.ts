/**
 * The data plane's host side, for the node's machine configuration: the extension service's configuration
 * files as an ExtensionServiceConfig document (so a change rides the try/confirm path like any other machine
 * configuration change), and the forward gate's routing rules (gate.ts). The nftables ruleset is one of the
 * service's files, but a reviewer reads it as the firewall layer: it is contributed as that layer's file of the
 * same service.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { HostContribution, TalosDocument } from "../talos-node/documents";
import { CONFIG_PATH, EXTENSION_NAME, renderLoaderConfig, RULESET_PATH } from "./loader-config";
import { gateDocuments } from "./gate";

/** The loader configuration's `generation` line as a reviewer reads it: a digest of every file, the ruleset too. */
const GENERATION_LINE = /^generation = .*$/m;
export const GENERATION_PLACEHOLDER = "generation = [SHA-256 of the service's files, the firewall's ruleset included]";

function serviceDocument(files: [string, string][]): TalosDocument {
  return {
    apiVersion: "v1alpha1",
    kind: "ExtensionServiceConfig",
    name: EXTENSION_NAME,
    configFiles: files.map(([mountPath, content]) => ({ content, mountPath })),
  };
}

/** The data-plane layer's contribution and, when there is a ruleset, the firewall layer's. */
export function renderDataplaneHost(
  site: Site,
  plan: SitePlan,
  opts: { nftRuleset?: string } = {},
): HostContribution[] {
  const { files } = renderLoaderConfig(site, plan, opts);
  const own = [...files].filter(([mountPath]) => mountPath !== RULESET_PATH);
  const ruleset = files.get(RULESET_PATH);
  // The generation changes with the ruleset: shown as a placeholder, a firewall change is the firewall layer's only.
  const reviewed = own.map(([p, c]): [string, string] => [
    p,
    p === CONFIG_PATH ? c.replace(GENERATION_LINE, GENERATION_PLACEHOLDER) : c,
  ]);
  return [
    {
      layer: "dataplane",
      documents: [...gateDocuments(), serviceDocument(own)],
      reviewDocuments: [...gateDocuments(), serviceDocument(reviewed)],
    },
    ...(ruleset === undefined
      ? []
      : [
          {
            layer: "firewall" as const,
            documents: [],
            serviceFiles: [{ service: EXTENSION_NAME, mountPath: RULESET_PATH, content: ruleset }],
          },
        ]),
  ];
}
