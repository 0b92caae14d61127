import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The fault tests: real services as child processes, broken on purpose, and the store's own
 * tests that break a server (packages/common/test/faults). One file at a time.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/faults/**/*.test.ts', 'packages/*/test/faults/**/*.test.ts'],
    exclude: configDefaults.exclude,
    fileParallelism: false,
    testTimeout: 180_000,
  },
});
