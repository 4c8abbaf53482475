/**
 * What the router's TSDB scrapes of the DNS stack: router-dns-stats' per-zone answers, cache hits, SERVFAILs,
 * blocks and latency (images/dns/stats), served on the site's DNS metrics port on every address of the node.
 * Nothing when no zone has the router's DNS (the stack runs nothing then). Pure.
 */
import type { Site } from "../site/schema";
import type { SitePlan } from "../site/plan";
import type { PolicyModel } from "../site/policy";
import { hostPort, type ScrapeContribution } from "../observability-stack/targets";
import { planDns } from "./plan";

export function dnsScrapes(site: Site, plan: SitePlan, policy: PolicyModel): ScrapeContribution {
  const dns = planDns(site, plan, policy);
  return {
    by: "dns",
    jobs: dns.zones.length
      ? [
          {
            job: "dns",
            what: "the DNS stack: answers, cache hits, SERVFAILs and blocks per zone, latency (router-dns-stats)",
            targets: [hostPort(plan.managementAddress, dns.metricsPort)],
            runs: "router",
          },
        ]
      : [],
  };
}
