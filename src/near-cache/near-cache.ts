/**
 * The near cache: stored values of hot keys kept in process memory (an LRU from `lru-cache`), served
 * without a round trip, and kept correct by the server's invalidations (see `tracking.ts`).
 *
 * Correctness rules, each enforced here:
 * - A read fills the cache only when no invalidation of its key (from the server or from an own write)
 *   and no reset happened while it was in flight: every miss takes a {@link Ticket} that an invalidation
 *   of its key, or a reset, marks stale.
 * - Own writes invalidate their keys when they are sent and again when they settle.
 * - A lost, failed or replaced connection, a server flush or a topology change resets the cache: entries
 *   are dropped and reads in flight do not fill.
 * - A connection that dies silently (no FIN or RST: a partition, a frozen server) reports nothing, so a
 *   heartbeat PINGs every primary each {@link HEARTBEAT_MS}; nothing is served while the last confirmed
 *   round trip is older than {@link MAX_SILENCE_MS} (its reply came after every invalidation sent before
 *   it, on the same connection), and a failed PING resets the cache.
 * - An entry is never served past the key's TTL: a miss reads `PTTL` right after `GET` on the same
 *   connection, and the entry expires locally at (send time + PTTL), never later than the server's.
 * - Entries hold the stored (encoded) string. A hit returns, unless `copyValues`, one decoded value per
 *   entry, deeply frozen at its first hit (plain objects, arrays and primitives only; anything else a
 *   custom codec returns is decoded afresh on every hit), so no caller can change what others read.
 *   Cached functions answer their hits from the same entries (`src/cached/near-hit.ts`): what they make
 *   of an entry's string is kept with the entry ({@link Entry.derived}), under the same rule.
 *
 * @module
 */
import { LRUCache } from 'lru-cache';
import type { Engine } from '../engines/engine.js';
import { NearCacheEngine } from './engine.js';
import type { ResolvedNearCacheOptions } from './options.js';
import type { TrackingListener } from './tracking.js';

/** Counters of a near cache (field `nearCache` of the client's stats). */
export interface NearCacheStats {
  /** Keys held now. */
  readonly size: number;
  /**
   * Bytes held now, as counted for `maxBytes` (2 per UTF-16 code unit of key and value, +64 per entry);
   * `0` when `maxBytes` is not set.
   */
  readonly bytes: number;
  /** Keys served from memory. */
  readonly hits: number;
  /** Keys read from the server (absent, expired, or not yet known). */
  readonly misses: number;
  /** Invalidations of single keys received from the server. */
  readonly invalidations: number;
  /** Times everything was dropped (lost connection, server flush, topology change). */
  readonly resets: number;
}

/** An entry of the near cache, as {@link NearCache.hit} returns it. */
export interface Entry {
  /** Stored string, or `null` for a key known to be missing. */
  readonly raw: string | null;
  /** `performance.now()` after which the entry is not served; `Infinity` for none. */
  readonly expiresAt: number;
  /**
   * `performance.now()` by which the key expires on the server at the latest known (send time of the
   * read + its PTTL: never later than the server's expiry); `-1` for a key without expiry.
   */
  readonly keyExpiresAt: number;
  /** The decoded, deeply frozen value shared by hits; {@link UNDECODED} or {@link UNSHAREABLE} until then. */
  value: unknown;
  /**
   * What a cached function made of {@link Entry.raw} (its decoded entry, see `src/cached/near-hit.ts`),
   * kept with the entry so that it is derived once per stored string: a changed key is a new entry.
   * `undefined` until then.
   */
  derived: unknown;
}

/** {@link Entry.value} before its first decode. */
const UNDECODED = Symbol('undecoded');
/** {@link Entry.value} of a value that cannot be frozen (a custom codec's class instance): decode each hit. */
const UNSHAREABLE = Symbol('unshareable');

/**
 * Whether `value` is made of primitives, plain objects and arrays only (so freezing makes it immutable).
 * Cycles (a custom codec may build them) are followed once.
 */
export function isFreezable(value: unknown, seen = new Set<object>()): boolean {
  if (typeof value !== 'object' || value === null) return typeof value !== 'function';
  if (seen.has(value)) return true;
  seen.add(value);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) return false;
  for (const key of Object.keys(value)) {
    if (!isFreezable((value as Record<string, unknown>)[key], seen)) return false;
  }
  return true;
}

/** Freeze `value` and everything it holds (checked by {@link isFreezable} first). */
export function deepFreeze(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

/** A read in flight for one key: stale once its key is invalidated or the cache is reset. */
interface Ticket {
  readers: number;
  stale: boolean;
  readonly epoch: number;
}

/** Interval of the heartbeat PING, in milliseconds. */
export const HEARTBEAT_MS = 1000;
/** Entries are served only while the last confirmed PING was sent at most this long ago, in milliseconds. */
export const MAX_SILENCE_MS = 3000;

/** Bytes counted per entry besides its key and value. */
const ENTRY_OVERHEAD_BYTES = 64;

/** Near cache of one client. Also the {@link TrackingListener} of its engine. */
export class NearCache implements TrackingListener {
  readonly #lru: LRUCache<string, Entry>;
  readonly #ttlMs: number;
  readonly #copyValues: boolean;
  readonly #decode: (raw: string) => unknown;
  readonly #pending = new Map<string, Ticket>();
  #epoch = 0;
  /** See {@link NearCache.changes}. */
  #changes = 0;
  /** The engine the heartbeat pings, while attached. */
  #engine: Engine | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #pinging = false;
  /** `performance.now()` when the last PING that succeeded was sent. */
  #confirmedAt = Number.NEGATIVE_INFINITY;
  #hits = 0;
  #misses = 0;
  #invalidations = 0;
  #resets = 0;

  /**
   * @param options - validated `nearCache` option.
   * @param decode - the client's codec (decodes a stored string).
   */
  constructor(options: ResolvedNearCacheOptions, decode: (raw: string) => unknown) {
    this.#ttlMs = options.ttlMs ?? Number.POSITIVE_INFINITY;
    this.#copyValues = options.copyValues;
    this.#decode = decode;
    this.#lru = new LRUCache<string, Entry>({
      max: options.maxEntries,
      ...(options.maxBytes === undefined
        ? {}
        : {
            maxSize: options.maxBytes,
            sizeCalculation: (entry: Entry, key: string) =>
              2 * (key.length + (entry.raw?.length ?? 0)) + ENTRY_OVERHEAD_BYTES,
          }),
    });
  }

  /** The entry of `key` when it may be served, counting a hit or a miss. */
  #lookup(key: string): Entry | undefined {
    const entry = this.#lru.get(key);
    if (entry !== undefined) {
      const now = performance.now();
      if (entry.expiresAt > now && now - this.#confirmedAt <= MAX_SILENCE_MS) {
        this.#hits++;
        return entry;
      }
      this.#changes++;
      this.#lru.delete(key);
    }
    this.#misses++;
    return undefined;
  }

  #begin(key: string): Ticket {
    let ticket = this.#pending.get(key);
    if (ticket === undefined) {
      ticket = { readers: 0, stale: false, epoch: this.#epoch };
      this.#pending.set(key, ticket);
    }
    ticket.readers++;
    return ticket;
  }

  #end(key: string, ticket: Ticket): void {
    if (--ticket.readers === 0 && this.#pending.get(key) === ticket) this.#pending.delete(key);
  }

  /** Keep what a read returned, unless its key changed (or the cache was reset) meanwhile. */
  #fill(key: string, ticket: Ticket, raw: string | null, pttl: number, sentAt: number): void {
    if (ticket.stale || ticket.epoch !== this.#epoch) return;
    // A key written or deleted between GET and PTTL (its invalidation is on its way), or expiring now.
    if ((pttl === -2) !== (raw === null) || pttl === 0) return;
    // The server evaluated PTTL after `sentAt`: the key lives at least until sentAt + pttl.
    this.#changes++; // a new entry (and maybe evictions)
    const expiresAt = pttl > 0 ? Math.min(sentAt + this.#ttlMs, sentAt + pttl) : sentAt + this.#ttlMs;
    this.#lru.set(key, {
      raw,
      expiresAt,
      keyExpiresAt: pttl > 0 ? sentAt + pttl : -1,
      value: UNDECODED,
      derived: undefined,
    });
  }

  /**
   * The value to return for `raw`, just read at `key` (through {@link NearCache.get} or `mget`): the
   * entry's shared frozen value when `raw` is what the entry holds, else `raw` decoded afresh.
   */
  value(key: string, raw: string): unknown {
    if (this.#copyValues) return this.#decode(raw);
    const entry = this.#lru.peek(key);
    if (entry === undefined || entry.raw !== raw) return this.#decode(raw);
    return this.#shared(entry, raw);
  }

  /**
   * `PTTL key` from memory when the key is held and may be served (no hit or miss counted): its remaining
   * lifetime in milliseconds, at most the server's (the read's send time + the PTTL it returned, minus
   * now: the server evaluated it later), `-1` without expiry, `-2` for a key known to be missing;
   * `undefined` when not held (ask the server). Cached functions judge grace and eager refresh with it,
   * so a hit needs no PTTL round trip. A change of the key's expiry by anyone is invalidated like a write.
   */
  pttl(key: string): number | undefined {
    const entry = this.#lru.peek(key);
    if (entry === undefined) return undefined;
    const now = performance.now();
    if (entry.expiresAt <= now || now - this.#confirmedAt > MAX_SILENCE_MS) return undefined;
    if (entry.raw === null) return -2;
    if (entry.keyExpiresAt < 0) return -1;
    // At least 1: the entry is served, so the key still lives (a `0` would read as expiring now).
    return Math.max(1, Math.floor(entry.keyExpiresAt - now));
  }

  /**
   * The client's synchronous hit path: the entry of `key` when it may be served (a hit is counted), else
   * `undefined` with nothing counted (the read that follows through {@link NearCache.get} counts the
   * miss). Read its value with {@link NearCache.valueOf}.
   */
  hit(key: string): Entry | undefined {
    const entry = this.#lru.get(key);
    if (entry === undefined) return undefined;
    const now = performance.now();
    if (entry.expiresAt <= now || now - this.#confirmedAt > MAX_SILENCE_MS) return undefined;
    this.#hits++;
    return entry;
  }

  /**
   * Cached functions' synchronous hit path: the entry of `key` when it may be served (as
   * {@link NearCache.hit}), counting nothing: a call looks up its value and its tags' stamps, and counts
   * them with {@link NearCache.countHits} only when it answers from memory (else its read through
   * {@link NearCache.mget} counts them, once). `now`: `performance.now()`, read once per call by the caller.
   */
  held(key: string, now: number): Entry | undefined {
    const entry = this.#lru.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now || now - this.#confirmedAt > MAX_SILENCE_MS) return undefined;
    return entry;
  }

  /** Count `keys` hits: a cached function answered from entries {@link NearCache.held} returned. */
  countHits(keys: number): void {
    this.#hits += keys;
  }

  /**
   * The remaining lifetime of the key of `entry` (held: see {@link NearCache.held}), as
   * {@link NearCache.pttl} answers it at `now` (`performance.now()`): milliseconds (at least 1), `-1`
   * without expiry, `-2` for a key known to be missing.
   */
  remaining(entry: Entry, now: number): number {
    if (entry.raw === null) return -2;
    if (entry.keyExpiresAt < 0) return -1;
    return Math.max(1, Math.floor(entry.keyExpiresAt - now));
  }

  /** The entry of `key` when it holds exactly `raw` (a read just returned it), else `undefined`; nothing counted. */
  holding(key: string, raw: string): Entry | undefined {
    const entry = this.#lru.peek(key);
    return entry !== undefined && entry.raw === raw ? entry : undefined;
  }

  /**
   * A count that moves whenever the cache's entries may have changed: a key invalidated (by the server,
   * held or not, or by an own write), a read kept (a new entry, maybe evicting others), a reset. While it
   * has not moved, the entries {@link NearCache.held} returned are still held with the same strings until
   * their `expiresAt` (and while the silence bound holds), so a caller may skip looking them up again
   * (cached functions: the stamps of an entry's tags, see `src/cached/near-hit.ts`).
   */
  get changes(): number {
    return this.#changes;
  }

  /** `copyValues`: every hit decodes its value afresh (no shared frozen value). */
  get copyValues(): boolean {
    return this.#copyValues;
  }

  /**
   * The value to return for a hit on `entry` (see {@link NearCache.value}); `null` for a key known to be
   * missing.
   */
  valueOf(entry: Entry): unknown {
    const raw = entry.raw;
    if (raw === null) return null;
    return this.#copyValues ? this.#decode(raw) : this.#shared(entry, raw);
  }

  /** The entry's shared, deeply frozen value (decoded at its first hit), or `raw` decoded afresh. */
  #shared(entry: Entry, raw: string): unknown {
    if (entry.value === UNSHAREABLE) return this.#decode(raw);
    if (entry.value !== UNDECODED) return entry.value;
    const value = this.#decode(raw);
    if (!isFreezable(value)) {
      entry.value = UNSHAREABLE;
      return value;
    }
    entry.value = deepFreeze(value);
    return value;
  }

  /**
   * `GET key` through the near cache: a hit resolves at once; a miss reads the value and its PTTL (same
   * connection, in that order) and fills the cache.
   */
  get(engine: Engine, key: string): Promise<string | null> {
    const entry = this.#lookup(key);
    if (entry !== undefined) return Promise.resolve(entry.raw);
    const ticket = this.#begin(key);
    const sentAt = performance.now();
    let read: Promise<[string | null, number]>;
    try {
      read = Promise.all([engine.get(key), engine.pttl(key)]);
    } catch (err) {
      this.#end(key, ticket);
      return Promise.reject(err);
    }
    return read.then(
      ([raw, pttl]) => {
        this.#fill(key, ticket, raw, pttl, sentAt);
        this.#end(key, ticket);
        return raw;
      },
      (err: unknown) => {
        this.#end(key, ticket);
        throw err;
      },
    );
  }

  /** `MGET keys` through the near cache: hits from memory, one MGET (and a PTTL per key) for the rest. */
  mget(engine: Engine, keys: readonly string[]): Promise<(string | null)[]> {
    const values = new Array<string | null>(keys.length);
    const missing: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const entry = this.#lookup(keys[i] as string);
      if (entry === undefined) missing.push(i);
      else values[i] = entry.raw;
    }
    if (missing.length === 0) return Promise.resolve(values);
    const missKeys = missing.map((i) => keys[i] as string);
    const tickets = missKeys.map((key) => this.#begin(key));
    const sentAt = performance.now();
    const release = () => {
      for (let j = 0; j < missKeys.length; j++) this.#end(missKeys[j] as string, tickets[j] as Ticket);
    };
    let read: Promise<[(string | null)[], number[]]>;
    try {
      read = Promise.all([engine.mget(missKeys), Promise.all(missKeys.map((key) => engine.pttl(key)))]);
    } catch (err) {
      release();
      return Promise.reject(err);
    }
    return read.then(
      ([raws, pttls]) => {
        for (let j = 0; j < missKeys.length; j++) {
          const raw = raws[j] ?? null;
          this.#fill(missKeys[j] as string, tickets[j] as Ticket, raw, pttls[j] as number, sentAt);
          values[missing[j] as number] = raw;
        }
        release();
        return values;
      },
      (err: unknown) => {
        release();
        throw err;
      },
    );
  }

  /**
   * An own write of `keys` was just sent as `reply`: invalidate them now and again once it settles.
   * @returns `reply`'s outcome.
   */
  written<T>(keys: readonly string[], reply: Promise<T>): Promise<T> {
    this.#drop(keys);
    return reply.then(
      (value) => {
        this.#drop(keys);
        return value;
      },
      (err: unknown) => {
        this.#drop(keys);
        throw err;
      },
    );
  }

  #drop(keys: readonly string[]): void {
    for (const key of keys) this.#forget(key);
  }

  #forget(key: string): void {
    this.#changes++;
    this.#lru.delete(key);
    const ticket = this.#pending.get(key);
    if (ticket !== undefined) {
      ticket.stale = true;
      this.#pending.delete(key);
    }
  }

  /** {@inheritDoc TrackingListener.invalidate} */
  invalidate(key: string): void {
    this.#invalidations++;
    this.#forget(key);
  }

  /** {@inheritDoc TrackingListener.reset} */
  reset(): void {
    this.#resets++;
    this.#epoch++;
    this.#changes++;
    this.#pending.clear();
    this.#lru.clear();
  }

  /**
   * Start serving for `engine` (its tracking listener must already be this cache): drop everything and
   * start the heartbeat (an unref'd timer; the first PING goes out at once). Until that PING returns, the
   * silence bound counts from now: no entry can predate the connection, and if the connection dies
   * silently before answering, serving stops {@link MAX_SILENCE_MS} from now, as it would later on.
   */
  attach(engine: Engine): void {
    this.reset();
    this.#engine = engine;
    this.#confirmedAt = performance.now();
    this.#pinging = false;
    clearInterval(this.#heartbeat);
    this.#heartbeat = setInterval(() => this.#ping(), HEARTBEAT_MS);
    this.#heartbeat.unref();
    this.#ping();
  }

  /** Stop serving for `engine` (closed): drop everything, stop the heartbeat. */
  detach(engine: Engine): void {
    if (this.#engine !== engine) return;
    this.reset();
    this.#engine = undefined;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #ping(): void {
    const engine = this.#engine;
    if (engine === undefined || this.#pinging) return;
    this.#pinging = true;
    const sentAt = performance.now();
    engine.ping().then(
      () => {
        this.#pinging = false;
        if (this.#engine === engine) this.#confirmedAt = Math.max(this.#confirmedAt, sentAt);
      },
      () => {
        this.#pinging = false;
        if (this.#engine === engine) this.reset();
      },
    );
  }

  /** A snapshot of the counters. */
  stats(): NearCacheStats {
    return {
      size: this.#lru.size,
      bytes: this.#lru.calculatedSize,
      hits: this.#hits,
      misses: this.#misses,
      invalidations: this.#invalidations,
      resets: this.#resets,
    };
  }
}

/**
 * The engine a client uses: `engine` itself when the near cache is off (`near` undefined) or the engine
 * cannot track (memory), else `engine` behind `near` (which becomes its tracking listener).
 */
export function withNearCache(near: NearCache | undefined, engine: Engine): Engine {
  if (near === undefined || engine.track === undefined) return engine;
  engine.track(near);
  near.attach(engine);
  return new NearCacheEngine(engine, near);
}
