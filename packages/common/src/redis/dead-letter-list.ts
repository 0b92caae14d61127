import type { Redis } from './client.js';
import { exec } from './multi.js';

/**
 * The `dead-letter-queue` list: the inspectable record of dead letters, newest first, as the
 * executors and the sweeper push them. Readable with `redis-cli LRANGE dead-letter-queue 0 -1`
 * alongside these operations, which remove exactly the entries they name and nothing else.
 */
export class DeadLetterList {
  constructor(
    private readonly redis: Redis,
    readonly key: string,
  ) {}

  length(): Promise<number> {
    return this.redis.llen(this.key);
  }

  /** `limit` entries from `offset` (0 is the newest), as stored. */
  async range(offset: number, limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    return this.redis.lrange(this.key, offset, offset + limit - 1);
  }

  /** Every entry, read in one command (the list is capped at DEAD_LETTER_RETENTION). */
  all(): Promise<string[]> {
    return this.redis.lrange(this.key, 0, -1);
  }

  /** Removes every occurrence of each of these exact entries; returns how many went. */
  async remove(raws: string[]): Promise<number> {
    const distinct = [...new Set(raws)];
    if (distinct.length === 0) return 0;
    const pipeline = this.redis.pipeline();
    for (const raw of distinct) pipeline.lrem(this.key, 0, raw);
    const replies = (await pipeline.exec()) ?? [];
    let removed = 0;
    for (const [err, count] of replies) {
      if (err) throw err;
      removed += Number(count);
    }
    return removed;
  }

  /** Empties the list in one transaction; returns how many entries it held. */
  async purge(): Promise<number> {
    const [length] = await exec(this.redis.multi().llen(this.key).del(this.key));
    return Number(length);
  }
}
