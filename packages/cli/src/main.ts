#!/usr/bin/env node
// `pnpm tasks <command>` (or the `tasks` bin): the operator's command line. See USAGE.
import { configFromEnvironment, createContext, createLogger } from '@tasks/common';
import { runCli } from './cli.js';

const io = {
  out: (text: string) => process.stdout.write(`${text}\n`),
  err: (text: string) => process.stderr.write(`${text}\n`),
};

runCli(process.argv.slice(2), io, () => {
  const config = configFromEnvironment();
  // Log lines (connection trouble) go to stderr, never into the command's output.
  const quiet = config.LOG_LEVEL === 'fatal' || config.LOG_LEVEL === 'error' || config.LOG_LEVEL === 'silent';
  const logger = createLogger({ ...config, LOG_LEVEL: quiet ? config.LOG_LEVEL : 'warn' }, 'tasks-cli', process.stderr);
  return createContext({ ...config, DB_POOL_SIZE: 2 }, 'tasks-cli', { logger });
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
