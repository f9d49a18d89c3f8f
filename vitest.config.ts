import { defineConfig } from 'vitest/config';

// Dawn's native module is not safe in worker threads: run test files in forked
// processes, one GPU-heavy file at a time per core.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
