import type { Config } from '@tasks/common';
import { Cluster, Redis } from 'ioredis';

/** A plain ioredis client: one server (directly or through Sentinel) or a Redis Cluster. */
export type PlainRedis = Redis | Cluster;

/**
 * A plain ioredis client on the Redis the settings name (REDIS_URL, REDIS_CLUSTER_NODES or
 * REDIS_SENTINELS), beside the store: for reading the truth in Redis by its key names and for
 * faults made by hand (keys deleted, an entry pushed that no service would push). Its errors
 * are the commands' own to report: the test breaks and restarts Redis on purpose.
 */
export function openPlainRedis(
  config: Pick<
    Config,
    'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD'
  >,
): PlainRedis {
  const url = new URL(config.REDIS_URL);
  const auth = {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
  const common = { maxRetriesPerRequest: 3, reconnectOnError: (err: Error) => err.message.startsWith('READONLY') };
  let client: PlainRedis;
  if (config.REDIS_CLUSTER_NODES) {
    client = new Cluster(
      config.REDIS_CLUSTER_NODES.map(({ host, port }) => ({ host, port })),
      { redisOptions: { ...common, ...auth } },
    );
  } else if (config.REDIS_SENTINELS) {
    client = new Redis({
      ...common,
      ...auth,
      db: Number(url.pathname.slice(1) || 0),
      sentinels: config.REDIS_SENTINELS.map(({ host, port }) => ({ host, port })),
      name: config.REDIS_SENTINEL_NAME,
      role: 'master',
      // It follows a failover when its connection drops or is told READONLY. (With ioredis's
      // failover detector, an announcement that arrives while it reconnects would end it for
      // good: the services' client connects again after that, packages/common/src/redis/client.ts.)
      failoverDetector: false,
      ...(config.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: config.REDIS_SENTINEL_PASSWORD } : {}),
    });
  } else {
    client = new Redis(config.REDIS_URL, common);
  }
  client.on('error', () => undefined);
  return client;
}
