/**
 * Cached functions: `getOrSet` (read-through with stampede protection and grace), `getOrSetMany` (see
 * many.ts), `cacheResult` (a function whose results are cached under Python's key layout) and
 * `invalidate`. The client only wires these in (see {@link CachedHost}); engines provide the
 * conditional writes (`setIfAbsent`, `deleteIfEquals`, `pexpireIfEquals`) and `pttl`.
 *
 * A call on a key:
 * 1. `Cache-Control` bypass (`cacheControl`): run the function, read and store nothing.
 * 2. The breaker is open (the cache failed as a whole less than `breakerMs` ago): serve the in-process
 *    fallback or run the function, without touching the cache.
 * 3. Concurrent calls of this process on the same key share one fill (one read, one factory run, one
 *    outcome: its value or its error). The shared fill never outlives its factory run, and with
 *    `hardTimeoutMs` it is abandoned (and forgotten) at that deadline.
 * 4. Fresh value: return it (with `eagerRefresh`, past that fraction of its TTL, also start one
 *    background refresh). Stale value within grace: return it and refresh in the background (one refresh
 *    across processes, through the lock); with `timeoutMs`, wait that long for the refresh first. After a
 *    failed refresh none is tried for `graceBackoffMs`.
 * 5. Miss: take the lock (`SET NX PX`, a lease extended while the factory runs) and run the factory,
 *    store, release; or wait for the owner by polling (at once, then 5 ms doubling to 100 ms), at most
 *    `lockTimeoutMs`, then run the factory without the lock. A waiter takes the owner's failure only
 *    when the failure mark names the owner it waited for (see lock.ts).
 *
 * Every I/O of a call goes through {@link CachedHost.io} (neither counted nor traced); the call itself
 * is one {@link CachedHost.call} (one `stats()` call with its hit or miss, one span).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Engine } from '../engines/engine.js';
import {
  CacheConnectionError,
  CacheError,
  CacheFactoryError,
  CacheTimeoutError,
  CacheValidationError,
} from '../errors.js';
import type { KeySpace } from '../keys.js';
import { validateKey } from '../keys.js';
import type { CacheLogger } from '../logger.js';
import { checkOptionNames } from '../options.js';
import { CircuitBreaker, opensBreaker } from './breaker.js';
import { cacheControlDecision } from './cache-control.js';
import { type GetOrSetOptions, type Resolved, resolveOptions } from './call-options.js';
import { readStamps, readWithStamps, stampVerdict } from './entry-meta.js';
import { type FactoryContext, FillContext, MAX_TTL } from './factory-context.js';
import { type FillTicket, FillTickets } from './fill-tickets.js';
import { type Freshness, freshness } from './freshness.js';
import { type InvalidateCallOptions, Invalidation, implicitStampKeys } from './invalidation.js';
import { type KeptKey, KeyMemo } from './key-memo.js';
import {
  DEFAULT_KEY_PREFIX,
  entityText,
  functionIdentity,
  type InvalidateOptions,
  resultKey,
} from './keys.js';
import { Lease } from './lease.js';
import { FAILURE_MARK_MS, FIRST_POLL_MS, failureMark, lockKey, lockState, nextPoll } from './lock.js';
import { getOrSetMany, type ManyFactory } from './many.js';
import { decodedAt, decodeRaw, type NearHost, NOT_HELD, nearFresh } from './near-hit.js';
import { CACHE_RESULT_OPTIONS } from './option-names.js';
import { type PythonKeyOptions, pythonCallStyle, pythonResultKey } from './python-key.js';
import { type DecodedEntry, type EntryMeta, type EntryStamps, encodeResult } from './result-codec.js';
import { CachedFunctionCounters, type CachedFunctionStats } from './stats.js';
import { type InvalidateTagsOptions, type StampVerdict, tagStampKey, tagStampKeys } from './tags.js';

export {
  DEFAULT_FALLBACK_ENTRIES,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_TTL,
  type FallbackOptions,
  type GetOrSetOptions,
} from './call-options.js';
export type { FactoryContext } from './factory-context.js';
export type { ManyFactory, ManyResult } from './many.js';

/** Options of {@link CacheClient.cacheResult}: those of {@link GetOrSetOptions} plus the key's parts. */
export interface CacheResultOptions<A extends unknown[]>
  extends Omit<GetOrSetOptions, 'cacheControl' | 'tags'>,
    PythonKeyOptions {
  /**
   * Tags of a call's result: a list, or a function of the arguments (see {@link GetOrSetOptions.tags}).
   * Besides them, a result of the typed codec under the default key layout carries two implicit tags,
   * its key prefix and its entity, which `invalidate` raises (see docs/cached-functions.md).
   * @default none
   */
  tags?: readonly string[] | ((...args: A) => readonly string[]);
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
  /**
   * `true`: the function receives a {@link FactoryContext} as an extra last argument (after the call's
   * own arguments, which alone make the key), to set its entry's `ttl`, `grace` or `tags` from the
   * result, or `skip()` storing it. The wrapper's signature stays the function's without it.
   * @default false
   */
  context?: boolean;
}

/** Records the reads of one public call (keys found, keys not found). @internal */
export type ReadRecorder = (hits: number, misses: number) => void;

/** What cached functions need from their client. @internal */
export interface CachedHost {
  /**
   * Run engine I/O inside a public call (connection, namespace, error mapping with the operation's
   * name). Neither counted as a call nor traced: the public call is, once (see {@link CachedHost.call}).
   */
  io<V>(operation: string, body: (engine: Engine, ks: KeySpace) => Promise<V>): Promise<V>;
  /**
   * Run one public call: counted once in `stats().operations[operation]` (with the hits and misses
   * `body` records), one span on the tracing channel naming `keys` keys.
   */
  call<R>(operation: string, keys: number, body: (reads: ReadRecorder) => Promise<R>): Promise<R>;
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
  /** The deployment id: the value once known, a promise while it is resolved (see `deployment.ts`). */
  deploymentId(): string | null | Promise<string | null>;
  /**
   * Issue 18: the view's tenant when the in-process state is shared by several tenants' views (a
   * `TenantCaches`): part of the in-process identity of a key, so two tenants never share a promise.
   */
  readonly tenant?: string;
  /**
   * Issue 20: the client's near cache, when `nearCache` is on: a call whose entry it holds fresh (with its
   * tags' stamps) is answered from memory (see near-hit.ts).
   */
  readonly near?: NearHost;
}

/**
 * Issue 18: in-process state the cached functions of several views of one store share (a
 * `TenantCaches`): fills in flight (keyed by tenant, prefix and key) and the breaker.
 */
export interface SharedCachedState {
  readonly inflight: Map<string, Promise<unknown>>;
  readonly breaker: CircuitBreaker;
  /** Fills running (a delete, flush or invalidation in this process voids them, see fill-tickets.ts). */
  readonly fills: FillTickets;
  /** Counters shared by the views of one tenant (`stats().cachedFunctions`); default: the client's own. @internal */
  readonly counters?: CachedFunctionCounters;
  /**
   * The cached functions (one per client or view) that hold fill locks now, each while it holds any:
   * `TenantCaches.close()` abandons their fills (see {@link CachedFunctions.close}). @internal
   */
  readonly holding: Set<CachedFunctions>;
}

/** A new {@link SharedCachedState} (one per client, or one for every view of a `TenantCaches`). @internal */
export function newCachedState(): SharedCachedState {
  return { inflight: new Map(), breaker: new CircuitBreaker(), fills: new FillTickets(), holding: new Set() };
}

/** A fill lock a client may hold: its stored key and its fill. */
interface HeldLock {
  readonly lock: string;
  readonly fill: Fill;
}

/** The fill locks of one client by owner token; while it holds any, the client is in `holding`. */
class HeldLocks extends Map<string, HeldLock> {
  constructor(
    readonly owner: CachedFunctions,
    readonly holding: Set<CachedFunctions>,
  ) {
    super();
  }

  override set(token: string, held: HeldLock): this {
    this.holding.add(this.owner);
    return super.set(token, held);
  }

  override delete(token: string): boolean {
    const had = super.delete(token);
    if (this.size === 0) this.holding.delete(this.owner);
    return had;
  }
}

/** A factory: its result is cached; it may decide about its entry through its context. */
export type Factory<T> = (ctx: FactoryContext) => T | Promise<T>;

/** A value read from the cache, with its freshness. @internal */
export interface Entry {
  readonly value: unknown;
  readonly state: Freshness;
}

/**
 * Where an entry was read (see {@link CachedFunctions.entry}): its full key, and the raw current stamps
 * of the call's tags when the read included them (`stamps[from + i]` for `tagKeys[i]`). @internal
 */
export interface EntryAt {
  readonly engine: Engine;
  readonly ks: KeySpace;
  readonly stored: string;
  readonly stamps?: readonly (string | null)[];
  readonly from?: number;
}

/** What a call returns, and whether the cache answered it. */
interface Outcome<T> {
  readonly value: T;
  readonly hit: boolean;
  /** The fill that produced a miss's value (callers that joined it check {@link Fill.voided}). */
  readonly fill?: Fill;
}

/** One fill of one key: the state its steps share (abandonment, the lock it holds). @internal */
export interface Fill extends FillTicket {
  /** The public operation (error messages). */
  readonly op: string;
  /** In-process identity of the key (prefix and key). */
  readonly id: string;
  /** The key below the namespace. */
  readonly key: string;
  readonly o: Resolved;
  /**
   * Set when this process deleted, flushed or invalidated the key after the fill started (see
   * fill-tickets.ts): its result (an abandoned fill's late result too) is not stored.
   */
  voided: boolean;
  /** Set when `hardTimeoutMs` passed: nobody waits for this fill any more. */
  abandoned: boolean;
  /** The lock token this fill holds, if any. */
  token: string | null;
  /** The promise this process's calls of the key share (`undefined`: a background refresh). */
  shared: Promise<unknown> | undefined;
  lease: Lease | undefined;
  /**
   * Set when this client's view was closed while the fill was registered in the in-flight map it shares
   * with other views (see {@link CachedFunctions.close}): it finishes normally (stores, releases).
   */
  outlivesClose?: boolean;
}

/**
 * The in-flight promises another call joined (single flight). A view's `close()` keeps such a fill of a
 * shared in-flight map running (the joined callers may belong to other views); others it abandons.
 */
const joinedFills = new WeakSet<Promise<unknown>>();

/** Most keys whose refresh backoff (`graceBackoffMs`) this process remembers (least recent dropped). */
const MAX_BACKOFFS = 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A short, value-free description of an error for a warning. */
function describe(err: unknown): string {
  if (err instanceof CacheError) return err.message;
  return err instanceof Error ? err.name : typeof err;
}

/** Whether `err` is the cache failing (not bad input, not the factory's own error). */
function isCacheFailure(err: unknown): boolean {
  return err instanceof CacheError && !(err instanceof CacheValidationError);
}

/**
 * The cached functions of one client. Holds the in-process state: fills in flight, the breaker, the
 * fallback LRUs, the refresh backoffs and the counters.
 */
export class CachedFunctions {
  readonly #host: CachedHost;
  readonly #inflight: Map<string, Promise<Outcome<unknown>>>;
  readonly #refreshing = new Map<string, Promise<{ value: unknown } | undefined>>();
  readonly #fallbacks = new Map<number, LRUCache<string, string>>();
  /** Keys whose refresh failed: no refresh until their entry expires (`graceBackoffMs`). */
  readonly #backoff = new LRUCache<string, true>({ max: MAX_BACKOFFS, ttlAutopurge: false });
  readonly #breaker: CircuitBreaker;
  readonly #fills: FillTickets;
  readonly #counters: CachedFunctionCounters;
  readonly #invalidation: Invalidation;
  /** The client's codec, bound once (the hit paths decode with it). */
  readonly #decodeRaw: (raw: string) => unknown;
  /** Fill locks this client may hold: owner token -> stored lock key and fill (released by {@link close}). */
  readonly #held: HeldLocks;
  /** Lock writes in flight (take, extend, release, failure mark): {@link close} lets them finish. */
  readonly #lockIo = new Set<Promise<unknown>>();
  #closing = false;

  /**
   * @param host - the client's side (see {@link CachedHost}).
   * @param shared - issue 18: the state shared with other views of the store (default: this client's own).
   */
  constructor(host: CachedHost, shared: SharedCachedState = newCachedState()) {
    this.#host = host;
    this.#decodeRaw = (raw) => host.decode(raw);
    this.#inflight = shared.inflight as Map<string, Promise<Outcome<unknown>>>;
    this.#breaker = shared.breaker;
    this.#fills = shared.fills;
    this.#counters = shared.counters ?? new CachedFunctionCounters();
    this.#held = new HeldLocks(this, shared.holding);
    // After an invalidation here, the fills running in this client's namespace (this tenant's only, when
    // views share the state) neither store their results nor are joined: which tags or entity an entry
    // has is only known once it is read, so every key of the namespace is concerned.
    this.#invalidation = new Invalidation(host, this.#counters, () => this.forgetAll());
  }

  /** The client's side. @internal */
  get host(): CachedHost {
    return this.#host;
  }

  /** The counters (many.ts counts into them). @internal */
  get counters(): CachedFunctionCounters {
    return this.#counters;
  }

  /**
   * Called by the client's `close()` before its connection closes. Lock writes in flight (a failure
   * mark, a release) finish first; then every lock this client still holds (fills and background
   * refreshes whose factories still run) is released (compare-and-delete with its token, through `run`,
   * which runs a body on the open connection), so other processes need not wait for it to expire. When
   * those factories finish, the result goes to the caller waiting for it (a background refresh has none)
   * and nothing is stored or logged. Never waits for a factory.
   *
   * `keepShared` (a view of a shared-mode `TenantCaches`, whose connection stays open): fills registered
   * in the in-flight map the views share that another call has joined are not abandoned (the joined
   * callers may be other views'; a view's close disturbs nothing shared): they finish normally, store
   * their results and release their locks. Fills no one joined are abandoned as for a client. Called
   * again without `keepShared` (`TenantCaches.close()`, whose connection closes), it abandons those too.
   */
  async close(
    run: (body: (engine: Engine) => Promise<unknown>) => Promise<unknown>,
    keepShared = false,
  ): Promise<void> {
    this.#closing = true;
    while (this.#lockIo.size > 0) await Promise.allSettled([...this.#lockIo]);
    const held = [...this.#held].filter(([, { fill }]) => {
      const keep =
        keepShared &&
        fill.shared !== undefined &&
        this.#inflight.get(fill.id) === fill.shared &&
        joinedFills.has(fill.shared);
      fill.outlivesClose = keep;
      return !keep;
    });
    for (const [token] of held) this.#held.delete(token);
    await Promise.allSettled(
      held.map(([token, { lock }]) => run((engine) => engine.deleteIfEquals(lock, token))),
    );
  }

  /** Whether `close()` gave up on `fill` (its lock released, its result not stored). */
  #closedFor(fill: Fill): boolean {
    return this.#closing && fill.outlivesClose !== true;
  }

  /** A snapshot of the counters. */
  stats(): CachedFunctionStats {
    this.#counters.breakerTrips = this.#breaker.trips;
    return this.#counters.snapshot();
  }

  /** Validate and resolve options (`what` names the caller for unknown options). @internal */
  resolve(options: GetOrSetOptions, what: string | null): Resolved {
    return resolveOptions(options, what, this.#fallbacks);
  }

  /** See {@link CacheClient.getOrSet}. */
  getOrSet<T>(key: string, factory: Factory<T>, options: GetOrSetOptions = {}): Promise<Awaited<T>> {
    let o: Resolved;
    let ttl: number | undefined;
    try {
      validateKey(key);
      if (typeof factory !== 'function') throw new CacheValidationError('getOrSet needs a factory function');
      o = this.resolve(options, 'getOrSet');
      const decision = cacheControlDecision(options.cacheControl, o.ttl, MAX_TTL);
      ttl = decision.kind === 'cache' ? decision.ttl : undefined;
    } catch (err) {
      return Promise.reject(err);
    }
    const resolved = ttl === undefined ? undefined : ttl === o.ttl ? o : { ...o, ttl };
    return this.#answered('getOrSet', key, resolved) ?? this.#public('getOrSet', key, factory, resolved);
  }

  /** See {@link CacheClient.getOrSetMany}. */
  getOrSetMany<T>(
    keys: readonly string[],
    factory: ManyFactory<T>,
    options: GetOrSetOptions = {},
  ): Promise<(Awaited<T> | undefined)[]> {
    return getOrSetMany(this, keys, factory, options);
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
    const {
      keyPrefix = DEFAULT_KEY_PREFIX,
      entityId,
      key,
      cacheControl,
      name,
      context,
      tags,
      ...rest
    } = options;
    // keyStyle 'python' (python-key.ts): Python's key, values in the client's codec.
    const { keyStyle: _style, kwargs: _kwargs, entityParam: _entityParam, ...getOrSetOptions } = rest;
    const python = pythonCallStyle(options);
    if (typeof keyPrefix !== 'string' || keyPrefix === '') {
      throw new CacheValidationError('The `keyPrefix` option must be a non-empty string');
    }
    if (context !== undefined && typeof context !== 'boolean') {
      throw new CacheValidationError('The `context` option must be a boolean');
    }
    for (const [optionName, value] of Object.entries({ entityId, key, cacheControl })) {
      if (value !== undefined && typeof value !== 'function') {
        throw new CacheValidationError(`The \`${optionName}\` option must be a function of the arguments`);
      }
    }
    // validated once, at wrap time (a list of tags too; a function of the arguments: at each call)
    const fixed: GetOrSetOptions = typeof tags === 'function' || tags === undefined ? {} : { tags };
    const base = this.resolve(
      python ? { ...getOrSetOptions, ...fixed, codec: 'client' } : { ...getOrSetOptions, ...fixed },
      null,
    );
    const identity = functionIdentity(fn as (...args: never[]) => unknown, name);
    // Issue 20: the keys of recent calls of one primitive argument (default layout, fixed tags).
    const memo =
      python === undefined && key === undefined && typeof tags !== 'function' ? new KeyMemo() : undefined;
    const self = this;
    function keyed(thisArg: This, args: A, deployment: string | null): Promise<Awaited<R>> {
      let stored: string;
      let ttl: number | undefined;
      let tagKeys = base.tagKeys;
      let kept: KeptKey | undefined;
      try {
        if (typeof tags === 'function') tagKeys = tagStampKeys(tags(...args), 'cacheResult', base.typed);
        if (python !== undefined) {
          stored = pythonResultKey(deployment, keyPrefix, args, python);
        } else if (key === undefined) {
          const entity = entityId === undefined ? null : entityText(entityId(...args));
          kept = memo?.get(deployment, entity, args);
          if (kept === undefined) {
            stored = resultKey(deployment, keyPrefix, entity, identity, args);
            // The implicit tags `invalidate` raises (key prefix, entity), before the call's own.
            if (base.typed) {
              const implicit = implicitStampKeys(deployment, keyPrefix, entity);
              tagKeys = tagKeys.length === 0 ? implicit : [...implicit, ...tagKeys];
            }
            kept = { entity, stored, tagKeys, options: undefined };
            memo?.set(deployment, args, kept);
          } else {
            stored = kept.stored;
            tagKeys = kept.tagKeys;
          }
        } else {
          const custom = validateKey(key(...args));
          stored = deployment === null ? custom : `${deployment}:${custom}`;
        }
        if (cacheControl === undefined) ttl = base.ttl;
        else {
          const decision = cacheControlDecision(cacheControl(...args), base.ttl, MAX_TTL);
          ttl = decision.kind === 'cache' ? decision.ttl : undefined;
        }
      } catch (err) {
        return Promise.reject(err);
      }
      let o: Resolved | undefined;
      if (ttl === undefined) o = undefined;
      else if (ttl === base.ttl && tagKeys === base.tagKeys) o = base;
      else if (ttl === base.ttl && kept !== undefined) o = kept.options ??= { ...base, tagKeys };
      else o = { ...base, ttl, tagKeys };
      return (
        self.#answered<Awaited<R>>('cacheResult', stored, o) ??
        self.#public('cacheResult', stored, factoryOf(thisArg, args), o)
      );
    }
    function factoryOf(thisArg: This, args: A): Factory<R> {
      return context === true
        ? (ctx) => (fn as (this: This, ...all: unknown[]) => R).apply(thisArg, [...args, ctx])
        : () => fn.apply(thisArg, args);
    }
    return function cached(this: This, ...args: A): Promise<Awaited<R>> {
      const deployment = self.#host.deploymentId();
      if (!(deployment instanceof Promise)) return keyed(this, args, deployment);
      // Press is being asked for the deployment id: key the call once it answers; if that fails, run the
      // function uncached, as Python does.
      return deployment.then(
        (id) => keyed(this, args, id),
        (err: unknown) => {
          self.#host.logger.warn(`peak-cache: cacheResult ran the function uncached: ${describe(err)}`);
          return self.#public('cacheResult', '', factoryOf(this, args), undefined);
        },
      );
    };
  }

  /** See {@link CacheClient.invalidate} (logical first, then a coalesced physical SCAN; invalidation.ts). */
  invalidate(options: InvalidateOptions, call?: InvalidateCallOptions): Promise<number> {
    return this.#invalidation.invalidate(options, call);
  }

  /** See {@link CacheClient.invalidateTags}. */
  invalidateTags(tags: readonly string[], options?: InvalidateTagsOptions): Promise<void> {
    return this.#invalidation.invalidateTags(tags, options);
  }

  /** Resolves once no physical deletion of `invalidate` is running or queued (never rejects). */
  invalidationSettled(): Promise<void> {
    return this.#invalidation.settled();
  }

  /**
   * `delete` of `keys` (below the namespace) in this process: later calls on them do not join a call in
   * flight, and running fills of them do not store their results (see fill-tickets.ts).
   */
  forget(keys: readonly string[]): void {
    const ids = keys.map((key) => this.id(key));
    for (const id of ids) this.#inflight.delete(id);
    this.#fills.void(ids);
  }

  /**
   * `flush*` or an invalidation in this process: as {@link forget} for every key of this client's tenant
   * (every additional prefix: a flush of the tenant's namespace reaches them; other tenants' views
   * sharing the state are not concerned).
   */
  forgetAll(): void {
    const tenant = this.#host.tenant;
    const scope = tenant === undefined ? '' : `${tenant}\u0000`;
    for (const id of this.#inflight.keys()) if (id.startsWith(scope)) this.#inflight.delete(id);
    this.#fills.voidScope(scope);
  }

  /**
   * A public call on `key` answered from the near cache, when it holds the entry fresh (see near-hit.ts):
   * one call and one hit in the stats, one span (published at once, as for a near `get`: see
   * {@link NearHost.answered}); no factory is made. `undefined` when the near
   * cache is off or cannot answer (and for a `Cache-Control` bypass, `o` undefined): make the call with
   * {@link CachedFunctions.#public}.
   */
  #answered<T>(op: string, key: string, o: Resolved | undefined): Promise<T> | undefined {
    const near = this.#host.near;
    if (near === undefined || o === undefined) return undefined;
    const now = performance.now();
    // An open breaker or a closed client: the call's own path decides (fallback, rejection).
    if (this.#breaker.isOpen(now) || this.#host.closed()) return undefined;
    const value = nearFresh(near, key, o, this.#decodeRaw, now);
    if (value === NOT_HELD) return undefined;
    this.#counters.hits++;
    near.answered(op, 1, 1, 0);
    return Promise.resolve(value as T);
  }

  /** One public call on `key` (`o` undefined: a `Cache-Control` bypass). */
  #public<T>(op: string, key: string, factory: Factory<T>, o: Resolved | undefined): Promise<Awaited<T>> {
    return this.#host.call(op, 1, (reads) => {
      if (o === undefined) {
        this.#counters.bypasses++;
        return this.runFactory(factory, key, 0, 0);
      }
      return this.#call(op, key, factory as Factory<Awaited<T>>, o).then((outcome) => {
        if (outcome.hit) reads(1, 0);
        else reads(0, 1);
        return outcome.value;
      });
    });
  }

  /** Run a factory as a call of its own (bypass): one run, errors go to the caller. @internal */
  runFactory<T>(factory: Factory<T>, key: string, ttl: number, grace: number): Promise<Awaited<T>> {
    this.#counters.factoryRuns++;
    try {
      return Promise.resolve(factory(new FillContext(key, Math.max(ttl, 1), grace))) as Promise<Awaited<T>>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** In-process identity of `key` (the additional prefix is part of it). @internal */
  id(key: string): string {
    // Issue 18: the tenant first when views of several tenants share `#inflight`.
    const tenant = this.#host.tenant;
    return `${tenant === undefined ? '' : `${tenant}\u0000`}${this.#host.prefix() ?? ''}\u0000${key}`;
  }

  /** A new fill of `key`. @internal */
  newFill(op: string, key: string, o: Resolved): Fill {
    return {
      op,
      id: this.id(key),
      key,
      o,
      voided: false,
      abandoned: false,
      shared: undefined,
      token: null,
      lease: undefined,
    };
  }

  /** Steps 2-5 of the module doc, with concurrent calls of this process on one key sharing a fill. */
  #call<T>(op: string, key: string, factory: Factory<T>, o: Resolved): Promise<Outcome<T>> {
    const id = this.id(key);
    const pending = this.#inflight.get(id) as Promise<Outcome<T>> | undefined;
    if (pending !== undefined) {
      this.#counters.coalesced++;
      joinedFills.add(pending);
      // A fill that an invalidation overtook (here or, through its tags' stamps, in any process): this
      // caller may have joined it after the invalidation, so it does not take the old value.
      return pending.then((outcome) =>
        outcome.fill?.voided === true ? this.#call(op, key, factory, o) : outcome,
      );
    }
    const fill = this.newFill(op, key, o);
    const call = this.bounded(fill, this.#load(fill, factory));
    this.share(fill, call);
    return call;
  }

  /** Register `call` as this process's fill of `fill.id` until it settles (or is abandoned). @internal */
  share(fill: Fill, call: Promise<unknown>): void {
    const { id } = fill;
    fill.shared = call;
    this.#inflight.set(id, call as Promise<Outcome<unknown>>);
    const landed = () => {
      if (this.#inflight.get(id) === call) this.#inflight.delete(id);
    };
    // A side chain (it never rejects) so the caller's promise has no extra hop.
    call.then(landed, landed);
  }

  /** The fill this process runs for `key`, if any. @internal */
  shared(key: string): Promise<Outcome<unknown>> | undefined {
    return this.#inflight.get(this.id(key));
  }

  /**
   * `call`, or with `hardTimeoutMs` a {@link CacheTimeoutError} at that deadline: the fill is then
   * abandoned (its lease stops, its lock is released, the in-process entry forgotten). @internal
   */
  bounded<T>(fill: Fill, call: Promise<T>): Promise<T> {
    const ms = fill.o.hardTimeoutMs;
    if (ms === 0) return call;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.abandon(fill);
        reject(
          new CacheTimeoutError(`${fill.op} failed: no result for the key within hardTimeoutMs (${ms} ms)`),
        );
      }, ms);
    });
    const bounded = Promise.race([call, deadline]);
    const clear = () => clearTimeout(timer);
    bounded.then(clear, clear);
    return bounded;
  }

  /** Give up on `fill`: stop its lease, release its lock, forget it in this process. @internal */
  abandon(fill: Fill): void {
    if (fill.abandoned) return;
    fill.abandoned = true;
    this.#counters.hardTimeouts++;
    if (fill.shared !== undefined && this.#inflight.get(fill.id) === fill.shared)
      this.#inflight.delete(fill.id);
    fill.lease?.stop();
    if (fill.token !== null && !this.#closedFor(fill)) this.release(fill, fill.token);
  }

  /** Steps 2-5 for one key; the hit path is one `.then` after the read (no async frames). */
  #load<T>(fill: Fill, factory: Factory<T>): Promise<Outcome<T>> {
    if (this.#host.closed()) {
      return Promise.reject(new CacheConnectionError(`${fill.op} failed: the client is closed`));
    }
    if (this.#breaker.isOpen()) {
      this.#counters.breakerSkips++;
      return this.withoutCache(fill, factory).then(miss);
    }
    const o = fill.o;
    return this.read(fill.op, fill.key, o).then(
      (entry): Outcome<T> | Promise<Outcome<T>> => {
        if (entry !== null && entry.state !== 'stale') {
          this.#counters.hits++;
          if (entry.state === 'refresh') {
            this.#counters.eagerRefreshes++;
            this.refresh(fill, factory);
          }
          return { value: entry.value as T, hit: true };
        }
        if (entry !== null) return this.#serveStale(fill, factory, entry.value as T);
        this.#counters.misses++;
        return this.#fill(fill, factory).then((value) => ({ value, hit: false, fill }));
      },
      (err: unknown) => this.cacheFailed(err, fill, factory).then(miss),
    );
  }

  /** A stale value within its grace: start the refresh; serve the value now or after `timeoutMs`. */
  async #serveStale<T>(fill: Fill, factory: Factory<T>, value: T): Promise<Outcome<T>> {
    this.#counters.staleServed++;
    const refresh = this.refresh(fill, factory);
    if (fill.o.timeoutMs === 0 || refresh === undefined) return { value, hit: true };
    let timer: NodeJS.Timeout | undefined;
    const stale = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), fill.o.timeoutMs);
    });
    const fresh = await Promise.race([refresh, stale]).finally(() => clearTimeout(timer));
    return fresh === undefined ? { value, hit: true } : { value: fresh.value as T, hit: false };
  }

  /** The entry at `key`: `null` when missing (or unreadable), else its value and freshness. @internal */
  read(op: string, key: string, o: Resolved): Promise<Entry | null> {
    return this.#host.io(op, (engine, ks) =>
      this.#readAt(engine, ks, key, o, o.grace > 0 || o.eagerRefresh > 0),
    );
  }

  /**
   * {@link read} on an engine: the value and the stamps of the call's tags in one read (`GET`, or `MGET`
   * with stamps, see entry-meta.ts), with its `PTTL` alongside when `withPttl`. One `.then` after the read
   * on the hit path (no async frames).
   */
  #readAt(engine: Engine, ks: KeySpace, key: string, o: Resolved, withPttl: boolean): Promise<Entry | null> {
    const stored = ks.key(key);
    if (o.tagKeys.length === 0) {
      if (!withPttl)
        return engine.get(stored).then((raw) => this.entry(raw, undefined, o, { engine, ks, stored }));
      return Promise.all([engine.get(stored), engine.pttl(stored)]).then(([raw, pttl]) =>
        this.entry(raw, pttl, o, { engine, ks, stored }),
      );
    }
    const read = readWithStamps(engine, ks, [stored], o.tagKeys);
    const at = (values: (string | null)[]): EntryAt => ({ engine, ks, stored, stamps: values, from: 1 });
    if (!withPttl) return read.then((values) => this.entry(values[0] ?? null, undefined, o, at(values)));
    return Promise.all([read, engine.pttl(stored)]).then(([values, pttl]) =>
      this.entry(values[0] ?? null, pttl, o, at(values)),
    );
  }

  /**
   * Decode a raw entry, check its tags' stamps and judge its freshness (`pttl`: its remaining lifetime,
   * `undefined` when not read; `at` reads it, and the stamps the read did not include, when needed). A
   * tag `'remove'`d since the fill started makes it a miss; a tag `'expire'`d makes it stale (a miss
   * without grace). @internal
   */
  entry(
    raw: string | null,
    pttl: number | undefined,
    o: Resolved,
    at: EntryAt,
  ): Entry | null | Promise<Entry | null> {
    if (raw === null) return null;
    let decoded: DecodedEntry;
    try {
      const near = this.#host.near;
      const held = near?.cache.holding(at.stored, raw);
      // Read from the near cache: its entry's decoded form (shared frozen value), made once.
      decoded =
        near === undefined || held === undefined
          ? this.#decode(raw, o)
          : decodedAt(near.cache, held, raw, o.typed, this.#decodeRaw);
    } catch {
      return null; // a corrupt entry is a miss; the fill overwrites it
    }
    const recorded = decoded.meta?.stamps;
    if (recorded === undefined) return this.#judged(decoded, 'fresh', pttl, o, at);
    const verdict = stampVerdict(recorded, o.tagKeys, at.stamps ?? [], at.from ?? 0, (keys) =>
      readStamps(at.engine, at.ks, keys),
    );
    if (typeof verdict === 'string') return this.#judged(decoded, verdict, pttl, o, at);
    return verdict.then((v) => this.#judged(decoded, v, pttl, o, at));
  }

  #judged(
    decoded: DecodedEntry,
    verdict: StampVerdict,
    pttl: number | undefined,
    o: Resolved,
    at: EntryAt,
  ): Entry | null | Promise<Entry | null> {
    if (verdict === 'removed') return null;
    const { value, meta } = decoded;
    const ttl = meta?.ttl ?? o.ttl;
    const grace = meta?.grace ?? o.grace;
    if (verdict === 'expired') return grace > 0 ? { value, state: 'stale' } : null;
    if (pttl === undefined && grace > 0) {
      // The factory gave this entry a grace the call's options do not have: one more read.
      return at.engine
        .pttl(at.stored)
        .then((ms) => ({ value, state: freshness(ms, ttl, grace, o.eagerRefresh) }));
    }
    return { value, state: freshness(pttl, ttl, grace, o.eagerRefresh) };
  }

  #decode(raw: string, o: Resolved): DecodedEntry {
    return decodeRaw(raw, o.typed, this.#decodeRaw);
  }

  /** Fill a missing value: take the lock and run the factory, or wait for the lock's owner. */
  async #fill<T>(fill: Fill, factory: Factory<T>): Promise<T> {
    const deadline = performance.now() + fill.o.lockTimeoutMs;
    for (;;) {
      const token = randomUUID();
      let acquired: boolean;
      try {
        acquired = await this.acquire(fill, token);
      } catch (err) {
        return this.cacheFailed(err, fill, factory);
      }
      if (acquired) {
        const current = await this.#recheck(fill, token);
        if (current !== undefined) return current.value as T;
        return this.produce(fill, factory, token);
      }
      let waited: { value: unknown } | 'free' | 'timeout';
      try {
        waited = await this.waitForOwner(fill, deadline);
      } catch (err) {
        if (err instanceof CacheFactoryError || !isCacheFailure(err)) throw err;
        return this.cacheFailed(err, fill, factory);
      }
      if (waited === 'timeout') {
        this.#counters.lockTimeouts++;
        return this.produce(fill, factory, null);
      }
      if (waited !== 'free') return waited.value as T;
    }
  }

  /**
   * Wait for the lock's owner: poll the value and the lock (at once, then 5 ms doubling to 100 ms) until
   * the value appears, the lock is free, the owner this caller waited for fails, or `deadline` passes.
   * @throws {CacheFactoryError} when that owner failed; a {@link CacheError} when the cache fails.
   * @internal
   */
  async waitForOwner(fill: Fill, deadline: number): Promise<{ value: unknown } | 'free' | 'timeout'> {
    let awaited: string | undefined;
    let delay = FIRST_POLL_MS;
    for (let first = true; ; first = false) {
      if (fill.abandoned) throw abandonedError(fill);
      const left = deadline - performance.now();
      if (left <= 0) return 'timeout';
      if (!first) {
        await sleep(Math.min(delay, left));
        delay = nextPoll(delay);
      }
      const polled = await this.#host.io(fill.op, async (engine, ks) => {
        const [entry, owner] = await Promise.all([
          // A corrupt, stale or invalidated value is not found: keep waiting for the owner's.
          this.#readAt(engine, ks, fill.key, fill.o, false),
          engine.get(ks.key(lockKey(fill.key))),
        ]);
        if (entry !== null && entry.state !== 'stale') return { found: true, value: entry.value, owner };
        return { found: false, value: undefined, owner };
      });
      if (polled.found) return { value: polled.value };
      const state = lockState(polled.owner, awaited);
      if (state === 'held') {
        if (awaited === undefined) this.#counters.lockWaits++;
        awaited = polled.owner as string;
      } else if (state === 'failed') {
        throw new CacheFactoryError(
          `${fill.op} failed: the factory of the lock's owner (another process) failed while this call waited for it`,
        );
      } else {
        if (state === 'foreign-mark') {
          // The mark of an owner this call never waited for: not this call's failure.
          const mark = polled.owner as string;
          await this.#host
            .io(fill.op, (engine, ks) => engine.deleteIfEquals(ks.key(lockKey(fill.key)), mark))
            .catch(() => undefined); // the next attempt reports a failing cache
        }
        return 'free';
      }
    }
  }

  /**
   * Run the factory as the lock's owner (`token`; `null` when running without the lock after the wait
   * bound), store its result, release the lock. While it runs, the lock's lease is extended.
   * @internal
   */
  async produce<T>(fill: Fill, factory: Factory<T>, token: string | null, refresh = false): Promise<T> {
    if (fill.abandoned) {
      // Abandoned (hardTimeoutMs) before its factory started: never start it.
      if (token !== null) this.release(fill, token);
      throw abandonedError(fill);
    }
    this.#counters.factoryRuns++;
    const o = fill.o;
    const ctx = new FillContext(fill.key, o.ttl, o.grace);
    if (token !== null) this.hold(fill, token);
    const started = await this.startRun([fill], o);
    try {
      return await this.#run(fill, factory, ctx, token, refresh, started);
    } finally {
      this.endRun([fill]);
    }
  }

  /** {@link produce} once the run started (`started`: the stamps of its tags, see {@link startRun}). */
  async #run<T>(
    fill: Fill,
    factory: Factory<T>,
    ctx: FillContext,
    token: string | null,
    refresh: boolean,
    started: number[] | null,
  ): Promise<T> {
    const o = fill.o;
    let result: T;
    try {
      result = await factory(ctx);
    } catch (err) {
      fill.lease?.stop();
      if (token !== null && !this.#closedFor(fill) && !fill.abandoned) {
        // A failed refresh: its mark holds other processes' refreshes off for graceBackoffMs (none: release).
        const markMs = refresh ? o.graceBackoffMs : FAILURE_MARK_MS;
        // The mark is written before the failure reaches this process's callers: a call made after
        // they saw it finds the mark (not its owner's) instead of a lock whose owner is about to fail.
        if (markMs > 0) await this.markFailed(fill, token, markMs);
        else this.release(fill, token);
      }
      throw err;
    }
    fill.lease?.stop();
    // Closed meanwhile: close() released the lock; the result goes to the caller, nothing is stored.
    if (this.#closedFor(fill)) return result;
    const stamps = ctx.skipped ? null : await this.entryStamps([fill], ctx, started);
    const encoded = ctx.skipped ? undefined : this.encodeFor(fill.key, result, o, ctx, stamps ?? []);
    // Not stored: skipped, not encodable, its tags' stamps unknown, or deleted / invalidated here meanwhile.
    const store = stamps !== null && !fill.voided ? encoded : undefined;
    const ttl = Math.min(ctx.ttl + ctx.grace, MAX_TTL);
    if (fill.abandoned) {
      // Nobody waits for it; stored unless the key was written meanwhile.
      if (store !== undefined) {
        this.#settle(
          this.#host.io(fill.op, (engine, ks) => engine.setIfAbsent(ks.key(fill.key), store, ttl * 1000)),
          'storing a late result',
        );
      }
      return result;
    }
    if (store !== undefined) {
      try {
        await this.#host.io(fill.op, (engine, ks) => engine.set(ks.key(fill.key), store, ttl));
      } catch (err) {
        if (!isCacheFailure(err) || this.#host.closed()) throw err;
        this.noteCacheError(err, fill);
        o.fallback?.set(fill.id, store, { ttl: o.fallbackTtlMs });
      }
    }
    if (token !== null) this.release(fill, token);
    return this.asRead(result, encoded, o);
  }

  /**
   * `fills` start running: a delete, flush or invalidation in this process voids them from now on (see
   * fill-tickets.ts). Resolves with the current stamps of their tags (`o.tagKeys`), read before their
   * factory starts, so that an invalidation from then on wins in every process (see tags.ts); `null`
   * when they could not be read (the result is then not stored). End with {@link endRun}. @internal
   */
  async startRun(fills: readonly Fill[], o: Resolved): Promise<number[] | null> {
    for (const fill of fills) this.#fills.begin(fill.id, fill);
    if (o.tagKeys.length === 0) return [];
    try {
      return await this.#host.io((fills[0] as Fill).op, (engine, ks) => readStamps(engine, ks, o.tagKeys));
    } catch (err) {
      if (isCacheFailure(err)) this.#counters.cacheErrors++;
      return null;
    }
  }

  /** The runs of `fills` are over (see {@link startRun}). @internal */
  endRun(fills: readonly Fill[]): void {
    for (const fill of fills) this.#fills.end(fill.id, fill);
  }

  /**
   * The stamps the entry a run produced records: those read when it started (`started`, for the call's
   * tags), then those of the tags its factory added (`ctx.tags`). Both are read again now: when a stamp
   * of the call's tags moved while the factory ran (an invalidation in any process), `fills` are voided
   * (not stored; callers that joined them fill again). `null` when the entry must not be stored (stamps
   * unknown; factory tags with the `'client'` codec, which carries none). @internal
   */
  async entryStamps(
    fills: readonly Fill[],
    ctx: FillContext,
    started: number[] | null,
  ): Promise<EntryStamps | null> {
    const first = fills[0] as Fill;
    if (started === null) return null;
    const { tagKeys, typed } = first.o;
    if (ctx.tags.length > 0 && !typed) {
      this.#host.logger.warn(
        `peak-cache: the result for ${JSON.stringify(first.key)} is not cached: tags need the 'typed' codec`,
      );
      return null;
    }
    const added = ctx.tags.map(tagStampKey).filter((key) => !tagKeys.includes(key));
    if (tagKeys.length === 0 && added.length === 0) return [];
    let current: number[];
    try {
      current = await this.#host.io(first.op, (engine, ks) => readStamps(engine, ks, [...tagKeys, ...added]));
    } catch (err) {
      if (isCacheFailure(err)) this.#counters.cacheErrors++;
      return null;
    }
    const stamps: [string, number][] = [];
    for (let i = 0; i < tagKeys.length; i++) {
      if (current[i] !== started[i]) for (const fill of fills) fill.voided = true;
      stamps.push([tagKeys[i] as string, started[i] as number]);
    }
    for (let i = 0; i < added.length; i++)
      stamps.push([added[i] as string, current[tagKeys.length + i] as number]);
    return stamps;
  }

  /**
   * What a hit would return for a result stored as `encoded`: with the client's codec, its round trip
   * (a miss returns what the next hit returns); typed results keep their types, so the result itself.
   * @internal
   */
  asRead<T>(result: T, encoded: string | undefined, o: Resolved): T {
    return o.typed || encoded === undefined ? result : (this.#host.decode(encoded) as T);
  }

  /**
   * `result` encoded for storage (with the entry's metadata when the factory changed it or the entry has
   * tags: `stamps`, see {@link entryStamps}), or `undefined` (with a warning) when it cannot be stored.
   * @internal
   */
  encodeFor(
    key: string,
    result: unknown,
    o: Resolved,
    ctx: FillContext,
    stamps: EntryStamps,
  ): string | undefined {
    try {
      if (!o.typed) return this.#host.encode(result);
      // The entry's own TTL and grace only when its factory set them (else the reading call's apply).
      const meta: EntryMeta | undefined = ctx.changed
        ? { ttl: ctx.ttl, grace: ctx.grace, tags: ctx.tags, stamps }
        : stamps.length > 0
          ? { tags: ctx.tags, stamps }
          : undefined;
      return this.#host.checkSize(encodeResult(result, meta));
    } catch (err) {
      this.#host.logger.warn(
        `peak-cache: the result for ${JSON.stringify(key)} is not cached: ${describe(err)}`,
      );
      return undefined;
    }
  }

  /**
   * The cache failed during a call (`err`): with a failure of the cache as a whole the breaker opens;
   * either way this call runs without the cache. Anything else (the factory's error, a closed client)
   * is rethrown. @internal
   */
  cacheFailed<T>(err: unknown, fill: Fill, factory: Factory<T>): Promise<T> {
    if (!isCacheFailure(err) || this.#host.closed() || fill.abandoned) return Promise.reject(err);
    this.noteCacheError(err, fill);
    return this.withoutCache(fill, factory);
  }

  /** Count a cache error; open the breaker only when the cache failed as a whole. @internal */
  noteCacheError(err: unknown, fill: Fill): void {
    this.#counters.cacheErrors++;
    if (!opensBreaker(err)) {
      this.#host.logger.warn(
        `peak-cache: ${fill.op} of ${JSON.stringify(fill.key)} skips the cache for this call: ${describe(err)}`,
      );
      return;
    }
    const ms = fill.o.breakerMs;
    if (ms > 0 && this.#breaker.trip(ms)) {
      this.#host.logger.warn(
        `peak-cache: cached functions skip the cache for ${ms} ms after a failure: ${describe(err)}`,
      );
    }
  }

  /** Whether the breaker is open (many.ts). @internal */
  breakerOpen(): boolean {
    return this.#breaker.isOpen();
  }

  /** The factory's run while the cache is failing: serve or fill the fallback. @internal */
  async withoutCache<T>(fill: Fill, factory: Factory<T>): Promise<T> {
    const o = fill.o;
    const cached = o.fallback?.get(fill.id);
    if (cached !== undefined) {
      try {
        const value = this.#decode(cached, o).value;
        this.#counters.fallbackHits++;
        return value as T;
      } catch {
        o.fallback?.delete(fill.id);
      }
    }
    this.#counters.factoryRuns++;
    const ctx = new FillContext(fill.key, o.ttl, o.grace);
    const result = await factory(ctx);
    let encoded: string | undefined;
    if (!ctx.skipped) {
      try {
        encoded = o.typed ? this.#host.checkSize(encodeResult(result)) : this.#host.encode(result);
        o.fallback?.set(fill.id, encoded, { ttl: o.fallbackTtlMs });
      } catch {
        // not encodable: not kept
      }
    }
    return this.asRead(result, encoded, o);
  }

  /**
   * A background refresh (grace or eager refresh): one per key in this process, one across processes
   * (through the lock), none for `graceBackoffMs` after a failed one. `undefined` when none starts.
   * @internal
   */
  refresh<T>(of: Fill, factory: Factory<T>): Promise<{ value: unknown } | undefined> | undefined {
    const { id } = of;
    const running = this.#refreshing.get(id);
    if (running !== undefined) return running;
    if (this.#backoff.get(id) !== undefined) return undefined;
    const fill = this.newFill(of.op, of.key, of.o);
    const token = randomUUID();
    const work = this.acquire(fill, token).then(async (acquired) => {
      if (!acquired) return undefined; // another process is refreshing (or its refresh failed lately)
      const current = await this.#recheck(fill, token);
      if (current !== undefined) return current; // another process has just refreshed it
      this.#counters.refreshes++;
      return { value: await this.produce(fill, factory, token, true) };
    });
    const refresh = this.bounded(fill, work)
      .catch((err: unknown) => {
        if (this.#closing) return undefined; // abandoned by close(): nothing to report
        if (isCacheFailure(err) && !(err instanceof CacheTimeoutError && fill.abandoned)) {
          this.noteCacheError(err, fill);
        } else {
          this.#counters.refreshErrors++;
          if (fill.o.graceBackoffMs > 0) this.#backoff.set(id, true, { ttl: fill.o.graceBackoffMs });
        }
        this.#host.logger.warn(
          `peak-cache: refreshing ${JSON.stringify(fill.key)} failed (the stale value is served until its grace ends): ${describe(err)}`,
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
  async #recheck(fill: Fill, token: string): Promise<{ value: unknown } | undefined> {
    let entry: Entry | null;
    try {
      entry = await this.read(fill.op, fill.key, fill.o);
    } catch (err) {
      if (!isCacheFailure(err) || this.#host.closed()) {
        this.release(fill, token);
        throw err;
      }
      return undefined;
    }
    if (entry === null || entry.state !== 'fresh') return undefined;
    this.#counters.rechecks++;
    this.release(fill, token);
    return { value: entry.value };
  }

  /** Own a lock write until it settles (close() lets it finish). */
  #track<V>(write: Promise<V>): Promise<V> {
    this.#lockIo.add(write);
    const done = () => this.#lockIo.delete(write);
    write.then(done, done);
    return write;
  }

  /** Take the fill lock of `fill.key` with `token` (`SET NX PX lockTtlMs`); remembered until released. @internal */
  acquire(fill: Fill, token: string): Promise<boolean> {
    const taken = this.#host.io(fill.op, (engine, ks) => {
      const lock = ks.key(lockKey(fill.key));
      this.#held.set(token, { lock, fill });
      return engine.setIfAbsent(lock, token, fill.o.lockTtlMs);
    });
    return this.#track(taken).then(
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

  /** `fill` owns the lock `token` from now on: its lease is extended until released. @internal */
  hold(fill: Fill, token: string): void {
    fill.token = token;
    fill.lease = new Lease(() => this.#extend(fill, token), fill.o.lockTtlMs);
  }

  /** Extend the lease of `token` (compare-and-extend); `false` once it is not ours or not needed. */
  #extend(fill: Fill, token: string): Promise<boolean> {
    if (this.#closedFor(fill) || fill.abandoned || fill.token !== token) return Promise.resolve(false);
    return this.#track(
      this.#host.io(fill.op, (engine, ks) =>
        engine.pexpireIfEquals(ks.key(lockKey(fill.key)), token, fill.o.lockTtlMs),
      ),
    );
  }

  /** Release `token`'s lock (compare-and-delete), in the background. @internal */
  release(fill: Fill, token: string): void {
    if (fill.token === token) {
      fill.token = null;
      fill.lease?.stop();
    }
    const released = this.#host.io(fill.op, (engine, ks) =>
      engine.deleteIfEquals(ks.key(lockKey(fill.key)), token),
    );
    const forget = () => this.#held.delete(token);
    released.then(forget, forget);
    this.#settle(this.#track(released), 'releasing a fill lock');
  }

  /**
   * Replace our lock with a failure mark naming our token (for `ttlMs`), so the callers waiting for this
   * owner get the failure (see lock.ts). Settles (never rejects) once written; close() lets it finish.
   * @internal
   */
  markFailed(fill: Fill, token: string, ttlMs: number): Promise<void> {
    fill.token = null;
    const marked = this.#host.io(fill.op, async (engine, ks) => {
      // Checked first: only a lock that expired in the meantime and was taken by another owner during
      // this one round trip could be overwritten.
      const lock = ks.key(lockKey(fill.key));
      if ((await engine.get(lock)) === token) {
        const mark = failureMark(token);
        await engine.set(lock, mark, Math.ceil(ttlMs / 1000));
        if (ttlMs % 1000 !== 0) await engine.pexpireIfEquals(lock, mark, ttlMs);
      }
    });
    const forget = () => {
      this.#held.delete(token);
    };
    this.#settle(this.#track(marked), 'marking a failed fill');
    return marked.then(forget, forget);
  }

  /** Own a background promise: its failure is counted and reported, never unhandled. */
  #settle(promise: Promise<unknown>, what: string): void {
    promise.catch((err: unknown) => {
      if (this.#host.closed()) return; // closed meanwhile: the lock expires by itself
      if (isCacheFailure(err)) this.#counters.cacheErrors++;
      this.#host.logger.warn(`peak-cache: ${what} failed: ${describe(err)}`);
    });
  }
}

/** What the steps of an abandoned fill throw (its callers already got their `CacheTimeoutError`). */
function abandonedError(fill: Fill): CacheTimeoutError {
  return new CacheTimeoutError(`${fill.op} failed: the fill was abandoned at hardTimeoutMs`);
}

function miss<T>(value: T): Outcome<T> {
  return { value, hit: false };
}
