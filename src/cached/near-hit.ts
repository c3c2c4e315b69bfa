/**
 * Cached functions answered from the near cache (issue 20): with `nearCache` on, a call whose entry and
 * whose tags' stamps the near cache holds is judged from memory and, when fresh, answered at once, as a
 * near `get` is (no read, no in-flight entry, no promise chain).
 *
 * The judgement is the one a read makes (see `read-through.ts`, `CachedFunctions.entry`), on the same
 * data the read would get from the near cache: the entry's stored string, the stamps of the tags it
 * recorded, its remaining lifetime (the near cache answers `PTTL` from memory). Anything else (the key or
 * a stamp not held, a key known to be missing, a corrupt entry, a tag invalidated, a value past its TTL
 * or due for an eager refresh) is not answered here: the call reads as before, which fills the near cache
 * for the next one. Since the near cache drops an entry (or a stamp) on any writer's change, on expiry
 * and when its connection is in doubt, an entry answered here is one a read would have judged fresh.
 *
 * The stamps are looked up in the near cache once; later hits reuse that check while the near cache has
 * not changed at all since (no key invalidated, held or not, no entry kept or dropped, no reset: see
 * `NearCache.changes`) and none of those stamp entries has expired: they are then the very entries,
 * holding the very strings, the lookups would return.
 *
 * Decoding happens once per near entry: the decoded entry is kept with it (`Entry.derived`), so a changed
 * key (a new entry) is decoded afresh. Its value is, as for a near `get`, deeply frozen and shared by
 * every hit, or decoded afresh at every hit with `copyValues` or when it cannot be frozen (a `Date`,
 * `Map`, `Set`, a custom codec's class instance).
 *
 * @module
 */
import type { KeySpace } from '../keys.js';
import {
  deepFreeze,
  isFreezable,
  type NearCache,
  type Entry as NearEntry,
} from '../near-cache/near-cache.js';
import type { Resolved } from './call-options.js';
import { freshness } from './freshness.js';
import { type DecodedEntry, decodeEntry, type EntryStamps } from './result-codec.js';
import { parseStamp, storedStampKey } from './tags.js';

/** What cached functions need from the client's near cache (given when `nearCache` is on). @internal */
export interface NearHost {
  /** The client's near cache. */
  readonly cache: NearCache;
  /**
   * The key space of the current connection when a call may be answered from memory now (connected, not
   * a pooled connection), else `undefined` (the call then reads through the engine).
   */
  keys(): KeySpace | undefined;
  /**
   * Count and trace a public call answered from memory at once (one call with `hits` and `misses` in
   * `stats().operations[operation]`, one span with the same events as any operation, all published now:
   * no promise hop), as a near `get` hit is.
   */
  answered(operation: string, keys: number, hits: number, misses: number): void;
}

/** {@link nearFresh}'s answer when the near cache cannot answer the call: read it as before. @internal */
export const NOT_HELD: unique symbol = Symbol('not held');

/** What a cached function made of a near entry's stored string (kept in `Entry.derived`). */
interface Derived {
  /** Decoded with the typed codec (else the client's). */
  readonly typed: boolean;
  /** The decoded entry; its value deeply frozen when {@link Derived.shared}. */
  readonly decoded: DecodedEntry;
  /** Whether hits share `decoded.value` (else each decodes afresh). */
  readonly shared: boolean;
  /** The recorded stamps' full keys, for the namespace {@link Derived.namespace}. */
  stampKeys: readonly string[] | undefined;
  namespace: string | undefined;
  /**
   * The near cache's {@link NearCache.changes} when the stamps were last found held and unchanged (`-1`:
   * never): while it has not moved, they still are, until {@link Derived.stampsUntil}.
   */
  stampsAt: number;
  /** The earliest `expiresAt` of the stamps' entries at that check. */
  stampsUntil: number;
}

/** A raw entry decoded as a read decodes it (`typed`: the typed codec, else the client's `decode`). */
export function decodeRaw(raw: string, typed: boolean, decode: (raw: string) => unknown): DecodedEntry {
  return typed ? decodeEntry(raw, decode) : { value: decode(raw) };
}

/**
 * The decoded form of `entry` (held by `cache`, its stored string `raw`), made once per entry: its value
 * deeply frozen and shared by every hit, unless `copyValues` or the value cannot be frozen (then decoded
 * afresh, as a near `get` does).
 * @throws what decoding throws (a corrupt entry).
 */
export function decodedAt(
  cache: NearCache,
  entry: NearEntry,
  raw: string,
  typed: boolean,
  decode: (raw: string) => unknown,
): DecodedEntry {
  return derivedOf(cache, entry, raw, typed, decode).decoded;
}

function derivedOf(
  cache: NearCache,
  entry: NearEntry,
  raw: string,
  typed: boolean,
  decode: (raw: string) => unknown,
): Derived {
  const known = entry.derived;
  if (!typed) {
    // The client's codec: the value a near `get` of the key returns (shared and frozen, or a copy).
    const value = cache.valueOf(entry);
    if (typeof known === 'object' && known !== null && (known as Derived).decoded.value === value)
      return known as Derived;
    return keep(entry, typed, { value }, true);
  }
  if (typeof known === 'object' && known !== null && (known as Derived).typed === typed) {
    const derived = known as Derived;
    return derived.shared && !cache.copyValues
      ? derived
      : { ...derived, decoded: decodeRaw(raw, typed, decode) };
  }
  const decoded = decodeRaw(raw, typed, decode);
  // With copyValues the entry is kept for its metadata only: every hit decodes its value afresh.
  if (cache.copyValues) return keep(entry, typed, decoded, false);
  const shared = isFreezable(decoded.value);
  if (shared) deepFreeze(decoded.value);
  return keep(entry, typed, decoded, shared);
}

/** Keep a new {@link Derived} of `decoded` in `entry` (stamps not checked yet) and return it. */
function keep(entry: NearEntry, typed: boolean, decoded: DecodedEntry, shared: boolean): Derived {
  const derived: Derived = {
    typed,
    decoded,
    shared,
    stampKeys: undefined,
    namespace: undefined,
    stampsAt: -1,
    stampsUntil: 0,
  };
  entry.derived = derived;
  return derived;
}

/** The stamp a near entry of a stamp key holds (parsed once per entry). */
function stampOf(entry: NearEntry): number {
  const known = entry.derived;
  if (typeof known === 'number') return known;
  const stamp = parseStamp(entry.raw);
  entry.derived = stamp;
  return stamp;
}

/**
 * Whether the near cache holds the stamps `recorded` (the entry's, decoded in `derived`) unchanged.
 * Looked up once, then again only once the near cache changed (see {@link NearCache.changes}) or the
 * earliest of their entries expired: until then they are the same entries, holding the same strings.
 */
function stampsHeld(
  cache: NearCache,
  ks: KeySpace,
  derived: Derived,
  recorded: EntryStamps,
  now: number,
): boolean {
  const changes = cache.changes;
  if (derived.stampsAt === changes && now < derived.stampsUntil && derived.namespace === ks.namespace)
    return true;
  let stampKeys = derived.stampKeys;
  if (stampKeys === undefined || derived.namespace !== ks.namespace) {
    stampKeys = recorded.map(([stampKey]) => storedStampKey(ks, stampKey));
    derived.stampKeys = stampKeys;
    derived.namespace = ks.namespace;
  }
  let until = Number.POSITIVE_INFINITY;
  for (let i = 0; i < recorded.length; i++) {
    const held = cache.held(stampKeys[i] as string, now);
    // Not held: read it. Moved (any invalidation since the fill started): the read judges it.
    if (held === undefined || stampOf(held) !== (recorded[i] as readonly [string, number])[1]) {
      derived.stampsAt = -1;
      return false;
    }
    if (held.expiresAt < until) until = held.expiresAt;
  }
  derived.stampsAt = changes;
  derived.stampsUntil = until;
  return true;
}

/**
 * The value of a call on `key` (below the namespace) when the near cache answers it: its entry and the
 * stamps of the tags the entry recorded are held, the stamps unchanged, and the entry fresh (by its own
 * TTL and grace when its factory set them, else `o`'s; no eager refresh due). The hit is counted in the
 * near cache's stats (one per key looked up: the entry and its stamps). {@link NOT_HELD} otherwise
 * (nothing counted): the call reads as before.
 * @param decode - the client's codec.
 * @param now - `performance.now()`, read once for the call.
 */
export function nearFresh(
  near: NearHost,
  key: string,
  o: Resolved,
  decode: (raw: string) => unknown,
  now: number,
): unknown {
  const ks = near.keys();
  if (ks === undefined) return NOT_HELD;
  const cache = near.cache;
  const entry = cache.held(ks.key(key), now);
  if (entry === undefined) return NOT_HELD;
  const raw = entry.raw;
  if (raw === null) return NOT_HELD; // known missing: a miss fills it
  let derived: Derived;
  try {
    derived = derivedOf(cache, entry, raw, o.typed, decode);
  } catch {
    return NOT_HELD; // corrupt: the read makes it a miss, its fill overwrites it
  }
  const { value, meta } = derived.decoded;
  let keys = 1;
  let grace = o.grace;
  let ttl = o.ttl;
  if (meta !== undefined) {
    const recorded = meta.stamps;
    if (recorded !== undefined && recorded.length > 0) {
      if (!stampsHeld(cache, ks, derived, recorded, now)) return NOT_HELD;
      keys += recorded.length;
    }
    if (meta.grace !== undefined) grace = meta.grace;
    if (meta.ttl !== undefined) ttl = meta.ttl;
  }
  if (
    (grace > 0 || o.eagerRefresh > 0) &&
    freshness(cache.remaining(entry, now), ttl, grace, o.eagerRefresh) !== 'fresh'
  )
    return NOT_HELD;
  cache.countHits(keys);
  return value;
}
