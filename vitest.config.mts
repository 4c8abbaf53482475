import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
    // Pulumi's mock runtime is process-global state: each test file gets its own worker process.
    pool: "forks",
    isolate: true,
  },
});
