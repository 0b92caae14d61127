import type { DeadLetter } from '../tasks/message-codec.js';
import type { Redis } from './client.js';
import { exec } from './multi.js';

/** One entry of the dead-letter list, as stored and as parsed. */
export interface DeadLetterEntry {
  /** The entry exactly as it is in Redis (what `LREM` needs to remove it). */
  raw: string;
  /** Its task's id, or null for an entry that names no task (an invalid message). */
  id: number | null;
  /** The parsed entry, or null when it is not JSON. */
  letter: Partial<DeadLetter> | null;
}

export function parseDeadLetter(raw: string): DeadLetterEntry {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { raw, id: null, letter: null };
    const letter = parsed as Partial<DeadLetter>;
    const id = typeof letter.id === 'number' && Number.isSafeInteger(letter.id) && letter.id > 0 ? letter.id : null;
    return { raw, id, letter };
  } catch {
    return { raw, id: null, letter: null };
  }
}

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

  /** `limit` entries from `offset` (0 is the newest). */
  async range(offset: number, limit: number): Promise<DeadLetterEntry[]> {
    if (limit <= 0) return [];
    const raws = await this.redis.lrange(this.key, offset, offset + limit - 1);
    return raws.map(parseDeadLetter);
  }

  /** Every entry, read in one command (the list is capped at DEAD_LETTER_RETENTION). */
  async all(): Promise<DeadLetterEntry[]> {
    return (await this.redis.lrange(this.key, 0, -1)).map(parseDeadLetter);
  }

  /** The entries of task `id`, newest first. */
  async entriesOf(id: number): Promise<DeadLetterEntry[]> {
    return (await this.all()).filter((entry) => entry.id === id);
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
