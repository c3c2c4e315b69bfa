/**
 * Options of cached functions (`getOrSet`, `getOrSetMany`, `cacheResult`): their types, defaults and
 * validation.
 *
 * @module
 */
import { LRUCache } from 'lru-cache';
import { CacheValidationError } from '../errors.js';
import { checkOptionNames, MAX_TIMER_MS, upTo } from '../options.js';
import { DEFAULT_BREAKER_MS } from './breaker.js';
import { MAX_TTL } from './factory-context.js';
import { FAILURE_MARK_MS } from './lock.js';
import { FALLBACK_OPTIONS, GET_OR_SET_OPTIONS } from './option-names.js';
import { tagStampKeys } from './tags.js';

/** Default TTL of cached values, in seconds (Python's default). */
export const DEFAULT_TTL = 3600;
/** Default longest wait for another caller's factory, in milliseconds. */
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
/** Default entries of the in-process fallback. */
export const DEFAULT_FALLBACK_ENTRIES = 1000;
/** Default time a stale value is served without retrying its factory after a failed refresh, in ms. */
export const DEFAULT_GRACE_BACKOFF_MS = FAILURE_MARK_MS;

/** In-process fallback options: a bounded LRU that serves repeats while the cache is failing. */
export interface FallbackOptions {
  /**
   * Most entries kept (least recently used dropped first). Calls asking for the same bound share one LRU.
   * @default 1000
   */
  maxEntries?: number;
  /**
   * Seconds an entry may be served from the fallback.
   * @default the call's `ttl`
   */
  ttl?: number;
}

/** Options of {@link CacheClient.getOrSet} (and of {@link CacheClient.getOrSetMany}). */
export interface GetOrSetOptions {
  /**
   * Seconds a stored value is fresh. The factory may change it for its entry (`ctx.ttl`).
   * @default 3600
   */
  ttl?: number;
  /**
   * Seconds a value past its TTL may still be served while one background refresh runs (across
   * processes). A refresh failure keeps the stale value until the grace ends; it is reported through
   * the client's logger and `stats()`, never thrown at the caller. The factory may change it for its
   * entry (`ctx.grace`).
   * @default 0 (no grace)
   */
  grace?: number;
  /**
   * Soft timeout: with a stale value (grace), wait at most this many milliseconds for the refresh before
   * returning the stale value; the refresh goes on in the background.
   * Every millisecond option is at most 2^31-1 (about 24.8 days, Node's longest timer): a larger one is
   * a {@link CacheValidationError} naming it.
   * @default 0 (serve the stale value at once)
   */
  timeoutMs?: number;
  /**
   * Hard timeout: the longest, in milliseconds, a caller waits for a factory (its own or another
   * caller's, in this process or another). Past it the call rejects with {@link CacheTimeoutError}, the
   * fill is abandoned (its lock released; a late result is still stored unless the key was written or
   * this client invalidated cached results meanwhile) and the next call starts a fresh fill. Calls of
   * this process that join a fill share its deadline. A background refresh is abandoned after it too.
   * Every millisecond option is at most 2^31-1 (about 24.8 days, Node's longest timer): a larger one is
   * a {@link CacheValidationError} naming it.
   * @default 0 (none: a caller waits as long as its factory runs)
   */
  hardTimeoutMs?: number;
  /**
   * Eager refresh, a fraction of the TTL from 0 to 1 (exclusive): a hit on an entry older than this
   * fraction of its TTL returns the value at once and starts one background refresh (one across
   * processes, through the lock), so a hot key is refreshed before it expires in front of its callers.
   * The entry's age comes from its remaining TTL (`PTTL`, read with the value in one round trip): no
   * clock is compared.
   * @default 0 (off)
   */
  eagerRefresh?: number;
  /**
   * Milliseconds a stale value is served without retrying its factory after a failed background
   * refresh (in this process; across processes through the failure mark, rounded up to whole seconds).
   * Every millisecond option is at most 2^31-1 (about 24.8 days, Node's longest timer): a larger one is
   * a {@link CacheValidationError} naming it.
   * @default 2000
   */
  graceBackoffMs?: number;
  /**
   * Longest wait, in milliseconds, for a factory run by another caller (another process holds the lock);
   * then this caller runs the factory itself. Never waits longer.
   * Every millisecond option is at most 2^31-1 (about 24.8 days, Node's longest timer): a larger one is
   * a {@link CacheValidationError} naming it.
   * @default 10000
   */
  lockTimeoutMs?: number;
  /**
   * Lifetime of the fill lock's lease in milliseconds. The owner extends it (every third of it) while
   * its factory runs, so a slow factory keeps its lock; a dead owner blocks the key at most this long.
   * Every millisecond option is at most 2^31-1 (about 24.8 days, Node's longest timer): a larger one is
   * a {@link CacheValidationError} naming it.
   * @default `lockTimeoutMs`
   */
  lockTtlMs?: number;
  /**
   * A `Cache-Control` value for this call: `no-store`, `no-cache`, `must-revalidate`, `private`,
   * `max-age=0` and a malformed `max-age`/`s-maxage` bypass the cache (the factory runs once);
   * `s-maxage`/`max-age` set the TTL (clamped to 2^32 s). See docs/cached-functions.md.
   * @default none
   */
  cacheControl?: string | null;
  /**
   * Milliseconds the cache is skipped after it failed as a whole (the circuit breaker; shared by the
   * client's cached functions). Only connection-level failures (refused, reset, timed out, closed) open
   * it; a server error reply (`WRONGTYPE` on one key, `OOM`) affects that call alone.
   * Every millisecond option is at most 2^31-1 (about 24.8 days, Node's longest timer): a larger one is
   * a {@link CacheValidationError} naming it.
   * @default 5000
   */
  breakerMs?: number;
  /**
   * Serve repeats from a bounded in-process LRU while the cache is failing (`true`: 1000 entries).
   * @default false
   */
  fallback?: boolean | FallbackOptions;
  /**
   * How the value is stored: `'typed'` keeps its type on a hit (`Date`, `bigint`, `Map`, numbers...);
   * `'client'` uses the client's codec, so a plain `get` (or Python) reads the same value. Either way a
   * miss returns what a hit returns: with `'client'`, the codec's round trip of the factory's result
   * (a `Date` becomes its text with the JSON codec, on the miss too).
   * @default 'typed'
   */
  codec?: 'typed' | 'client';
  /**
   * Tags of the value (`'typed'` codec only): `invalidateTags` of any of them makes it stale or removed
   * in every process, whatever was stored when (see `tags.ts`). At most 64 non-empty strings; a factory
   * may add more through its context (`ctx.tags`).
   * @default none
   */
  tags?: readonly string[];
}

/** Options resolved and validated once. @internal */
export interface Resolved {
  ttl: number;
  grace: number;
  timeoutMs: number;
  hardTimeoutMs: number;
  eagerRefresh: number;
  graceBackoffMs: number;
  lockTimeoutMs: number;
  lockTtlMs: number;
  breakerMs: number;
  fallback: LRUCache<string, string> | undefined;
  fallbackTtlMs: number;
  typed: boolean;
  /** Stamp keys (below the namespace) of the entry's tags, implicit ones included (see `tags.ts`). */
  tagKeys: readonly string[];
}

function integer(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new CacheValidationError(`The \`${name}\` option must be an integer from ${min}${upTo(max)}`);
  }
  return value;
}

/**
 * Validate and resolve options; `what` names the caller for unknown options (`null`: checked already).
 * `fallbacks` holds the client's fallback LRUs, one per `maxEntries`.
 * @throws {CacheValidationError} naming the first invalid or unknown option.
 */
export function resolveOptions(
  options: GetOrSetOptions,
  what: string | null,
  fallbacks: Map<number, LRUCache<string, string>>,
): Resolved {
  if (options === null || typeof options !== 'object') {
    throw new CacheValidationError('The options must be an object');
  }
  if (what !== null) checkOptionNames(options, GET_OR_SET_OPTIONS, what);
  const ttl = integer(options.ttl ?? DEFAULT_TTL, 'ttl', 1, MAX_TTL);
  const grace = integer(options.grace ?? 0, 'grace', 0, MAX_TTL);
  const lockTimeoutMs = integer(
    options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
    'lockTimeoutMs',
    1,
    MAX_TIMER_MS,
  );
  const codec = options.codec ?? 'typed';
  if (codec !== 'typed' && codec !== 'client') {
    throw new CacheValidationError("The `codec` option must be 'typed' or 'client'");
  }
  const eagerRefresh = options.eagerRefresh ?? 0;
  if (typeof eagerRefresh !== 'number' || !(eagerRefresh >= 0 && eagerRefresh < 1)) {
    throw new CacheValidationError(
      'The `eagerRefresh` option must be a fraction of the TTL from 0 to 1 (exclusive)',
    );
  }
  let fallback: LRUCache<string, string> | undefined;
  let fallbackTtl: number | undefined;
  if (options.fallback !== undefined && options.fallback !== false) {
    const spec = options.fallback === true ? {} : options.fallback;
    if (spec === null || typeof spec !== 'object') {
      throw new CacheValidationError('The `fallback` option must be a boolean or an object');
    }
    checkOptionNames(spec, FALLBACK_OPTIONS, '`fallback`');
    const max = integer(spec.maxEntries ?? DEFAULT_FALLBACK_ENTRIES, 'fallback.maxEntries', 1);
    fallbackTtl = spec.ttl === undefined ? undefined : integer(spec.ttl, 'fallback.ttl', 1, MAX_TTL);
    fallback = fallbacks.get(max);
    if (fallback === undefined) {
      fallback = new LRUCache<string, string>({ max, ttlAutopurge: false });
      fallbacks.set(max, fallback);
    }
  }
  return {
    ttl,
    grace,
    timeoutMs: integer(options.timeoutMs ?? 0, 'timeoutMs', 0, MAX_TIMER_MS),
    hardTimeoutMs: integer(options.hardTimeoutMs ?? 0, 'hardTimeoutMs', 0, MAX_TIMER_MS),
    eagerRefresh,
    graceBackoffMs: integer(
      options.graceBackoffMs ?? DEFAULT_GRACE_BACKOFF_MS,
      'graceBackoffMs',
      0,
      MAX_TIMER_MS,
    ),
    lockTimeoutMs,
    lockTtlMs: integer(options.lockTtlMs ?? lockTimeoutMs, 'lockTtlMs', 1, MAX_TIMER_MS),
    breakerMs: integer(options.breakerMs ?? DEFAULT_BREAKER_MS, 'breakerMs', 0, MAX_TIMER_MS),
    fallback,
    fallbackTtlMs: (fallbackTtl ?? ttl) * 1000,
    typed: codec === 'typed',
    tagKeys: tagStampKeys(options.tags, what ?? 'getOrSet', codec === 'typed'),
  };
}
