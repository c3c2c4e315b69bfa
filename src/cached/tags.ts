/**
 * Tags of cached values: logical invalidation in O(number of tags), with no clock anywhere.
 *
 * **Stamps are server counters.** Each tag has a stamp key inside the client's namespace,
 * `<tenant>:[<prefix>:]__peak_tag__:<kind>:<name>` (next to the fill locks' `__peak_lock__:` keys, so the
 * per-tenant ACL user may write it, outside every invalidation pattern of cached functions). Its value is
 * an integer that only grows, raised with `INCRBY` (atomic on the server, no scripting, any engine):
 * - `invalidateTags(tags, { behavior: 'expire' })` adds {@link EXPIRE_STEP} (1);
 * - `invalidateTags(tags, { behavior: 'remove' })` adds {@link REMOVE_STEP} (2^32), so the count of
 *   removals is `floor(stamp / 2^32)`.
 * A missing stamp key reads as `0`.
 *
 * **An entry records the stamps it was produced at.** Before its factory runs, a fill (or a grace
 * refresh) reads the current stamps of the entry's tags and stores them with the value (see
 * `entry-meta.ts`). A reader compares them with the current stamps ({@link compareStamps}): all equal =
 * fresh; a stamp that moved by expirations only = expired (servable as stale within grace); a stamp that
 * moved by a removal (or went backwards: the stamp key was flushed) = removed (a miss). An invalidation
 * that lands while a factory runs therefore always wins: the stamp it raises is newer than the one the
 * fill recorded, in every process, whatever their clocks say (no `Date.now()` is compared anywhere).
 * An entry produced after its tag's invalidation records the raised stamp, so it is fresh.
 *
 * **Lifetime of stamp keys.** Stamps of `invalidateTags` never expire (a few dozen bytes per tag that was
 * ever invalidated; `flushTenant` removes them with the entries): a stamp that disappeared while an
 * entry it invalidated still lives would make that entry fresh again. The implicit stamps that
 * `invalidate()` raises for entities and key prefixes expire after {@link IMPLICIT_STAMP_TTL} seconds,
 * because the physical SCAN that follows each invalidation deletes those entries anyway (see
 * `invalidation.ts`).
 *
 * @module
 */
import { CacheValidationError } from '../errors.js';
import type { KeySpace } from '../keys.js';

/** Segment between the namespace and the tag in a stamp key. */
export const TAG_SEGMENT = '__peak_tag__:';
/** Stamp increment of an `'expire'` invalidation. */
export const EXPIRE_STEP = 1;
/** Stamp increment of a `'remove'` invalidation (2^32: removals count in the high part). */
export const REMOVE_STEP = 2 ** 32;
/** Lifetime of the implicit stamps raised by `invalidate()`, in seconds (1 day; refreshed on each raise). */
export const IMPLICIT_STAMP_TTL = 86_400;
/** Most tags one entry (or one `invalidateTags` call) may carry. */
export const MAX_TAGS = 64;
/** Longest tag, in characters. */
const MAX_TAG_LENGTH = 1024;

/**
 * How `invalidateTags` invalidates: `'expire'` (the entries may still be served as stale within their
 * grace while one refresh runs; without grace they are misses) or `'remove'` (never served again).
 */
export type InvalidateBehavior = 'expire' | 'remove';

/** Options of {@link CacheClient.invalidateTags}. */
export interface InvalidateTagsOptions {
  /**
   * `'expire'`: tagged entries become stale (served within their grace while one refresh runs; a miss
   * without grace). `'remove'`: tagged entries are never served again (a miss).
   * @default 'expire'
   */
  behavior?: InvalidateBehavior;
}

/** What a reader makes of an entry's recorded stamps against the current ones. */
export type StampVerdict = 'fresh' | 'expired' | 'removed';

/**
 * The tags of a call, checked: a list of non-empty strings, at most {@link MAX_TAGS}, repeats dropped.
 * `undefined` / `null` mean none.
 * @throws {CacheValidationError} otherwise (the message names `what`).
 */
export function validateTags(tags: unknown, what: string): readonly string[] {
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags)) throw new CacheValidationError(`${what}: tags must be an array of strings`);
  let repeats = false;
  for (let i = 0; i < tags.length; i++) {
    const tag: unknown = tags[i];
    if (typeof tag !== 'string' || tag === '' || tag.length > MAX_TAG_LENGTH) {
      throw new CacheValidationError(
        `${what}: a tag must be a non-empty string of at most ${MAX_TAG_LENGTH} characters`,
      );
    }
    if (!repeats && tags.indexOf(tag) !== i) repeats = true;
  }
  const unique = repeats ? [...new Set(tags as string[])] : (tags as string[]);
  if (unique.length > MAX_TAGS) throw new CacheValidationError(`${what}: at most ${MAX_TAGS} tags per call`);
  return unique;
}

/**
 * The stamp keys of a call's `tags` option (checked as {@link validateTags}).
 * @throws {CacheValidationError} also for tags with the `'client'` codec (`typed: false`): such entries
 * carry no metadata (see `entry-meta.ts`).
 */
export function tagStampKeys(tags: unknown, what: string, typed: boolean): readonly string[] {
  const unique = validateTags(tags, what);
  if (unique.length === 0) return unique;
  if (!typed)
    throw new CacheValidationError(`${what}: tags need the 'typed' codec (a 'client' entry carries no tags)`);
  return unique.map(tagStampKey);
}

/** Most tags whose stamp keys are kept built (emptied when full). */
const MAX_BUILT_KEYS = 10_000;
const builtTagKeys = new Map<string, string>();

/**
 * The stamp key (below the namespace) of a user tag. The same string object for the same tag while it
 * is remembered: comparing and hashing it on the hit path is then free (a fresh concatenation would be
 * flattened and hashed on every read).
 */
export function tagStampKey(tag: string): string {
  let key = builtTagKeys.get(tag);
  if (key === undefined) {
    if (builtTagKeys.size >= MAX_BUILT_KEYS) builtTagKeys.clear();
    key = `${TAG_SEGMENT}t:${tag}`;
    builtTagKeys.set(tag, key);
  }
  return key;
}

/**
 * `ks.key(stampKey)`, the same string object for the same namespace and stamp key while remembered (see
 * {@link tagStampKey}).
 */
export function storedStampKey(ks: KeySpace, stampKey: string): string {
  let keys = storedKeys.get(ks.namespace);
  if (keys === undefined) {
    if (storedKeys.size >= MAX_NAMESPACES) storedKeys.clear();
    keys = new Map();
    storedKeys.set(ks.namespace, keys);
  }
  let stored = keys.get(stampKey);
  if (stored === undefined) {
    if (keys.size >= MAX_BUILT_KEYS) keys.clear();
    stored = ks.key(stampKey);
    keys.set(stampKey, stored);
  }
  return stored;
}

/** Most namespaces whose stored stamp keys are kept built. */
const MAX_NAMESPACES = 64;
const storedKeys = new Map<string, Map<string, string>>();

/**
 * The implicit stamp key (below the namespace) of a key prefix of cached functions (raised by a broad
 * invalidation of exactly that prefix) or, with `entity`, of one entity under it (raised by a targeted
 * invalidation). JSON keeps the parts apart whatever characters they hold. Both keys of one prefix share
 * a Redis Cluster hash tag (`{...}`, the same text up to the first `}`), so a `cacheResult` hit reads its
 * two implicit stamps with one `MGET` on a cluster too.
 */
export function implicitStampKey(deploymentId: string | null, keyPrefix: string, entity?: string): string {
  const stamps = implicitStampBase(deploymentId, keyPrefix);
  return entity === undefined ? stamps.prefix : stamps.entityBase + JSON.stringify(entity);
}

/**
 * The parts of {@link implicitStampKey} that depend on the key prefix only: the prefix's stamp key, and
 * the start of its entities' stamp keys (followed by the JSON of the entity).
 */
export function implicitStampBase(
  deploymentId: string | null,
  keyPrefix: string,
): { readonly prefix: string; readonly entityBase: string } {
  const slot = `{${JSON.stringify([deploymentId, keyPrefix])}}`;
  return { prefix: `${TAG_SEGMENT}p:${slot}`, entityBase: `${TAG_SEGMENT}e:${slot}:` };
}

/** The increment of `behavior` (validated). */
export function stampStep(behavior: unknown): number {
  if (behavior === undefined || behavior === 'expire') return EXPIRE_STEP;
  if (behavior === 'remove') return REMOVE_STEP;
  throw new CacheValidationError("invalidateTags: `behavior` must be 'expire' or 'remove'");
}

/** A stamp as read from the server (`null`: never raised, or an unreadable value: `-1`, never equal). */
export function parseStamp(raw: string | null): number {
  if (raw === null) return 0;
  const value = Number(raw);
  return Number.isSafeInteger(value) ? value : -1;
}

/**
 * Compare the stamps an entry recorded with the current ones (same order). See the module doc.
 */
export function compareStamps(recorded: readonly number[], current: readonly number[]): StampVerdict {
  let verdict: StampVerdict = 'fresh';
  for (let i = 0; i < recorded.length; i++) {
    const then = recorded[i] as number;
    const now = current[i] as number;
    if (now === then) continue;
    if (now < then || Math.floor(now / REMOVE_STEP) !== Math.floor(then / REMOVE_STEP)) return 'removed';
    verdict = 'expired';
  }
  return verdict;
}
