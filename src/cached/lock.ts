/**
 * The cross-process fill lock of cached functions: one short-lived key per cached key, so that across
 * processes only one caller runs the factory for a missing (or, with grace, stale) value.
 *
 * - Lock key: `<tenant>:[<prefix>:]__peak_lock__:<key>` (inside the tenant's namespace, so the per-tenant
 *   ACL user may write it; outside the invalidation patterns of cached functions).
 * - Taken with `SET NX PX lockTtlMs` and a random owner token; a lease: its owner extends it
 *   (compare-and-extend, see lease.ts) while the factory runs, and it expires by itself within
 *   `lockTtlMs` if the owner dies.
 * - Released by its owner only (compare-and-delete), after the value is stored.
 * - When the factory fails, the owner replaces its lock with a failure mark `failed:<owner token>` for
 *   {@link FAILURE_MARK_MS} (longer after a failed background refresh: `graceBackoffMs`). A waiter
 *   remembers the token of the owner it waits for; it takes the failure only when the mark names that
 *   owner. Any other mark (an owner it never waited for) is removed and the lock taken: no clock is
 *   compared, so neither a late mark write nor clock skew between machines hands a failure to a caller
 *   that did not wait for it.
 *
 * @module
 */

/** Segment between the namespace and the cached key in a lock key. */
export const LOCK_SEGMENT = '__peak_lock__:';
/** Value prefix of a failure mark. */
export const FAILURE_MARK = 'failed:';
/** How long a failure mark stays, in milliseconds (longer than the longest poll interval). */
export const FAILURE_MARK_MS = 2000;
/** First poll interval of a waiting caller, in milliseconds; doubles up to {@link MAX_POLL_MS}. */
export const FIRST_POLL_MS = 5;
/** Longest poll interval of a waiting caller, in milliseconds. */
export const MAX_POLL_MS = 100;

/** The lock key (below the namespace) of `key`. */
export function lockKey(key: string): string {
  return LOCK_SEGMENT + key;
}

/** The failure mark the owner `token` leaves when its factory fails. */
export function failureMark(token: string): string {
  return `${FAILURE_MARK}${token}`;
}

/**
 * What a waiter makes of the lock value `owner`, given the token of the owner it has been waiting for
 * (`awaited`; `undefined` before it saw one):
 * - `free`: nobody holds it (try to take it);
 * - `failed`: the owner it waited for failed (the failure is this caller's);
 * - `foreign-mark`: the failure mark of an owner it never waited for (remove it, then take the lock);
 * - `held`: an owner holds it (wait for that owner).
 */
export function lockState(
  owner: string | null,
  awaited: string | undefined,
): 'free' | 'failed' | 'foreign-mark' | 'held' {
  if (owner === null) return 'free';
  if (!owner.startsWith(FAILURE_MARK)) return 'held';
  return awaited !== undefined && owner === failureMark(awaited) ? 'failed' : 'foreign-mark';
}

/** Next poll interval after `previous` milliseconds, with jitter so waiters do not poll in lockstep. */
export function nextPoll(previous: number): number {
  return Math.min(previous * 2, MAX_POLL_MS) * (0.75 + Math.random() * 0.5);
}
