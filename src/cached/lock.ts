/**
 * The cross-process fill lock of cached functions: one short-lived key per cached key, so that across
 * processes only one caller runs the factory for a missing (or, with grace, stale) value.
 *
 * - Lock key: `<tenant>:[<prefix>:]__peak_lock__:<key>` (inside the tenant's namespace, so the per-tenant
 *   ACL user may write it; outside the invalidation patterns of cached functions).
 * - Taken with `SET NX PX lockTtlMs` and a random owner token; expires by itself if the owner dies.
 * - Released by its owner only (compare-and-delete), after the value is stored.
 * - When the factory fails, the owner overwrites its lock (one `SET`) with a failure mark `failed:<epoch ms>` for
 *   {@link FAILURE_MARK_MS}, so callers that were waiting receive the failure instead of running the
 *   factory again. A caller that arrives after the failure ignores the mark and runs the factory.
 *
 * @module
 */

/** Segment between the namespace and the cached key in a lock key. */
export const LOCK_SEGMENT = '__peak_lock__:';
/** Value prefix of a failure mark. */
export const FAILURE_MARK = 'failed:';
/** How long a failure mark stays, in milliseconds (longer than the longest poll interval; whole seconds). */
export const FAILURE_MARK_MS = 2000;
/** First poll interval of a waiting caller, in milliseconds; doubles up to {@link MAX_POLL_MS}. */
export const FIRST_POLL_MS = 5;
/** Longest poll interval of a waiting caller, in milliseconds. */
export const MAX_POLL_MS = 100;

/** The lock key (below the namespace) of `key`. */
export function lockKey(key: string): string {
  return LOCK_SEGMENT + key;
}

/** A failure mark written now. */
export function failureMark(now = Date.now()): string {
  return `${FAILURE_MARK}${now}`;
}

/**
 * What a waiter that started waiting at `waitingSince` (epoch ms) makes of the lock value `owner`:
 * `free` (nobody holds it: try to take it), `failed` (the owner it waited for failed), or `held`.
 */
export function lockState(owner: string | null, waitingSince: number): 'free' | 'failed' | 'held' {
  if (owner === null) return 'free';
  if (!owner.startsWith(FAILURE_MARK)) return 'held';
  const failedAt = Number(owner.slice(FAILURE_MARK.length));
  return Number.isFinite(failedAt) && failedAt >= waitingSince ? 'failed' : 'free';
}

/** Next poll interval after `previous` milliseconds, with jitter so waiters do not poll in lockstep. */
export function nextPoll(previous: number): number {
  return Math.min(previous * 2, MAX_POLL_MS) * (0.75 + Math.random() * 0.5);
}
