/**
 * From raw config values (one per `router:<key>`) to a validated Site, or every problem at once. No Pulumi here:
 * load.ts feeds it from `pulumi.Config`, the render CLI and the tests feed it directly.
 */
import { z } from "zod";
import { configPath, fromZod, type SiteIssue } from "./issues";
import { secretKeys, Site, siteKeys } from "./schema";
import { validateSite } from "./validate";
import type { PartialSite } from "./partial";
import { indexed, salvage } from "./salvage";
import { planSite } from "./plan";
import { compilePolicy, evaluate, MANAGEMENT_TCP_PORTS } from "./policy";
import { contains, nthAddress } from "./ip";

export type ParseResult = { ok: true; site: Site } | { ok: false; issues: SiteIssue[] };

const listKeys = new Set(["links", "segments", "zones"]);
/** What the anti-lockout check reads: it runs when these parsed whole, whatever else is wrong. */
const LOCKOUT_KEYS = ["site", "node", "links", "segments", "zones", "firewall", "mdns", "dataplane"] as const;

/**
 * Parses and validates a site, reporting every problem at once: zod's own problems, then the cross-field rules
 * on everything that parsed (salvage.ts), then the anti-lockout check when what it reads parsed.
 * @param raw config values by key (without the `router:` namespace); secret keys may be present and are only
 *   checked for presence and form, never copied into the Site.
 */
export function parseSite(raw: Record<string, unknown>): ParseResult {
  const issues: SiteIssue[] = [];
  const allowed = [...Object.keys(siteKeys), ...Object.keys(secretKeys)];
  for (const key of Object.keys(raw).sort()) {
    if (!allowed.includes(key))
      issues.push({ path: configPath(key), message: `unknown config key (allowed keys: ${allowed.join(", ")})` });
  }

  const plain = Object.fromEntries(Object.entries(raw).filter(([k]) => !(k in secretKeys)));
  const partial: PartialSite = {
    incomplete: new Set(),
    secretsSet: new Set(),
    secretLengths: new Map(),
    raw: plain,
  };
  const parsed: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(siteKeys) as [keyof typeof siteKeys, z.ZodType][]) {
    const value = raw[key];
    const r = schema.safeParse(value, { reportInput: true });
    let data: unknown;
    if (r.success) {
      data = r.data;
      parsed[key] = data;
    } else if (value === undefined) {
      issues.push({
        path: configPath(key),
        message: `is required (allowed: set router:${key} in Pulumi.yaml or in the stack's config; see components/site/schema.ts)`,
      });
      partial.incomplete.add(key);
    } else {
      issues.push(...fromZod(key, schema, r.error));
      data = salvage(schema, value, key, partial.incomplete).data;
    }
    if (data === undefined) continue;
    (partial as unknown as Record<string, unknown>)[key] = listKeys.has(key) ? indexed(data as unknown[]) : data;
  }

  for (const [key, schema] of Object.entries(secretKeys)) {
    const value = raw[key];
    if (value === undefined) continue;
    const r = (schema as z.ZodType).safeParse(value);
    if (typeof value === "string") partial.secretLengths.set(key, value.length);
    if (r.success) partial.secretsSet.add(key);
    // Never echo a secret's value back: report the problem only, in the schema's own words (none quotes the value).
    else
      issues.push({
        path: configPath(key),
        message:
          typeof value === "string" && value.length > 0 && r.error.issues[0]?.code !== "invalid_type"
            ? r.error.issues[0].message
            : "is not a valid secret (allowed: a non-empty string, set with `pulumi config set --secret`)",
      });
  }

  issues.push(...validateSite(partial));
  if (LOCKOUT_KEYS.every((k) => k in parsed)) issues.push(...lockoutOf(parsed));
  if (issues.length > 0) return { ok: false, issues: dedupe(issues) };
  const site = Site.safeParse(parsed);
  if (!site.success) return { ok: false, issues: fromZod("site", Site, site.error) };
  return { ok: true, site: site.data };
}

/** The anti-lockout check on the keys it reads, even when other keys are broken; silent when no plan can be made. */
function lockoutOf(parsed: Record<string, unknown>): SiteIssue[] {
  // What the check does not read may be broken: its neutral value stands in.
  const neutral = {
    routes: [],
    portForwards: [],
    cluster: { podCidrs: [], serviceCidrs: [] },
    observability: { enabled: false },
  };
  const site = { ...neutral, ...parsed } as unknown as Site;
  try {
    planSite(site);
  } catch {
    return []; // no trunk or no management segment: reported by the cross-field rules
  }
  return checkManagementPath(site);
}

/**
 * Anti-lockout: from every management segment, the Talos API and the Kubernetes API must stay reachable on the
 * router's management address under the site's own policy.
 */
export function checkManagementPath(site: Site): SiteIssue[] {
  const plan = planSite(site);
  const model = compilePolicy(site, plan);
  const issues: SiteIssue[] = [];
  for (const seg of plan.segments.filter((s) => model.managementZones.includes(s.zone))) {
    // The management address where this segment holds it, else the segment's own router address.
    const own = [seg.ipv4?.gateway, seg.ipv6?.gateway].filter((a): a is string => !!a);
    const dst = own.includes(plan.managementAddress) ? plan.managementAddress : own[0];
    const cidr = dst.includes(":") ? seg.ipv6!.prefix : seg.ipv4!.cidr;
    // Any host of the segment may be the operator's: try both ends of the segment and the first and last
    // address of every prefix a rule singles out inside it.
    const candidates = new Set([nthAddress(cidr, 2), nthAddress(cidr, dst.includes(":") ? -1 : -2)]);
    for (const r of model.rules)
      for (const p of [...(r.src?.[dst.includes(":") ? 6 : 4] ?? [])])
        for (const a of [nthAddress(p, 0), nthAddress(p, -1)]) if (contains(cidr, a) && a !== dst) candidates.add(a);
    for (const port of MANAGEMENT_TCP_PORTS) {
      if (port === 50001) continue; // trustd serves other nodes, not the operator
      const d = [...candidates]
        .map((src) => evaluate(model, { from: seg.zone, to: "router", proto: "tcp", port, src, dst }))
        .find((x) => x.verdict !== "accept") ?? { verdict: "accept" as const, by: "", log: false };
      if (d.verdict !== "accept") {
        const rule = d.by.startsWith("rule:") ? model.rules.find((r) => `rule:${r.name}` === d.by) : undefined;
        issues.push({
          path: rule ? configPath("firewall", ["rules", rule.index]) : configPath("firewall"),
          message: `cuts the management path: tcp/${port} from segment ${seg.name} (zone ${seg.zone}) to the router would be ${d.verdict === "reject" ? "rejected" : "dropped"} (anti-lockout; allowed: rules that leave the Talos API 50000 and the Kubernetes API 6443 reachable from a management zone)`,
        });
      }
    }
  }
  return dedupe(issues);
}

function dedupe(issues: SiteIssue[]): SiteIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\u0000${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
