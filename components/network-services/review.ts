/**
 * NetworkServices' facts for review tooling (components/review.ts): the zones chrony actually serves NTP to
 * (its `allow` lines), so a policy can tell a zone told to use the router's NTP that nothing answers; and BIRD's
 * OSPF (area, segments, what it redistributes, its configuration's digest), so a diff can say when BIRD restarts
 * and which adjacencies the rollout gate holds. Pure.
 */
import { createHash } from "node:crypto";
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import type { LayerReview } from "../review";
import { ntpAllows } from "../vlan-segment/services";
import { ospfAuthentication, ospfKeys, renderBird } from "./bird";

/** `daemons`: the DaemonSets the component runs. */
export function renderServicesFacts(
  site: Site,
  plan: SitePlan,
  model: PolicyModel,
  daemons: readonly string[],
): LayerReview {
  const ntpZones = daemons.includes("chrony")
    ? plan.segments.filter((s) => ntpAllows(model, s).length > 0).map((s) => s.zone)
    : [];
  const ospf = site.routing.ospf;
  const bird = renderBird(site, plan);
  const named = (names: readonly string[]) =>
    plan.segments.filter((s) => names.includes(s.name)).map((s) => `${s.name} (${s.link})`);
  return {
    served: [{ service: "ntp", zones: [...new Set(ntpZones)].sort() }],
    ...(ospf && bird
      ? {
          routing: {
            ospf: {
              area: ospf.area,
              segments: named(ospf.segments),
              passive: named(ospf.passive),
              redistribute: [...ospf.redistribute].sort(),
              configDigest: createHash("sha256").update(bird).digest("hex"),
              authentication: ospfAuthentication(site),
              keys: ospf.authentication
                ? ospfKeys(ospf.authentication).map(({ keyId, algorithm, sent }) => ({ keyId, algorithm, sent }))
                : [],
            },
          },
        }
      : {}),
  };
}
