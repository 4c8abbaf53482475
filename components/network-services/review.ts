/**
 * NetworkServices' facts for review tooling (components/review.ts): the zones chrony actually serves NTP to
 * (its `allow` lines), so a policy can tell a zone told to use the router's NTP that nothing answers. Pure.
 */
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import type { LayerReview } from "../review";
import { ntpAllows } from "../vlan-segment/services";

/** `daemons`: the DaemonSets the component runs. */
export function renderServicesFacts(plan: SitePlan, model: PolicyModel, daemons: readonly string[]): LayerReview {
  const ntpZones = daemons.includes("chrony")
    ? plan.segments.filter((s) => ntpAllows(model, s).length > 0).map((s) => s.zone)
    : [];
  return { served: [{ service: "ntp", zones: [...new Set(ntpZones)].sort() }] };
}
