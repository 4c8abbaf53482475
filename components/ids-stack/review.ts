/**
 * The IDS layer's facts for review tooling (components/review.ts IdsFacts), read by the policy pack's intent
 * policy "IDS/IPS covers the zone pairs the site requires" (policies/intent/ids.ts) and by `npm run diff`.
 *
 * Required: every pair from a WAN zone into an inside zone that the firewall lets the WAN open (a port forward's
 * IPv4 or IPv6 target zone, a zone policy that accepts, an accept rule from the WAN or any zone) is inspected
 * at least in detection; every pair the site lists under router:ids.ips.pairs is inspected inline.
 * Covered, from what the stack actually runs: detection on a pair when every link of one of its zones is
 * watched (AF_PACKET sees both directions of a link, so one side suffices, but only if none of that side's
 * links is left out); inline on a pair when the IPS queue chain is rendered for it with links on both sides.
 * Pure.
 */
import type { Site } from "../site/schema";
import { segmentPrefixes, type SitePlan } from "../site/plan";
import { contains } from "../site/ip";
import { zoneMatrix, type PolicyModel } from "../site/policy";
import type { IdsFacts } from "../review";
import type { IdsPlan } from "./plan";
import { idsRuleset } from "./host";

type Pair = IdsFacts["required"][number];

function zoneOf(plan: SitePlan, address: string): string | undefined {
  return (
    plan.segments.find((s) => segmentPrefixes(s).some((p) => contains(p, address)))?.zone ??
    plan.insideRoutes.find((r) => contains(r.destination, address))?.zone
  );
}

/** Inside zones the WAN can open, by WAN zone: forwards' targets, accepting policies and rules. */
function wanOpened(site: Site, plan: SitePlan, model: PolicyModel): [string, string][] {
  const out = new Set<string>();
  const actions = new Map(model.rules.map((r) => [r.name, r.action]));
  const matrix = zoneMatrix(model);
  for (const wan of model.wanZones) {
    for (const [to, cell] of matrix.get(wan) ?? []) {
      if (to === "router" || model.wanZones.includes(to)) continue;
      if (cell.verdict === "accept" || cell.rules.some((n) => actions.get(n) === "accept")) out.add(`${wan}>${to}`);
    }
    for (const f of site.portForwards) {
      if (f.wans && !plan.wans.some((w) => f.wans!.includes(w.name) && w.zone === wan)) continue;
      for (const target of [f.to, f.ipv6]) {
        const zone = target === undefined ? undefined : zoneOf(plan, target);
        if (zone) out.add(`${wan}>${zone}`);
      }
    }
  }
  return [...out].sort().map((k) => k.split(">") as [string, string]);
}

function linksOf(plan: SitePlan, zone: string): readonly string[] {
  return plan.zones.find((z) => z.name === zone)?.links ?? [];
}

/** What the site requires inspected and what the stack covers (empty lists when the stack is off). */
export function renderIdsFacts(site: Site, plan: SitePlan, model: PolicyModel, ids: IdsPlan): IdsFacts {
  if (!site.ids.enabled) return { required: [], covered: [] };
  const inline = new Set(site.ids.ips.pairs.map((p) => `${p.from}>${p.to}`));
  const required: Pair[] = [
    ...wanOpened(site, plan, model)
      .filter(([from, to]) => !inline.has(`${from}>${to}`))
      .map(([from, to]): Pair => ({ from, to, mode: "detect" })),
    ...site.ids.ips.pairs.map((p): Pair => ({ from: p.from, to: p.to, mode: "inline" })),
  ];
  const watched = new Set(ids.links);
  const whollyWatched = (zone: string) => {
    const links = linksOf(plan, zone);
    return links.length > 0 && links.every((l) => watched.has(l));
  };
  const covered: Pair[] = [];
  for (const from of model.zones)
    for (const to of model.zones)
      if (from !== to && (whollyWatched(from) || whollyWatched(to))) covered.push({ from, to, mode: "detect" });
  const queued = idsRuleset(site, plan).length > 0;
  for (const p of ids.pairs)
    if (queued && p.inLinks.length && p.outLinks.length) covered.push({ from: p.from, to: p.to, mode: "inline" });
  return { required, covered };
}

/** The IDS settings a reviewer compares by key (`npm run diff`'s profiles): watched links, rules, blocking. */
export function renderIdsProfiles(site: Site, ids: IdsPlan): Record<string, string> {
  const s = site.ids;
  if (!s.enabled) return { ids: "off" };
  const r = s.rules;
  return {
    ids: "on",
    "ids.block": s.block.enabled
      ? `severity ≤ ${s.block.severity} for ${s.block.duration}, at most ${s.block.maxEntries}, never ${s.block.never.length} extra prefix(es)`
      : "off",
    "ids.ips.queues": `${ids.queues[0]}-${ids.queues[1]}`,
    "ids.links": ids.links.join(", "),
    "ids.rules": `${r.sources.map((x) => x.name).join(", ")} every ${r.updateInterval}; ${r.local.length} local, ${r.disable.length} disabled, ${r.thresholds.length} threshold(s)`,
  };
}
