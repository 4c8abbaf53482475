/**
 * The product's policy model (components/site/policy.ts `evaluate`) knows the DNS stack's rules, which come before
 * the zone rules (components/dns-stack/ruleset.ts): on the dev site guest is forced by redirect, iot by reject,
 * and mgmt and trusted have encrypted DNS (router:dns.zones in Pulumi.dev.yaml). Each expectation is worked out
 * by hand from the site.
 */
import { describe, expect, it } from "vitest";
import { planSite } from "../../components/site/plan";
import { compilePolicy, evaluate, type Flow } from "../../components/site/policy";
import { devSiteRaw, edited, expectValid } from "../helpers/site-fixtures";

const site = expectValid(devSiteRaw());
const model = compilePolicy(site, planSite(site));
const NET = "93.184.216.34";

describe("the policy model's DNS forcing and encrypted DNS", () => {
  it.each<[string, Flow, { verdict: string; by: string; answeredBy?: string }]>([
    [
      "a redirect zone's DNS to an internet server is answered by the router",
      { from: "guest", to: "wan", proto: "udp", port: 53, src: "10.40.0.50", dst: NET },
      { verdict: "accept", by: "dns:redirect service:udp/53", answeredBy: "router" },
    ],
    [
      "and over TCP",
      { from: "guest", to: "wan", proto: "tcp", port: 53, src: "10.40.0.50", dst: NET },
      { verdict: "accept", by: "dns:redirect service:tcp/53", answeredBy: "router" },
    ],
    [
      "a redirect zone's DoT to another server is rejected",
      { from: "guest", to: "wan", proto: "tcp", port: 853, src: "10.40.0.50", dst: NET },
      { verdict: "reject", by: "dns:force-redirect" },
    ],
    [
      "a reject zone's DNS to the internet is rejected, before the zone rules",
      { from: "iot", to: "wan", proto: "udp", port: 53, src: "10.30.0.50", dst: NET },
      { verdict: "reject", by: "dns:force-reject" },
    ],
    [
      "a reject zone's DNS to the router is its dns service",
      { from: "iot", to: "router", proto: "udp", port: 53, src: "10.30.0.50", dst: "10.30.0.1" },
      { verdict: "accept", by: "service:udp/53" },
    ],
    [
      "an encrypted zone reaches DoH on the router",
      { from: "trusted", to: "router", proto: "tcp", port: 443, src: "10.20.0.50", dst: "10.20.0.1" },
      { verdict: "accept", by: "dns:encrypted/443" },
    ],
    [
      "an encrypted zone reaches DoT on the router",
      { from: "mgmt", to: "router", proto: "tcp", port: 853, src: "10.10.0.50", dst: "10.10.0.1" },
      { verdict: "accept", by: "dns:encrypted/853" },
    ],
    [
      "a zone without encrypted DNS does not",
      { from: "servers", to: "router", proto: "tcp", port: 853, src: "10.50.0.50", dst: "10.50.0.1" },
      { verdict: "drop", by: "input-default" },
    ],
    [
      "an unforced zone's DNS to the internet is its policy's business",
      { from: "trusted", to: "wan", proto: "udp", port: 53, src: "10.20.0.50", dst: NET },
      { verdict: "accept", by: "policy:trusted>wan" },
    ],
  ])("%s", (_name, flow, want) => {
    const d = evaluate(model, flow);
    expect({ verdict: d.verdict, by: d.by, ...(d.answeredBy ? { answeredBy: d.answeredBy } : {}) }).toEqual(want);
  });
});

describe("the DNS stack's metrics port", () => {
  const metrics = (s: typeof site, from: string, src: string, dst: string) =>
    evaluate(compilePolicy(s, planSite(s)), { from, to: "router", proto: "tcp", port: 9433, src, dst });

  it("answers management zones only, where the router serves DNS", () => {
    expect(metrics(site, "mgmt", "10.10.0.50", "10.10.0.1")).toMatchObject({ verdict: "accept", by: "management" });
    expect(metrics(site, "trusted", "10.20.0.50", "10.20.0.1").verdict).toBe("drop");
  });

  it("is closed on a site whose zones take no DNS from the router (the stack does not run)", () => {
    const noDns = expectValid(
      edited(devSiteRaw(), (s) => {
        for (const z of s.zones) z.services = (z.services ?? ["dhcp", "ntp", "ping"]).filter((x) => x !== "dns");
        s.dns = { ...s.dns, zones: [] };
      }),
    );
    expect(metrics(noDns, "mgmt", "10.10.0.50", "10.10.0.1")).toMatchObject({ verdict: "drop" });
  });
});
