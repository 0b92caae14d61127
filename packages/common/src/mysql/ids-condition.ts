/**
 * `id IN (…)` for the ids of a batch, with each run of consecutive ids written as a range:
 * `(id BETWEEN ? AND ? OR … OR id IN (?))`. A batch's ids are mostly consecutive (tasks are
 * claimed in id order), and the database finds a range with one index descent where a list
 * of 1,000 ids takes 1,000 (about a quarter of the CPU of a batch's UPDATE). Matches exactly
 * the ids given: a range holds only ids that are all in the batch.
 */
export function idsCondition(ids: readonly number[]): { sql: string; params: unknown[] } {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const ranges: string[] = [];
  const params: unknown[] = [];
  const singles: number[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++;
    if (j > i) {
      ranges.push('id BETWEEN ? AND ?');
      params.push(sorted[i], sorted[j]);
    } else {
      singles.push(sorted[i] as number);
    }
    i = j + 1;
  }
  if (singles.length > 0) {
    ranges.push('id IN (?)');
    params.push(singles);
  }
  return { sql: ranges.length > 0 ? `(${ranges.join(' OR ')})` : 'FALSE', params };
}

/** Groups `items` by `key`, keeping the order in which each key was first seen. */
export function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}
