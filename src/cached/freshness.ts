/**
 * Freshness of a cached entry from its remaining lifetime (`PTTL`), never from a clock: an entry with
 * grace is stored for `ttl + grace` seconds and is fresh while more than `grace` remains.
 *
 * @module
 */

/** `fresh`: serve it; `refresh`: serve it and refresh it in the background (eager refresh); `stale`: past its TTL, within its grace. */
export type Freshness = 'fresh' | 'refresh' | 'stale';

/**
 * The freshness of an entry.
 * @param pttl - its remaining lifetime in milliseconds (`undefined` when not read; negative: no expiry).
 * @param ttl - its TTL in seconds.
 * @param grace - its grace in seconds.
 * @param eagerRefresh - the fraction of the TTL after which a hit refreshes it (0: never).
 */
export function freshness(
  pttl: number | undefined,
  ttl: number,
  grace: number,
  eagerRefresh: number,
): Freshness {
  if (pttl === undefined || pttl < 0) return 'fresh';
  const freshLeft = pttl - grace * 1000;
  if (freshLeft <= 0) return grace > 0 ? 'stale' : 'fresh';
  if (eagerRefresh > 0 && freshLeft <= (1 - eagerRefresh) * ttl * 1000) return 'refresh';
  return 'fresh';
}
