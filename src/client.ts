/**
 * `CacheClient`: the Peak cache client. Tenant prefixing, validation, the codec, logging and error
 * mapping live here, above a narrow string-only {@link Engine}.
 *
 * @module
 */
import { inspect } from 'node:util';
import type { InvalidateCallOptions } from './cached/invalidation.js';
import { type InvalidateOptions, resolveDeploymentId } from './cached/keys.js';
import { CachedFunctions, type CacheResultOptions, type GetOrSetOptions } from './cached/read-through.js';
import type { InvalidateTagsOptions } from './cached/tags.js';
import { type Codec, resolveCodec } from './codec.js';
import { type ConnectionSource, chooseSource, createEngine, resolveEndpoint } from './connection.js';
import { describeServer, isTraced, type ServerInfo, traceOperation } from './diagnostics.js';
import type { Engine } from './engines/engine.js';
import { isAuthFailure } from './engines/redis-errors.js';
import { CacheConnectionError, CacheError, CacheValidationError } from './errors.js';
import { KeySpace, validateKey, validatePattern, validatePrefix } from './keys.js';
import { type CacheLogger, defaultLogger, formatKeys, isDebugEnabled } from './logger.js';
import { NearCache, withNearCache } from './near-cache/near-cache.js';
import { resolveNearCacheOptions } from './near-cache/options.js';
import {
  type CacheClientOptions,
  type ConnectionSettings,
  checkKnownOptions,
  DEFAULT_MAX_VALUE_BYTES,
  positiveInteger,
  resolveSettings,
} from './options.js';
import { type CacheStats, StatsRecorder } from './stats.js';
import { requireWellFormed } from './unicode.js';

/** Largest TTL accepted, in seconds (about 136 years). */
export const MAX_TTL_SECONDS = 2 ** 32;
/** Keys per SCAN page and per UNLINK batch during flushes. */
export const FLUSH_BATCH_SIZE = 1000;
/** UNLINK batches in flight at once during a flush. */
const FLUSH_CONCURRENCY = 4;
/** After a credentials refresh, rejected credentials fail calls without another refresh for this long. */
export const CREDENTIALS_REFRESH_COOLDOWN_MS = 30_000;

/** Options of {@link CacheClient.flushByPattern} and {@link CacheClient.flushTenant}. */
export interface FlushOptions {
  /**
   * Called after each deleted batch with the number of keys deleted so far. Should it throw, the flush
   * stops as on a failure and rejects with a {@link CacheError} carrying that error as `cause`.
   */
  onProgress?: (deleted: number) => void;
}

interface Connected {
  readonly engine: Engine;
  readonly tenant: string;
  /** What tracing shows of the endpoint (no URL, no credentials). */
  readonly server?: ServerInfo;
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
 * credentials request) happens on first use.
 *
 * @example
 * ```ts
 * const cache = new CacheClient({ connectionConfig: { url: 'redis://127.0.0.1:6379', tenant: 'acme' } });
 * await cache.set('user:1', { name: 'Ada' }, 60);
 * await cache.get<{ name: string }>('user:1'); // { name: 'Ada' }
 * await cache.close();
 * ```
 */
export class CacheClient {
  readonly #source: ConnectionSource;
  readonly #settings: ConnectionSettings;
  readonly #codec: Codec;
  readonly #logger: CacheLogger;
  /** `debugLogs` and a logger that shows debug lines (fixed at start-up for `NODE_DEBUG`). */
  readonly #debugOn: boolean;
  readonly #maxValueBytes: number;
  #prefix: string | null;
  #keySpace: KeySpace | undefined;
  #connected: Connected | undefined;
  #connecting: Promise<Connected> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #lastRefresh = Number.NEGATIVE_INFINITY;
  readonly #stats = new StatsRecorder();
  /** The near cache (option `nearCache`), or `undefined` when off. */
  readonly #near: NearCache | undefined;
  readonly #cached: CachedFunctions;

  /**
   * @param options - see {@link CacheClientOptions}.
   * @throws {CacheValidationError} for an invalid option (the message names it).
   * @throws {CacheConnectionError} when no connection source is configured.
   */
  constructor(options: CacheClientOptions = {}) {
    if (options === null || typeof options !== 'object')
      throw new CacheValidationError('Options must be an object');
    checkKnownOptions(options);
    const config = options.connectionConfig ?? {};
    this.#settings = resolveSettings(config);
    this.#logger = options.logger ?? defaultLogger;
    this.#debugOn = (options.debugLogs ?? true) && isDebugEnabled(this.#logger);
    this.#codec = resolveCodec(options.codec);
    this.#maxValueBytes = positiveInteger(options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES, 'maxValueBytes');
    this.#prefix = validatePrefix(options.additionalPrefix);
    const near = resolveNearCacheOptions(options.nearCache);
    this.#near = near === undefined ? undefined : new NearCache(near, (raw) => this.#codec.decode(raw));
    this.#source = chooseSource(options.session, config, options.env ?? process.env, this.#logger);
    this.#cached = new CachedFunctions({
      run: (operation, body) => this.#run(operation, (conn, ks) => body(conn.engine, ks)),
      flushByPattern: (pattern) => this.flushByPattern(pattern),
      encode: (value) => this.#encode(value),
      decode: (raw) => this.#codec.decode(raw),
      checkSize: (encoded) => this.#checkSize(encoded),
      closed: () => this.#closed,
      prefix: () => this.#prefix,
      logger: this.#logger,
      deploymentId: resolveDeploymentId(options.deploymentId, options.env ?? process.env),
    });
  }

  /**
   * The tenant whose namespace this client uses: the configured one, or in platform mode the one the
   * platform names (fetching the credentials on first use, without contacting the cache server).
   */
  async getTenant(): Promise<string> {
    if (this.#source.kind === 'direct') return this.#source.tenant;
    try {
      return (this.#connected ?? (await this.#connect())).tenant;
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
    return this.#run(
      'set',
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
   */
  get<T = unknown>(key: string): Promise<T | null>;
  get<T = unknown, D = T>(key: string, defaultValue: D): Promise<T | D>;
  get<T, D>(key: string, defaultValue?: D): Promise<T | D | null> {
    try {
      validateKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    const near = this.#near;
    let stored = '';
    return this.#run(
      'get',
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

  /** Delete `keys`; the number deleted. No keys: `0`, with no I/O. */
  async delete(...keys: string[]): Promise<number> {
    for (const key of keys) validateKey(key);
    if (keys.length === 0) return 0;
    this.#cached.forget(keys); // tags: fills of these keys running here do not store their results
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

  /** Values of `keys` in order, `null` for misses. No keys: `[]`, with no I/O. */
  async mget<T = unknown>(...keys: string[]): Promise<(T | null)[]> {
    for (const key of keys) validateKey(key);
    if (keys.length === 0) return [];
    const near = this.#near;
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
        return raws.map((raw, i) =>
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
    this.#cached.forget(); // tags: fills running here do not store their results
    return this.#run('flushByPattern', (conn, ks) => this.#flush(conn, ks.pattern(pattern), options));
  }

  /**
   * Delete every key of the tenant, whatever its additional prefix. Other tenants are never touched.
   * @returns the number of keys deleted.
   * @throws {CacheConnectionError} (`flushTenant failed: ...`) when the connection fails: the batches in
   *   flight are awaited first; a later flush deletes what this one did not reach.
   */
  async flushTenant(options: FlushOptions = {}): Promise<number> {
    this.#cached.forget(); // tags: fills running here do not store their results
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
   * the cache, released by its owner, expiring by itself if the owner dies; waiters poll at most
   * `lockTimeoutMs`, then run the factory themselves). A factory error reaches every waiting caller and
   * is not cached. When the cache fails, the factory's result is returned and the cache is skipped for
   * `breakerMs`. See {@link GetOrSetOptions} and docs/cached-functions.md.
   * @throws the factory's error; {@link CacheFactoryError} when another process's factory failed while
   * this call waited for it; {@link CacheValidationError} for invalid options.
   */
  getOrSet<T>(key: string, factory: () => T | Promise<T>, options?: GetOrSetOptions): Promise<Awaited<T>> {
    return this.#cached.getOrSet(key, factory, options);
  }

  /**
   * `fn` with its results cached (Python: `cache_result`), under
   * `<tenant>:[<additionalPrefix>:]<deploymentId>:<keyPrefix>[:<entityId>]:<digest>`, with the behaviour
   * of {@link CacheClient.getOrSet} for each call. Results keep their types on a hit.
   * @throws {CacheValidationError} for invalid options (at once, not at the first call).
   */
  cacheResult<This, A extends unknown[], R>(
    fn: (this: This, ...args: A) => R,
    options?: CacheResultOptions<A>,
  ): (this: This, ...args: A) => Promise<Awaited<R>> {
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
   * caller still gets its result).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    const connected = this.#connected ?? (await this.#connecting?.catch(() => undefined));
    this.#connected = undefined;
    // Cached functions release the fill locks of factories still running (never waiting for them).
    if (connected !== undefined) await this.#cached.close((body) => body(connected.engine));
    await connected?.engine.close();
  }

  /** @internal A redacted view for `console.log` / `util.inspect`: no URL, no credentials. */
  [inspect.custom](): string {
    return `CacheClient { source: ${this.#source.kind}, tenant: ${this.#connected?.tenant ?? (this.#source.kind === 'direct' ? this.#source.tenant : '(from platform)')}, additionalPrefix: ${JSON.stringify(this.#prefix)}, closed: ${this.#closed} }`;
  }

  /** @internal A redacted JSON view: no URL, no credentials. */
  toJSON(): Record<string, unknown> {
    return { source: this.#source.kind, additionalPrefix: this.#prefix, closed: this.#closed };
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
    if (this.#closed) return Promise.reject(new CacheConnectionError('the client is closed'));
    this.#connecting ??= resolveEndpoint(this.#source, this.#settings)
      .then((endpoint) => {
        const connected = {
          engine: withNearCache(this.#near, createEngine(endpoint, this.#settings)),
          tenant: endpoint.tenant,
          server: describeServer(endpoint.url, endpoint.clusterNodes !== undefined),
        };
        if (this.#closed) {
          abandon(connected.engine);
          throw new CacheConnectionError('the client is closed');
        }
        this.#connected = connected;
        return connected;
      })
      .finally(() => {
        this.#connecting = undefined;
      });
    return this.#connecting;
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
    this.#stats.counters(operation).calls++;
    // Tracing (diagnostics.ts): one check when nobody subscribes, no context object built.
    if (isTraced()) {
      return traceOperation(operation, this.#connected, body, map, (tBody, tMap) =>
        this.#send(operation, tBody, tMap),
      );
    }
    return this.#send(operation, body, map);
  }

  /** {@link CacheClient.#run} without tracing and counting. */
  #send<V, R>(operation: string, body: Body<V>, map: ((value: V) => R) | undefined): Promise<R> {
    const conn = this.#connected;
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
      return Promise.reject(this.#failed(operation, err));
    }
    return result.then(map ?? (identity as (value: V) => R), (err: unknown) =>
      this.#recover(operation, body, map, conn, err),
    );
  }

  /**
   * Platform credentials rotate: when the server rejects them, fetch them again once and retry. The
   * command never ran (the connection was not authenticated), so retrying it cannot duplicate a write.
   * At most one refresh per cool-down, so rejected credentials never cause a storm of requests.
   */
  async #recover<V, R>(
    operation: string,
    body: Body<V>,
    map: ((value: V) => R) | undefined,
    conn: Connected,
    err: unknown,
  ): Promise<R> {
    try {
      if (this.#source.kind !== 'platform' || !isAuthFailure(err) || this.#closed) throw err;
      if (this.#connected === conn) {
        if (performance.now() - this.#lastRefresh < CREDENTIALS_REFRESH_COOLDOWN_MS) throw err;
        this.#lastRefresh = performance.now();
        this.#logger.warn(
          'peak-cache: the server rejected the platform credentials; fetching them again once',
        );
        this.#connected = undefined;
        abandon(conn.engine);
      }
      const fresh = this.#connected ?? (await this.#connect());
      const value = await body(fresh, this.#keys(fresh.tenant));
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

/**
 * Close an engine no one uses any more, in the background. It has no caller to report a failure to, and
 * an unowned rejection would crash the host: the failure is dropped.
 */
function abandon(engine: Engine): void {
  engine.close().catch(() => {});
}

/** Re-throw `err` as the same class of {@link CacheError}, its message prefixed with the operation. */
function withOperation(operation: string, err: unknown): CacheError {
  if (err instanceof CacheError) {
    if (err.message.startsWith(`${operation} failed`)) return err;
    const Class = err.constructor as new (message: string, options: { cause: unknown }) => CacheError;
    return new Class(`${operation} failed: ${err.message}`, { cause: err.cause ?? err });
  }
  const reason = err instanceof Error ? err.message.split('\n')[0] : 'unexpected error';
  return new CacheError(`${operation} failed: ${reason}`, { cause: err });
}

/**
 * Create a {@link CacheClient} (Python: `get_client`).
 * @param options - see {@link CacheClientOptions}.
 */
export function getClient(options: CacheClientOptions = {}): CacheClient {
  return new CacheClient(options);
}
