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
import { type CachedFunctions, newCachedState, type SharedCachedState } from './cached/read-through.js';
import { CachedFunctionCounters, type CachedFunctionStats } from './cached/stats.js';
import { CacheClient } from './client.js';
import { resolveCodec } from './codec.js';
import { chooseSource } from './connection.js';
import type { Engine } from './engines/engine.js';
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
/** Default of {@link TenantCachesOptions.minHoldMs}, in milliseconds. */
export const DEFAULT_MIN_HOLD_MS = 200;
/**
 * Most idle tenants whose counters a `TenantCaches` keeps (see {@link TenantCachesStats.tenants}): a
 * tenant is idle once none of its views is open (each was closed or garbage-collected) and, in pooled
 * mode, its connection is closed; none of its fills holds a lock. Beyond this many, the least recently
 * used idle tenants' counters are dropped (their counts stay in the totals).
 */
export const MAX_IDLE_TENANTS = 1000;

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
   * closed to make room (once past `minHoldMs`, or idle for a 20th of it), else the least recently used
   * one past `minHoldMs` is drained; meanwhile calls wait (at most `maxQueueLength` of them, at most
   * `timeoutMs` each, then {@link CacheTimeoutError}).
   * @default 100
   */
  maxConnections?: number;
  /**
   * Pooled mode: least time, in milliseconds, a tenant connection serves its tenant (from when it was
   * given to it) before it may be closed or drained to make room for another tenant; the hold in effect is
   * at most half of `connectionConfig.timeoutMs`. It bounds churn when more tenants are active at once
   * than `maxConnections`: a connection in continuous use goes to another tenant at most once per hold
   * (close, connect, AUTH), instead of once per call; past its hold the least recently used one is taken
   * (idle) or drained (no new calls; given away once its running calls settled). A waiting tenant is
   * served after about a hold plus that drain, else its calls fail with {@link CacheTimeoutError} after
   * `timeoutMs`. An idle connection within its hold is taken once idle for a 20th of the hold (10 ms by
   * default). 0: no hold. A non-negative integer, at most 2^31-1; {@link CacheValidationError}
   * otherwise. See docs/tenants.md.
   * @default 200
   */
  minHoldMs?: number;
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
  /**
   * Counters per tenant: every tenant with an open view (never reset while one is open), plus at most
   * 1,000 (`MAX_IDLE_TENANTS`) idle ones, most recently used first kept (a tenant is idle once each of its
   * views was closed or garbage-collected and, pooled mode, its connection is closed; an idle tenant
   * dropped here starts from zero with its next view). The totals include dropped tenants' counts.
   */
  readonly tenants: Readonly<Record<string, TenantStats>>;
  /** The shared near cache (shared mode with `nearCache`). */
  readonly nearCache?: NearCacheStats;
}

const OPTION_NAMES = new Set([
  'connectionConfig',
  'connectionFor',
  'maxConnections',
  'idleTimeoutMs',
  'minHoldMs',
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
  /** Views of the tenant not closed nor garbage-collected (an idle tenant has none). */
  views: number;
  /** When a view of the tenant was last made (`#uses` then): the least recently used idle go first. */
  used: number;
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
  /** Each tenant's state (see {@link MAX_IDLE_TENANTS}). */
  readonly #tenants = new Map<string, TenantState>();
  /** Views made so far: the clock of {@link TenantState.used}. */
  #uses = 0;
  /** Size of `#tenants` from which a new tenant first drops idle tenants' states (amortised O(1)). */
  #pruneAt = 2 * MAX_IDLE_TENANTS;
  /** Counts of the tenants whose states were dropped (kept in the totals). */
  readonly #dropped = {
    totals: { calls: 0, errors: 0, hits: 0, misses: 0 },
    cached: new CachedFunctionCounters(),
  };
  /** Views not closed nor collected yet: one collected unclosed counts as closed (see {@link viewCloser}). */
  readonly #collected = new FinalizationRegistry<() => void>((closed) => closed());
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
        minHoldMs: minHoldMs(options.minHoldMs),
        tuning: config,
        settings: resolveSettings(config),
        logger,
      });
      return;
    }
    for (const name of ['maxConnections', 'idleTimeoutMs', 'minHoldMs'] as const) {
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
    // A view counts as open until its close() (or, never closed, until it is garbage-collected).
    const closed = viewCloser(state);
    const store: ViewStore =
      this.#slot !== undefined
        ? new SharedView(this.#slot, name, this.#near, state.cachedState, state.stats, closed)
        : new PooledView(this.#pool as TenantPool, name, state.cachedState, state.stats, closed);
    const view = new CacheClient<C>({
      ...this.#viewOptions,
      ...(options.additionalPrefix === undefined ? {} : { additionalPrefix: options.additionalPrefix }),
      [VIEW_STORE]: store,
    } as CacheClientOptions<C>);
    state.views++;
    this.#collected.register(view, closed);
    return view;
  }

  /** Totals, open connections and a per-tenant breakdown. Cheap: copies counters, no I/O. */
  stats(): TenantCachesStats {
    this.#dropIdle();
    const tenants: Record<string, TenantStats> = {};
    const dropped = this.#dropped;
    const totals = { ...dropped.totals };
    const cached = new CachedFunctionCounters();
    Object.assign(cached, dropped.cached);
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
   * with {@link CacheConnectionError}, and {@link TenantCaches.tenant} throws. Never waits for a cached
   * function's factory: the fills and background refreshes still running on any view (those a view's
   * close kept because another call joined them included) are abandoned as by `CacheClient.close()`:
   * their locks released at once (compare-and-delete), their results not stored, nothing logged; a
   * waiting caller still gets its factory's result, and a caller waiting for a lock's owner rejects with
   * {@link CacheConnectionError}. Pooled mode: a tenant whose connection was closed (idle, or to make
   * room) while its factory ran gets a short connection for the release (`connectionFor` again, at most
   * `maxConnections` at a time, after the others closed); if it cannot open within `connectTimeoutMs`,
   * its locks expire within `lockTtlMs`.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#slot !== undefined) {
      const shared = this.#shared as SharedCachedState;
      await this.#slot.close((engine) => abandonFills(shared, engine));
      await abandonFills(shared, undefined); // never connected: nothing to release
      return;
    }
    const pool = this.#pool as TenantPool;
    // Tenants holding locks whose connection was closed (idle, or to make room): reopened for the release.
    const reopen: string[] = [];
    for (const [name, state] of this.#tenants) {
      if (state.cachedState.holding.size > 0 && !pool.isOpen(name)) reopen.push(name);
    }
    await pool.close(
      (tenant, engine) => abandonFills(this.#tenants.get(tenant)?.cachedState, engine),
      reopen,
    );
    // Tenants whose connection could not open: their leases stop; their locks expire by themselves.
    await Promise.all([...this.#tenants.values()].map((state) => abandonFills(state.cachedState, undefined)));
  }

  /** `name`'s state (created on first use), now the most recently used. */
  #state(name: string): TenantState {
    let state = this.#tenants.get(name);
    if (state === undefined) {
      if (this.#tenants.size >= this.#pruneAt) this.#dropIdle();
      state = {
        stats: new StatsRecorder(),
        cachedState: {
          // Pooled mode: each tenant its own connection, so its own breaker and single-flight table.
          ...(this.#shared ?? newCachedState()),
          counters: new CachedFunctionCounters(),
        },
        views: 0,
        used: 0,
      };
      this.#tenants.set(name, state);
    }
    state.used = ++this.#uses;
    return state;
  }

  /**
   * Drop the states of the least recently used idle tenants beyond {@link MAX_IDLE_TENANTS}, their counts
   * kept in the totals. The next drop waits until as many tenants were added as remain (amortised O(1)).
   */
  #dropIdle(): void {
    const busy = new Set<string | undefined>();
    const holders = (state: SharedCachedState) => {
      for (const cached of state.holding) busy.add(cached.host.tenant);
    };
    if (this.#shared !== undefined) holders(this.#shared);
    else for (const state of this.#tenants.values()) holders(state.cachedState);
    const idle: [string, TenantState][] = [];
    for (const [name, state] of this.#tenants) {
      if (state.views <= 0 && !busy.has(name) && this.#pool?.isOpen(name) !== true) idle.push([name, state]);
    }
    if (idle.length > MAX_IDLE_TENANTS) {
      idle.sort(([, a], [, b]) => a.used - b.used);
      for (const [name, state] of idle.slice(0, idle.length - MAX_IDLE_TENANTS)) {
        this.#retire(state);
        this.#tenants.delete(name);
      }
    }
    this.#pruneAt = Math.max(2 * MAX_IDLE_TENANTS, 2 * this.#tenants.size);
  }

  /** Add a dropped tenant's counts to the totals. */
  #retire(state: TenantState): void {
    const { totals, cached } = this.#dropped;
    const snapshot = state.stats.snapshot().totals;
    totals.calls += snapshot.calls;
    totals.errors += snapshot.errors;
    totals.hits += snapshot.hits;
    totals.misses += snapshot.misses;
    const counts = state.cachedState.counters.snapshot();
    for (const field of Object.keys(cached) as (keyof CachedFunctionStats)[]) {
      if (field !== 'breakerTrips') cached[field] += counts[field];
    }
    // Pooled mode: the tenant's own breaker (shared mode: the one breaker, counted in stats()).
    if (state.cachedState.breaker !== this.#shared?.breaker)
      cached.breakerTrips += state.cachedState.breaker.trips;
  }
}

/**
 * What a view of `state`'s tenant calls when it closes, and the finalization registry when it was
 * collected without closing: the tenant has one open view fewer (once). Its closure holds the state
 * only, never the view (a registry holds it strongly); no unregister token (cheaper per view).
 */
function viewCloser(state: TenantState): () => void {
  let open = true;
  return () => {
    if (open) {
      open = false;
      state.views--;
    }
  };
}

/**
 * Abandon the fills of every view of `state` still holding fill locks, as `CacheClient.close()` does (see
 * `CachedFunctions.close`): locks released on `engine` (compare-and-delete); none open (`undefined`):
 * their leases stop and they expire by themselves. Never rejects, never waits for a factory.
 */
async function abandonFills(state: SharedCachedState | undefined, engine: Engine | undefined): Promise<void> {
  if (state === undefined || state.holding.size === 0) return;
  const run = (body: (engine: Engine) => Promise<unknown>): Promise<unknown> =>
    engine === undefined ? Promise.reject(new CacheConnectionError(POOL_CLOSED)) : body(engine);
  await Promise.allSettled([...state.holding].map((cached: CachedFunctions) => cached.close(run)));
}

/** Validate {@link TenantCachesOptions.minHoldMs} (0 allowed) and apply its default. */
function minHoldMs(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MIN_HOLD_MS;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TIMER_MS) {
    throw new CacheValidationError(
      `The \`minHoldMs\` option must be a non-negative integer (0: no hold), at most ${MAX_TIMER_MS}`,
    );
  }
  return value;
}
