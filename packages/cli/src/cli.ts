import { parseArgs } from 'node:util';
import { parseTaskId } from '@tasks/common';
import {
  type CliDeps,
  type CliOutput,
  cancel,
  dlqList,
  dlqPurge,
  dlqRedrive,
  dlqRedriveAll,
  dlqShow,
  stats,
} from './commands.js';
import { printableLines } from './format.js';

export const USAGE = `Usage: pnpm tasks <command> [options]

  stats [--recount]           tasks per status (MySQL) and queue depths (Redis); --recount first sets
                              the per-status counts from the table (after rows were loaded by hand)
  cancel <id>...              cancel tasks not finished yet (delayed, pending or processing: a running
                              one is stopped); one cancelled already stays so, a finished one is left
  dlq list [--limit N] [--offset N]
                              dead-letter entries, newest first, with their task's status
  dlq show <id>               a task and its dead-letter entries
  dlq redrive <id>...         put failed tasks back to pending (attempts start over) and remove
                              their entries; \`dlq retry\` is the same command
  dlq redrive --all           the same for every failed task the dead-letter list names
  dlq purge --yes             empty the dead-letter list (tasks stay failed in MySQL)

Options:
  --json                      print JSON instead of text (use pnpm -s to keep pnpm's banner out)
  -h, --help                  this help

Connection settings come from the environment or .env (MYSQL_URL, REDIS_URL, KEY_PREFIX, ...).`;

/** A command line that is not valid: exit status 2 and the usage. */
export class UsageError extends Error {}

export type Command =
  | { name: 'help' }
  | { name: 'stats'; json: boolean; recount: boolean }
  | { name: 'cancel'; json: boolean; ids: number[] }
  | { name: 'dlq list'; json: boolean; limit: number; offset: number }
  | { name: 'dlq show'; json: boolean; id: number }
  | { name: 'dlq redrive'; json: boolean; ids: number[] }
  | { name: 'dlq redrive --all'; json: boolean }
  | { name: 'dlq purge'; json: boolean; yes: boolean };

function count(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min)
    throw new UsageError(`--${name} must be a whole number of at least ${min}`);
  return Number(raw);
}

function taskId(raw: string): number {
  const id = parseTaskId(raw);
  if (id === null) {
    throw new UsageError(`a task id is a positive integer (got ${JSON.stringify(raw)})`);
  }
  return id;
}

/** Parses the arguments after `tasks`; throws UsageError on anything it does not know. */
export function parseCommand(argv: string[]): Command {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { name: 'help' };
  if (positionals.length === 0) throw new UsageError('a command is needed');
  const json = values.json ?? false;
  const [group, action, ...rest] = positionals;
  const allow = (...flags: string[]) => {
    for (const flag of ['all', 'yes', 'limit', 'offset', 'recount'] as const) {
      if (values[flag] !== undefined && !flags.includes(flag)) {
        throw new UsageError(`--${flag} does not apply to "${positionals.join(' ')}"`);
      }
    }
  };
  const noMore = (extra: string[]) => {
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  };

  if (group === 'stats') {
    noMore(positionals.slice(1));
    allow('recount');
    return { name: 'stats', json, recount: values.recount ?? false };
  }
  if (group === 'cancel') {
    allow();
    const ids = positionals.slice(1);
    if (ids.length === 0) throw new UsageError('cancel needs task ids');
    return { name: 'cancel', json, ids: ids.map(taskId) };
  }
  if (group !== 'dlq') throw new UsageError(`unknown command ${JSON.stringify(group)}`);
  switch (action) {
    case 'list':
      noMore(rest);
      allow('limit', 'offset');
      return {
        name: 'dlq list',
        json,
        limit: count('limit', values.limit, 20, 1),
        offset: count('offset', values.offset, 0, 0),
      };
    case 'show': {
      allow();
      const [id, ...extra] = rest;
      if (id === undefined) throw new UsageError('dlq show needs a task id');
      noMore(extra);
      return { name: 'dlq show', json, id: taskId(id) };
    }
    case 'redrive':
    case 'retry':
      allow('all');
      if (values.all) {
        noMore(rest);
        return { name: 'dlq redrive --all', json };
      }
      if (rest.length === 0) throw new UsageError(`dlq ${action} needs task ids, or --all`);
      return { name: 'dlq redrive', json, ids: rest.map(taskId) };
    case 'purge':
      noMore(rest);
      allow('yes');
      return { name: 'dlq purge', json, yes: values.yes ?? false };
    default:
      throw new UsageError(
        action === undefined ? 'dlq needs a subcommand' : `unknown dlq subcommand ${JSON.stringify(action)}`,
      );
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      yes: { type: 'boolean' },
      limit: { type: 'string' },
      offset: { type: 'string' },
      recount: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

export interface CliSession extends CliDeps {
  close(): Promise<void>;
}

/**
 * Runs one command line: parses it (a usage error never connects anywhere), opens the
 * clients with `open`, runs the command and closes them. Returns the exit status: 0 done,
 * 1 refused or failed, 2 not a valid command line. Whatever it writes reaches `output` with
 * no control character but its line breaks: the commands escape the data in what they
 * print, and anything else (an error's message) is escaped here.
 */
export async function runCli(
  argv: string[],
  output: CliOutput,
  open: () => CliSession | Promise<CliSession>,
): Promise<number> {
  const io: CliOutput = {
    out: (text) => output.out(printableLines(text)),
    err: (text) => output.err(printableLines(text)),
  };
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`error: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (command.name === 'help') {
    io.out(USAGE);
    return 0;
  }
  const session = await open();
  try {
    switch (command.name) {
      case 'stats':
        return await stats(session, io, command);
      case 'cancel':
        return await cancel(session, io, command);
      case 'dlq list':
        return await dlqList(session, io, command);
      case 'dlq show':
        return await dlqShow(session, io, command);
      case 'dlq redrive':
        return await dlqRedrive(session, io, command);
      case 'dlq redrive --all':
        return await dlqRedriveAll(session, io, command);
      case 'dlq purge':
        return await dlqPurge(session, io, command);
    }
  } catch (err) {
    io.err(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await session.close();
  }
}
