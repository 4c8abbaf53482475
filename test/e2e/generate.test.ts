/**
 * The site generator of the virtual appliance (lib/generate.ts): every seed gives a site that passes the
 * site's own validation and has each case the harness must derive from a site — otherwise a CI run could build
 * an appliance for an invalid site, or for one that never exercises those cases.
 */
import { describe, expect, it } from "vitest";
import { rawSiteConfig } from "../../components/site/load";
import { parseSite } from "../../components/site/parse";
import { generatedSite, prng } from "./lib/generate";

describe("the e2e site generator", () => {
  it("gives the same site for the same seed and another site for another seed", () => {
    expect(generatedSite(7).values).toEqual(generatedSite(7).values);
    expect(generatedSite(7).values).not.toEqual(generatedSite(8).values);
    const r = prng(1);
    expect([r(), r()]).not.toEqual([r(), r()]);
  });

  it("gives valid sites, each with a static-only segment, advertisements without a default router, an IPv4-only segment, forwards sharing sources and sharing a host, and at most two WANs", () => {
    const seeds = Array.from({ length: 300 }, (_, i) => i * 7919 + 1);
    const problems: string[] = [];
    for (const seed of seeds) {
      const parsed = parseSite(rawSiteConfig(generatedSite(seed).values));
      if (!parsed.ok) {
        problems.push(`seed ${seed}: ${parsed.issues.map((x) => `${x.path}: ${x.message}`).join("; ")}`);
        continue;
      }
      const s = parsed.site;
      const has = {
        staticOnly: s.segments.some((x) => !x.dhcp.enabled),
        lifetime0: s.segments.some((x) => x.ipv6 && x.ra.enabled && x.ra.lifetime === 0),
        ipv4Only: s.segments.some((x) => !x.ipv6),
        sharedSources: s.portForwards.filter((f) => f.sources).length >= 2,
        sharedHost: new Set(s.portForwards.map((f) => f.to)).size < s.portForwards.length,
        wans: s.links.filter((l) => l.role === "wan").length <= 2,
      };
      const missing = Object.entries(has).filter(([, v]) => !v);
      if (missing.length) problems.push(`seed ${seed}: lacks ${missing.map(([k]) => k).join(", ")}`);
    }
    expect(problems).toEqual([]);
  });
});
