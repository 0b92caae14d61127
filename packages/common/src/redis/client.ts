import type { ConnectionOptions } from 'node:tls';
import { type Callback, Cluster, type ClusterNode, type RedisOptions, Redis as StandaloneRedis } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { ErrorLogLimiter } from './error-log.js';

/** A Redis client: one server (directly or through Sentinel) or a Redis Cluster. */
export type Redis = StandaloneRedis | Cluster;

/** The settings that say where Redis is and how to reach it. */
export type RedisConfig = Pick<
  Config,
  'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD'
>;

export interface RedisClientOptions {
  /**
   * How many reconnections a command waits through before it fails (default 3); null: it waits
   * for as long as it takes, as a blocking or subscribing connection should.
   */
  maxRetriesPerRequest?: number | null;
}

const retryStrategy = (times: number) => Math.min(times * 100, 2_000);

/**
 * How long a dropped connection's socket may take to close before it is destroyed. ioredis
 * waits this long, on a timer that keeps the process alive, also when there was no socket left
 * to close (a client dropped while it waited to reconnect): 2 s by default, which a process
 * that has stopped would sit out before it exits.
 */
const DISCONNECT_TIMEOUT_MS = 200;

/**
 * A server that was primary and is now a replica answers writes with READONLY (a failover
 * happened while this connection stayed open, or a DNS name still points at the old primary).
 * Reconnecting looks the primary up again: through the sentinels, or the name. The command
 * that got READONLY fails; its caller retries.
 */
export function reconnectOnReadonly(err: Error): boolean {
  return err.message.startsWith('READONLY');
}

/** The credentials, TLS and database of REDIS_URL, for the clients whose servers come from elsewhere. */
function urlSettings(url: string): {
  username?: string;
  password?: string;
  tls?: ConnectionOptions;
  db: number;
} {
  const parsed = new URL(url);
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
    db: Number(parsed.pathname.slice(1) || 0),
  };
}

function connect(config: RedisConfig, name: string, options: RedisClientOptions): Redis {
  const common: RedisOptions = {
    connectionName: name,
    disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? 3 : options.maxRetriesPerRequest,
  };
  if (config.REDIS_CLUSTER_NODES) {
    const { db: _db, ...auth } = urlSettings(config.REDIS_URL);
    const nodes: ClusterNode[] = config.REDIS_CLUSTER_NODES.map(({ host, port }) => ({ host, port }));
    return new Cluster(nodes, {
      redisOptions: { ...common, ...auth },
      clusterRetryStrategy: retryStrategy,
      // Connect to the nodes by the names the cluster gives, unresolved, so that a TLS
      // certificate issued for a name (as managed clusters do) matches.
      dnsLookup: (address, callback) => callback(null, address),
    });
  }
  if (config.REDIS_SENTINELS) {
    const { tls, ...auth } = urlSettings(config.REDIS_URL);
    return new SentinelRedis({
      ...common,
      ...auth,
      sentinels: config.REDIS_SENTINELS.map(({ host, port }) => ({ host, port })),
      name: config.REDIS_SENTINEL_NAME,
      role: 'master',
      ...(config.REDIS_SENTINEL_PASSWORD ? { sentinelPassword: config.REDIS_SENTINEL_PASSWORD } : {}),
      ...(tls ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
      // Follow a failover as soon as the sentinels announce it, not only when the old primary drops.
      failoverDetector: true,
      retryStrategy,
      reconnectOnError: reconnectOnReadonly,
    });
  }
  return new StandaloneRedis(config.REDIS_URL, { ...common, retryStrategy, reconnectOnError: reconnectOnReadonly });
}

/**
 * A client of the primary the sentinels name. ioredis ends such a client for good when a
 * failover announcement drops a connection attempt that is still asking the sentinels where
 * the primary is (the attempt's failure is taken as final): every later command would answer
 * "Connection is closed". This one connects again, with the usual backoff, unless it was
 * closed on purpose (disconnect() or QUIT).
 */
class SentinelRedis extends StandaloneRedis {
  private closedOnPurpose = false;
  private revivals = 0;

  constructor(options: RedisOptions) {
    super(options);
    this.on('ready', () => {
      this.revivals = 0;
    });
    this.on('end', () => {
      if (this.closedOnPurpose) return;
      this.emit('error', new Error('the connection attempt was dropped by a failover; connecting again'));
      setTimeout(
        () => {
          if (!this.closedOnPurpose && this.status === 'end') this.connect().catch(() => undefined);
        },
        retryStrategy(++this.revivals),
      ).unref();
    });
  }

  override disconnect(reconnect = false): void {
    if (!reconnect) this.closedOnPurpose = true;
    super.disconnect(reconnect);
  }

  override quit(callback?: Callback<'OK'>): Promise<'OK'> {
    this.closedOnPurpose = true;
    return super.quit(callback);
  }
}

/**
 * The Redis client of every service, built from config: a standalone server (REDIS_URL), a
 * Redis Cluster (REDIS_CLUSTER_NODES) or the primary the sentinels name (REDIS_SENTINELS). It
 * reconnects by itself after an outage or a failover, with capped backoff, and logs its errors
 * at a bounded rate instead of crashing the process.
 */
export function createRedis(
  config: RedisConfig,
  logger: Logger,
  name: string,
  options: RedisClientOptions = {},
): Redis {
  const redis = connect(config, name, options);
  const log = logger.child({ client: name });
  const errors = new ErrorLogLimiter((entry) => log.warn(entry, 'redis connection error'));
  redis.on('error', (err: Error) => errors.error(err));
  redis.on('node error', (err: Error, node: string) => errors.error(err, node));
  redis.on('ready', () => {
    const summary = errors.recovered();
    if (summary) log.info(summary, 'redis connection ready again');
  });
  return redis;
}

/**
 * Drops a client's connection at once: every command waiting on it fails now. While a client
 * waits to reconnect, ioredis's `disconnect()` alone cancels the wait but leaves the commands
 * queued for the reconnection pending for ever (no socket is left whose closing would fail
 * them); making the cancelled attempt now, as a closing one, fails them (or, should the server
 * answer at that moment, runs them).
 */
export function dropConnection(redis: Redis): void {
  redis.disconnect();
  if (redis.status === 'reconnecting') redis.connect().catch(() => undefined);
}

/**
 * Closes a client: QUIT when it is connected (the replies to what it sent come first); one that
 * is not is dropped at once, rather than wait for a reconnection only to say goodbye.
 */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') return dropConnection(redis);
  await redis.quit().catch(() => dropConnection(redis));
}
