/**
 * Tracing through `node:diagnostics_channel`. Every client operation is published on one
 * {@link https://nodejs.org/api/diagnostics_channel.html#class-tracingchannel | TracingChannel},
 * `peak-cache:operation` (channels `tracing:peak-cache:operation:start`, `:end`, `:asyncStart`,
 * `:asyncEnd` and `:error`), with an {@link OperationContext} naming the operation, the tenant, the number
 * of keys and, for reads, the hits and misses. Never values, key names or credentials.
 *
 * An operation that goes to the server publishes `start`, `end`, then when it settles `error` (failures
 * only), `asyncStart` and `asyncEnd`. An operation answered synchronously from process memory (a
 * near-cache hit, a cached-function call answered from the near cache) publishes **`asyncEnd` only**, with
 * a complete context and `memory: true`: nothing runs asynchronously and no store bound to `start` is
 * entered. So a subscriber that wants every operation reads `asyncEnd`; one that pairs `start` with
 * `asyncEnd` (to time an operation or open a span) must accept an `asyncEnd` with no `start`.
 *
 * When nobody subscribes, the client checks one flag per call and builds no context object.
 *
 * @example
 * ```ts
 * import { tracingChannel } from 'node:diagnostics_channel';
 * import { OPERATION_CHANNEL, type OperationContext } from 'peak-cache';
 *
 * tracingChannel<OperationContext>(OPERATION_CHANNEL).subscribe({
 *   start() {},
 *   end() {},
 *   asyncStart() {},
 *   asyncEnd(ctx) { console.log(ctx.operation, ctx.tenant, ctx.keys, ctx.hits, ctx.misses); },
 *   error(ctx) { console.error(ctx.operation, ctx.error); },
 * });
 * ```
 *
 * @module
 */
import { type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import { KeySpace } from './keys.js';

/** Name of the `TracingChannel` every operation is published on (see {@link OperationContext}). */
export const OPERATION_CHANNEL = 'peak-cache:operation';

/**
 * Where the client is connected, as tracing shows it: no URL, no credentials.
 * `address`, `port` and `database` are set for a single Redis server, not for a cluster (whose commands
 * go to several nodes) nor for `memory://`.
 */
export interface ServerInfo {
  /** `redis` for Redis, Valkey and Redis Cluster; `memory` for the embedded `memory://` engine. */
  readonly system: 'redis' | 'memory';
  /** Whether the client talks to a Redis Cluster. */
  readonly cluster: boolean;
  /** Host name or IP address of the server. */
  readonly address?: string;
  /** TCP port of the server. */
  readonly port?: number;
  /** Database index (the URL's path, `0` by default). */
  readonly database?: number;
}

/**
 * The message of every event of one operation: the same object from `start` to `asyncEnd`, filled in
 * as the operation proceeds. Subscribers must treat it as read-only.
 *
 * Events of an operation that goes to the server, in order: `start` (the call began; connecting, when
 * needed, is part of the operation), `end` (the synchronous part returned), then when the operation
 * settles `error` (failures only), `asyncStart` and `asyncEnd`. The operation runs inside the stores
 * bound to the `start` channel (`bindStore`).
 *
 * An operation answered synchronously from process memory (a near-cache hit, hit or held miss; a cached
 * function answered from the near cache) publishes one event, `asyncEnd`, before the call returns, on
 * a context that is complete from the first (`tenant`, `server`, `keys`, `hits`, `misses`) and has
 * `memory: true`; no `start`, `end` or `asyncStart`, and no store is entered. Such an `asyncEnd` runs in
 * the caller's synchronous context (its `AsyncLocalStorage` stores, its active span). That context is
 * frozen and may be the same object for consecutive answers of one client with the same content (a
 * context allocated per hit was most of tracing's cost on a near hit): do not use its identity to
 * tell answers apart.
 */
export interface OperationContext {
  /**
   * The client method: `get`, `set`, `mget`, `mset`, `delete`, `exists`, `expire`, `ttl`, `flushTenant`,
   * ...; for cached functions `getOrSet`, `cacheResult` (a call of a wrapped function) and
   * `getOrSetMany`: one operation per public call, whatever I/O it does, with `hits`/`misses` for the
   * keys the cache answered or not.
   */
  readonly operation: string;
  /** The tenant; unknown at `start` only in platform mode before the credentials were fetched. */
  tenant: string | undefined;
  /** Where the client is connected; unknown at `start` before the first connection. */
  server: ServerInfo | undefined;
  /**
   * How many keys the operation names (`mget('a', 'b')`: 2; `ping` and flushes: 0). Known once the
   * command is sent: read it at `asyncEnd`.
   */
  keys: number;
  /** Reads (`get`, `mget`, cached functions): keys found, at `asyncEnd` of a successful read. */
  hits?: number;
  /** Reads (`get`, `mget`, cached functions): keys not found, at `asyncEnd` of a successful read. */
  misses?: number;
  /** The {@link CacheError} the operation rejected with (from the `error` event on). */
  error?: unknown;
  /**
   * `true` when the operation was answered synchronously from process memory (the near cache): then its
   * only event is `asyncEnd` (no `start`, `end` or `asyncStart`: nothing runs asynchronously, no store
   * bound to `start` is entered) and the context is complete. Absent on every other operation.
   */
  readonly memory?: true;
}

/** The channels of {@link OPERATION_CHANNEL}. */
export const operationChannel: TracingChannel<unknown, OperationContext> = tracingChannel<
  unknown,
  OperationContext
>(OPERATION_CHANNEL);

const { start, end, asyncStart, asyncEnd, error } = operationChannel;

/**
 * Whether anyone listens to {@link OPERATION_CHANNEL} (`TracingChannel#hasSubscribers` exists only from
 * Node 20.13, so the five channels are checked directly). Node offers no hook on subscribing, so this
 * is asked per call; each check is a getter on the channel's prototype (`false` until a subscriber or a
 * store makes the channel active), which the JIT inlines: a handful of loads when nobody listens, one
 * when `start` has a subscriber.
 * @internal
 */
export function isTraced(): boolean {
  return (
    start.hasSubscribers ||
    asyncEnd.hasSubscribers ||
    error.hasSubscribers ||
    end.hasSubscribers ||
    asyncStart.hasSubscribers
  );
}

/** The part of the client's connection tracing needs. */
interface TracedConnection {
  readonly tenant: string;
  readonly server?: ServerInfo | undefined;
}

/**
 * What tracing shows of an endpoint URL: system, host, port, database index. Never the credentials.
 * @internal
 */
export function describeServer(url: string, cluster: boolean): ServerInfo {
  if (url.startsWith('memory:')) return { system: 'memory', cluster: false };
  if (cluster) return { system: 'redis', cluster: true };
  try {
    const parsed = new URL(url);
    const db = Number(parsed.pathname.slice(1) || '0');
    const address = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
    return {
      system: 'redis',
      cluster: false,
      address,
      port: Number(parsed.port || 6379),
      ...(Number.isInteger(db) ? { database: db } : {}),
    };
  } catch {
    return { system: 'redis', cluster: false };
  }
}

/** A {@link KeySpace} that counts the keys an operation names (tracing only). */
class CountingKeySpace extends KeySpace {
  count = 0;

  override key(key: string): string {
    this.count++;
    return super.key(key);
  }

  override keys(keys: readonly string[]): string[] {
    this.count += keys.length;
    return super.keys(keys);
  }
}

/** Record hits and misses of a read's raw engine reply: `get` (a string or `null`), `mget` (an array). */
function recordReads(ctx: OperationContext, raw: unknown): void {
  if (ctx.operation === 'get') {
    ctx.hits = raw === null ? 0 : 1;
    ctx.misses = raw === null ? 1 : 0;
  } else if (ctx.operation === 'mget' && Array.isArray(raw)) {
    let hits = 0;
    for (const value of raw) if (value !== null) hits++;
    ctx.hits = hits;
    ctx.misses = raw.length - hits;
  }
}

/**
 * Run one operation under tracing: publishes `start`, `end`, then `error`/`asyncStart`/`asyncEnd`.
 * `send(body, map)` runs the operation with `body` wrapped to learn the tenant, server and key count,
 * and `map` wrapped to count hits (no extra promise); the operation's result passes through untouched
 * and is never put in the context.
 * @internal
 */
export function traceOperation<C extends TracedConnection, V, R>(
  operation: string,
  connected: C | undefined,
  body: (conn: C, ks: KeySpace) => Promise<V>,
  map: ((value: V) => R) | undefined,
  send: (body: (conn: C, ks: KeySpace) => Promise<V>, map: (value: V) => R) => Promise<R>,
): Promise<R> {
  const ctx: OperationContext = { operation, tenant: connected?.tenant, server: connected?.server, keys: 0 };
  // Module-level functions and inline arrows only: this runs per call while someone subscribes.
  if (!storesBound()) {
    start.publish(ctx);
    return runTraced(ctx, body, map, send);
  }
  return start.runStores(ctx, runTraced<C, V, R>, undefined, ctx, body, map, send);
}

function runTraced<C extends TracedConnection, V, R>(
  ctx: OperationContext,
  body: (conn: C, ks: KeySpace) => Promise<V>,
  map: ((value: V) => R) | undefined,
  send: (body: (conn: C, ks: KeySpace) => Promise<V>, map: (value: V) => R) => Promise<R>,
): Promise<R> {
  let pending: Promise<R>;
  try {
    pending = send(
      (conn, ks) => {
        ctx.tenant = conn.tenant;
        ctx.server = conn.server;
        const counting = new CountingKeySpace(ks.tenant, ks.prefix);
        const result = body(conn, counting);
        ctx.keys = counting.count;
        return result;
      },
      (raw) => {
        recordReads(ctx, raw);
        return map === undefined ? (raw as unknown as R) : map(raw);
      },
    );
  } catch (err) {
    pending = Promise.reject(err);
  }
  end.publish(ctx);
  return settled(ctx, pending);
}

/** Publish `asyncStart`/`asyncEnd` (after `error` for a failure) when `pending` settles. */
function settled<R>(ctx: OperationContext, pending: Promise<R>): Promise<R> {
  return pending.then(
    (result) => {
      asyncStart.publish(ctx);
      asyncEnd.publish(ctx);
      return result;
    },
    (err: unknown) => {
      ctx.error = err;
      error.publish(ctx);
      asyncStart.publish(ctx);
      asyncEnd.publish(ctx);
      throw err;
    },
  );
}

/**
 * Trace one public call made of several internal I/O steps (the cached functions): one operation on
 * the channel, whatever I/O it does. `call(ctx)` runs it; it may fill in `hits` and `misses`.
 * @internal
 */
export function traceCall<C extends TracedConnection, R>(
  operation: string,
  connected: C | undefined,
  keys: number,
  call: (ctx: OperationContext) => Promise<R>,
): Promise<R> {
  const ctx: OperationContext = { operation, tenant: connected?.tenant, server: connected?.server, keys };
  if (!storesBound()) {
    start.publish(ctx);
    return runCall(ctx, call);
  }
  return start.runStores(ctx, runCall<R>, undefined, ctx, call);
}

function runCall<R>(ctx: OperationContext, call: (ctx: OperationContext) => Promise<R>): Promise<R> {
  let pending: Promise<R>;
  try {
    pending = call(ctx);
  } catch (err) {
    pending = Promise.reject(err);
  }
  end.publish(ctx);
  return settled(ctx, pending);
}

/**
 * The last context {@link traceAnswered} published for one caller (a client's near `get` hits, its held
 * misses, its cached functions' answers): reused while the content is the same. @internal
 */
export interface AnsweredSlot {
  ctx: OperationContext | undefined;
  connected: TracedConnection | undefined;
}

/** A new, empty {@link AnsweredSlot}. @internal */
export function answeredSlot(): AnsweredSlot {
  return { ctx: undefined, connected: undefined };
}

/**
 * Trace an operation the client answered synchronously from memory (a near-cache hit, a cached function
 * answered from the near cache; `operation` is the public method: `get`, `cacheResult`, `getOrSet`, ...):
 * publishes `asyncEnd` only, on a complete, frozen context with `memory: true` (see
 * {@link OperationContext}), in the caller's synchronous context; no `start`/`end`/`asyncStart`, no store
 * entered, no promise, no closure. The context is `slot`'s last one when it says the same (same
 * connection, operation, keys, hits and misses), else a new one kept in `slot`. Builds nothing when
 * `asyncEnd` has no subscriber. Call it after counting, before returning the resolved promise, and only
 * when {@link isTraced} (the caller then builds nothing when nobody listens).
 * @internal
 */
export function traceAnswered(
  operation: string,
  connected: TracedConnection | undefined,
  keys: number,
  hits: number,
  misses: number,
  slot: AnsweredSlot,
): void {
  if (!asyncEnd.hasSubscribers) return;
  let ctx = slot.ctx;
  if (
    ctx === undefined ||
    slot.connected !== connected ||
    ctx.operation !== operation ||
    ctx.keys !== keys ||
    ctx.hits !== hits ||
    ctx.misses !== misses
  ) {
    // One literal with every property: one object shape for all answered operations. One event, one
    // object per content: the four-event contract cost 21-30 % of a near hit with no-op subscribers, a
    // fresh context per hit 18-20 % (issue 20, bench/tracing-cost.ts).
    ctx = Object.freeze({
      operation,
      tenant: connected?.tenant,
      server: connected?.server,
      keys,
      hits,
      misses,
      memory: true,
    } satisfies OperationContext) as OperationContext;
    slot.ctx = ctx;
    slot.connected = connected;
  }
  asyncEnd.publish(ctx);
}

/**
 * Whether a store is bound to the start channel (`bindStore`, e.g. an `AsyncLocalStorage` of a tracer).
 * Without one, `runStores(ctx, fn)` is `publish(ctx)` then `fn()`, less a closure and a rest-arguments
 * call per operation: the traced paths then do just that. Node keeps the bound stores of an active
 * channel in `_stores` (Node 19.9 to 24; an inactive one has none, as binding a store activates it);
 * should that change, this answers `true` and `runStores` runs as before.
 */
function storesBound(): boolean {
  const stores = (start as unknown as { _stores?: { readonly size?: unknown } })._stores;
  return stores === undefined ? start.hasSubscribers : stores.size !== 0;
}
