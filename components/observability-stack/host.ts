/**
 * The observability stack's host side, pure: Talos' log destinations (machine.logging, KmsgLogConfig) and the
 * ruleset's drop logs to the collector's NFLOG group, when the site turns the stack on.
 */
import type { Site } from "../site/schema";
import type { HostContribution } from "../talos-node/documents";
import type { RulesetContribution } from "../dataplane/ruleset/common";
import { loggingHost, loggingRuleset } from "./logs";

/** The stack's host side: Talos' logs to the collector (machine configuration). */
export function observabilityHost(site: Site): HostContribution {
  return site.observability.enabled ? loggingHost() : { layer: "observability", documents: [] };
}

/** The stack's share of the ruleset: drop logs to the collector's NFLOG group. */
export function observabilityRuleset(site: Site): RulesetContribution[] {
  return site.observability.enabled ? [loggingRuleset()] : [];
}
