/**
 * The IDS layer's review facts (components/ids-stack/review.ts), which the intent policy "IDS/IPS covers the
 * zone pairs the site requires" reads: what the WAN can open must be inspected, the site's inline pairs inline;
 * coverage is what the stack runs (watched links, rendered queue rules). Expectations are written by hand from
 * the dev site (Pulumi.dev.yaml: forwards to 10.50.0.10/11 in servers, IDS on the WANs and servers, wan → servers
 * inline).
 */
import { describe, expect, it } from "vitest";
import { renderIdsFacts, renderIdsProfiles } from "../../components/ids-stack/review";
import { planIds } from "../../components/ids-stack/plan";
import { devSite, type Raw } from "../helpers/dev-site";

function facts(edit?: (raw: Raw) => void) {
  const { site, plan, policy } = devSite(edit);
  return renderIdsFacts(site, plan, policy, planIds(site, plan));
}
const pairs = (list: { from: string; to: string; mode: string }[], mode: string) =>
  list
    .filter((p) => p.mode === mode)
    .map((p) => `${p.from}>${p.to}`)
    .sort();

describe("the IDS layer's facts", () => {
  it("require the dev site's forwarded zone inline and cover it inline", () => {
    const f = facts();
    expect(f.required).toEqual([{ from: "wan", to: "servers", mode: "inline" }]);
    expect(pairs(f.covered, "inline")).toEqual(["wan>servers"]);
    // The WANs are watched, and servers (its only link) too: every pair touching them is detected.
    expect(pairs(f.covered, "detect")).toContain("wan>trusted");
    expect(pairs(f.covered, "detect")).toContain("trusted>servers");
    expect(pairs(f.covered, "detect")).not.toContain("trusted>iot");
  });

  it("require detection where a forward, a policy or a rule lets the WAN in", () => {
    const f = facts((raw) => {
      raw.portForwards.push({ name: "cam", protocol: "tcp", port: 9443, to: "10.30.0.20" });
      raw.firewall.policies.unshift({ from: "wan", to: "guest", action: "accept" });
      raw.firewall.rules.push({
        name: "wan-ssh",
        from: ["wan"],
        to: ["trusted"],
        protocol: "tcp",
        ports: [22],
        action: "accept",
      });
    });
    expect(pairs(f.required, "detect")).toEqual(["wan>guest", "wan>iot", "wan>trusted"]);
    expect(pairs(f.required, "inline")).toEqual(["wan>servers"]);
  });

  it("cover no pair inline without the queue, and nothing when the stack is off", () => {
    expect(pairs(facts((raw) => (raw.ids.ips.pairs = [])).covered, "inline")).toEqual([]);
    expect(facts((raw) => (raw.ids.enabled = false))).toEqual({ required: [], covered: [] });
  });
});

describe("the IDS layer's profiles", () => {
  it("name the watched links, the rules and the blocking a reviewer compares", () => {
    const { site, plan } = devSite((raw) => (raw.ids.rules = { ...raw.ids.rules, updateInterval: "6h" }));
    const p = renderIdsProfiles(site, planIds(site, plan));
    expect(p["ids.links"]).toBe("wan0, wan1, lan0.50");
    expect(p["ids.rules"]).toMatch(/^et-open every 6h; \d+ local, \d+ disabled, \d+ threshold\(s\)$/);
    expect(p["ids.block"]).toMatch(/^severity ≤ \d for 1h, at most 65536/);
    const off = devSite((raw) => (raw.ids.enabled = false));
    expect(renderIdsProfiles(off.site, planIds(off.site, off.plan))).toEqual({ ids: "off" });
  });
});
