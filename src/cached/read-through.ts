/**
 * Cached functions: `getOrSet` (read-through with stampede protection and grace), `cacheResult` (a
 * function whose results are cached under Python's key layout) and `invalidate`. The client only wires
 * these in (see {@link CachedHost}); engines provide the conditional writes (`setIfAbsent`,
 * `deleteIfEquals`) and `pttl`.
 *
 * A call on a key:
 * 1. `Cache-Control` bypass (`cacheControl`): run the function, read and store nothing.
 * 2. The breaker is open (the cache failed less than `breakerMs` ago): serve the in-process fallback or
 *    run the function, without touching the cache.
 * 3. Concurrent calls of this process on the same key share one promise (one read, one factory run).
 * 4. Fresh value: return it. Stale value within grace: return it and refresh in the background (one
 *    refresh across processes, through the lock); with `timeoutMs`, wait that long for the refresh first.
 * 5. Miss: take the lock (`SET NX PX`) and run the factory, store, release; or wait for the owner by
 *    polling (5 ms doubling to 100 ms), at most `lockTimeoutMs`, then run the factory without the lock.
 *
 * Grace layout: an entry with grace is stored with a TTL of `ttl + grace` and is fresh while its
 * remaining TTL (`PTTL`) exceeds `grace`. Nothing is added to the value, so grace never changes what a
 * plain `get` of the key returns.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Engine } from '../engines/engine.js';
import { CacheConnectionError, CacheError, CacheFactoryError, CacheValidationError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import { validateKey } from '../keys.js';
import type { CacheLogger } from '../logger.js';
import { checkOptionNames } from '../options.js';
import { CircuitBreaker, DEFAULT_BREAKER_MS } from './breaker.js';
import { cacheControlDecision } from './cache-control.js';
// tags: tag stamps, entry metadata and invalidation live in their own modules
import { type EntryRead, readEntry, readStamps, withoutStamps, withStamps } from './entry-meta.js';
import { FillTickets } from './fill-tickets.js';
import { type InvalidateCallOptions, Invalidation, implicitStampKeys } from './invalidation.js';
import {
  DEFAULT_KEY_PREFIX,
  entityText,
  functionIdentity,
  type InvalidateOptions,
  resultKey,
} from './keys.js';
import { FAILURE_MARK_MS, FIRST_POLL_MS, failureMark, lockKey, lockState, nextPoll } from './lock.js';
import { CACHE_RESULT_OPTIONS, FALLBACK_OPTIONS, GET_OR_SET_OPTIONS } from './option-names.js';
import { decodeResult, encodeResult } from './result-codec.js';
import { CachedFunctionCounters, type CachedFunctionStats } from './stats.js';
import { type InvalidateTagsOptions, tagStampKeys } from './tags.js';

/** Default TTL of cached values, in seconds (Python's default). */
export const DEFAULT_TTL = 3600;
/** Default longest wait for another caller's factory, in milliseconds. */
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
/** Default entries of the in-process fallback. */
export const DEFAULT_FALLBACK_ENTRIES = 1000;
/** Largest TTL (plus grace) accepted, in seconds (as for `set`). */
const MAX_TTL = 2 ** 32;

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

/** Options of {@link CacheClient.getOrSet}. */
export interface GetOrSetOptions {
  /**
   * Seconds a stored value is fresh.
   * @default 3600
   */
  ttl?: number;
  /**
   * Seconds a value past its TTL may still be served while one background refresh runs (across
   * processes). A refresh failure keeps the stale value until the grace ends; it is reported through
   * the client's logger and `stats()`, never thrown at the caller.
   * @default 0 (no grace)
   */
  grace?: number;
  /**
   * With a stale value (grace), wait at most this many milliseconds for the refresh before returning the
   * stale value; the refresh goes on in the background.
   * @default 0 (serve the stale value at once)
   */
  timeoutMs?: number;
  /**
   * Longest wait, in milliseconds, for a factory run by another caller (another process holds the lock);
   * then this caller runs the factory itself. Never waits longer.
   * @default 10000
   */
  lockTimeoutMs?: number;
  /**
   * Lifetime of the lock key in milliseconds: how long a dead owner blocks the key at most.
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
   * Milliseconds the cache is skipped after it failed (the circuit breaker; shared by the client's
   * cached functions).
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
   * `'client'` uses the client's codec, so a plain `get` (or Python) reads the same value.
   * @default 'typed'
   */
  codec?: 'typed' | 'client';
  /**
   * Tags of the value (`'typed'` codec only): `invalidateTags` of any of them makes it stale or removed
   * in every process, whatever was stored when. At most 64 non-empty strings. See docs/cached-functions.md.
   * @default none
   */
  tags?: readonly string[]; // tags:
}

/** Options of {@link CacheClient.cacheResult}: those of {@link GetOrSetOptions} plus the key's parts. */
export interface CacheResultOptions<A extends unknown[]>
  extends Omit<GetOrSetOptions, 'cacheControl' | 'tags'> {
  /** Tags of a call's result: a list, or a function of the arguments (see {@link GetOrSetOptions.tags}). */
  tags?: readonly string[] | ((...args: A) => readonly string[]); // tags:
  /**
   * Second segment of the key (after the deployment id), the unit of broad invalidation.
   * @default 'cached'
   */
  keyPrefix?: string;
  /**
   * Entity of a call, from its arguments: the key gets `:<entityId>` after the prefix, so
   * `invalidate({ entityId, targetedPatterns: [keyPrefix] })` clears it. `null`/`undefined`: none.
   */
  entityId?: (...args: A) => string | number | bigint | null | undefined;
  /**
   * Custom key (below `<deploymentId>:`) of a call, replacing `<keyPrefix>[:<entityId>]:<digest>`.
   */
  key?: (...args: A) => string;
  /** The `Cache-Control` value of a call (see {@link GetOrSetOptions.cacheControl}). */
  cacheControl?: (...args: A) => string | null | undefined;
  /**
   * The function's name in its identity (the digest also covers its source).
   * @default `fn.name`
   */
  name?: string;
}

/** What cached functions need from their client. @internal */
export interface CachedHost {
  /** Run engine I/O as the client operation `operation` (connection, namespace, error mapping). */
  run<V>(operation: string, body: (engine: Engine, ks: KeySpace) => Promise<V>): Promise<V>;
  /** The client's `flushByPattern`. */
  flushByPattern(pattern: string): Promise<number>;
  /** The client's codec (for `codec: 'client'` and for entries not written by cached functions). */
  encode(value: unknown): string;
  /** See {@link CachedHost.encode}. */
  decode(raw: string): unknown;
  /** `encoded`, or a {@link CacheValidationError} when it is larger than the client's `maxValueBytes`. */
  checkSize(encoded: string): string;
  /** Whether the client was closed (calls then reject instead of running the factory uncached). */
  closed(): boolean;
  /** The current additional prefix (part of the in-process identity of a key). */
  prefix(): string | null;
  readonly logger: CacheLogger;
  readonly deploymentId: string | null;
}

interface Resolved {
  ttl: number;
  grace: number;
  timeoutMs: number;
  lockTimeoutMs: number;
  lockTtlMs: number;
  breakerMs: number;
  fallback: LRUCache<string, string> | undefined;
  fallbackTtlMs: number;
  typed: boolean;
  /** tags: stamp keys (below the namespace) of the entry's tags, implicit ones included. */
  tagKeys: readonly string[];
}

type Factory<T> = () => T | Promise<T>;

function integer(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new CacheValidationError(
      `The \`${name}\` option must be an integer from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`,
    );
  }
  return value;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `err` is the cache failing (as opposed to bad input or the factory's own error). */
function isCacheFailure(err: unknown): boolean {
  return err instanceof CacheError && !(err instanceof CacheValidationError);
}

/** A short, value-free description of an error for a warning. */
function describe(err: unknown): string {
  if (err instanceof CacheError) return err.message;
  return err instanceof Error ? err.name : typeof err;
}

/**
 * The cached functions of one client. Holds the in-process state: calls in flight, the breaker, the
 * fallback LRUs and the counters.
 */
export class CachedFunctions {
  readonly #host: CachedHost;
  readonly #inflight = new Map<string, Promise<unknown>>();
  readonly #refreshing = new Map<string, Promise<unknown>>();
  readonly #fallbacks = new Map<number, LRUCache<string, string>>();
  readonly #breaker = new CircuitBreaker();
  readonly #counters = new CachedFunctionCounters();
  readonly #invalidation: Invalidation; // tags:
  readonly #tickets = new FillTickets(); // tags: delete/flush here win over running fills
  /** Fill locks this client may hold: owner token -> stored lock key (released by {@link close}). */
  readonly #held = new Map<string, string>();
  #closing = false;

  /** @param host - the client's side (see {@link CachedHost}). */
  constructor(host: CachedHost) {
    this.#host = host;
    // tags: after an invalidation here, later callers do not join a call already in flight (any key:
    // which tags a call's entry has is only known once it is read, so every call is dropped)
    this.#invalidation = new Invalidation(host, this.#counters, () => this.#inflight.clear());
  }

  /**
   * Called by the client's `close()` before its connection closes: fills and background refreshes still
   * running are abandoned quietly. Their locks are released now (compare-and-delete with their tokens,
   * through `run`, which runs a body on the open connection), so other processes need not wait for the
   * locks to expire; when their factories finish, the result goes to the caller waiting for it (a
   * background refresh has none) and nothing is stored or logged. Never waits for a factory.
   */
  async close(run: (body: (engine: Engine) => Promise<unknown>) => Promise<unknown>): Promise<void> {
    this.#closing = true;
    const held = [...this.#held];
    this.#held.clear();
    await Promise.allSettled(
      held.map(([token, lock]) => run((engine) => engine.deleteIfEquals(lock, token))),
    );
  }

  /** A snapshot of the counters. */
  stats(): CachedFunctionStats {
    this.#counters.breakerTrips = this.#breaker.trips;
    return this.#counters.snapshot();
  }

  /** See {@link CacheClient.getOrSet}. */
  getOrSet<T>(key: string, factory: Factory<T>, options: GetOrSetOptions = {}): Promise<Awaited<T>> {
    let o: Resolved;
    let ttl: number | undefined;
    try {
      validateKey(key);
      if (typeof factory !== 'function') throw new CacheValidationError('getOrSet needs a factory function');
      o = this.#resolve(options, 'getOrSet');
      const decision = cacheControlDecision(options.cacheControl, o.ttl, MAX_TTL);
      ttl = decision.kind === 'cache' ? decision.ttl : undefined;
    } catch (err) {
      return Promise.reject(err);
    }
    if (ttl === undefined) {
      this.#counters.bypasses++;
      return this.#runFactory(factory);
    }
    return this.#call(key, factory, { ...o, ttl: Math.min(ttl, MAX_TTL) });
  }

  /** See {@link CacheClient.cacheResult}. */
  cacheResult<This, A extends unknown[], R>(
    fn: (this: This, ...args: A) => R,
    options: CacheResultOptions<A> = {},
  ): (this: This, ...args: A) => Promise<Awaited<R>> {
    if (typeof fn !== 'function') throw new CacheValidationError('cacheResult needs a function');
    if (options === null || typeof options !== 'object') {
      throw new CacheValidationError('The options must be an object');
    }
    checkOptionNames(options, CACHE_RESULT_OPTIONS, 'cacheResult');
    const { keyPrefix = DEFAULT_KEY_PREFIX, entityId, key, cacheControl, name, tags, ...rest } = options;
    if (typeof keyPrefix !== 'string' || keyPrefix === '') {
      throw new CacheValidationError('The `keyPrefix` option must be a non-empty string');
    }
    for (const [optionName, value] of Object.entries({ entityId, key, cacheControl })) {
      if (value !== undefined && typeof value !== 'function') {
        throw new CacheValidationError(`The \`${optionName}\` option must be a function of the arguments`);
      }
    }
    const base = this.#resolve(rest, null); // validated once, at wrap time
    const fixedTags = typeof tags === 'function' ? undefined : tagStampKeys(tags, 'cacheResult', base.typed); // tags:
    const identity = functionIdentity(fn as (...args: never[]) => unknown, name);
    const self = this;
    return function cached(this: This, ...args: A): Promise<Awaited<R>> {
      let stored: string;
      let ttl: number | undefined;
      let tagKeys: readonly string[] = []; // tags:
      try {
        const deployment = self.#host.deploymentId;
        if (key === undefined) {
          const entity = entityId === undefined ? null : entityText(entityId(...args));
          stored = resultKey(deployment, keyPrefix, entity, identity, args);
          if (base.typed) tagKeys = implicitStampKeys(deployment, keyPrefix, entity); // tags: invalidate() raises these
        } else {
          const custom = validateKey(key(...args));
          stored = deployment === null ? custom : `${deployment}:${custom}`;
        }
        const decision = cacheControlDecision(cacheControl?.(...args), base.ttl, MAX_TTL);
        ttl = decision.kind === 'cache' ? decision.ttl : undefined;
        // tags: the call's own tags after the implicit ones
        const own =
          fixedTags ?? tagStampKeys((tags as (...a: A) => unknown)(...args), 'cacheResult', base.typed);
        if (own.length > 0) tagKeys = [...tagKeys, ...own];
      } catch (err) {
        return Promise.reject(err);
      }
      if (ttl === undefined) {
        self.#counters.bypasses++;
        return self.#runFactory(() => fn.apply(this, args));
      }
      return self.#call(stored, () => fn.apply(this, args), {
        ...base,
        ttl: Math.min(ttl, MAX_TTL),
        tagKeys, // tags:
      });
    };
  }

  /** See {@link CacheClient.invalidate} (tags: logical first, then a coalesced physical SCAN; invalidation.ts). */
  invalidate(options: InvalidateOptions, call?: InvalidateCallOptions): Promise<number> {
    return this.#invalidation.invalidate(options, call);
  }

  /** See {@link CacheClient.invalidateTags}. */
  invalidateTags(tags: readonly string[], options?: InvalidateTagsOptions): Promise<void> {
    return this.#invalidation.invalidateTags(tags, options); // tags:
  }

  /**
   * tags: `delete`/`flush*` in this process: later calls on `keys` (below the namespace; `undefined`: every
   * key) do not join a call in flight, and running fills do not store their results.
   */
  forget(keys?: readonly string[]): void {
    const ids = keys?.map((key) => this.#id(key));
    for (const id of ids ?? [...this.#inflight.keys()]) this.#inflight.delete(id);
    this.#tickets.void(ids);
  }

  /** Resolves once no physical deletion of `invalidate` is running or queued (never rejects). */
  invalidationSettled(): Promise<void> {
    return this.#invalidation.settled(); // tags:
  }

  /** Validate and resolve options; `what` names the caller for unknown options (`null`: checked already). */
  #resolve(options: GetOrSetOptions, what: string | null): Resolved {
    if (options === null || typeof options !== 'object') {
      throw new CacheValidationError('The options must be an object');
    }
    if (what !== null) checkOptionNames(options, GET_OR_SET_OPTIONS, what);
    const ttl = integer(options.ttl ?? DEFAULT_TTL, 'ttl', 1, MAX_TTL);
    const grace = integer(options.grace ?? 0, 'grace', 0, MAX_TTL);
    const lockTimeoutMs = integer(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, 'lockTimeoutMs', 1);
    const codec = options.codec ?? 'typed';
    if (codec !== 'typed' && codec !== 'client') {
      throw new CacheValidationError("The `codec` option must be 'typed' or 'client'");
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
      fallback = this.#fallbacks.get(max);
      if (fallback === undefined) {
        fallback = new LRUCache<string, string>({ max, ttlAutopurge: false });
        this.#fallbacks.set(max, fallback);
      }
    }
    return {
      ttl,
      grace,
      timeoutMs: integer(options.timeoutMs ?? 0, 'timeoutMs', 0),
      lockTimeoutMs,
      lockTtlMs: integer(options.lockTtlMs ?? lockTimeoutMs, 'lockTtlMs', 1),
      breakerMs: integer(options.breakerMs ?? DEFAULT_BREAKER_MS, 'breakerMs', 0),
      fallback,
      fallbackTtlMs: (fallbackTtl ?? ttl) * 1000,
      typed: codec === 'typed',
      tagKeys: tagStampKeys(options.tags, what ?? 'getOrSet', codec === 'typed'), // tags:
    };
  }

  /** Run a factory as a call of its own (bypass): one run, errors go to the caller. */
  #runFactory<T>(factory: Factory<T>): Promise<Awaited<T>> {
    this.#counters.factoryRuns++;
    try {
      return Promise.resolve(factory()) as Promise<Awaited<T>>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Steps 2-5 of the module doc, with concurrent calls of this process on one key sharing a promise. */
  #call<T>(key: string, factory: Factory<T>, o: Resolved): Promise<Awaited<T>> {
    const id = this.#id(key);
    const pending = this.#inflight.get(id);
    if (pending !== undefined) {
      this.#counters.coalesced++;
      return pending as Promise<Awaited<T>>;
    }
    const call = this.#load(id, key, factory, o);
    this.#inflight.set(id, call);
    // A side chain (it never rejects) so the caller's promise has no extra hop.
    call.then(
      () => this.#landed(id, call),
      () => this.#landed(id, call),
    );
    return call;
  }

  /** The in-process identity of `key` (the additional prefix is part of it). */
  #id(key: string): string {
    return `${this.#host.prefix() ?? ''}\u0000${key}`;
  }

  #landed(id: string, call: Promise<unknown>): void {
    if (this.#inflight.get(id) === call) this.#inflight.delete(id);
  }

  /** Steps 2-5 for one key; the hit path is one `.then` after the read (no async frames). */
  #load<T>(id: string, key: string, factory: Factory<T>, o: Resolved): Promise<Awaited<T>> {
    if (this.#host.closed()) {
      return Promise.reject(new CacheConnectionError('getOrSet failed: the client is closed'));
    }
    if (this.#breaker.isOpen()) {
      this.#counters.breakerSkips++;
      return this.#withoutCache(id, factory, o);
    }
    return this.#read(key, o).then(
      (entry) => {
        if (entry !== null && !entry.stale) {
          this.#counters.hits++;
          return entry.value as Awaited<T>;
        }
        if (entry !== null) return this.#serveStale(id, key, factory, o, entry.value as Awaited<T>);
        this.#counters.misses++;
        return this.#fill(id, key, factory, o);
      },
      (err: unknown) => {
        if (!isCacheFailure(err) || this.#host.closed()) throw err;
        this.#cacheFailed(err, o);
        return this.#withoutCache(id, factory, o);
      },
    );
  }

  /** A stale value within its grace: start the refresh; serve the value now or after `timeoutMs`. */
  async #serveStale<T>(
    id: string,
    key: string,
    factory: Factory<T>,
    o: Resolved,
    value: Awaited<T>,
  ): Promise<Awaited<T>> {
    this.#counters.staleServed++;
    const refresh = this.#refresh(id, key, factory, o);
    if (o.timeoutMs === 0) return value;
    let timer: NodeJS.Timeout | undefined;
    const stale = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), o.timeoutMs);
    });
    const fresh = await Promise.race([refresh, stale]).finally(() => clearTimeout(timer));
    return fresh === undefined ? value : (fresh.value as Awaited<T>);
  }

  /** The entry at `key`: `null` when missing (or unreadable), else its value and whether it is stale. */
  #read(key: string, o: Resolved): Promise<{ value: unknown; stale: boolean } | null> {
    // tags: the value and its tags' stamps in one read (entry-meta.ts)
    return this.#host.run('getOrSet', (engine, ks) =>
      readEntry(engine, ks, ks.key(key), o.tagKeys, o.grace > 0, o.typed).then((read) =>
        this.#entry(read, o),
      ),
    );
  }

  #entry({ raw, pttl, verdict }: EntryRead, o: Resolved): { value: unknown; stale: boolean } | null {
    // tags: removed by a tag = a miss; expired by a tag = stale (a miss without grace)
    if (raw === null || verdict === 'removed' || (verdict === 'expired' && o.grace === 0)) return null;
    let value: unknown;
    try {
      value = this.#decode(raw, o);
    } catch {
      return null; // a corrupt entry is a miss; the fill overwrites it
    }
    return { value, stale: verdict === 'expired' || (pttl >= 0 && pttl <= o.grace * 1000) };
  }

  #decode(raw: string, o: Resolved): unknown {
    // tags: a tagged entry (e.g. kept by the fallback) decodes without its metadata
    return o.typed
      ? decodeResult(withoutStamps(raw), (text) => this.#host.decode(text))
      : this.#host.decode(raw);
  }

  /** Fill a missing value: take the lock and run the factory, or wait for the lock's owner. */
  async #fill<T>(id: string, key: string, factory: Factory<T>, o: Resolved): Promise<Awaited<T>> {
    const token = randomUUID();
    const deadline = performance.now() + o.lockTimeoutMs;
    const waitingSince = Date.now();
    let waited = false;
    let delay = FIRST_POLL_MS;
    for (;;) {
      let acquired: boolean;
      try {
        acquired = await this.#acquire(key, token, o);
      } catch (err) {
        if (!isCacheFailure(err) || this.#host.closed()) throw err;
        this.#cacheFailed(err, o);
        return this.#withoutCache(id, factory, o);
      }
      if (acquired) {
        const current = await this.#recheck(key, o, token);
        if (current !== undefined) return current.value as Awaited<T>;
        return this.#produce(id, key, factory, o, token);
      }
      if (!waited) {
        waited = true;
        this.#counters.lockWaits++;
      }
      // Wait for the owner: poll the value and the lock until the value appears, the lock is free, the
      // owner fails, or the bound passes.
      for (;;) {
        const left = deadline - performance.now();
        if (left <= 0) {
          this.#counters.lockTimeouts++;
          return this.#produce(id, key, factory, o, null);
        }
        await sleep(Math.min(delay, left));
        delay = nextPoll(delay);
        let polled: { found: boolean; value?: unknown; owner: string | null };
        try {
          polled = await this.#host.run('getOrSet', async (engine, ks) => {
            const [read, owner] = await Promise.all([
              readEntry(engine, ks, ks.key(key), o.tagKeys, false, o.typed), // tags: an invalidated value is not found
              engine.get(ks.key(lockKey(key))),
            ]);
            const raw = read.verdict === 'fresh' ? read.raw : null;
            if (raw !== null) {
              try {
                return { found: true, value: this.#decode(raw, o), owner };
              } catch {
                // corrupt: keep waiting for the owner's value
              }
            }
            return { found: false, owner };
          });
        } catch (err) {
          if (!isCacheFailure(err) || this.#host.closed()) throw err;
          this.#cacheFailed(err, o);
          return this.#withoutCache(id, factory, o);
        }
        if (polled.found) return polled.value as Awaited<T>;
        const state = lockState(polled.owner, waitingSince);
        if (state === 'failed') {
          throw new CacheFactoryError(
            `getOrSet failed: the factory of another process failed while this call waited for it`,
          );
        }
        if (state === 'free') {
          // A failure mark left before this call started waiting: remove it, then take the lock.
          const mark = polled.owner;
          if (mark !== null) {
            await this.#host
              .run('getOrSet', (engine, ks) => engine.deleteIfEquals(ks.key(lockKey(key)), mark))
              .catch(() => undefined); // the next attempt reports a failing cache
          }
          break;
        }
      }
    }
  }

  /**
   * Run the factory as the lock's owner (`token`; `null` when running without the lock after the wait
   * bound), store its result, release the lock.
   */
  async #produce<T>(
    id: string,
    key: string,
    factory: Factory<T>,
    o: Resolved,
    token: string | null,
  ): Promise<Awaited<T>> {
    this.#counters.factoryRuns++;
    // tags: the stamps of the entry's tags before the factory starts (an invalidation from now on wins);
    // `null` when they could not be read: the result is then not stored
    const ticket = this.#tickets.begin(id);
    const stamps = o.tagKeys.length === 0 ? [] : await this.#captureStamps(o);
    let result: Awaited<T>;
    try {
      result = await factory();
    } catch (err) {
      this.#tickets.end(id, ticket);
      if (token !== null && !this.#closing)
        this.#settle(this.#markFailed(key, token), 'marking a failed fill');
      throw err;
    }
    this.#tickets.end(id, ticket);
    // Closed meanwhile: close() released the lock; the result goes to the caller, nothing is stored.
    if (this.#closing) return result;
    let encoded: string | undefined;
    try {
      encoded = o.typed
        ? this.#host.checkSize(withStamps(encodeResult(result), o.tagKeys, stamps ?? [])) // tags:
        : this.#host.encode(result);
    } catch (err) {
      this.#host.logger.warn(
        `peak-cache: the result for ${JSON.stringify(key)} is not cached: ${describe(err)}`,
      );
    }
    try {
      if (encoded !== undefined && stamps !== null && !ticket.voided) {
        const value = encoded;
        await this.#host.run('getOrSet', (engine, ks) =>
          engine.set(ks.key(key), value, Math.min(o.ttl + o.grace, MAX_TTL)),
        );
      }
    } catch (err) {
      if (!isCacheFailure(err) || this.#host.closed()) throw err;
      this.#cacheFailed(err, o);
      if (encoded !== undefined) o.fallback?.set(id, encoded, { ttl: o.fallbackTtlMs });
    }
    if (token !== null) this.#settle(this.#release(key, token), 'releasing a fill lock');
    return result;
  }

  /** The factory's run while the cache is failing: serve or fill the fallback. */
  async #withoutCache<T>(id: string, factory: Factory<T>, o: Resolved): Promise<Awaited<T>> {
    const cached = o.fallback?.get(id);
    if (cached !== undefined) {
      try {
        const value = this.#decode(cached, o);
        this.#counters.fallbackHits++;
        return value as Awaited<T>;
      } catch {
        o.fallback?.delete(id);
      }
    }
    this.#counters.factoryRuns++;
    const result = await factory();
    if (o.fallback !== undefined) {
      try {
        o.fallback.set(id, o.typed ? this.#host.checkSize(encodeResult(result)) : this.#host.encode(result), {
          ttl: o.fallbackTtlMs,
        });
      } catch {
        // not encodable: not kept
      }
    }
    return result;
  }

  /** A background refresh of a stale value (one per key in this process; one across processes). */
  #refresh<T>(
    id: string,
    key: string,
    factory: Factory<T>,
    o: Resolved,
  ): Promise<{ value: unknown } | undefined> {
    const running = this.#refreshing.get(id) as Promise<{ value: unknown } | undefined> | undefined;
    if (running !== undefined) return running;
    const token = randomUUID();
    const refresh = this.#acquire(key, token, o)
      .then(async (acquired) => {
        if (!acquired) return undefined; // another process is refreshing
        const current = await this.#recheck(key, o, token);
        if (current !== undefined) return current; // another process has just refreshed it
        this.#counters.refreshes++;
        return { value: await this.#produce(id, key, factory, o, token) };
      })
      .catch((err: unknown) => {
        if (this.#closing) return undefined; // abandoned by close(): nothing to report
        if (isCacheFailure(err)) this.#cacheFailed(err, o);
        else this.#counters.refreshErrors++;
        this.#host.logger.warn(
          `peak-cache: refreshing ${JSON.stringify(key)} failed (the stale value is served until its grace ends): ${describe(err)}`,
        );
        return undefined;
      })
      .finally(() => {
        if (this.#refreshing.get(id) === refresh) this.#refreshing.delete(id);
      });
    this.#refreshing.set(id, refresh);
    return refresh;
  }

  /**
   * Double-checked locking: read the value again once the lock is ours. Between this caller's first read
   * and its lock, another caller may have stored the value and released the lock; without this read
   * the factory would run a second time. A fresh value found here releases the lock and is returned;
   * `undefined` means the lock's owner must run the factory (also when this read fails: the run then
   * meets the failing cache as a fill does).
   */
  async #recheck(key: string, o: Resolved, token: string): Promise<{ value: unknown } | undefined> {
    let entry: { value: unknown; stale: boolean } | null;
    try {
      entry = await this.#read(key, o);
    } catch (err) {
      if (!isCacheFailure(err) || this.#host.closed()) {
        this.#settle(this.#release(key, token), 'releasing a fill lock');
        throw err;
      }
      return undefined;
    }
    if (entry === null || entry.stale) return undefined;
    this.#counters.rechecks++;
    this.#settle(this.#release(key, token), 'releasing a fill lock');
    return { value: entry.value };
  }

  /** Take the fill lock of `key` with `token` (`SET NX PX lockTtlMs`); remembered until released. */
  #acquire(key: string, token: string, o: Resolved): Promise<boolean> {
    return this.#host
      .run('getOrSet', (engine, ks) => {
        const lock = ks.key(lockKey(key));
        this.#held.set(token, lock);
        return engine.setIfAbsent(lock, token, o.lockTtlMs);
      })
      .then(
        (acquired) => {
          if (!acquired) this.#held.delete(token);
          return acquired;
        },
        (err: unknown) => {
          this.#held.delete(token);
          throw err;
        },
      );
  }

  #release(key: string, token: string): Promise<unknown> {
    return this.#host.run('getOrSet', (engine, ks) => {
      this.#held.delete(token);
      return engine.deleteIfEquals(ks.key(lockKey(key)), token);
    });
  }

  /** Swap our lock for a failure mark, so callers waiting on it get the failure (see lock.ts). */
  #markFailed(key: string, token: string): Promise<unknown> {
    return this.#host.run('getOrSet', async (engine, ks) => {
      // Overwrite in one command, so no waiter sees the lock free in between (it would run the factory
      // again). Checked first: only a lock that expired in the meantime and was taken by another owner
      // during this one round trip could be overwritten.
      const lock = ks.key(lockKey(key));
      this.#held.delete(token);
      if ((await engine.get(lock)) === token) {
        await engine.set(lock, failureMark(), FAILURE_MARK_MS / 1000);
      }
    });
  }

  /** tags: the current stamps of `o.tagKeys`; `null` when the cache failed (counted, never thrown). */
  #captureStamps(o: Resolved): Promise<number[] | null> {
    return this.#host
      .run('getOrSet', (engine, ks) => readStamps(engine, ks, o.tagKeys))
      .catch((err: unknown) => {
        if (isCacheFailure(err)) this.#counters.cacheErrors++;
        return null;
      });
  }

  /** Own a background promise: its failure is counted and reported, never unhandled. */
  #settle(promise: Promise<unknown>, what: string): void {
    promise.catch((err: unknown) => {
      if (this.#host.closed()) return; // closed meanwhile: the lock expires by itself
      if (isCacheFailure(err)) this.#counters.cacheErrors++;
      this.#host.logger.warn(`peak-cache: ${what} failed: ${describe(err)}`);
    });
  }

  #cacheFailed(err: unknown, o: Resolved): void {
    this.#counters.cacheErrors++;
    if (o.breakerMs > 0 && this.#breaker.trip(o.breakerMs)) {
      this.#host.logger.warn(
        `peak-cache: cached functions skip the cache for ${o.breakerMs} ms after a failure: ${describe(err)}`,
      );
    }
  }
}
