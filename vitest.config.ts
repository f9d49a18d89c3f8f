import { defineConfig } from 'vitest/config';

// Dawn's native module is not safe in worker threads: run test files in forked
// processes. Two at a time: a file on SwiftShader keeps about one core busy
// (measured: CPU time about equal to wall time, one file at a time on 2 cores),
// so a second file fills the other.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
