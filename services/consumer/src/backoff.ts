/**
 * Delay before retry number `attempt` (1 after the first failure): exponential from `baseMs`,
 * capped at `maxMs`, with jitter between half and the whole of it so retries of tasks that
 * failed together spread out. `baseMs` 0 retries at once, as the original did.
 */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  if (baseMs <= 0) return 0;
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.5 + random() / 2));
}
