/**
 * The DNS stack's host side, pure: its rules for `table inet router` (ruleset/common.ts RulesetContribution) —
 * forced zones' DNS redirected or rejected, DoT/DoH and the metrics port opened where they are served.
 * Registered in components/host-layers.ts.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import type { RulesetContribution } from "../dataplane/ruleset/common";
import { planDns } from "./plan";
import { renderDnsRuleset } from "./ruleset";

/** The DNS stack's rules for the data plane's ruleset (empty when no zone has the dns service). */
export function dnsRuleset(site: Site, plan: SitePlan, policy: PolicyModel): RulesetContribution[] {
  return [renderDnsRuleset(plan, policy, planDns(site, plan, policy))];
}
