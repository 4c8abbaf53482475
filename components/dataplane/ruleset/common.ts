/**
 * What every chain family of the ruleset shares: the render context, nft text helpers and link naming. Pure.
 */
import type { Site } from "../../site/schema";
import { segmentPrefixes, type SitePlan } from "../../site/plan";
import { familyOf, mergePrefixes } from "../../site/ip";
import type { PolicyModel, Verdict } from "../../site/policy";

export const TAB = "\t";

/**
 * Connection-mark bit of connections a port forward let in. The forward chain accepts exactly those — not every
 * DNATed connection (IPv6 prefix translation DNATs all inbound traffic, which the zone policy must still judge).
 */
export const PORT_FORWARD_BIT = 0x04;
export const FWD = `0x${PORT_FORWARD_BIT.toString(16)}`;
/** The kernel's limit for a log prefix is 127 bytes; names can be long, so prefixes are cut. */
const LOG_PREFIX_MAX = 120;

export function logPrefix(text: string): string {
  const body = text.length > LOG_PREFIX_MAX - 2 ? `${text.slice(0, LOG_PREFIX_MAX - 3)}~` : text;
  return JSON.stringify(`${body}: `);
}

/**
 * A rate-limited log statement: to the kernel log, or to an NFLOG group when a layer collects the records
 * (RulesetContribution.logGroup).
 */
export function logStatement(rate: string, text: string, group?: number): string {
  return `limit rate ${rate} log ${group === undefined ? "" : `group ${group} `}prefix ${logPrefix(text)}`;
}

/** The NFLOG group the contributions ask for (at most one layer collects drop logs). */
export function logGroupOf(contributions: readonly RulesetContribution[]): number | undefined {
  const groups = [...new Set(contributions.flatMap((c) => (c.logGroup === undefined ? [] : [c.logGroup])))];
  if (groups.length > 1) throw new Error(`two layers collect the drop logs (NFLOG groups ${groups.join(", ")})`);
  return groups[0];
}

/** nft identifier of a zone (chain names). */
export function ident(zone: string): string {
  return zone.replace(/-/g, "_");
}

export function quote(s: string): string {
  return JSON.stringify(s);
}

export function setOf(items: readonly (string | number)[]): string {
  return items.length === 1 ? String(items[0]) : `{ ${items.join(", ")} }`;
}

export function portList(ranges: [number, number][]): string {
  return setOf(ranges.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)));
}

/** How a rule's verdict is written (tests record verdicts instead). */
export type Verdicts = (v: Verdict) => string;

export const VERDICTS: Verdicts = (v) => (v === "reject" ? "reject with icmpx admin-prohibited" : v);

/**
 * Physical links are Talos aliases (wan0, lan0) whose kernel names differ on the box; they are named through
 * defines the loader resolves (a define's value that names no link but matches a link's Talos alias is
 * replaced by that link's kernel name). Links we create (bonds, VLANs) have their own names.
 */
export function linkDefines(site: Site, plan: SitePlan): Map<string, string> {
  const aliases = new Set(site.node.nics.map((n) => n.alias));
  const out = new Map<string, string>();
  for (const name of [...plan.wans.map((w) => w.name), ...plan.trunks.map((t) => t.name)])
    if (aliases.has(name)) out.set(name, `if_${name.replace(/-/g, "_")}`);
  return out;
}

export interface Ctx {
  site: Site;
  plan: SitePlan;
  model: PolicyModel;
  defines: Map<string, string>;
  /** Port-dispatch chains and maps, collected while the chains are rendered. */
  maps: string[];
  minDispatchRules: number;
  /** Links of each zone, sorted by link name: the dispatch maps of input and forward. */
  byLink: [link: string, zone: string][];
  /** Rules other layers add (DNS redirection, IDS queues, …). */
  contributions: readonly RulesetContribution[];
}

/** A link as the ruleset names it: through its define when it is a Talos alias. */
export function link(ctx: Ctx, name: string): string {
  const d = ctx.defines.get(name);
  return d ? `$${d}` : quote(name);
}

export function chain(name: string, body: string[], hook?: string): string[] {
  return [`chain ${name} {`, ...(hook ? [`${TAB}${hook}`] : []), ...body.map((l) => (l ? `${TAB}${l}` : "")), "}"];
}

export function namedSet(name: string, type: string, elements: readonly string[], interval = false): string[] {
  if (elements.length === 0) return [];
  const items = interval ? mergePrefixes(elements) : elements;
  return [
    `set ${name} {`,
    `${TAB}type ${type}`,
    ...(interval ? [`${TAB}flags interval`, `${TAB}auto-merge`] : []),
    `${TAB}elements = { ${items.join(", ")} }`,
    "}",
  ];
}

/**
 * The site's own prefixes of a family: segments, private prefixes routed to the inside (a static route via a
 * segment's host), then the cluster's pod networks.
 */
export function internalPrefixes(site: Site, plan: SitePlan, family: 4 | 6): string[] {
  const segs = plan.segments.flatMap((s) => segmentPrefixes(s).filter((p) => familyOf(p) === family));
  const routed = plan.insideRoutes.filter((r) => r.internal && familyOf(r.destination) === family);
  const cluster = [...site.cluster.podCidrs].filter((c) => familyOf(c) === family);
  return [...segs, ...routed.map((r) => r.destination), ...cluster];
}

/** Internal prefixes plus the cluster's service networks: what the internet never sources and NAT hides. */
export function internalWithServices(site: Site, plan: SitePlan, family: 4 | 6): string[] {
  return [...internalPrefixes(site, plan, family), ...site.cluster.serviceCidrs.filter((c) => familyOf(c) === family)];
}

/**
 * Rules another layer adds to the ruleset, by chain family: each lands in one obvious place of the chain it
 * names, in the order given. Lines are nft statements without indentation.
 */
export interface RulesetContribution {
  /** Who adds them (a comment above the lines). */
  by: string;
  /** Extra top-level objects (sets, maps, whole chains with their own hooks), after the table's own sets. */
  objects?: string[];
  /** Input chain, after the ICMP and DHCP-client rules and before the zone dispatch. */
  input?: string[];
  /** Forward chain, after the established and port-forward accepts and before the zone dispatch. */
  forward?: string[];
  /** NAT prerouting, ahead of the port forwards (e.g. redirecting a zone's DNS to the router). */
  natPrerouting?: string[];
  /** Send every log statement's records to this NFLOG group (a collector reads them) instead of the kernel log. */
  logGroup?: number;
}

/** The contributions' lines for one chain family, each block under a comment naming its layer. */
export function contributed(ctx: Ctx, family: Exclude<keyof RulesetContribution, "by" | "logGroup">): string[] {
  return ctx.contributions.flatMap((c) => {
    const lines = c[family] ?? [];
    return lines.length ? [`# ${c.by}`, ...lines] : [];
  });
}
