import {
  createTestEnv as createPublicTestEnv,
  type TestEnv as PublicTestEnv,
  type TestEnvOptions,
} from '../../../../test/support/test-env.js';
import { type ContextParts, createContextParts } from '../../src/context.js';

/**
 * The test env of the store's own tests: the public one (test/support/test-env.ts), with a
 * context whose parts (the pool, the Redis client, the queue) they reach; its store is `store`.
 */
export interface TestEnv extends Omit<PublicTestEnv, 'ctx'> {
  ctx: ContextParts;
}

export async function createTestEnv(
  overrides: Record<string, string> = {},
  options: TestEnvOptions = {},
): Promise<TestEnv> {
  const t = await createPublicTestEnv(overrides, options);
  const ctx = createContextParts(t.config, 'test-store', { logger: t.logger });
  return {
    ...t,
    ctx,
    store: ctx.store,
    async cleanup() {
      await ctx.close();
      await t.cleanup();
    },
  };
}
