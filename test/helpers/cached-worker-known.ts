/**
 * Invariants of the randomized concurrency test of cached functions that today's code does not keep
 * yet, each with the issue that fixes it. The CI test and the soak report these violations without
 * failing on them (the soak's `--strict` fails on them too); remove an entry when its issue lands.
 */
import type { ViolationKind } from './cached-worker-check.js';

/** Violation kind -> the open issue that fixes it. */
export const KNOWN_OPEN: ReadonlyMap<ViolationKind, string> = new Map<ViolationKind, string>([
  ['invalidation-race', 'issue 19: an invalidation during a fill must win'],
]);
