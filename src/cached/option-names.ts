/**
 * Names of the options of cached functions, so that a misspelt option (`tll` for `ttl`) is an error
 * naming it, as for the client's constructor, instead of being ignored silently.
 *
 * @module
 */

/** Options of `getOrSet` (and of `cacheResult`, which adds {@link CACHE_RESULT_OPTIONS}). */
export const GET_OR_SET_OPTIONS: ReadonlySet<string> = new Set([
  'ttl',
  'grace',
  'timeoutMs',
  'hardTimeoutMs',
  'eagerRefresh',
  'graceBackoffMs',
  'lockTimeoutMs',
  'lockTtlMs',
  'cacheControl',
  'breakerMs',
  'fallback',
  'codec',
  'tags',
]);

/** Options of `cacheResult`. */
export const CACHE_RESULT_OPTIONS: ReadonlySet<string> = new Set([
  ...GET_OR_SET_OPTIONS,
  'keyPrefix',
  'entityId',
  'key',
  'name',
  'context',
  'keyStyle',
  'kwargs',
  'entityParam',
]);

/** Options of the `@cacheResult` decorator. */
export const CACHE_RESULT_DECORATOR_OPTIONS: ReadonlySet<string> = new Set([
  ...CACHE_RESULT_OPTIONS,
  'client',
]);

/** Options of `fallback`. */
export const FALLBACK_OPTIONS: ReadonlySet<string> = new Set(['maxEntries', 'ttl']);

/** Options of `invalidate`. */
export const INVALIDATE_OPTIONS: ReadonlySet<string> = new Set([
  'entityId',
  'targetedPatterns',
  'broadPatterns',
]);

/** Options of the `@invalidateCache` decorator. */
export const INVALIDATE_DECORATOR_OPTIONS: ReadonlySet<string> = new Set([
  ...INVALIDATE_OPTIONS,
  'client',
  'onError',
  'wait',
]);
