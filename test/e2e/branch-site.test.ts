/**
 * A generated branch-office site (test/e2e/lib/sites.ts) on the virtual appliance: other link names, a static
 * WAN, two segments in one zone, an IPv4-only segment, a reject default, port-range and address-group rules,
 * WAN- and source-restricted forwards, WAN probes that fail over after one missed round, and OSPF with a neighbour
 * router on one segment.
 */
import { describeAppliance } from "./lib/suite";
import { branchSite } from "./lib/sites";

describeAppliance({ title: "a generated branch site", prefix: "e2e-branch", config: branchSite(), minCells: 200 });
