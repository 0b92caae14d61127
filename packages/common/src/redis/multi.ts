import type { ChainableCommander } from 'ioredis';

/**
 * Runs a MULTI and returns each command's result, in order. Throws the first command's error:
 * a transaction Redis refused (EXECABORT, e.g. out of memory) or that it ran with a command
 * failing.
 */
export async function exec(multi: ChainableCommander): Promise<unknown[]> {
  const replies = await multi.exec();
  if (replies === null) throw new Error('the Redis transaction was discarded');
  return replies.map(([err, result]) => {
    if (err) throw err;
    return result;
  });
}
