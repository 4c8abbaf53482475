/**
 * A realistic twelve-segment office (test/e2e/lib/sites.ts) on the virtual appliance: static servers and DMZ
 * without DHCP, a segment without router advertisements and one whose advertisements name no default router,
 * IPv4-only segments, forwards sharing hosts and sources, a forward on the backup WAN only.
 */
import { describeAppliance } from "./lib/suite";
import { officeSite } from "./lib/sites";

describeAppliance({ title: "the office site", prefix: "e2e-office", config: officeSite(), minCells: 400 });
