import type { RowDataPacket } from 'mysql2/promise';
import type { Database } from '../mysql/database.js';
import { MESSAGE_COLUMNS } from './task-data.js';

/**
 * What a claim takes, and in what order: pending tasks are read in lanes, a lane being a group
 * (a tenant; '' for the tasks without one) and a priority level within it, each read oldest
 * first through the `tasks_lanes` index (status, group_key, priority, id; migration 010).
 * A group of '' is the tasks without one (group_key NULL). The rules:
 *
 * - Groups take turns: a claim serves the groups that have pending tasks one after another from
 *   where the previous claim stopped, each at most an equal share of the batch, so a group with
 *   a large backlog never delays another's few tasks by more than a claim.
 * - Within a group, higher priority first, oldest first within a priority; and no level starves:
 *   every claim also takes the oldest task of each lower level that has pending tasks. A task so
 *   waits at most as many claims as its own level holds older tasks.
 * - A group with a concurrency limit takes no more than its limit minus its running tasks (see
 *   claim-and-dispatch.ts).
 *
 * Finding the lanes costs an index seek per lane, so they are looked up again at most every
 * LANES_TTL_MS, or at once when a claim found a lane empty: a new group or level waits that long
 * at most for its first claim.
 */

export interface Lane {
  /** The group, '' for the tasks without one. */
  group: string;
  /** The negated priority: lower first. */
  rank: number;
}

/**
 * The claim's reads, each naming its index: the optimizer's choice flips with the statistics
 * (MySQL reads a lane `ORDER BY id` through the primary key once the table holds more finished
 * rows than it estimates pending ones, stepping over every finished row at every claim), and a
 * claim must cost its batch, never the table.
 */
export const CLAIM_READS = {
  // The lanes of a status (the claim's `pending`, the sweep's `processing`): the first of each
  // read given the status first.
  firstGroup: `SELECT COALESCE(group_key, '') AS g FROM tasks FORCE INDEX (tasks_lanes)
      WHERE status = ? ORDER BY group_key LIMIT 1`,
  /** (No group is named '', and NULL is greater than nothing: after '' come the named groups.) */
  groupAfter: `SELECT group_key AS g FROM tasks FORCE INDEX (tasks_lanes)
      WHERE status = ? AND group_key > ? ORDER BY group_key LIMIT 1`,
  firstLevel: `SELECT -priority AS r FROM tasks FORCE INDEX (tasks_lanes)
      WHERE status = ? AND group_key <=> NULLIF(?, '') ORDER BY priority DESC LIMIT 1`,
  levelAfter: `SELECT -priority AS r FROM tasks FORCE INDEX (tasks_lanes)
      WHERE status = ? AND group_key <=> NULLIF(?, '') AND priority < -(?) ORDER BY priority DESC LIMIT 1`,
  /** A lane's oldest pending tasks after a task id, with the columns of their messages. */
  laneRows: `SELECT ${MESSAGE_COLUMNS}, run, group_key FROM tasks FORCE INDEX (tasks_lanes)
      WHERE status = 'pending' AND group_key <=> NULLIF(?, '') AND priority = -(?) AND id > ? ORDER BY id LIMIT ?`,
  /** How many tasks of each of some groups run. */
  runningInGroups: `SELECT group_key AS g, COUNT(*) AS n FROM tasks FORCE INDEX (tasks_lanes)
      WHERE status = 'processing' AND group_key IN (?) GROUP BY group_key`,
} as const;

/** The most groups, and levels within a group, one claim serves. */
export const MAX_GROUPS_PER_CLAIM = 32;
export const MAX_LEVELS_PER_GROUP = 16;
export const LANES_TTL_MS = 200;

/** The statuses whose tasks are walked lane by lane: the claim's and the sweep's. */
export type LaneStatus = 'pending' | 'processing';

/** The first group with tasks of `status` after `after` (from the first when null); null after the last. */
export async function groupAfter(db: Database, status: LaneStatus, after: string | null): Promise<string | null> {
  const [[row]] = await db.query<RowDataPacket[]>(
    after === null ? CLAIM_READS.firstGroup : CLAIM_READS.groupAfter,
    after === null ? [status] : [status, after],
  );
  return row === undefined ? null : String(row.g);
}

/** The next lower level of `group` with tasks of `status` after rank `after` (the highest when undefined). */
export async function levelAfter(
  db: Database,
  status: LaneStatus,
  group: string,
  after: number | undefined,
): Promise<number | undefined> {
  const [[row]] = await db.query<RowDataPacket[]>(
    after === undefined ? CLAIM_READS.firstLevel : CLAIM_READS.levelAfter,
    after === undefined ? [status, group] : [status, group, after],
  );
  return row === undefined ? undefined : Number(row.r);
}

/** The groups with pending tasks, from the first after `after` round to the one before it. */
async function groupsFrom(db: Database, after: string): Promise<string[]> {
  const found: string[] = [];
  const seek = async (from: string | null, upTo: string | null) => {
    for (let cursor = from; found.length < MAX_GROUPS_PER_CLAIM; ) {
      const group = await groupAfter(db, 'pending', cursor);
      if (group === null || (upTo !== null && group > upTo)) return;
      found.push(group);
      cursor = group;
    }
  };
  await seek(after, null);
  // Round again from the first group, up to where this claim started.
  await seek(null, after);
  return [...new Set(found)];
}

/** The priority levels with pending tasks in `group`, highest first. */
async function levelsOf(db: Database, group: string): Promise<number[]> {
  const ranks: number[] = [];
  for (let rank = await levelAfter(db, 'pending', group, undefined); rank !== undefined; ) {
    ranks.push(rank);
    if (ranks.length >= MAX_LEVELS_PER_GROUP) break;
    rank = await levelAfter(db, 'pending', group, rank);
  }
  return ranks;
}

/** The lanes with pending tasks, their groups in turn from the first after `after`. */
export async function findLanes(db: Database, after: string): Promise<Lane[]> {
  const lanes: Lane[] = [];
  for (const group of await groupsFrom(db, after)) {
    for (const rank of await levelsOf(db, group)) lanes.push({ group, rank });
  }
  return lanes;
}

/** A lane's pending tasks as read for a claim, oldest first. */
export interface LaneRows<Row> {
  lane: Lane;
  rows: Row[];
}

/**
 * Chooses from the lanes' rows (each oldest first, read in `lanes`' order) at most `limit`,
 * each group at most `capacity(group)` and an equal share of the batch: within a group, the
 * oldest of each lower level first (no level starves), then by level. Groups whose share is not
 * used leave it to the others, in turn.
 *
 * Returned in the order they are to run (the ready list is first in, first out): higher
 * priority first; within a priority, the groups' oldest in turn, then their next, and so on.
 */
export function choose<Row>(lanes: LaneRows<Row>[], limit: number, capacity: (group: string) => number): Row[] {
  // One lane (the tasks without a group or a priority, as most claims find them): its oldest.
  const [only] = lanes;
  if (lanes.length === 1 && only) return only.rows.slice(0, Math.max(0, Math.min(limit, capacity(only.lane.group))));
  const groups = [...new Set(lanes.map((l) => l.lane.group))];
  const taken = new Map<string, Row[]>(groups.map((g) => [g, []]));
  /** Where a row sits: its lane's level, and how many older rows of its lane precede it. */
  const place = new Map<Row, { rank: number; age: number; turn: number }>();
  for (const { lane, rows } of lanes) {
    const turn = groups.indexOf(lane.group);
    rows.forEach((row, age) => {
      place.set(row, { rank: lane.rank, age, turn });
    });
  }
  const left = new Map(lanes.map((l) => [l, [...l.rows]]));
  const roomOf = (group: string, share: number) => Math.min(share, capacity(group)) - (taken.get(group)?.length ?? 0);
  let remaining = limit;
  // Rounds: each gives every group its share of what is left, until nothing more can be taken.
  for (let round = 0; remaining > 0; round++) {
    const open = groups.filter(
      (g) =>
        roomOf(g, Number.POSITIVE_INFINITY) > 0 &&
        lanes.some((l) => l.lane.group === g && (left.get(l)?.length ?? 0) > 0),
    );
    if (open.length === 0) break;
    const share = Math.max(1, Math.floor(remaining / open.length));
    for (const group of open) {
      const own = lanes.filter((l) => l.lane.group === group).sort((a, b) => a.lane.rank - b.lane.rank);
      const mine = taken.get(group) as Row[];
      const budget = Math.min(share, remaining, roomOf(group, Number.POSITIVE_INFINITY));
      let room = budget;
      // The first round: the oldest of each lower level before anything else.
      if (round === 0) {
        for (const lane of own.slice(1)) {
          const rows = left.get(lane) as Row[];
          if (room > 1 && rows.length > 0) {
            mine.push(rows.shift() as Row);
            room--;
          }
        }
      }
      for (const lane of own) {
        const rows = left.get(lane) as Row[];
        while (room > 0 && rows.length > 0) {
          mine.push(rows.shift() as Row);
          room--;
        }
      }
      remaining -= budget - room;
      if (remaining <= 0) break;
    }
  }
  const order = (row: Row) => place.get(row) as { rank: number; age: number; turn: number };
  return groups
    .flatMap((g) => taken.get(g) ?? [])
    .sort((a, b) => order(a).rank - order(b).rank || order(a).age - order(b).age || order(a).turn - order(b).turn);
}
