import type { Redis } from 'ioredis';

/** Deletes every key starting with `prefix` (SCAN + UNLINK: never FLUSHALL, the server is shared). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  if (prefix.length === 0) throw new Error('refusing to delete keys without a prefix');
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}
