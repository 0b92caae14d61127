import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/** The fault tests: real services as child processes, broken on purpose. One file at a time. */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: ['test/faults/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
  },
});
