/**
 * The IDS stack's host side, pure: the IPS queue's rules for `table inet router` (ruleset/common.ts
 * RulesetContribution), when the site turns inline inspection on for some zone pairs.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import { linkDefines, type RulesetContribution } from "../dataplane/ruleset/common";
import { planIds } from "./plan";
import { ipsRuleset } from "./queue";

/** The IPS queue's rules for the data plane's ruleset (nothing unless the stack is on and has inline pairs). */
export function idsRuleset(site: Site, plan: SitePlan): RulesetContribution[] {
  if (!site.ids.enabled || !site.ids.ips.pairs.length) return [];
  const defines = linkDefines(site, plan);
  return [ipsRuleset(planIds(site, plan), (l) => (defines.has(l) ? `$${defines.get(l)}` : JSON.stringify(l)))];
}
