/**
 * Every layer's share of the host, in one place: the rules a layer adds to the ruleset and the machine-config
 * documents and kernel parameters it contributes, in stream order. The appliance hands exactly these to DataPlane
 * and TalosNode, and tests render the machine configuration from them, so a new stack's host side is one line
 * here. Pure.
 */
import type { Site } from "./site/schema";
import type { SitePlan } from "./site/plan";
import type { PolicyModel } from "./site/policy";
import type { HostContribution } from "./talos-node/documents";
import type { RulesetContribution } from "./dataplane/ruleset/common";
import { renderRuleset } from "./dataplane/nftables";
import { renderDataplaneHost } from "./dataplane/host";
import { renderRoutingHost } from "./network-services/routing";
import { renderSegmentHost } from "./vlan-segment/host";
import { observabilityHost, observabilityRuleset } from "./observability-stack/host";
import { idsRuleset } from "./ids-stack/host";
import { dnsRuleset } from "./dns-stack/host";

/** Rules the stacks add to `table inet router`, by chain family. */
export function rulesetContributions(site: Site, plan: SitePlan, policy: PolicyModel): RulesetContribution[] {
  return [...observabilityRuleset(site), ...idsRuleset(site, plan), ...dnsRuleset(plan, policy)];
}

/** The ruleset the data plane's loader applies, with every stack's rules. */
export function siteRuleset(site: Site, plan: SitePlan, policy: PolicyModel): string {
  return renderRuleset(site, plan, policy, { contributions: rulesetContributions(site, plan, policy) });
}

/** Every layer's host contribution, in the machine configuration's stream order. */
export function hostContributions(site: Site, plan: SitePlan, policy: PolicyModel): HostContribution[] {
  return [
    ...plan.segments.map(renderSegmentHost),
    // The data plane's service and, as the firewall layer's file of that service, the ruleset.
    ...renderDataplaneHost(site, plan, { nftRuleset: siteRuleset(site, plan, policy) }),
    renderRoutingHost(site, plan),
    observabilityHost(site),
  ];
}
