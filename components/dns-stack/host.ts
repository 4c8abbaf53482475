/**
 * The DNS stack's host side, pure: its rules for `table inet router` (ruleset/common.ts RulesetContribution) —
 * forced zones' DNS redirected or rejected, DoT/DoH opened where they are served (the metrics port is a management
 * port of the policy model).
 * Registered in components/host-layers.ts.
 */
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import type { RulesetContribution } from "../dataplane/ruleset/common";
import { renderDnsRuleset } from "./ruleset";

/** The DNS stack's rules for the data plane's ruleset (empty when no zone has the dns service). */
export function dnsRuleset(plan: SitePlan, policy: PolicyModel): RulesetContribution[] {
  return [renderDnsRuleset(plan, policy)];
}
