/**
 * The front's rendered configuration (dnsdist.conf) for the dev site: how often each zone's answers are reported to
 * the stats collector. The rule lines are read back from the text and grouped by the zone their identity names;
 * the expected shares are written here, not taken from the renderer. That the daemon samples at this rate is
 * shown in test/dns/stack.test.ts ("analytics").
 */
import { describe, expect, it } from "vitest";
import { planDns } from "../../components/dns-stack/plan";
import { dnsConfigs } from "../../components/dns-stack/k8s";
import { devSite } from "../helpers/dev-site";

const { site, plan, policy } = devSite();
const dns = planDns(site, plan, policy);
const conf = dnsConfigs(site, plan, dns).get("dnsdist.conf")!;

/** The report rules of a zone (their identity starts with the zone's name), as lines of the file. */
function reports(zone: string): string[] {
  return conf.split("\n").filter((l) => l.includes("RemoteLogResponseAction") && l.includes(`serverID="${zone}`));
}

describe("reports to the stats collector", () => {
  it("reports one answer in 32 from a zone whose query log is off (guest), for each way of answering", () => {
    const guest = reports("guest");
    // blocked by one of strict's three lists, a cache hit, a resolved answer
    expect(guest).toHaveLength(5);
    for (const line of guest) expect(line).toMatch(/^add\w*ResponseAction\(AndRule\(\{ProbaRule\(0\.03125\), /);
  });

  it("reports every answer from a zone whose query log is on", () => {
    for (const zone of ["mgmt", "trusted", "iot", "servers"]) {
      expect(reports(zone).length, zone).toBeGreaterThan(0);
      for (const line of reports(zone)) expect(line, zone).not.toContain("ProbaRule");
    }
  });

  it("tells the collector the rate it samples at", () => {
    expect(dnsConfigs(site, plan, dns).get("stats.conf")).toMatch(/^sample 32$/m);
  });
});
