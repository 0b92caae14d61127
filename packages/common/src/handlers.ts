import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from './logger.js';
import { MESSAGE_LIMITS, SIMULATED, TYPE_NAME } from './wire/message-codec.js';

/**
 * Task types and their handlers: what an operator's module (HANDLERS=./handlers.js) or an
 * embedding program (startExecutor) gives, checked and put in one shape. The API validates a
 * task's body with its type's schema; an executor runs it with its type's handler.
 */

/** A task as its handler sees it. */
export interface HandlerTask<Data = unknown> {
  id: number;
  type: string;
  /** The task's stored body: for the original's tasks `{ message, time }`. */
  data: Data;
  /** The run of the task this try belongs to (each claim starts a new run). */
  run: number;
  /** This try's number within the run, from 1. */
  attempt: number;
}

/** What a handler is given besides its task. */
export interface HandlerContext {
  /** Aborted when the try's deadline passes, the task is cancelled, or the executor stops. */
  signal: AbortSignal;
  taskId: number;
  run: number;
  attempt: number;
  /** When the try's deadline passes (ms since the epoch, this host's clock), or null: none. */
  deadline: number | null;
  /** A logger whose lines carry the task's id, run and attempt. */
  logger: Logger;
}

/** A handler: resolves with the task's result (JSON), or throws the run's error. */
export type HandlerFunction<Data = unknown, Result = unknown> = (
  task: HandlerTask<Data>,
  ctx: HandlerContext,
) => Result | Promise<Result>;

/** Anything with zod's safeParse: what a body must be, and what it becomes when stored. */
export interface BodySchema<Data = unknown> {
  safeParse(
    value: unknown,
  ): { success: true; data: Data } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
}

/** A type's handler with its defaults. */
export interface HandlerDefinition<Data = unknown, Result = unknown> {
  run: HandlerFunction<Data, Result>;
  /** Validates a task's body at the API (400 naming what is wrong); without one any JSON object is taken. */
  schema?: BodySchema<Data>;
  /** A try's deadline (ms), unless the task asks for its own. */
  timeoutMs?: number;
  /** Tries before a task of this type is dead-lettered (the MAX_ATTEMPTS setting otherwise). */
  maxAttempts?: number;
  /** The first retry's delay (ms), doubling each time (RETRY_BACKOFF_MS otherwise). */
  backoffMs?: number;
  /** The longest retry delay (ms; RETRY_BACKOFF_MAX_MS otherwise). */
  backoffMaxMs?: number;
  /**
   * `thread`: each try runs in a worker thread, which is terminated when the try times out or
   * is cancelled, so a handler stuck in a loop gives its slot back. Needs the handlers to come
   * from a module (HANDLERS, or startExecutor's `handlersModule`): the thread loads it.
   */
  isolation?: 'thread';
}

/** What a handlers module's default export maps: each type's name to its handler or its definition. */
export type Handlers = Record<string, HandlerFunction | HandlerDefinition>;

/** Types a handlers module for the editor: `export default defineHandlers({ … })`. */
export function defineHandlers<H extends Handlers>(handlers: H): H {
  return handlers;
}

/** A type's handler, checked, with its defaults. */
export interface TypeHandler extends HandlerDefinition {
  type: string;
}

/** The handlers of the types one process knows. */
export class HandlerRegistry {
  constructor(
    private readonly byType: ReadonlyMap<string, TypeHandler>,
    /** The module they were loaded from, for a worker thread to load them again; null when given in code. */
    readonly modulePath: string | null = null,
  ) {}

  static empty(): HandlerRegistry {
    return new HandlerRegistry(new Map());
  }

  get(type: string): TypeHandler | undefined {
    return this.byType.get(type);
  }

  /** Every type a task may have here: `simulated` and the registered ones. */
  get types(): string[] {
    return [SIMULATED, ...this.byType.keys()].sort();
  }
}

/** Why a handlers value is not one, naming the type at fault. */
export class HandlersError extends Error {
  constructor(where: string, problem: string) {
    super(`${where}: ${problem}`);
    this.name = 'HandlersError';
  }
}

const positiveWhole = (value: unknown, max: number) =>
  typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= max;

function checked(type: string, value: unknown, where: string): TypeHandler {
  const at = `${where}: type ${JSON.stringify(type)}`;
  if (!TYPE_NAME.test(type)) {
    throw new HandlersError(at, 'a type name is a letter then letters, digits and _ . : - (at most 64)');
  }
  if (type === SIMULATED) throw new HandlersError(at, `${SIMULATED} is the original's work and cannot be replaced`);
  const definition = (typeof value === 'function' ? { run: value } : value) as HandlerDefinition | null;
  if (definition === null || typeof definition !== 'object' || typeof definition.run !== 'function') {
    throw new HandlersError(at, 'must be a function (task, ctx) => result, or an object with such a run');
  }
  if (definition.schema !== undefined && typeof definition.schema.safeParse !== 'function') {
    throw new HandlersError(at, 'schema must have a safeParse method (a zod schema, for example)');
  }
  if (definition.timeoutMs !== undefined && !positiveWhole(definition.timeoutMs, MESSAGE_LIMITS.maxTimeoutMs)) {
    throw new HandlersError(at, `timeoutMs must be a whole number of ms from 1 to ${MESSAGE_LIMITS.maxTimeoutMs}`);
  }
  if (definition.maxAttempts !== undefined && !positiveWhole(definition.maxAttempts, MESSAGE_LIMITS.maxTries)) {
    throw new HandlersError(at, `maxAttempts must be a whole number from 1 to ${MESSAGE_LIMITS.maxTries}`);
  }
  for (const key of ['backoffMs', 'backoffMaxMs'] as const) {
    const ms = definition[key];
    if (ms !== undefined && !(typeof ms === 'number' && Number.isInteger(ms) && ms >= 0 && ms <= 2 ** 31 - 1)) {
      throw new HandlersError(at, `${key} must be a whole number of ms`);
    }
  }
  if (definition.isolation !== undefined && definition.isolation !== 'thread') {
    throw new HandlersError(at, "isolation must be 'thread' or left out");
  }
  return { ...definition, type };
}

/** The registry of `handlers` (a handlers module's default export, or a program's own). */
export function handlerRegistry(
  handlers: Handlers,
  modulePath: string | null = null,
  where = 'handlers',
): HandlerRegistry {
  if (handlers === null || typeof handlers !== 'object' || Array.isArray(handlers)) {
    throw new HandlersError(where, 'must map each type name to its handler: export default { name: handler }');
  }
  const byType = new Map<string, TypeHandler>();
  for (const [type, value] of Object.entries(handlers)) byType.set(type, checked(type, value, where));
  return new HandlerRegistry(byType, modulePath);
}

/** The absolute path of a handlers module named relative to `base` (the working directory). */
export function handlersModulePath(path: string, base = process.cwd()): string {
  return isAbsolute(path) ? path : resolve(base, path);
}

/**
 * Loads the handlers module `path` (an ES module whose default export maps type names to
 * handlers); throws HandlersError naming the module and what is wrong with it.
 */
export async function loadHandlers(path: string): Promise<HandlerRegistry> {
  const absolute = handlersModulePath(path);
  let loaded: { default?: unknown };
  try {
    loaded = (await import(pathToFileURL(absolute).href)) as { default?: unknown };
  } catch (err) {
    throw new HandlersError(`HANDLERS=${path}`, `could not be loaded: ${err instanceof Error ? err.message : err}`);
  }
  if (loaded.default === undefined) {
    throw new HandlersError(`HANDLERS=${path}`, 'has no default export (export default { type: handler, … })');
  }
  return handlerRegistry(loaded.default as Handlers, absolute, `HANDLERS=${path}`);
}
