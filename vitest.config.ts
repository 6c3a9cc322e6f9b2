import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // System packages the tests need (Chromium for the browser test): installed or a clear error.
    globalSetup: ['test/setup/system.ts'],
    // Tests start real workers, servers and browsers; two cores, so run files one at a time.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
