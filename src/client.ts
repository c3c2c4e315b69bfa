/**
 * `CacheClient`: the Peak cache client, the tenant-facing API. Tenant prefixing, validation, the codec,
 * logging, stats and error naming live here; the connection (source, lifecycle, engine, credentials
 * refresh, near cache) lives in the store below it (`store/`): a store of its own for `new CacheClient`,
 * or the shared store of a `TenantCaches` for its tenant views.
 *
 * @module
 */
import { inspect } from 'node:util';
import { type DeploymentIdHook, deploymentIdHook } from './cached/deployment.js';
import type { InvalidateCallOptions } from './cached/invalidation.js';
import type { InvalidateOptions } from './cached/keys.js';
import {
  CachedFunctions,
  type CacheResultOptions,
  type FactoryContext,
  type GetOrSetOptions,
  type ManyFactory,
  type ReadRecorder,
} from './cached/read-through.js';
import type { InvalidateTagsOptions } from './cached/tags.js';
import { type Codec, resolveCodec } from './codec.js';
import { chooseSource } from './connection.js';
import { DECODE_SLICE, decodeAll } from './decode-slices.js';
import { answeredSlot, isTraced, traceAnswered, traceCall, traceOperation } from './diagnostics.js';
import type { Engine } from './engines/engine.js';
import { CacheConnectionError, CacheError, CacheValidationError } from './errors.js';
import { isValidKey, KeySpace, validateKey, validatePattern, validatePrefix } from './keys.js';
import { type CacheLogger, defaultLogger, formatKeys, isDebugEnabled } from './logger.js';
import { NearCache, type Entry as NearEntry } from './near-cache/near-cache.js';
import { resolveNearCacheOptions } from './near-cache/options.js';
import { failureOf, nameOperations } from './operation.js';
import {
  type CacheClientOptions,
  checkKnownOptions,
  DEFAULT_MAX_VALUE_BYTES,
  DEFAULT_SETTINGS,
  positiveInteger,
  resolveSettings,
} from './options.js';
import type { Session } from './session.js';
import { type CacheStats, type OperationCounters, StatsRecorder } from './stats.js';
import { type Connected, VIEW_STORE, type ViewStore } from './store/binding.js';
import { OwnStore } from './store/own-store.js';
import { requireWellFormed } from './unicode.js';
import type {
  ClientCodecChoice,
  CodecOption,
  DecodedValue,
  ReadableType,
  TypedCodecChoice,
} from './value-types.js';

/** Largest TTL accepted, in seconds (about 136 years). */
export const MAX_TTL_SECONDS = 2 ** 32;
/** Keys per SCAN page and per UNLINK batch during flushes. */
export const FLUSH_BATCH_SIZE = 1000;
/** UNLINK batches in flight at once during a flush. */
const FLUSH_CONCURRENCY = 4;

/** Options of {@link CacheClient.flushByPattern} and {@link CacheClient.flushTenant}. */
export interface FlushOptions {
  /**
   * Called after each deleted batch with the number of keys deleted so far. Should it throw, the flush
   * stops as on a failure and rejects with a {@link CacheError} carrying that error as `cause`.
   */
  onProgress?: (deleted: number) => void;
}

/** @internal What {@link CacheClient.rawOperation} checks before any I/O. */
export interface RawInput {
  /** Keys, without the namespace. */
  readonly keys: readonly string[];
  /** Values to store, as given (no codec). */
  readonly values?: readonly unknown[];
  /** Expiries in whole seconds (`undefined`: none). */
  readonly ttls?: readonly (number | undefined)[];
  /** The body resolves a raw read reply (`string | null`, or an array of them): count hits and misses. */
  readonly read?: boolean;
}

/** An operation's I/O on a connection and key space. */
type Body<V> = (conn: Connected, ks: KeySpace) => Promise<V>;

function identity<T>(value: T): T {
  return value;
}

/** `.then` callback of writes: they resolve `true`. */
function toTrue(): true {
  return true;
}

function validateTtl(ttl: unknown, name = 'ttl'): number {
  return positiveInteger(ttl, name, MAX_TTL_SECONDS);
}

/**
 * The Peak cache client: every key is stored as `<tenant>:[<additionalPrefix>:]<key>`.
 *
 * The constructor validates options and does no I/O; the connection (and, in platform mode, the
 * credentials request) happens on first use. `TenantCaches.tenant(name)` returns views of this class
 * over one shared store (see {@link TenantCaches}).
 *
 * @example
 * ```ts
 * const cache = new CacheClient({ connectionConfig: { url: 'redis://127.0.0.1:6379', tenant: 'acme' } });
 * await cache.set('user:1', { name: 'Ada' }, 60);
 * await cache.get<{ name: string }>('user:1'); // { name: 'Ada' }
 * await cache.close();
 * ```
 *
 * @typeParam C - the `codec` option, inferred from it (`'peak'` when not given): it types what `get`
 *   and `mget` can return (see {@link ReadableType}).
 */
export class CacheClient<C extends CodecOption = 'peak'> {
  /** Where operations run: a store of the client's own, or a `TenantCaches`' shared one (a view). */
  readonly #store: ViewStore;
  readonly #codec: Codec;
  readonly #logger: CacheLogger;
  /** `debugLogs` and a logger that shows debug lines (fixed at start-up for `NODE_DEBUG`). */
  readonly #debugOn: boolean;
  readonly #maxValueBytes: number;
  #prefix: string | null;
  #keySpace: KeySpace | undefined;
  #closing: Promise<void> | undefined;
  readonly #stats: StatsRecorder;
  /** The near cache (option `nearCache`), or `undefined` when off. */
  readonly #near: NearCache | undefined;
  /** Tracing of answers from memory: the last context of near `get` hits, held misses, cached hits. */
  readonly #answeredHit = answeredSlot();
  readonly #answeredMiss = answeredSlot();
  readonly #answeredCached = answeredSlot();
  readonly #answeredMget = answeredSlot();
  /** Cached functions, created on first use (a view that never uses them stays small). */
  #cachedFunctions: CachedFunctions | undefined;
  /** A closed shared-mode view: the shared engine its kept fills finish on (see {@link CacheClient.#cachedIo}). */
  #sharedEngine: Engine | undefined;
  readonly #deploymentId: DeploymentIdHook;

  /**
   * @param options - see {@link CacheClientOptions}.
   * @throws {CacheValidationError} for an invalid option (the message names it).
   * @throws {CacheConnectionError} when no connection source is configured.
   */
  constructor(options: CacheClientOptions<C> = {}) {
    if (options === null || typeof options !== 'object')
      throw new CacheValidationError('Options must be an object');
    checkKnownOptions(options);
    const view = (options as { [VIEW_STORE]?: ViewStore })[VIEW_STORE];
    this.#logger = options.logger ?? defaultLogger;
    this.#debugOn = (options.debugLogs ?? true) && isDebugEnabled(this.#logger);
    this.#codec = resolveCodec(options.codec);
    this.#maxValueBytes = positiveInteger(options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES, 'maxValueBytes');
    this.#prefix = validatePrefix(options.additionalPrefix);
    // The Peak session and its timeout resolve the deployment id through Press (src/cached/deployment.ts).
    let session: Session | undefined;
    let connectTimeoutMs = DEFAULT_SETTINGS.connectTimeoutMs;
    if (view === undefined) {
      const config = options.connectionConfig ?? {};
      const settings = resolveSettings(config);
      const nearOptions = resolveNearCacheOptions(options.nearCache);
      const near =
        nearOptions === undefined ? undefined : new NearCache(nearOptions, (raw) => this.#codec.decode(raw));
      const source = chooseSource(options.session, config, options.env ?? process.env, this.#logger);
      this.#store = new OwnStore(source, settings, near, this.#logger);
      session = source.kind === 'platform' ? source.session : undefined;
      connectTimeoutMs = settings.connectTimeoutMs;
    } else {
      this.#store = view;
    }
    this.#near = this.#store.near;
    this.#stats = this.#store.stats ?? new StatsRecorder();
    // Only a platform source (own store or pooled view) fetches credentials again (see #recover).
    this.#retries = this.#store.kind !== 'direct' && this.#store.kind !== 'shared';
    // Resolved lazily (Press in platform mode): see src/cached/deployment.ts.
    this.#deploymentId = deploymentIdHook(
      options.deploymentId,
      options.env ?? process.env,
      session,
      connectTimeoutMs,
    );
  }

  /** The cached functions of this client (see {@link CachedHost}), created on first use. */
  get #cached(): CachedFunctions {
    if (this.#cachedFunctions !== undefined) return this.#cachedFunctions;
    const tenant = this.#store.cachedState === undefined ? undefined : this.#store.tenant;
    this.#cachedFunctions = new CachedFunctions(
      {
        io: (operation, body) => this.#cachedIo(operation, body),
        call: (operation, keys, body) => this.#cachedCall(operation, keys, body),
        encode: (value) => this.#encode(value),
        decode: (raw) => this.#codec.decode(raw),
        checkSize: (encoded) => this.#checkSize(encoded),
        closed: () => this.#store.closed(),
        prefix: () => this.#prefix,
        logger: this.#logger,
        deploymentId: this.#deploymentId,
        ...(tenant === undefined ? {} : { tenant }),
        // Issue 20: hits answered from the near cache, as `#nearHit` answers `get` (connected, not pooled).
        ...(this.#near === undefined
          ? {}
          : {
              near: {
                cache: this.#near,
                keys: () => {
                  const conn = this.#store.current();
                  return conn === undefined || conn.release !== undefined
                    ? undefined
                    : this.#keys(conn.tenant);
                },
                answered: (operation, keys, hits, misses) => {
                  const counters = this.#stats.counters(operation);
                  counters.calls++;
                  counters.record(hits, misses);
                  const conn = this.#store.current(); // connected: `keys()` just answered
                  if (isTraced() && conn !== undefined)
                    traceAnswered(operation, conn, keys, hits, misses, this.#answeredCached);
                },
              },
            }),
      },
      this.#store.cachedState,
    );
    return this.#cachedFunctions;
  }

  /**
   * The tenant whose namespace this client uses: the configured one, or in platform mode the one the
   * platform names (fetching the credentials on first use, without contacting the cache server).
   */
  async getTenant(): Promise<string> {
    const known = this.#store.tenant;
    if (known !== undefined) return known;
    try {
      const conn = this.#store.current() ?? (await this.#connect());
      conn.release?.();
      return conn.tenant;
    } catch (err) {
      throw withOperation('getTenant', err);
    }
  }

  /** The additional prefix, or `null` when none is set. */
  getAdditionalPrefix(): string | null {
    return this.#prefix;
  }

  /**
   * Set (or with `null`/`''`, clear) the additional prefix; takes effect for the next call.
   * @throws {CacheValidationError} for an invalid prefix.
   */
  setAdditionalPrefix(additionalPrefix: string | null): void {
    this.#prefix = validatePrefix(additionalPrefix);
    this.#keySpace = undefined;
  }

  /**
   * Store `value` at `key`, expiring after `ttl` seconds when given.
   * @returns `true` once stored.
   */
  set(key: string, value: unknown, ttl?: number | null): Promise<boolean> {
    // Hot path: plain functions and one `.then` (input errors still reject, before any I/O).
    let encoded: string;
    let expiry: number | undefined;
    try {
      validateKey(key);
      expiry = ttl === undefined || ttl === null ? undefined : validateTtl(ttl);
      encoded = this.#encode(value);
    } catch (err) {
      return Promise.reject(err);
    }
    const conn = this.#direct();
    if (conn !== undefined) {
      // Connected, untraced, no debug log: one engine call and one `.then` (as #attempt, unlayered).
      this.#stats.set.calls++;
      let reply: Promise<void>;
      try {
        reply = conn.engine.set(this.#keys(conn.tenant).key(key), encoded, expiry);
      } catch (err) {
        return Promise.reject(this.#failed('set', err));
      }
      if (!this.#retries) return reply.then(toTrue, this.#setFailed);
      return reply.then(toTrue, (err: unknown) =>
        this.#recover('set', ({ engine }, ks) => engine.set(ks.key(key), encoded, expiry), toTrue, conn, err),
      );
    }
    return this.#runCounted(
      'set',
      this.#stats.set,
      ({ engine }, ks) => {
        const stored = ks.key(key);
        if (this.#debugOn) this.#debug('set', [stored], expiry);
        return engine.set(stored, encoded, expiry);
      },
      toTrue,
    );
  }

  /**
   * The value at `key` (decoded by the codec), or `defaultValue` (else `null`) when missing.
   *
   * Typed by the codec: under `'peak'`, `T` may only be a string or an object type, since a number,
   * boolean or `null` stored reads back as a string (`get<number>` does not compile); the default `T` is
   * what the codec returns ({@link DecodedValue}). The result type includes `defaultValue`'s type.
   */
  get<T extends ReadableType<C> = DecodedValue<C>>(key: string): Promise<T | null>;
  get<T extends ReadableType<C> = DecodedValue<C>, D = T>(key: string, defaultValue: D): Promise<T | D>;
  get<T, D>(key: string, defaultValue?: D): Promise<T | D | null> {
    // Named lazily (operation.ts): a valid key costs one test.
    if (!isValidKey(key)) return Promise.reject(failureOf('get', () => validateKey(key)));
    const near = this.#near;
    if (near !== undefined && !this.#debugOn) {
      const answered = this.#nearHit<T | D | null>(near, key, defaultValue);
      if (answered !== undefined) return answered;
    } else {
      const conn = this.#direct();
      if (conn !== undefined) return this.#getDirect(conn, key, defaultValue) as Promise<T | D | null>;
    }
    let stored = '';
    return this.#runCounted(
      'get',
      this.#stats.get,
      ({ engine }, ks) => {
        stored = ks.key(key);
        if (this.#debugOn) this.#debug('get', [stored]);
        return engine.get(stored);
      },
      (raw): T | D | null => {
        if (raw === null) {
          this.#stats.get.misses++;
          return defaultValue === undefined ? null : defaultValue;
        }
        this.#stats.get.hits++;
        return (near === undefined ? this.#codec.decode(raw) : near.value(stored, raw)) as T;
      },
    );
  }

  /**
   * The connection when an operation may skip the generic path ({@link CacheClient.#runCounted}): connected
   * on an own store (no pooled connection to release), not traced, no debug log. Else `undefined`.
   */
  #direct(): Connected | undefined {
    if (this.#debugOn) return undefined;
    const conn = this.#store.current();
    if (conn === undefined || conn.release !== undefined || isTraced()) return undefined;
    return conn;
  }

  /**
   * A network `get` without the near cache on a {@link CacheClient.#direct} connection: counted as the
   * generic path counts it, one engine call and one `.then` (a shared one without a default value).
   */
  #getDirect(conn: Connected, key: string, defaultValue: unknown): Promise<unknown> {
    this.#stats.get.calls++;
    let reply: Promise<string | null>;
    try {
      reply = conn.engine.get(this.#keys(conn.tenant).key(key));
    } catch (err) {
      return Promise.reject(this.#failed('get', err));
    }
    const map =
      defaultValue === undefined
        ? this.#decodeRead
        : (raw: string | null): unknown => {
            if (raw !== null) return this.#decodeRead(raw);
            this.#stats.get.misses++;
            return defaultValue;
          };
    if (!this.#retries) return reply.then(map, this.#getFailed);
    return reply.then(map, (err: unknown) =>
      this.#recover('get', ({ engine }, ks) => engine.get(ks.key(key)), map, conn, err),
    );
  }

  /**
   * Whether a failed call may be retried on a fresh connection ({@link CacheClient.#recover}: platform
   * credentials fetched again). Not on a direct URL or a shared store, whose failures the direct paths
   * then name and count with the shared handlers below (no closure per call).
   */
  readonly #retries: boolean;
  readonly #getFailed = (err: unknown): never => {
    throw this.#failed('get', err);
  };
  readonly #setFailed = (err: unknown): never => {
    throw this.#failed('set', err);
  };

  /** A `get` reply without the near cache: counted as a hit or a miss, decoded by the codec. */
  readonly #decodeRead = (raw: string | null): unknown => {
    const counters = this.#stats.get;
    if (raw === null) {
      counters.misses++;
      return null;
    }
    counters.hits++;
    return this.#codec.decode(raw);
  };

  /**
   * A `get` answered from the near cache without a promise hop or a closure: counted and traced as any
   * `get`. `undefined` when the key is not held (or the store is not connected): the network path then
   * reads it (and counts the near cache's miss).
   */
  #nearHit<R>(near: NearCache, key: string, defaultValue: unknown): Promise<R> | undefined {
    const conn = this.#store.current();
    if (conn === undefined || conn.release !== undefined) return undefined;
    const entry = near.hit(this.#keys(conn.tenant).key(key));
    if (entry === undefined) return undefined;
    const counters = this.#stats.get;
    counters.calls++;
    const raw = entry.raw;
    if (raw === null) counters.misses++;
    else counters.hits++;
    if (isTraced()) {
      if (raw === null) traceAnswered('get', conn, 1, 0, 1, this.#answeredMiss);
      else traceAnswered('get', conn, 1, 1, 0, this.#answeredHit);
    }
    if (raw === null) return Promise.resolve((defaultValue === undefined ? null : defaultValue) as R);
    return Promise.resolve(near.valueOf(entry) as R);
  }

  /**
   * An `mget` whose keys the near cache all holds (up to {@link DECODE_SLICE} keys: decoded at once),
   * answered from memory like a near `get` hit: counted and traced as one `mget` answered from memory.
   * `undefined` when a key is not held (nothing counted then: the network path reads them all).
   */
  #nearMget<T>(near: NearCache, keys: readonly string[]): (T | null)[] | undefined {
    const conn = this.#store.current();
    if (conn === undefined || conn.release !== undefined) return undefined;
    const ks = this.#keys(conn.tenant);
    const now = performance.now();
    const entries = new Array<NearEntry>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const entry = near.held(ks.key(keys[i] as string), now);
      if (entry === undefined) return undefined;
      entries[i] = entry;
    }
    let values: (T | null)[];
    try {
      values = entries.map((entry) => near.valueOf(entry) as T | null);
    } catch {
      return undefined; // a value the codec cannot decode: the network path reports it as usual
    }
    near.countHits(keys.length);
    const counters = this.#stats.mget;
    counters.calls++;
    let hits = 0;
    for (const entry of entries) if (entry.raw !== null) hits++;
    counters.record(hits, keys.length - hits);
    if (isTraced()) traceAnswered('mget', conn, keys.length, hits, keys.length - hits, this.#answeredMget);
    return values;
  }

  /** Delete `keys`; the number deleted. No keys: `0`, with no I/O. */
  async delete(...keys: string[]): Promise<number> {
    for (const key of keys) validateKey(key);
    if (keys.length === 0) return 0;
    this.#cached.forget(keys); // fills of these keys running here do not store their results
    return this.#run('delete', ({ engine }, ks) => {
      const stored = ks.keys(keys);
      this.#debug('delete', stored);
      return engine.unlink(stored);
    });
  }

  /** The number of `keys` that exist (repeats counted, as Redis does). No keys: `0`, with no I/O. */
  async exists(...keys: string[]): Promise<number> {
    for (const key of keys) validateKey(key);
    if (keys.length === 0) return 0;
    return this.#run('exists', ({ engine }, ks) => {
      const stored = ks.keys(keys);
      this.#debug('exists', stored);
      return engine.exists(stored);
    });
  }

  /** Expire `key` after `ttl` seconds; `false` when the key does not exist. */
  async expire(key: string, ttl: number): Promise<boolean> {
    validateKey(key);
    const expiry = validateTtl(ttl);
    return this.#run('expire', ({ engine }, ks) => {
      const stored = ks.key(key);
      this.#debug('expire', [stored], expiry);
      return engine.expire(stored, expiry);
    });
  }

  /** Seconds to live of `key`: `-1` when it has no expiry, `-2` when it does not exist. */
  async ttl(key: string): Promise<number> {
    validateKey(key);
    return this.#run('ttl', ({ engine }, ks) => {
      const stored = ks.key(key);
      this.#debug('ttl', [stored]);
      return engine.ttl(stored);
    });
  }

  /**
   * Values of `keys` in order, `null` for misses. No keys: `[]`, with no I/O. `T` is limited by the
   * codec as for {@link CacheClient.get}.
   */
  async mget<T extends ReadableType<C> = DecodedValue<C>>(...keys: string[]): Promise<(T | null)[]> {
    for (const key of keys) validateKey(key);
    if (keys.length === 0) return [];
    const near = this.#near;
    if (near !== undefined && !this.#debugOn && keys.length <= DECODE_SLICE) {
      const answered = this.#nearMget<T>(near, keys);
      if (answered !== undefined) return answered;
    }
    let stored: string[] = [];
    return this.#run(
      'mget',
      ({ engine }, ks) => {
        stored = ks.keys(keys);
        this.#debug('mget', stored);
        return engine.mget(stored);
      },
      (raws) => {
        this.#stats.mget.reads(raws);
        // Issue 18: a large reply is decoded in slices, letting other calls finish in between.
        return decodeAll(raws, (raw, i) =>
          raw === null
            ? null
            : ((near === undefined ? this.#codec.decode(raw) : near.value(stored[i] as string, raw)) as T),
        );
      },
    );
  }

  /**
   * Store every entry of `mapping` (a `Record` or a `Map`), each expiring after `ttl` seconds when given.
   * No key is ever visible without its TTL. Empty mapping: `true`, with no I/O.
   */
  async mset(
    mapping: Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>,
    ttl?: number | null,
  ): Promise<boolean> {
    if (mapping === null || typeof mapping !== 'object' || Array.isArray(mapping)) {
      throw new CacheValidationError('mset needs a Record or a Map of keys to values');
    }
    const expiry = ttl === undefined || ttl === null ? undefined : validateTtl(ttl);
    const source = mapping instanceof Map ? [...mapping.entries()] : Object.entries(mapping);
    const entries = source.map(([key, value]) => [validateKey(key), this.#encode(value)] as [string, string]);
    if (entries.length === 0) return true;
    return this.#run(
      'mset',
      ({ engine }, ks) => {
        const stored = entries.map(([key, value]) => [ks.key(key), value] as const);
        if (this.#debugOn) {
          this.#debug(
            'mset',
            stored.map(([key]) => key),
            expiry,
          );
        }
        return engine.mset(stored, expiry);
      },
      toTrue,
    );
  }

  /**
   * Delete the keys matching the Redis glob `pattern` inside this client's namespace
   * (`<tenant>:[<prefix>:]`). Only `pattern` is a glob: the namespace is matched literally.
   * Uses SCAN + UNLINK in batches (never KEYS).
   * @returns the number of keys deleted.
   * @throws {CacheValidationError} for a pattern that is not a well-formed string within the bounds of
   *   `validatePattern` (before any I/O).
   * @throws {CacheConnectionError} (`flushByPattern failed: ...`) when the connection fails: the batches
   *   in flight are awaited first; a later flush deletes what this one did not reach.
   */
  async flushByPattern(pattern: string, options: FlushOptions = {}): Promise<number> {
    validatePattern(pattern);
    this.#cached.forgetAll(); // fills running here do not store their results
    return this.#run('flushByPattern', (conn, ks) => this.#flush(conn, ks.pattern(pattern), options));
  }

  /**
   * Delete every key of the tenant, whatever its additional prefix. Other tenants are never touched.
   * @returns the number of keys deleted.
   * @throws {CacheConnectionError} (`flushTenant failed: ...`) when the connection fails: the batches in
   *   flight are awaited first; a later flush deletes what this one did not reach.
   */
  async flushTenant(options: FlushOptions = {}): Promise<number> {
    this.#cached.forgetAll(); // fills running here do not store their results
    return this.#run('flushTenant', (conn, ks) => this.#flush(conn, ks.tenantPattern(), options));
  }

  /**
   * @internal Codec-free access for this package's integrations (`peak-cache/keyv`), which store strings
   * they serialize themselves. Before any I/O, `input.keys` are checked as for `get`, `input.values` must
   * be well-formed strings within `maxValueBytes`, and `input.ttls` (seconds; `undefined` = no expiry) as for `set`.
   * Then `body` runs on the engine like any operation: lazy connect, one debug line with the stored keys,
   * failures mapped to {@link CacheError}s named after `operation`, credentials refresh, tracing and
   * {@link CacheClient.stats} (with hits and misses when `input.read`). Not a stable API.
   */
  rawOperation<R>(
    operation: string,
    input: RawInput,
    body: (engine: Engine, keySpace: KeySpace) => Promise<R>,
  ): Promise<R> {
    try {
      for (const key of input.keys) validateKey(key);
      for (const value of input.values ?? []) {
        if (typeof value !== 'string') {
          throw new CacheValidationError(`${operation}: values must be strings (a serializer's output)`);
        }
        // As the peak codec's raw strings: UTF-8 cannot carry a lone surrogate (Redis would store U+FFFD).
        requireWellFormed('A string value', value);
        this.#checkSize(value);
      }
      for (const ttl of input.ttls ?? []) if (ttl !== undefined) validateTtl(ttl);
    } catch (err) {
      return Promise.reject(err);
    }
    const counters = input.read === true ? this.#stats.counters(operation) : undefined;
    return this.#run(operation, ({ engine }, ks) => {
      // Not `ks.keys()`: tracing counts the keys the body itself names.
      if (this.#debugOn)
        this.#debug(
          operation,
          input.keys.map((key) => ks.namespace + key),
        );
      const result = body(engine, ks);
      if (counters === undefined) return result;
      return result.then((raw) => {
        counters.reads((Array.isArray(raw) ? raw : [raw]) as (string | null)[]);
        return raw;
      });
    });
  }

  /**
   * Read-through: the value at `key`, or the factory's result, stored for `ttl` seconds. On a miss the
   * factory runs once for every concurrent caller, in this process and across processes (a lock key in
   * the cache, a lease its owner extends while the factory runs, expiring within `lockTtlMs` if the
   * owner dies; waiters poll at most `lockTimeoutMs`, then run the factory themselves). The factory
   * receives a {@link FactoryContext} to set its entry's `ttl`, `grace` or `tags`, or `skip()` storing
   * it. A factory error reaches every caller that waited for that factory run and is not cached. When
   * the cache fails at the connection level, the factory's result is returned and the cache is skipped
   * for `breakerMs`. See {@link GetOrSetOptions} (also `hardTimeoutMs`, `eagerRefresh`,
   * `graceBackoffMs`) and docs/cached-functions.md. With `nearCache` on, a hit the near cache holds fresh
   * is answered from memory and returns one deeply frozen value shared by every hit (as `get` does), unless
   * `nearCache.copyValues` is set or the value cannot be frozen (a `Date`, `Map`, `Set`, class instance).
   * @throws the factory's error; {@link CacheFactoryError} when another process's factory failed while
   * this call waited for it; {@link CacheTimeoutError} when no result came within `hardTimeoutMs`;
   * {@link CacheValidationError} for invalid options (or a context value the factory set).
   */
  getOrSet<T>(
    key: string,
    factory: (ctx: FactoryContext) => T | Promise<T>,
    options?: GetOrSetOptions & TypedCodecChoice,
  ): Promise<Awaited<T>>;
  getOrSet<T>(
    key: string,
    factory: (ctx: FactoryContext) => T | Promise<T>,
    options: GetOrSetOptions & ClientCodecChoice,
  ): Promise<DecodedValue<C>>;
  getOrSet<T>(
    key: string,
    factory: (ctx: FactoryContext) => T | Promise<T>,
    options?: GetOrSetOptions,
  ): Promise<Awaited<T> | DecodedValue<C>>;
  getOrSet<T>(
    key: string,
    factory: (ctx: FactoryContext) => T | Promise<T>,
    options?: GetOrSetOptions,
  ): Promise<unknown> {
    return this.#cached.getOrSet(key, factory, options);
  }

  /**
   * Read-through for a batch of keys: one read for all of them, then one `factory` call with only the
   * missing keys (each once), which returns their values as a `Map` or a record; those are stored (one
   * `MSET`) and every value is returned in the order of `keys` (repeats included). Each missing key is
   * protected as in {@link CacheClient.getOrSet}: one fill per key in this process and across processes
   * (its lock), waiting at most `lockTimeoutMs` for another owner. A key the factory leaves out reads as
   * `undefined` and is not stored. See {@link GetOrSetOptions} (the same options; `hardTimeoutMs`
   * bounds the whole call) and docs/cached-functions.md.
   * @throws the factory's error (the whole call fails); {@link CacheFactoryError} when another
   * process's factory failed for a key while this call waited for it; {@link CacheTimeoutError} past
   * `hardTimeoutMs`; {@link CacheValidationError} for invalid keys or options, or a factory result that
   * is not a `Map` or a record.
   */
  getOrSetMany<T>(
    keys: readonly string[],
    factory: ManyFactory<T>,
    options?: GetOrSetOptions & TypedCodecChoice,
  ): Promise<(Awaited<T> | undefined)[]>;
  getOrSetMany<T>(
    keys: readonly string[],
    factory: ManyFactory<T>,
    options: GetOrSetOptions & ClientCodecChoice,
  ): Promise<(DecodedValue<C> | undefined)[]>;
  getOrSetMany<T>(
    keys: readonly string[],
    factory: ManyFactory<T>,
    options?: GetOrSetOptions,
  ): Promise<(Awaited<T> | DecodedValue<C> | undefined)[]>;
  getOrSetMany<T>(
    keys: readonly string[],
    factory: ManyFactory<T>,
    options?: GetOrSetOptions,
  ): Promise<unknown[]> {
    return this.#cached.getOrSetMany(keys, factory, options);
  }

  /**
   * `fn` with its results cached (Python: `cache_result`), under
   * `<tenant>:[<additionalPrefix>:]<deploymentId>:<keyPrefix>[:<entityId>]:<digest>`, with the behaviour
   * of {@link CacheClient.getOrSet} for each call. Results keep their types on a hit. With
   * `keyStyle: 'python'`, Python's key for the same arguments and the client's codec instead, so results
   * are shared with Python's `cache_result` both ways (see docs/cached-functions.md). The deployment id
   * is resolved at the first call (in platform mode through Press; while that fails, calls run `fn`
   * uncached with a warning). With `nearCache` on, hits are answered from memory and share one deeply
   * frozen value, as for {@link CacheClient.getOrSet}.
   * @throws {CacheValidationError} for invalid options (at once, not at the first call).
   */
  cacheResult<This, A extends unknown[], R>(
    fn: (this: This, ...args: [...A, FactoryContext]) => R,
    options: CacheResultOptions<A> & TypedCodecChoice & { context: true },
  ): (this: This, ...args: A) => Promise<Awaited<R>>;
  cacheResult<This, A extends unknown[], R>(
    fn: (this: This, ...args: [...A, FactoryContext]) => R,
    options: CacheResultOptions<A> & ClientCodecChoice & { context: true },
  ): (this: This, ...args: A) => Promise<DecodedValue<C>>;
  cacheResult<This, A extends unknown[], R>(
    fn: (this: This, ...args: [...A, FactoryContext]) => R,
    options: CacheResultOptions<A> & { context: true },
  ): (this: This, ...args: A) => Promise<Awaited<R> | DecodedValue<C>>;
  cacheResult<This, A extends unknown[], R>(
    fn: (this: This, ...args: A) => R,
    options?: CacheResultOptions<A> & TypedCodecChoice,
  ): (this: This, ...args: A) => Promise<Awaited<R>>;
  cacheResult<This, A extends unknown[], R>(
    fn: (this: This, ...args: A) => R,
    options: CacheResultOptions<A> & ClientCodecChoice,
  ): (this: This, ...args: A) => Promise<DecodedValue<C>>;
  cacheResult<This, A extends unknown[], R>(
    fn: (this: This, ...args: A) => R,
    options?: CacheResultOptions<A>,
  ): (this: This, ...args: A) => Promise<Awaited<R> | DecodedValue<C>>;
  cacheResult<This, A extends unknown[], R>(
    fn: (this: This, ...args: A) => R,
    options?: CacheResultOptions<A>,
  ): (this: This, ...args: A) => Promise<unknown> {
    return this.#cached.cacheResult(fn, options);
  }

  /**
   * Invalidate cached results (Python: `invalidate_cache`): for each of `targetedPatterns` the entity's
   * entries `<deploymentId>:<pattern>:<entityId>:*` (entity `42` keeps `420`'s), for each of
   * `broadPatterns` every entry `<deploymentId>:<pattern>*`.
   *
   * In two steps (see docs/cached-functions.md): before it resolves, entries that `cacheResult` wrote
   * under exactly those key prefixes (typed codec) become misses in every process, in O(number of
   * patterns), with no SCAN; after it resolves, a background SCAN + UNLINK of the patterns (coalesced:
   * one pass at a time per client, each pass serving every pattern queued by then) deletes every
   * matching key, including Python-written entries and those the first step does not cover (a broad
   * pattern that is a strict prefix of a key prefix, glob patterns, custom `key`s, the `'client'` codec).
   * @param call - `{ wait: true }` waits for the deletion too.
   * @returns with `wait: true`, the number of keys the deletion matched and unlinked for this call;
   *   otherwise `0` (nothing is deleted before it resolves; see `stats().cachedFunctions.scanDeleted`).
   * @throws {CacheValidationError} for `targetedPatterns` without an `entityId`; with `wait: true`, the
   *   deletion's {@link CacheError} when it fails.
   * @throws {CacheConnectionError} when the deployment id cannot be resolved through Press (platform mode).
   */
  invalidate(options: InvalidateOptions, call?: InvalidateCallOptions): Promise<number> {
    return this.#cached.invalidate(options, call);
  }

  /**
   * Invalidate every cached value tagged with any of `tags` (`getOrSet`/`cacheResult` option `tags`), in
   * every process, in O(number of tags): one counter per tag is raised on the server; nothing is scanned
   * or deleted. `behavior: 'expire'` (default): the entries are stale (served within their grace while
   * one refresh runs; misses without grace); `'remove'`: misses. A value whose fill started before this
   * call is never fresh afterwards; a value produced afterwards is.
   * @throws {CacheValidationError} for tags that are not non-empty strings (at most 64) or a bad
   *   `behavior`.
   */
  invalidateTags(tags: readonly string[], options?: InvalidateTagsOptions): Promise<void> {
    return this.#cached.invalidateTags(tags, options);
  }

  /**
   * Resolves once no background deletion of {@link CacheClient.invalidate} is running or queued in this
   * client. Never rejects (failures are logged and counted in `stats().cachedFunctions.scanErrors`).
   */
  invalidationSettled(): Promise<void> {
    return this.#cached.invalidationSettled();
  }

  /**
   * Round trip to the server.
   * @returns `true`.
   * @throws {CacheConnectionError} when the server cannot be reached.
   */
  async ping(): Promise<boolean> {
    try {
      return await this.#run('ping', async ({ engine }) => {
        this.#debug('ping', []);
        await engine.ping();
        return true;
      });
    } catch (err) {
      if (err instanceof CacheConnectionError || !(err instanceof CacheError)) throw err;
      throw new CacheConnectionError(err.message, { cause: err.cause });
    }
  }

  /**
   * Counters of this client since it was created: calls, errors, hits and misses per operation (see
   * {@link CacheStats}). Cheap: it copies a few numbers and does no I/O.
   */
  stats(): CacheStats {
    const stats = { ...this.#stats.snapshot(), cachedFunctions: this.#cached.stats() };
    return this.#near === undefined ? stats : { ...stats, nearCache: this.#near.stats() };
  }

  /**
   * Close the connection once pending commands have finished. Idempotent; later calls reject with
   * {@link CacheConnectionError}. Never waits for a cached function's factory: fills and grace refreshes
   * still running are abandoned quietly (their locks released now, their results not stored; a waiting
   * caller still gets its result). A view of a shared-mode `TenantCaches` disturbs nothing shared: its
   * fills that another call joined (possibly another view's) finish normally on the shared connection
   * (result stored, lock released); fills no one joined are abandoned as above.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  #close(): Promise<void> {
    // Cached functions release the fill locks of factories still running (never waiting for them); a
    // shared-mode view keeps the fills other views may have joined (they finish on the shared engine).
    const keepShared = this.#store.kind === 'shared';
    return this.#store.close(async (engine) => {
      if (keepShared) this.#sharedEngine = engine;
      await this.#cachedFunctions?.close((body) => body(engine), keepShared);
    });
  }

  /**
   * I/O of cached functions: through the store; once a shared-mode view is closed, on the shared engine
   * (the fills its close kept, see `CachedFunctions.close`; the engine rejects once `TenantCaches` closed).
   */
  #cachedIo<R>(operation: string, body: (engine: Engine, ks: KeySpace) => Promise<R>): Promise<R> {
    const engine = this.#sharedEngine;
    const tenant = this.#store.tenant;
    if (engine === undefined || tenant === undefined) {
      return this.#send(operation, (conn, ks) => body(conn.engine, ks), undefined);
    }
    return new Promise<R>((resolve) => resolve(body(engine, this.#keys(tenant)))).catch((err: unknown) =>
      Promise.reject(withOperation(operation, err)),
    );
  }

  /** @internal A redacted view for `console.log` / `util.inspect`: no URL, no credentials. */
  [inspect.custom](): string {
    return `CacheClient { source: ${this.#store.kind}, tenant: ${this.#store.tenant ?? '(from platform)'}, additionalPrefix: ${JSON.stringify(this.#prefix)}, closed: ${this.#store.closed()} }`;
  }

  /** @internal A redacted JSON view: no URL, no credentials. */
  toJSON(): Record<string, unknown> {
    return { source: this.#store.kind, additionalPrefix: this.#prefix, closed: this.#store.closed() };
  }

  #encode(value: unknown): string {
    let encoded: string;
    try {
      encoded = this.#codec.encode(value);
    } catch (err) {
      if (err instanceof CacheError) throw err;
      throw new CacheValidationError('The codec could not encode the value', { cause: err });
    }
    if (typeof encoded !== 'string')
      throw new CacheValidationError('The codec must encode values to strings');
    return this.#checkSize(encoded);
  }

  /** `encoded`, unless it is larger than `maxValueBytes`. */
  #checkSize(encoded: string): string {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit: skip the exact count for small values.
    if (encoded.length * 3 > this.#maxValueBytes && Buffer.byteLength(encoded) > this.#maxValueBytes) {
      throw new CacheValidationError(
        `The encoded value is larger than maxValueBytes (${this.#maxValueBytes} bytes)`,
      );
    }
    return encoded;
  }

  #debug(operation: string, keys: readonly string[], ttl?: number): void {
    if (!this.#debugOn) return;
    this.#logger.debug(`${operation} ${formatKeys(keys)}${ttl === undefined ? '' : ` ttl=${ttl}`}`);
  }

  #connect(): Promise<Connected> {
    return this.#store.connect();
  }

  #keys(tenant: string): KeySpace {
    let ks = this.#keySpace;
    if (ks === undefined || ks.tenant !== tenant || ks.prefix !== this.#prefix) {
      ks = new KeySpace(tenant, this.#prefix);
      this.#keySpace = ks;
    }
    return ks;
  }

  /**
   * Run an operation's `body` on the connection (connecting first when needed) and give every failure
   * the operation's name. The connected path is one call and one `.catch`: no async frames.
   */
  #run<R>(operation: string, body: Body<R>): Promise<R>;
  #run<V, R>(operation: string, body: Body<V>, map: (value: V) => R): Promise<R>;
  #run<V, R>(operation: string, body: Body<V>, map?: (value: V) => R): Promise<R> {
    return this.#runCounted(operation, this.#stats.counters(operation), body, map);
  }

  /** {@link CacheClient.#run} with the operation's counters at hand (the hot paths hold them in fields). */
  #runCounted<V, R>(
    operation: string,
    counters: OperationCounters,
    body: Body<V>,
    map: ((value: V) => R) | undefined,
  ): Promise<R> {
    counters.calls++;
    // Tracing (diagnostics.ts): one check when nobody subscribes, no context object built.
    if (isTraced()) {
      return traceOperation(operation, this.#store.current(), body, map, (tBody, tMap) =>
        this.#send(operation, tBody, tMap),
      );
    }
    return this.#send(operation, body, map);
  }

  /**
   * One public call of a cached function: counted once in {@link CacheClient.stats} (with the hits and
   * misses `body` records) and traced as one operation, whatever internal I/O it does (that I/O goes
   * through {@link CacheClient.#send}: neither counted nor traced, its failures counted as `errors`).
   */
  #cachedCall<R>(operation: string, keys: number, body: (reads: ReadRecorder) => Promise<R>): Promise<R> {
    const counters = this.#stats.counters(operation);
    counters.calls++;
    const count: ReadRecorder = counters.record;
    if (!isTraced()) return body(count);
    return traceCall(operation, this.#store.current(), keys, (ctx) =>
      body((hits, misses) => {
        count(hits, misses);
        ctx.hits = (ctx.hits ?? 0) + hits;
        ctx.misses = (ctx.misses ?? 0) + misses;
      }),
    );
  }

  /** {@link CacheClient.#run} without tracing and counting. */
  #send<V, R>(operation: string, body: Body<V>, map: ((value: V) => R) | undefined): Promise<R> {
    const conn = this.#store.current();
    if (conn === undefined) {
      return this.#connect().then(
        (fresh) => this.#attempt(operation, body, map, fresh),
        (err: unknown) => Promise.reject(this.#failed(operation, err)),
      );
    }
    return this.#attempt(operation, body, map, conn);
  }

  /** Count a failed call in {@link CacheClient.stats} and give the error the operation's name. */
  #failed(operation: string, err: unknown): CacheError {
    this.#stats.counters(operation).errors++;
    return withOperation(operation, err);
  }

  /** `body`, then `map` of its result, in one `.then` (each hop costs at hundreds of thousands of calls/s). */
  #attempt<V, R>(
    operation: string,
    body: Body<V>,
    map: ((value: V) => R) | undefined,
    conn: Connected,
  ): Promise<R> {
    let result: Promise<V>;
    try {
      result = body(conn, this.#keys(conn.tenant));
    } catch (err) {
      conn.release?.();
      return Promise.reject(this.#failed(operation, err));
    }
    // A pooled connection is held until the body settled (only then may it close as idle).
    if (conn.release !== undefined) result = result.finally(conn.release);
    return result.then(map ?? (identity as (value: V) => R), (err: unknown) =>
      this.#recover(operation, body, map, conn, err),
    );
  }

  /**
   * Platform credentials rotate: when the server rejects them, the store fetches them again once (see
   * `EngineSlot.recover`) and the body is retried on the new connection; any other failure is named.
   */
  async #recover<V, R>(
    operation: string,
    body: Body<V>,
    map: ((value: V) => R) | undefined,
    conn: Connected,
    err: unknown,
  ): Promise<R> {
    try {
      if (this.#store.closed()) throw err;
      const fresh = await this.#store.recover(conn, err);
      let value: V;
      try {
        value = await body(fresh, this.#keys(fresh.tenant));
      } finally {
        fresh.release?.();
      }
      return map === undefined ? (value as unknown as R) : map(value);
    } catch (failure) {
      throw this.#failed(operation, failure);
    }
  }

  /**
   * SCAN `match` and UNLINK each page, at most {@link FLUSH_CONCURRENCY} batches in flight. Every batch is
   * owned until it settles: once the scan or a batch fails (a lost connection, an `onProgress` that
   * throws), no batch starts, the ones in flight are awaited (their deletions still count), and the flush
   * rejects with the first failure. Keys left behind are deleted by the next flush.
   */
  async #flush(conn: Connected, match: string, options: FlushOptions): Promise<number> {
    this.#debug('flush', [match]);
    let deleted = 0;
    let failure: { error: unknown } | undefined;
    const inFlight = new Set<Promise<void>>();
    const unlink = (batch: string[]): void => {
      const settled: Promise<void> = conn.engine
        .unlink(batch)
        .then((n) => {
          deleted += n;
          options.onProgress?.(deleted);
        })
        .catch((error: unknown) => {
          failure ??= { error };
        })
        .finally(() => inFlight.delete(settled));
      inFlight.add(settled);
    };
    try {
      for await (const batch of conn.engine.scan(match, FLUSH_BATCH_SIZE)) {
        unlink(batch);
        // The tracked promises never reject: racing them only waits for a free slot.
        if (inFlight.size >= FLUSH_CONCURRENCY) await Promise.race(inFlight);
        if (failure !== undefined) break;
      }
    } catch (error) {
      failure ??= { error };
    } finally {
      await Promise.all(inFlight);
    }
    if (failure !== undefined) throw failure.error;
    return deleted;
  }
}

/** Re-throw `err` as the same class of {@link CacheError}, its message prefixed with the operation. */
function withOperation(operation: string, err: unknown): CacheError {
  if (err instanceof CacheError) {
    // Already named: by an earlier pass, or a validation error raised inside the operation.
    if (err.message.startsWith(`${operation} failed`) || err.message.startsWith(`${operation}:`)) return err;
    const Class = err.constructor as new (message: string, options: { cause: unknown }) => CacheError;
    return new Class(`${operation} failed: ${err.message}`, { cause: err.cause ?? err });
  }
  const reason = err instanceof Error ? err.message.split('\n')[0] : 'unexpected error';
  return new CacheError(`${operation} failed: ${reason}`, { cause: err });
}

// Validation errors name the method they come from (see operation.ts).
nameOperations(CacheClient.prototype, ['rawOperation'], ['get']);

/**
 * Create a {@link CacheClient} (Python: `get_client`).
 * @param options - see {@link CacheClientOptions}.
 */
export function getClient<C extends CodecOption = 'peak'>(
  options: CacheClientOptions<C> = {},
): CacheClient<C> {
  return new CacheClient(options);
}
