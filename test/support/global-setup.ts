import type { TestProject } from 'vitest/node';

/**
 * Tests run against real servers: the ones named by TEST_MYSQL_URL and TEST_REDIS_URL
 * (CI sets them to the machine's MariaDB and Redis), or else containers started here.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    mysqlUrl: string;
    redisUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const stops: (() => Promise<unknown>)[] = [];
  let mysqlUrl = process.env.TEST_MYSQL_URL;
  let redisUrl = process.env.TEST_REDIS_URL;
  if (!mysqlUrl) {
    const { MySqlContainer } = await import('@testcontainers/mysql');
    const mysql = await new MySqlContainer('mysql:8.4').withRootPassword('test').start();
    stops.push(() => mysql.stop());
    mysqlUrl = `mysql://root:test@${mysql.getHost()}:${mysql.getPort()}/test`;
  }
  if (!redisUrl) {
    const { RedisContainer } = await import('@testcontainers/redis');
    const redis = await new RedisContainer('redis:7').start();
    stops.push(() => redis.stop());
    redisUrl = redis.getConnectionUrl();
  }
  project.provide('mysqlUrl', mysqlUrl);
  project.provide('redisUrl', redisUrl);
  return async () => {
    for (const stop of stops) await stop();
  };
}
