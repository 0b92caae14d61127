import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Database } from '../../mysql/database.js';
import { isLockWaitTimeout, isRolledBack } from '../../mysql/errors.js';
import { idsCondition } from '../../mysql/ids-condition.js';
import { withNamedLock } from '../../mysql/named-lock.js';
import { errorText, type QueueMessage } from '../../wire/message-codec.js';
import { CLAIM_READS, choose, findLanes, LANES_TTL_MS, type Lane, type LaneRows } from '../claim-plan.js';
import { type CountedStatement, type CountedTrip, countedTransaction } from '../status-counts.js';
import { type MessageColumns, messageOf } from '../task-data.js';
import type { TransitionDeps } from './deps.js';

/**
 * Claim and dispatch: pending tasks become `processing` in MySQL, each starting a new run,
 * and only after the commit are their messages pushed to Redis. Should the push fail or the
 * process die in between, the tasks are `processing` without a message, which is what the
 * recover transition looks for. A row whose data cannot become a message is `failed` in the
 * same transaction, with the reason, and never stops the batch.
 */

export interface ClaimResult {
  /** The messages pushed, oldest task first. */
  dispatched: QueueMessage[];
  /** Tasks marked `failed` because their data cannot become a message. */
  invalid: { id: number; reason: string }[];
  /** True when another scheduler was claiming at that moment, so this one claimed nothing. */
  busy?: boolean;
}

interface PendingRow extends RowDataPacket, MessageColumns {
  run: number;
  group_key: string | null;
}

interface Claim {
  messages: QueueMessage[];
  invalid: { id: number; reason: string }[];
}

/**
 * Claims up to `limit` pending tasks, oldest first, then pushes their messages. Schedulers take
 * turns (the named lock `claim`): all of them are woken by the same insert, and claiming the
 * same oldest rows at once would make all but one wait for the winner's commit and then find
 * nothing. One that finds another claiming returns `busy` at once. The lock is only an
 * optimisation: when its holder has stopped answering (see withNamedLock), the claim goes
 * ahead with `SKIP LOCKED`, which never shares a task and never waits on rows another claim
 * holds. When two hold it at once (named locks do not survive a failover: one scheduler's lock
 * on the old primary, another's on the new), both claim optimistically and stay exact: each
 * marks only rows still `pending` (the UPDATE's guard, under its row locks), and one that
 * changed fewer rows than it read undoes its claim and claims with `SKIP LOCKED`, so no task
 * is claimed twice or run in two runs; the cost is a rolled back claim.
 */
export async function claimAndDispatch(
  deps: TransitionDeps,
  limit: number,
  plan: ClaimPlan = defaultPlan(),
): Promise<ClaimResult> {
  const claimed = await withNamedLock(deps.pool, 'claim', async (locked) => {
    const claim = await claimPending(deps.pool, limit, { optimistic: locked, plan });
    await deps.queue.dispatch(claim.dispatched);
    return claim;
  });
  return claimed ?? { dispatched: [], invalid: [], busy: true };
}

/** How many of a group's tasks may run at once; Infinity: no limit. */
export type GroupLimit = (group: string) => number;

/**
 * What the claims of one process share: the lanes last found (see claim-plan.ts), where the
 * groups' turn stopped, and the groups' limits.
 */
export class ClaimPlan {
  private lanes: Lane[] = [];
  private foundAt = Number.NEGATIVE_INFINITY;
  /** The last group served: the next claim starts after it. */
  private cursor = '';

  constructor(
    readonly groupLimit: GroupLimit = () => Number.POSITIVE_INFINITY,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** How many of a group's tasks may run at once: the tasks without a group are never limited. */
  limitOf(group: string): number {
    return group === '' ? Number.POSITIVE_INFINITY : this.groupLimit(group);
  }

  /** The lanes, their groups in turn from the first after the last one served. */
  async currentLanes(db: Database): Promise<Lane[]> {
    if (this.now() - this.foundAt >= LANES_TTL_MS) {
      this.lanes = await findLanes(db, this.cursor);
      this.foundAt = this.now();
    }
    return inTurn(this.lanes, this.cursor);
  }

  /** After a claim: where the groups' turn goes on, and whether the lanes must be found again. */
  claimed(lastGroup: string | null, aLaneRanDry: boolean): void {
    if (lastGroup !== null) this.cursor = lastGroup;
    if (aLaneRanDry) this.foundAt = Number.NEGATIVE_INFINITY;
  }
}

/** The lanes ordered for a claim: groups after `cursor` first, then from the first group round; each group's levels in order. */
function inTurn(lanes: Lane[], cursor: string): Lane[] {
  const key = (lane: Lane) => [lane.group > cursor ? 0 : 1, lane.group, lane.rank] as const;
  return [...lanes].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    return x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0) || x[2] - y[2];
  });
}

function defaultPlan(): ClaimPlan {
  return new ClaimPlan();
}

/**
 * The MySQL half of the transition alone: the claim, committed, with nothing pushed. What a
 * scheduler that dies between the two halves leaves behind (the fault tests make it so).
 * `optimistic` (the default) tries the lock-free read first: for a caller that holds the lock.
 */
export async function claimPending(
  db: Database,
  limit: number,
  { optimistic = true, plan = defaultPlan() }: { optimistic?: boolean; plan?: ClaimPlan } = {},
): Promise<ClaimResult> {
  const lanes = await plan.currentLanes(db);
  if (lanes.length === 0) {
    plan.claimed(null, true);
    return { dispatched: [], invalid: [] };
  }
  const claim =
    (optimistic ? await claimOptimistically(db, limit, lanes, plan) : null) ??
    (await claimWithLocks(db, limit, lanes, plan));
  plan.claimed(claim.lastGroup, claim.aLaneRanDry);
  return { dispatched: claim.messages, invalid: claim.invalid };
}

/** A lane's oldest pending tasks (after task `after`), with the columns of their messages. */
function laneRead(lane: Lane, n: number, lock: boolean, after = 0): CountedStatement {
  return {
    sql: `${CLAIM_READS.laneRows}${lock ? ' FOR UPDATE SKIP LOCKED' : ''}`,
    values: [lane.group, lane.rank, after, n],
  };
}

/**
 * The statements that read, for the limited groups among `groups`, whether this claim may fill
 * them (their row in task_groups, locked for the claim: another claim holding it means not now)
 * and how many of their tasks run.
 */
function limitReads(groups: string[]): CountedStatement[] {
  if (groups.length === 0) return [];
  return [
    { sql: 'INSERT IGNORE INTO task_groups (group_key) VALUES ?', values: [groups.map((g) => [g])] },
    { sql: 'SELECT group_key AS g FROM task_groups WHERE group_key IN (?) FOR UPDATE SKIP LOCKED', values: [groups] },
    {
      sql: CLAIM_READS.runningInGroups,
      values: [groups],
    },
  ];
}

interface Read {
  lanes: LaneRows<PendingRow>[];
  capacity: (group: string) => number;
}

/** How many rows each lane is read for at first: a group's share of the batch. */
function perLaneOf(limit: number, lanes: Lane[]): number {
  return Math.max(1, Math.ceil(limit / new Set(lanes.map((l) => l.group)).size));
}

/**
 * Reads the lanes (and the limited groups' state) in one round trip of the claim's transaction:
 * each lane at most a group's share of the batch.
 */
async function read(trip: CountedTrip, limit: number, lanes: Lane[], plan: ClaimPlan, lock: boolean): Promise<Read> {
  const groups = [...new Set(lanes.map((l) => l.group))];
  const limited = groups.filter((g) => Number.isFinite(plan.limitOf(g)));
  const perLane = perLaneOf(limit, lanes);
  const results = await trip([...lanes.map((lane) => laneRead(lane, perLane, lock)), ...limitReads(limited)]);
  const rows = lanes.map((lane, i) => ({ lane, rows: results[i] as PendingRow[] }));
  if (limited.length === 0) return { lanes: rows, capacity: () => Number.POSITIVE_INFINITY };
  const held = new Set((results[lanes.length + 1] as RowDataPacket[]).map((r) => String(r.g)));
  const running = new Map((results[lanes.length + 2] as RowDataPacket[]).map((r) => [String(r.g), Number(r.n)]));
  return {
    lanes: rows,
    capacity: (group) => {
      const max = plan.limitOf(group);
      if (!Number.isFinite(max)) return Number.POSITIVE_INFINITY;
      // Another claim is filling this group now: its turn comes again.
      if (!held.has(group)) return 0;
      return Math.max(0, max - (running.get(group) ?? 0));
    },
  };
}

interface LaneClaim extends Claim {
  /** The last group this claim served. */
  lastGroup: string | null;
  /** Whether a lane gave fewer rows than asked: the lanes are to be found again. */
  aLaneRanDry: boolean;
}

interface Pick {
  rows: PendingRow[];
  lastGroup: string | null;
  aLaneRanDry: boolean;
}

/**
 * Reads the lanes and chooses from them (see choose). When a lane ran dry before the batch was
 * full, the lanes that gave all that was asked of them, in groups with room, are read again
 * from where they stopped, for the rest: a group's unused share goes to the others in the same
 * claim (a round trip more, only then).
 */
async function pick(trip: CountedTrip, limit: number, lanes: Lane[], plan: ClaimPlan, lock: boolean): Promise<Pick> {
  const found = await read(trip, limit, lanes, plan, lock);
  const perLane = perLaneOf(limit, lanes);
  let rows = choose(found.lanes, limit, found.capacity);
  if (rows.length < limit) {
    const taken = (group: string) => rows.filter((r) => (r.group_key ?? '') === group).length;
    const more = found.lanes.filter(
      (l) => l.rows.length === perLane && found.capacity(l.lane.group) > taken(l.lane.group),
    );
    if (more.length > 0) {
      const rest = limit - rows.length;
      const results = await trip(more.map((l) => laneRead(l.lane, rest, lock, Number(l.rows.at(-1)?.id ?? 0))));
      more.forEach((l, i) => {
        l.rows.push(...(results[i] as PendingRow[]));
      });
      rows = choose(found.lanes, limit, found.capacity);
    }
  }
  const groups = [...new Set(lanes.map((l) => l.group))];
  const served = new Set(rows.map((row) => row.group_key ?? ''));
  return {
    rows,
    lastGroup: groups.filter((g) => served.has(g)).at(-1) ?? null,
    aLaneRanDry: found.lanes.some((l) => l.rows.length < perLane),
  };
}

/** The rows' messages (of their next run), and the rows that cannot become one. */
function toClaim(rows: PendingRow[]): Claim {
  const claim: Claim = { messages: [], invalid: [] };
  for (const row of rows) {
    const message = messageOf(row, Number(row.run) + 1);
    if (message.ok) claim.messages.push(message.value);
    else claim.invalid.push({ id: Number(row.id), reason: message.reason });
  }
  return claim;
}

/** How many claimed rows each mark changed (those still pending). */
interface Marked {
  claimed: number;
  failed: number;
}

/**
 * Marks the claimed rows, `processing` in a new run or `failed` for those that cannot run, in
 * one round trip of the claim's transaction (with its commit when `commit`).
 */
async function mark(trip: CountedTrip, claim: Claim, commit: boolean): Promise<Marked> {
  const statements: CountedStatement[] = [];
  if (claim.messages.length > 0) {
    const ids = idsCondition(claim.messages.map((m) => m.id));
    statements.push({
      sql: `UPDATE tasks SET status = 'processing', run = run + 1, dispatched_at = NOW(3)
        WHERE ${ids.sql} AND status = 'pending'`,
      values: ids.params,
      move: { from: 'pending', to: 'processing' },
    });
  }
  for (const { id, reason } of claim.invalid) {
    statements.push({
      sql: `UPDATE tasks SET status = 'failed', run = run + 1, last_error = ?, finished_at = NOW(3)
        WHERE id = ? AND status = 'pending'`,
      values: [errorText(reason), id],
      move: { from: 'pending', to: 'failed' },
    });
  }
  if (statements.length === 0) return { claimed: 0, failed: 0 };
  const changed = ((await trip(statements, { commit })) as ResultSetHeader[]).map((r) => r.affectedRows);
  const claimed = claim.messages.length > 0 ? (changed.shift() ?? 0) : 0;
  return { claimed, failed: changed.reduce((sum, n) => sum + n, 0) };
}

/** Thrown to roll back an optimistic claim that found some of its rows claimed meanwhile. */
class ClaimedMeanwhile extends Error {}

/**
 * The usual case, one scheduler or schedulers that do not collide: read the oldest pending
 * tasks without locking them, then mark exactly those. If every one was still pending, the
 * claim is ours (each changed row stays locked until the commit). If another scheduler took
 * some meanwhile, undo and claim with locks instead. Locking reads cost the database about as
 * much as the update itself, so this roughly halves the work of a claim. Three round trips:
 * the read, the marks, the counts with the commit (the marks' locks live one turn of this
 * process; a claim by another scheduler meanwhile passes over them with SKIP LOCKED).
 */
async function claimOptimistically(
  db: Database,
  limit: number,
  lanes: Lane[],
  plan: ClaimPlan,
): Promise<LaneClaim | null> {
  try {
    return await countedTransaction(db, async (trip) => {
      const picked = await pick(trip, limit, lanes, plan, false);
      const claim = toClaim(picked.rows);
      const marked = await mark(trip, claim, false);
      if (marked.claimed + marked.failed !== picked.rows.length) throw new ClaimedMeanwhile();
      return { ...claim, lastGroup: picked.lastGroup, aLaneRanDry: picked.aLaneRanDry };
    });
  } catch (err) {
    // Another scheduler took some of the rows, two updated the same rows and the server rolled
    // this one back, or a row is locked by a claim that does not end: claim with locks.
    if (err instanceof ClaimedMeanwhile || isRolledBack(err) || isLockWaitTimeout(err)) return null;
    throw err;
  }
}

/**
 * Claims with `SKIP LOCKED`, so schedulers claiming at the same moment never share a task, and
 * rows held by a claim whose scheduler stopped answering are passed over. Two round trips: the
 * locking reads, then the marks with the counts and the commit.
 */
function claimWithLocks(db: Database, limit: number, lanes: Lane[], plan: ClaimPlan): Promise<LaneClaim> {
  return countedTransaction(db, async (trip) => {
    const picked = await pick(trip, limit, lanes, plan, true);
    const claim = toClaim(picked.rows);
    await mark(trip, claim, true);
    return { ...claim, lastGroup: picked.lastGroup, aLaneRanDry: picked.aLaneRanDry };
  });
}
