/**
 * The dev site (Pulumi.dev.yaml) on the virtual appliance: its rendered configuration run by the real daemons
 * in network namespaces. What each test proves is in test/e2e/lib/suite.ts.
 */
import { describeAppliance } from "./lib/suite";

describeAppliance({ title: "the dev site", prefix: "e2e-dev", minCells: 400 });
