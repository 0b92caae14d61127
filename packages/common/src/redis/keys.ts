/** Every Redis key name, built here and nowhere else. */

/** The keys of one reliable queue: a ready list plus what leasing and delayed retries need. */
export interface LeaseQueueKeys {
  /** LIST of ready messages: LPUSH to enqueue, taken from the right. */
  ready: string;
  /** HASH lease token -> message, for every message being worked on. */
  inflight: string;
  /** ZSET lease token -> lease deadline (ms since the epoch). */
  leases: string;
  /** ZSET message -> due time (ms) of retries waiting out their backoff. */
  delayed: string;
}

/** The keys of the services that report themselves alive (see redis/service-registry.ts). */
export interface ServiceKeys {
  /** ZSET process id -> when it counts as gone unless it reports again (ms, Redis's clock). */
  alive: string;
  /** HASH process id -> what it reported (JSON: service, host, pid, started_at, detail). */
  reports: string;
  /** HASH process id -> when it last reported (ms, Redis's clock). */
  seen: string;
}

export interface QueueKeys {
  /** The task queue; `tasks.ready` is the original's `task_queue`. */
  tasks: LeaseQueueKeys;
  /** LIST of dead letters kept for inspection (the original's `dead-letter-queue`), newest first. */
  deadLetters: string;
  /** The queue of dead letters the DLQ processor has yet to record in MySQL. */
  deadLetterInbox: LeaseQueueKeys;
  /**
   * SET of the ids of the tasks that have a message in Redis: ready, leased, waiting for a
   * retry, or dead-lettered and not yet recorded, so the sweeper finds what Redis lost with one
   * SMISMEMBER per page of tasks. The rule that keeps it safe: whatever adds a message adds its
   * id in the same step, and whatever removes one (an acknowledgement, a dropped copy, a
   * recorded dead letter) removes its id. A task with two messages may so look missing while
   * one is left, and get pushed once more (fenced like any duplicate); it can never look
   * present with none left.
   */
  present: string;
  /**
   * A key that lives for one sweep interval, set by the sweeper that sweeps in it: with several
   * schedulers, one of them does each interval's pass instead of every one.
   */
  sweeping: string;
  /** Pub/sub channel on which the API tells schedulers that tasks were inserted. */
  insertedChannel: string;
  /** Pub/sub channel on which a cancel tells the executors which task to stop (`id`). */
  cancelledChannel: string;
  /** Pub/sub channel on which the transitions that finish tasks name them (`id,id,…`), for the waiters. */
  finishedChannel: string;
  /**
   * Short-lived keys that readiness writes in one transaction: one beside the task queue, one
   * beside the dead letters, so the write fails as the queue scripts would (MOVED, CROSSSLOT,
   * READONLY) when the keys are not all writable on the node the client reaches.
   */
  readinessProbes: [string, string];
  /** The services (API, schedulers, executors, DLQ processors) alive now. */
  services: ServiceKeys;
}

export interface QueueNames {
  /** Prepended to every key, e.g. `{tasks}:` to keep them in one Redis Cluster slot. */
  prefix: string;
  queue: string;
  deadLetter: string;
}

function leaseQueueKeys(ready: string): LeaseQueueKeys {
  return {
    ready,
    inflight: `${ready}:inflight`,
    leases: `${ready}:leases`,
    delayed: `${ready}:delayed`,
  };
}

export function queueKeys({ prefix, queue, deadLetter }: QueueNames): QueueKeys {
  return {
    tasks: leaseQueueKeys(`${prefix}${queue}`),
    deadLetters: `${prefix}${deadLetter}`,
    deadLetterInbox: leaseQueueKeys(`${prefix}${deadLetter}:inbox`),
    present: `${prefix}${queue}:present`,
    sweeping: `${prefix}${queue}:sweeping`,
    insertedChannel: `${prefix}${queue}:inserted`,
    cancelledChannel: `${prefix}${queue}:cancelled`,
    finishedChannel: `${prefix}${queue}:finished`,
    readinessProbes: [`${prefix}${queue}:readyz`, `${prefix}${deadLetter}:readyz`],
    services: {
      alive: `${prefix}${queue}:services:alive`,
      reports: `${prefix}${queue}:services:reports`,
      seen: `${prefix}${queue}:services:seen`,
    },
  };
}

/** Every key the queue stores data under (the pub/sub channel is not a key). */
export function storedKeys(keys: QueueKeys): string[] {
  const leaseQueue = (q: LeaseQueueKeys) => [q.ready, q.inflight, q.leases, q.delayed];
  return [
    ...leaseQueue(keys.tasks),
    keys.deadLetters,
    ...leaseQueue(keys.deadLetterInbox),
    keys.present,
    keys.sweeping,
    ...keys.readinessProbes,
    keys.services.alive,
    keys.services.reports,
    keys.services.seen,
  ];
}

/**
 * The hash tag Redis Cluster hashes `key` by: what lies between the first `{` and the first `}`
 * after it, when that is not empty; null when the whole key is hashed.
 */
export function hashTag(key: string): string | null {
  const open = key.indexOf('{');
  if (open < 0) return null;
  const close = key.indexOf('}', open + 1);
  if (close <= open + 1) return null;
  return key.slice(open + 1, close);
}

/**
 * The hash tag every stored key shares, so that all of them live in one Redis Cluster slot (the
 * queue scripts touch the task queue and the dead letters in one call); null when they do not.
 */
export function sharedHashTag(keys: QueueKeys): string | null {
  const tags = new Set(storedKeys(keys).map(hashTag));
  const [only] = tags;
  return tags.size === 1 && only !== undefined ? only : null;
}
