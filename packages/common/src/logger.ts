import { type DestinationStream, type Logger, pino } from 'pino';
import type { Config } from './config.js';

export type { Logger } from 'pino';

/**
 * What pino replaces by `[redacted]` wherever it appears in a log line: credentials in request
 * headers (bearer tokens, cookies), and the settings that hold secrets, should a config object
 * or a URL setting be logged. Log a URL through `redactUrl` rather than as it is.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'config.API_TOKEN',
  'config.MYSQL_URL',
  'config.REDIS_URL',
  'config.REDIS_SENTINEL_PASSWORD',
  'API_TOKEN',
  'MYSQL_URL',
  'REDIS_URL',
  'REDIS_SENTINEL_PASSWORD',
  'mysqlUrl',
  'redisUrl',
];

/**
 * JSON logs on stdout (or `destination`), one line each, for machines; rendered for humans
 * through pino-pretty with `LOG_PRETTY=true`, or `auto` (the default) when stdout is a terminal.
 */
export function createLogger(
  config: Pick<Config, 'LOG_LEVEL' | 'LOG_PRETTY'>,
  name: string,
  destination?: DestinationStream,
): Logger {
  const options = {
    name,
    level: config.LOG_LEVEL,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  if (destination) return pino(options, destination);
  return pino({
    ...options,
    ...(config.LOG_PRETTY === true || (config.LOG_PRETTY === 'auto' && process.stdout.isTTY)
      ? { transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true } } }
      : {}),
  });
}
