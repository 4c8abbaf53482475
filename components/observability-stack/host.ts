/**
 * The observability stack's host side, pure: Talos' log destinations (machine.logging, KmsgLogConfig), on a site
 * with BGP the Talos API access of the BGP collector (KubeTalosAPIAccessConfig), and the ruleset's drop logs to the
 * collector's NFLOG group, when the site turns the stack on.
 */
import type { Site } from "../site/schema";
import type { HostContribution } from "../talos-node/documents";
import type { RulesetContribution } from "../dataplane/ruleset/common";
import { loggingHost, loggingRuleset } from "./logs";
import { OBS_NAMESPACE, TALOS_SA } from "./k8s";

/**
 * The stack's host side: Talos' logs to the collector and, on a site with BGP, Talos API access for the BGP
 * collector's Talos ServiceAccount: its role only (os:reader), from the stack's namespace only. Talos 1.14 takes it
 * as its own document (config/types/k8s KubeTalosAPIAccessConfig; the old machine.features.kubernetesTalosAPIAccess
 * conflicts with it), which it applies without a reboot.
 */
export function observabilityHost(site: Site): HostContribution {
  if (!site.observability.enabled) return { layer: "observability", documents: [] };
  const logging = loggingHost();
  if (!site.routing.bgp) return logging;
  return {
    ...logging,
    documents: [
      ...logging.documents,
      {
        apiVersion: "v1alpha1",
        kind: "KubeTalosAPIAccessConfig",
        allowedRoles: [...TALOS_SA.roles],
        allowedKubernetesNamespaces: [OBS_NAMESPACE],
      },
    ],
  };
}

/** The stack's share of the ruleset: drop logs to the collector's NFLOG group. */
export function observabilityRuleset(site: Site): RulesetContribution[] {
  return site.observability.enabled ? [loggingRuleset()] : [];
}
