/**
 * Random valid sites on the virtual appliance (lib/generate.ts): two per run, their seeds printed and replayable
 * with E2E_SITE_SEEDS=seed,seed. Each has a static-only segment, advertisements without a default router, an
 * IPv4-only segment, and forwards sharing sources and hosts, besides whatever else its seed draws.
 */
import { generatedSite, siteSeeds } from "./lib/generate";
import { describeAppliance } from "./lib/suite";

// The crowd of clients proves the node's firewall mode, which the generated sites do not vary (the fixed sites
// run it); left out here for CI time.
for (const [i, seed] of siteSeeds(2).entries())
  describeAppliance({
    title: `generated site ${seed}`,
    prefix: `e2e-gen${i}`,
    config: generatedSite(seed),
    minCells: 100,
    without: ["many clients"],
  });
