import {
  type CancelOutcome,
  type DeadLetterEntry,
  deadLetterView,
  decodeTaskData,
  notCancelledReason,
  notRedrivenReason,
  SIMULATED,
  type Task,
  type TaskStatus,
  type TaskStore,
  taskView,
} from '@tasks/common';
import { fields, jsonText, printable, shorten, table } from './format.js';

/** What the commands work with: the task store. */
export interface CliDeps {
  store: TaskStore;
}

/** Where the commands write; `process.stdout` and `process.stderr` in the real CLI. */
export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

export interface OutputOptions {
  json: boolean;
}

/** Exit status: 0 done, 1 refused or failed. */
export type ExitCode = 0 | 1;

/** Writes `data` as JSON, or the text `text` builds from it (with its data made printable). */
function print(io: CliOutput, options: OutputOptions, data: unknown, text: () => string): void {
  io.out(options.json ? jsonText(data) : text());
}

/** An entry as shown, the same as the API's (see deadLetterView), with the entry as stored. */
function entryView(entry: DeadLetterEntry, status: TaskStatus | null | undefined) {
  return { ...deadLetterView(entry, status ?? null), entry: entry.raw };
}

/** `stats`: tasks per status in MySQL and the depth of each Redis structure. */
export async function stats(
  deps: CliDeps,
  io: CliOutput,
  options: OutputOptions & { recount?: boolean },
): Promise<ExitCode> {
  if (options.recount) await deps.store.recount();
  const { tasks, queue } = await deps.store.stats();
  const keys = deps.store.redisKeys;
  print(io, options, { tasks, queue }, () =>
    [
      'tasks (MySQL)',
      fields(Object.entries(tasks).map(([k, v]) => [`  ${k}`, String(v)])),
      '',
      'queue (Redis)',
      fields([
        [`  ready (${keys.ready})`, String(queue.ready)],
        ['  delayed retries', String(queue.delayed)],
        ['  in flight', String(queue.inflight)],
        [`  dead letters (${keys.deadLetters})`, String(queue.dead_letters)],
        ['  dead letters not yet recorded', String(queue.dead_letter_inbox)],
      ]),
    ].join('\n'),
  );
  return 0;
}

/**
 * `cancel <id>...`: each task not finished yet becomes cancelled (its executor, if one runs it,
 * is told to stop); one cancelled already stays so. Exit 1 when one is finished or does not exist.
 */
export async function cancel(
  deps: CliDeps,
  io: CliOutput,
  options: OutputOptions & { ids: number[] },
): Promise<ExitCode> {
  const outcomes: CancelOutcome[] = [];
  for (const id of options.ids) outcomes.push(await deps.store.cancel(id));
  const results = outcomes.map((o) => {
    const refusal = notCancelledReason(o);
    if (o.cancelled) return { id: o.id, cancelled: true, was: o.was, message: `cancelled (it was ${o.was})` };
    if (refusal === null) return { id: o.id, cancelled: true, was: 'cancelled', message: 'cancelled already' };
    return {
      id: o.id,
      cancelled: false,
      ...(o.reason === 'finished' ? { status: o.status } : {}),
      message: `not cancelled: ${refusal}`,
    };
  });
  print(io, options, { results }, () => results.map((r) => `task ${r.id}: ${r.message}`).join('\n'));
  return results.every((r) => r.cancelled) ? 0 : 1;
}

/** `dlq list`: entries of the dead-letter list, newest first, with their task's status in MySQL. */
export async function dlqList(
  deps: CliDeps,
  io: CliOutput,
  options: OutputOptions & { offset: number; limit: number },
): Promise<ExitCode> {
  const { total, entries } = await deps.store.deadLetterPage(options.offset, options.limit);
  const views = entries.map(({ entry, status }) => entryView(entry, status));
  print(io, options, { total, offset: options.offset, entries: views }, () => {
    if (views.length === 0) return total === 0 ? 'the dead-letter list is empty' : `no entries from ${options.offset}`;
    const rows = views.map((v) => [
      v.id === null ? '-' : String(v.id),
      v.status ?? (v.id === null ? 'no task' : 'missing'),
      v.tries === null ? '-' : String(v.tries),
      v.failed_at ?? '-',
      shorten(String(v.error ?? ''), 60),
    ]);
    const shown = `${options.offset + 1}-${options.offset + views.length} of ${total}`;
    return `${table(['ID', 'STATUS', 'TRIES', 'FAILED AT', 'ERROR'], rows)}\n(${shown}; only failed tasks can be retried)`;
  });
  return 0;
}

/**
 * What a task asks for and what it gave, as lines: the original's message and time, or a
 * typed task's data and result as JSON.
 */
function workFields(task: Task): [string, string][] {
  const original = task.type === SIMULATED ? decodeTaskData(task.data) : null;
  const asked: [string, string][] = original?.ok
    ? [
        ['message', original.value.message],
        ['time', `${original.value.time} s`],
      ]
    : [['data', JSON.stringify(task.data)]];
  return [
    ['type', task.type],
    ...asked,
    ['result', task.result === null ? '-' : JSON.stringify(task.result)],
    ['timeout', task.timeoutMs === null ? '-' : `${task.timeoutMs} ms`],
  ];
}

/** `dlq show <id>`: the task in MySQL and its entries in the dead-letter list. */
export async function dlqShow(
  deps: CliDeps,
  io: CliOutput,
  options: OutputOptions & { id: number },
): Promise<ExitCode> {
  const [task, entries] = await Promise.all([deps.store.getTask(options.id), deps.store.deadLettersOf(options.id)]);
  if (!task && entries.length === 0) {
    io.err(`task ${options.id} does not exist and has no dead letters`);
    return 1;
  }
  const views = entries.map((e) => entryView(e, task?.status));
  print(io, options, { task: task ? taskView(task) : null, dead_letters: views }, () => {
    const lines: string[] = [];
    if (task) {
      lines.push(
        fields([
          ['id', String(task.id)],
          ['status', task.status],
          ...workFields(task),
          ['priority', String(task.priority)],
          ['group', task.group ?? '-'],
          ['due', task.runAt?.toISOString() ?? 'when inserted'],
          ['attempts', task.maxAttempts === null ? String(task.attempts) : `${task.attempts} of ${task.maxAttempts}`],
          ['last error', task.lastError ?? '-'],
          ['created', task.createdAt.toISOString()],
          ['finished', task.finishedAt?.toISOString() ?? '-'],
        ]),
      );
    } else {
      lines.push(`task ${options.id} is not in MySQL`);
    }
    lines.push('', `dead letters: ${entries.length}`);
    for (const entry of entries) lines.push(`  ${printable(entry.raw)}`);
    return lines.join('\n');
  });
  return 0;
}

/** `dlq redrive <id>...`: each failed task back to pending, its entries out of the list. */
export async function dlqRedrive(
  deps: CliDeps,
  io: CliOutput,
  options: OutputOptions & { ids: number[] },
): Promise<ExitCode> {
  const outcomes = await deps.store.redrive(options.ids);
  const removed = (n: number | null) =>
    n === null
      ? 'its dead-letter entries could not be removed: Redis did not answer; they stay in the list'
      : `${n} dead-letter ${n === 1 ? 'entry' : 'entries'} removed`;
  print(io, options, { results: outcomes.map((o) => (o.redriven ? o : { ...o, message: notRedrivenReason(o) })) }, () =>
    outcomes
      .map((o) =>
        o.redriven
          ? `task ${o.id}: pending again (${removed(o.removedEntries)})`
          : `task ${o.id}: not redriven: ${notRedrivenReason(o)}`,
      )
      .join('\n'),
  );
  return outcomes.every((o) => o.redriven) ? 0 : 1;
}

/** `dlq redrive --all`: every task named in the list that is failed in MySQL. */
export async function dlqRedriveAll(deps: CliDeps, io: CliOutput, options: OutputOptions): Promise<ExitCode> {
  const result = await deps.store.redriveAllDeadLetters();
  print(io, options, result, () => {
    const lines = [
      `${result.redriven.length} failed ${result.redriven.length === 1 ? 'task' : 'tasks'} pending again; ` +
        (result.removedEntries === null
          ? `their dead-letter entries could not be removed (${result.removalError}); they stay in the list`
          : `${result.removedEntries} dead-letter entries removed`),
    ];
    if (result.keptEntries > 0) {
      lines.push(
        `${result.keptEntries} entries kept: their task is not failed in MySQL (still being recorded, already ` +
          'retried, or completed) or they name no task; see `dlq list`',
      );
    }
    return lines.join('\n');
  });
  return 0;
}

/** `dlq purge --yes`: empties the dead-letter list; tasks keep their failed status in MySQL. */
export async function dlqPurge(
  deps: CliDeps,
  io: CliOutput,
  options: OutputOptions & { yes: boolean },
): Promise<ExitCode> {
  if (!options.yes) {
    const { key, count } = await deps.store.deadLetterCount();
    io.err(`this removes all ${count} entries of ${key} (tasks stay failed in MySQL); run again with --yes to do it`);
    return 1;
  }
  const removed = await deps.store.purgeDeadLetters();
  print(io, options, { removed }, () => `${removed} dead-letter entries removed; failed tasks stay failed in MySQL`);
  return 0;
}
