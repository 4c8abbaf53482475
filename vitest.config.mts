import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

/**
 * The virtual appliance's suites: each boots a whole router (namespaces, the data plane, every daemon) and holds
 * timing budgets (failover within 2 s, BFD within seconds, leases for 50 clients at once). They run one at a time,
 * after every other file, so no budget shares the machine with another appliance.
 */
const APPLIANCE = [
  "test/e2e/dev-site.test.ts",
  "test/e2e/office-site.test.ts",
  "test/e2e/branch-site.test.ts",
  "test/e2e/generated-sites.test.ts",
];

const common = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  // Pulumi's mock runtime is process-global state: each test file gets its own worker process.
  pool: "forks",
  isolate: true,
} as const;

export default defineConfig({
  test: {
    reporters: ["default"],
    projects: [
      {
        test: {
          ...common,
          name: "tiers",
          include: ["test/**/*.test.ts"],
          exclude: APPLIANCE,
          // Two files at once even on a 2-core machine: most files wait on daemons, timers and the kernel.
          maxWorkers: Math.max(2, availableParallelism() - 1),
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: { ...common, name: "appliance", include: APPLIANCE, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
