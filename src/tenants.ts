/**
 * `TenantCaches`: many tenants in one process (issue 18, SPEC section 10). `tenant(name)` returns a
 * {@link CacheClient} view; views cost no I/O, no timer and a few hundred bytes each.
 *
 * - Shared mode (`connectionConfig: { url }` without a tenant, or env `PEAK_CACHE_URL`): every view runs
 *   on one engine (one connection on a single server, one set of node connections on a cluster), one near
 *   cache (one global bound, one tracking stream, one heartbeat), one breaker and one in-process
 *   single-flight table (keyed by tenant).
 * - Pooled mode (`connectionFor`): one connection per tenant with that tenant's credentials, at most
 *   `maxConnections` open (see `store/tenant-pool.ts`).
 *
 * @module
 */
import type { CircuitBreaker } from './cached/breaker.js';
import { newCachedState, type SharedCachedState } from './cached/read-through.js';
import { CachedFunctionCounters, type CachedFunctionStats } from './cached/stats.js';
import { CacheClient } from './client.js';
import { resolveCodec } from './codec.js';
import { chooseSource } from './connection.js';
import { CacheConnectionError, CacheValidationError } from './errors.js';
import { validateTenant } from './keys.js';
import { type CacheLogger, defaultLogger } from './logger.js';
import { NearCache, type NearCacheStats } from './near-cache/near-cache.js';
import { type NearCacheOptions, resolveNearCacheOptions } from './near-cache/options.js';
import {
  type CacheClientOptions,
  type ConnectionConfig,
  checkOptionNames,
  MAX_TIMER_MS,
  positiveInteger,
  resolveSettings,
} from './options.js';
import type { Session } from './session.js';
import { type CacheStats, type OperationStats, StatsRecorder } from './stats.js';
import { VIEW_STORE, type ViewStore } from './store/binding.js';
import { EngineSlot } from './store/engine-slot.js';
import { PooledView } from './store/pooled-view.js';
import { SharedView } from './store/shared-store.js';
import { POOL_CLOSED, TenantPool } from './store/tenant-pool.js';
import type { CodecOption } from './value-types.js';

/** What `connectionFor(tenant)` may return: direct settings (a URL) or a Peak platform session. */
export type TenantConnection = ConnectionConfig | Session;

/** The error of a `TenantCaches` given neither a shared URL nor `connectionFor`: its two modes. */
const TENANT_CACHES_NOT_CONFIGURED =
  'TenantCaches has no connection. Use one of: shared mode, `connectionConfig: { url }` (redis://, rediss:// ' +
  'or memory://; no tenant: each view names its own) or env PEAK_CACHE_URL; or pooled mode, ' +
  '`connectionFor: (tenant) => ({ url })` (or a Session) for one connection per tenant';

/** Default of {@link TenantCachesOptions.maxConnections}. */
export const DEFAULT_MAX_CONNECTIONS = 100;
/** Default of {@link TenantCachesOptions.idleTimeoutMs}. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * Options of {@link TenantCaches}: one of `connectionConfig` (shared mode) or `connectionFor` (pooled).
 * `C` is the codec, as for {@link CacheClientOptions}.
 */
export interface TenantCachesOptions<C extends CodecOption = CodecOption> {
  /**
   * Shared mode: `url` (or `nodes`, `cluster`) of the one server every tenant's views use, without a
   * `tenant` (each view names its own). Pooled mode: tuning only (`timeoutMs`, `connectTimeoutMs`,
   * `keepAliveMs`, `maxQueueLength`, `cluster`), the defaults of every tenant connection.
   * @default shared mode on env `PEAK_CACHE_URL` when `connectionFor` is not set
   */
  connectionConfig?: ConnectionConfig;
  /**
   * Pooled mode: the connection of `tenant`, called when it is opened (first use, and again after it was
   * closed as idle or to make room): a {@link ConnectionConfig} with a `url` (its `tenant`, if set, must
   * be `tenant`) or a {@link Session} (the platform's reply must name `tenant`). Credentials naming
   * another tenant fail the call with {@link CacheConnectionError}; so does a function that throws. One
   * that does not settle within `connectionConfig.connectTimeoutMs` (else `timeoutMs`) fails the calls
   * waiting for it with {@link CacheTimeoutError}. Called again once when the server rejects the
   * tenant's credentials (`WRONGPASS`/`NOAUTH`), at most once per 30 s per tenant
   * (`CREDENTIALS_REFRESH_COOLDOWN_MS`).
   */
  connectionFor?: (tenant: string) => TenantConnection | Promise<TenantConnection>;
  /**
   * Pooled mode: most tenant connections open at once. When full, the least recently used idle one is
   * closed to make room; when all are busy, calls wait (at most `maxQueueLength` of them, at most
   * `timeoutMs` each, then {@link CacheTimeoutError}).
   * @default 100
   */
  maxConnections?: number;
  /**
   * Pooled mode: a tenant connection without calls for this many milliseconds is closed (checked every
   * half of it by one unref'd timer; reopened on the next call). At most 2^31-1 (about 24.8 days, Node's
   * longest timer); {@link CacheValidationError} otherwise.
   * @default 60000
   */
  idleTimeoutMs?: number;
  /**
   * Shared mode: one near cache for every view (one global `maxEntries` bound). Not available in pooled
   * mode (a {@link CacheValidationError}).
   * @default off
   */
  nearCache?: NearCacheOptions;
  /**
   * Codec of every view (the near cache holds decoded values). It also types the views: a
   * `TenantCaches<'json'>`'s views are `CacheClient<'json'>` (see {@link CacheClientOptions.codec}).
   * @default 'peak'
   */
  codec?: C;
  /** See {@link CacheClientOptions.maxValueBytes}. @default 16777216 */
  maxValueBytes?: number;
  /** See {@link CacheClientOptions.debugLogs}. @default true */
  debugLogs?: boolean;
  /** See {@link CacheClientOptions.logger}. */
  logger?: CacheLogger;
  /** See {@link CacheClientOptions.env}. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** See {@link CacheClientOptions.deploymentId}. @default env `PRESS_DEPLOYMENT_ID` */
  deploymentId?: string | null;
}

/** Options of {@link TenantCaches.tenant}. */
export interface TenantViewOptions {
  /** Extra namespace after the tenant (`<tenant>:<additionalPrefix>:<key>`). @default null */
  additionalPrefix?: string | null;
}

/** Counters of one tenant's views (all views of the tenant together). */
export interface TenantStats {
  /** Counters per operation, as in {@link CacheStats.operations}. */
  readonly operations: CacheStats['operations'];
  /** The sum over every operation. */
  readonly totals: OperationStats;
  /**
   * Counters of the tenant's cached functions (every view's `getOrSet`, `cacheResult`, decorators), as
   * in {@link CacheStats.cachedFunctions}; `breakerTrips` counts the trips of the breaker the tenant's
   * views use (shared mode: the one breaker of every tenant).
   */
  readonly cachedFunctions: CachedFunctionStats;
}

/** A snapshot returned by {@link TenantCaches.stats}. */
export interface TenantCachesStats {
  /** `'shared'` (one connection for every tenant) or `'pooled'` (one per tenant, `connectionFor`). */
  readonly mode: 'shared' | 'pooled';
  /** Sum over every tenant. */
  readonly totals: OperationStats;
  /**
   * Cached-function counters summed over every tenant; `breakerTrips` counts each breaker's trips once
   * (shared mode: the one breaker; pooled mode: one per tenant).
   */
  readonly cachedFunctions: CachedFunctionStats;
  /**
   * Connections open or opening now: shared mode `0` or `1` (on a cluster, one set of node connections);
   * pooled mode the tenant connections (at most `maxConnections`).
   */
  readonly connections: number;
  /** Pooled mode: calls waiting for a connection now. */
  readonly waiting: number;
  /** Counters per tenant that has a view. */
  readonly tenants: Readonly<Record<string, TenantStats>>;
  /** The shared near cache (shared mode with `nearCache`). */
  readonly nearCache?: NearCacheStats;
}

const OPTION_NAMES = new Set([
  'connectionConfig',
  'connectionFor',
  'maxConnections',
  'idleTimeoutMs',
  'nearCache',
  'codec',
  'maxValueBytes',
  'debugLogs',
  'logger',
  'env',
  'deploymentId',
]);
const VIEW_OPTION_NAMES = new Set(['additionalPrefix']);

/**
 * What a tenant's views share: operation and cached-function counters, and the cached functions' state
 * (shared mode: the one single-flight table and breaker of every view; pooled mode: the tenant's own).
 */
interface TenantState {
  readonly stats: StatsRecorder;
  readonly cachedState: SharedCachedState & { readonly counters: CachedFunctionCounters };
}

/**
 * Caches of many tenants over one shared store (SPEC section 10). `tenant(name)` returns a
 * {@link CacheClient} (so `KeyvPeakCache`, the decorators, `cacheResult` and `stats()` work with it).
 * The constructor does no I/O.
 *
 * @example
 * ```ts
 * const caches = new TenantCaches({ connectionConfig: { url: 'redis://cache:6379' } });
 * const acme = caches.tenant('acme', { additionalPrefix: 'pricing' });
 * await acme.set('user:1', { name: 'Ada' }, 60); // acme:pricing:user:1
 * await caches.close();
 * ```
 */
export class TenantCaches<C extends CodecOption = 'peak'> {
  readonly #viewOptions: CacheClientOptions<C>;
  readonly #slot: EngineSlot | undefined;
  readonly #pool: TenantPool | undefined;
  readonly #near: NearCache | undefined;
  /** Shared mode: the one single-flight table and breaker of every view. */
  readonly #shared: SharedCachedState | undefined;
  readonly #tenants = new Map<string, TenantState>();
  #closing: Promise<void> | undefined;

  /**
   * @param options - see {@link TenantCachesOptions}.
   * @throws {CacheValidationError} for an invalid option (the message names it).
   * @throws {CacheConnectionError} when neither a URL nor `connectionFor` is configured.
   */
  constructor(options: TenantCachesOptions<C> = {}) {
    if (options === null || typeof options !== 'object')
      throw new CacheValidationError('TenantCaches options must be an object');
    checkOptionNames(options, OPTION_NAMES, 'TenantCaches');
    const logger = options.logger ?? defaultLogger;
    const env = options.env ?? process.env;
    const codec = resolveCodec(options.codec);
    this.#viewOptions = {
      codec: codec as unknown as C,
      logger,
      env,
      ...(options.debugLogs === undefined ? {} : { debugLogs: options.debugLogs }),
      ...(options.maxValueBytes === undefined ? {} : { maxValueBytes: options.maxValueBytes }),
      ...(options.deploymentId === undefined ? {} : { deploymentId: options.deploymentId }),
    };
    if (options.maxValueBytes !== undefined) positiveInteger(options.maxValueBytes, 'maxValueBytes');
    const config = options.connectionConfig ?? {};
    if (config.tenant !== undefined) {
      throw new CacheValidationError(
        'TenantCaches: connectionConfig.tenant is not used: each view names its tenant (caches.tenant(name))',
      );
    }
    if (options.connectionFor !== undefined) {
      if (typeof options.connectionFor !== 'function')
        throw new CacheValidationError('The `connectionFor` option must be a function of the tenant');
      if (options.nearCache !== undefined) {
        throw new CacheValidationError(
          'TenantCaches: nearCache is available in shared mode only (connectionConfig.url), not with connectionFor',
        );
      }
      for (const field of ['url', 'nodes'] as const) {
        if (config[field] !== undefined)
          throw new CacheValidationError(
            `TenantCaches: connectionConfig.${field} cannot be combined with connectionFor (which gives each tenant's URL)`,
          );
      }
      this.#pool = new TenantPool({
        connectionFor: options.connectionFor,
        maxConnections: positiveInteger(options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, 'maxConnections'),
        idleTimeoutMs: positiveInteger(
          options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
          'idleTimeoutMs',
          MAX_TIMER_MS,
        ),
        tuning: config,
        settings: resolveSettings(config),
        logger,
      });
      return;
    }
    for (const name of ['maxConnections', 'idleTimeoutMs'] as const) {
      if (options[name] !== undefined)
        throw new CacheValidationError(`TenantCaches: ${name} applies with connectionFor only`);
    }
    const settings = resolveSettings(config);
    // Its own message (a client's names a tenant and the platform, which TenantCaches does not take).
    if (config.url === undefined && config.nodes === undefined && !env.PEAK_CACHE_URL)
      throw new CacheConnectionError(TENANT_CACHES_NOT_CONFIGURED);
    // The source's tenant is a placeholder: every view supplies its own.
    const source = chooseSource(undefined, { ...config, tenant: 'shared' }, env, logger);
    if (source.kind !== 'direct') throw new CacheConnectionError(TENANT_CACHES_NOT_CONFIGURED);
    const nearOptions = resolveNearCacheOptions(options.nearCache);
    this.#near =
      nearOptions === undefined ? undefined : new NearCache(nearOptions, (raw) => codec.decode(raw));
    this.#slot = new EngineSlot({ source, settings, near: this.#near, logger, closedMessage: POOL_CLOSED });
    this.#shared = newCachedState();
  }

  /**
   * A {@link CacheClient} for `name`'s namespace (`<name>:[<additionalPrefix>:]`). No I/O, no timer; a
   * new view each call (views of one tenant share counters: their `stats()` are the tenant's). Closing a
   * view releases nothing shared.
   * @throws {CacheValidationError} for an invalid tenant name (as for a client) or prefix.
   * @throws {CacheConnectionError} once {@link TenantCaches.close} was called.
   */
  tenant(name: string, options: TenantViewOptions = {}): CacheClient<C> {
    validateTenant(name);
    if (options === null || typeof options !== 'object')
      throw new CacheValidationError('tenant() options must be an object');
    checkOptionNames(options, VIEW_OPTION_NAMES, 'tenant()');
    if (this.#closing !== undefined) throw new CacheConnectionError(`tenant failed: ${POOL_CLOSED}`);
    const state = this.#state(name);
    const store: ViewStore =
      this.#slot !== undefined
        ? new SharedView(this.#slot, name, this.#near, state.cachedState, state.stats)
        : new PooledView(this.#pool as TenantPool, name, state.cachedState, state.stats);
    return new CacheClient<C>({
      ...this.#viewOptions,
      ...(options.additionalPrefix === undefined ? {} : { additionalPrefix: options.additionalPrefix }),
      [VIEW_STORE]: store,
    } as CacheClientOptions<C>);
  }

  /** Totals, open connections and a per-tenant breakdown. Cheap: copies counters, no I/O. */
  stats(): TenantCachesStats {
    const tenants: Record<string, TenantStats> = {};
    const totals = { calls: 0, errors: 0, hits: 0, misses: 0 };
    const cached = new CachedFunctionCounters();
    const breakers = new Set<CircuitBreaker>();
    for (const [name, state] of this.#tenants) {
      const { breaker, counters } = state.cachedState;
      counters.breakerTrips = breaker.trips;
      const cachedFunctions = counters.snapshot();
      tenants[name] = { ...state.stats.snapshot(), cachedFunctions };
      const snapshot = tenants[name];
      totals.calls += snapshot.totals.calls;
      totals.errors += snapshot.totals.errors;
      totals.hits += snapshot.totals.hits;
      totals.misses += snapshot.totals.misses;
      for (const field of Object.keys(cached) as (keyof CachedFunctionStats)[]) {
        if (field !== 'breakerTrips') cached[field] += cachedFunctions[field];
      }
      if (!breakers.has(breaker)) {
        breakers.add(breaker);
        cached.breakerTrips += breaker.trips;
      }
    }
    const pool = this.#pool;
    return {
      mode: pool === undefined ? 'shared' : 'pooled',
      totals,
      cachedFunctions: cached.snapshot(),
      connections: pool === undefined ? (this.#slot?.open ? 1 : 0) : pool.size,
      waiting: pool?.waiting ?? 0,
      tenants,
      ...(this.#near === undefined ? {} : { nearCache: this.#near.stats() }),
    };
  }

  /**
   * Close every connection once pending commands finished. Idempotent; later calls of every view reject
   * with {@link CacheConnectionError}, and {@link TenantCaches.tenant} throws. Fill locks of cached
   * functions still running expire by themselves (a view's close releases those of its background
   * refreshes at once; its fills, which other views may have joined, finish while the caches are open).
   */
  close(): Promise<void> {
    this.#closing ??= this.#slot !== undefined ? this.#slot.close() : (this.#pool as TenantPool).close();
    return this.#closing;
  }

  #state(name: string): TenantState {
    let state = this.#tenants.get(name);
    if (state === undefined) {
      state = {
        stats: new StatsRecorder(),
        cachedState: {
          // Pooled mode: each tenant its own connection, so its own breaker and single-flight table.
          ...(this.#shared ?? newCachedState()),
          counters: new CachedFunctionCounters(),
        },
      };
      this.#tenants.set(name, state);
    }
    return state;
  }
}
