import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // Tests share runc, mounts and the 2-core machine: files run one at a time.
    fileParallelism: false,
    reporters: ["default"],
  },
});
