/**
 * Violations of the randomized concurrency test of cached functions that are reported without failing
 * the CI test or the soak (the soak's `--strict` fails on them too): invariants today's code does not
 * keep yet, each with the issue that fixes it (remove the entry when it lands), and what the machine,
 * not the library, may cause.
 */
import type { ViolationKind } from './cached-worker-check.js';

/** Violation kind -> the open issue that fixes it. */
export const KNOWN_OPEN: ReadonlyMap<ViolationKind, string> = new Map<ViolationKind, string>([
  // Not a fault of the lock: a process starved of CPU for longer than the lease's margin cannot extend it.
  ['double-fill-after-stall', 'the owner was starved for half of lockTtlMs: its lease may lapse'],
]);
