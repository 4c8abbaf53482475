/**
 * The router's nftables ruleset: one `table inet router` (DESIGN decision 4) holding the stateful zone firewall
 * for routed traffic, the router's own input filter, anti-spoofing, NAT44/NAT66/prefix translation, port
 * forwards with hairpin NAT, and the connection marks that send replies back out the WAN a connection came in
 * on. The extension's loader applies it atomically, replacing only this table. Pure and deterministic.
 *
 * Each chain family has its module under ruleset/ (raw, mangle, input, forward, nat); other layers add their
 * rules through a RulesetContribution, which names the chain family it extends.
 *
 * Per-packet cost does not grow with the rule count: established traffic is accepted first; a new connection
 * is dispatched through two verdict maps (in-link → source zone, out-link → zone pair) to a chain holding only
 * that pair's rules; rules match addresses and ports through sets, and a long list of rules is reached by
 * destination port, so a new connection walks only the rules that can match its port (port-dispatch.ts).
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { MIN_DISPATCH_RULES } from "./port-dispatch";
import {
  TAB,
  ident,
  internalWithServices,
  link,
  linkDefines,
  namedSet,
  quote,
  type Ctx,
  type RulesetContribution,
} from "./ruleset/common";
import { rawChains } from "./ruleset/raw";
import { mangleChains } from "./ruleset/mangle";
import { inputChains } from "./ruleset/input";
import { forwardChains } from "./ruleset/forward";
import { natChains, wanAddressSets } from "./ruleset/nat";

export { PORT_FORWARD_BIT, VERDICTS, linkDefines, type RulesetContribution, type Verdicts } from "./ruleset/common";
export { ruleChain, type RuleChain } from "./ruleset/rules";

/** The table's named sets: links, the site's prefixes, the router's addresses and the policy's address groups. */
function sets(ctx: Ctx, f: { wanLinks: string[]; internal4: string[]; internal6: string[] }): string[] {
  const { plan, model } = ctx;
  const t: string[] = [];
  t.push(...namedSet("wan_links", "ifname", f.wanLinks));
  t.push(
    ...namedSet(
      "lan_links",
      "ifname",
      plan.segments.map((s) => quote(s.link)),
    ),
  );
  t.push(...namedSet("internal4", "ipv4_addr", f.internal4, true));
  t.push(...namedSet("internal6", "ipv6_addr", f.internal6, true));
  t.push(
    ...namedSet(
      "lan4",
      "ipv4_addr",
      plan.segments.flatMap((s) => (s.ipv4 ? [s.ipv4.cidr] : [])),
      true,
    ),
  );
  t.push(
    ...namedSet(
      "lan6",
      "ipv6_addr",
      plan.segments.flatMap((s) => (s.ipv6 ? [s.ipv6.prefix] : [])),
      true,
    ),
  );
  t.push(
    ...namedSet(
      "router4",
      "ipv4_addr",
      plan.segments.flatMap((s) => (s.ipv4 ? [s.ipv4.gateway] : [])),
    ),
  );
  t.push(...wanAddressSets(ctx));
  for (const [g, v] of [...model.groups].sort(([a], [b]) => a.localeCompare(b))) {
    t.push(...namedSet(`group_${ident(g)}_4`, "ipv4_addr", v[4], true));
    t.push(...namedSet(`group_${ident(g)}_6`, "ipv6_addr", v[6], true));
  }
  return t;
}

/** Renders the whole ruleset file. */
export function renderRuleset(
  site: Site,
  plan: SitePlan,
  model: PolicyModel,
  opts: { minDispatchRules?: number; contributions?: readonly RulesetContribution[] } = {},
): string {
  const zoneOfLink = new Map<string, string>();
  for (const z of plan.zones) for (const l of z.links) zoneOfLink.set(l, z.name);
  const ctx: Ctx = {
    site,
    plan,
    model,
    defines: linkDefines(site, plan),
    maps: [],
    minDispatchRules: opts.minDispatchRules ?? MIN_DISPATCH_RULES,
    byLink: [...zoneOfLink].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true })),
    contributions: opts.contributions ?? [],
  };
  const f = {
    wanLinks: plan.wans.map((w) => link(ctx, w.name)),
    internal4: internalWithServices(site, plan, 4),
    internal6: internalWithServices(site, plan, 6),
  };

  const out: string[] = [
    `# nftables ruleset of site ${site.site.name} (${plan.fqdn}) — rendered by the site's Pulumi program.`,
    "# Loaded by router-dataplane as one transaction that replaces only `table inet router`.",
    "",
  ];
  for (const [name, def] of ctx.defines) out.push(`define ${def} = ${quote(name)}`);
  if (ctx.defines.size) out.push("");

  const t = [...sets(ctx, f), ...ctx.contributions.flatMap((c) => c.objects ?? [])];
  // The port dispatches' chains and maps go here, ahead of the chains that use them.
  const mapsAt = t.length;
  t.push(...rawChains(f), ...mangleChains(ctx), ...inputChains(ctx, f), ...forwardChains(ctx));
  t.push(...natChains(ctx, f));
  if (ctx.maps.length)
    t.splice(mapsAt, 0, "# port dispatch: long rule lists reached by destination port (port-dispatch.ts)", ...ctx.maps);

  out.push("table inet router {", ...t.map((l) => (l ? `${TAB}${l}` : "")), "}", "");
  return out.join("\n");
}
