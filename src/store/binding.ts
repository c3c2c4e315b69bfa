/**
 * The seam between a {@link CacheClient} (the tenant-facing API: validation, key space, codec, logging,
 * stats, error naming) and the store it runs on (connection source and lifecycle, engine, credentials
 * refresh, near cache, breaker, single-flight). A plain `new CacheClient(...)` has a store of its own
 * ({@link OwnStore}); the views of a `TenantCaches` share one (issue 18, SPEC section 10).
 *
 * @module
 */
import type { SharedCachedState } from '../cached/read-through.js';
import type { ServerInfo } from '../diagnostics.js';
import type { Engine } from '../engines/engine.js';
import type { NearCache } from '../near-cache/near-cache.js';
import type { StatsRecorder } from '../stats.js';

/** A connection a view's operation runs on, and the tenant whose namespace it uses. */
export interface Connected {
  readonly engine: Engine;
  readonly tenant: string;
  /** What tracing shows of the endpoint (no URL, no credentials). */
  readonly server?: ServerInfo | undefined;
  /**
   * Pooled stores only: the call that got this connection from {@link ViewStore.current} or
   * {@link ViewStore.connect} holds it until it calls `release` once, when its body settled (an idle
   * connection is one no call holds).
   */
  readonly release?: () => void;
}

/** What one {@link CacheClient} needs from its store. */
export interface ViewStore {
  /** How the store connects, for `inspect` (never a URL or credentials). */
  readonly kind: string;
  /** The tenant, when known before connecting (every view of a `TenantCaches`; direct clients). */
  readonly tenant: string | undefined;
  /** The near cache every read and write of the store goes through, or `undefined` when off. */
  readonly near: NearCache | undefined;
  /** In-process state of cached functions shared with the store's other views (`undefined`: own). */
  readonly cachedState: SharedCachedState | undefined;
  /** Counters shared by the views of one tenant of a `TenantCaches` (`undefined`: the client's own). */
  readonly stats: StatsRecorder | undefined;
  /** The ready connection, or `undefined` (then {@link ViewStore.connect}). Never one of a closed view. */
  current(): Connected | undefined;
  /** Connect (lazily: first use), or reject with a `CacheError` (`CacheConnectionError` once closed). */
  connect(): Promise<Connected>;
  /**
   * After `err` failed a body on `conn`: a connection to retry on once (credentials fetched again after
   * the server rejected them, at most once per cool-down), or `err` rethrown.
   */
  recover(conn: Connected, err: unknown): Promise<Connected>;
  /** Whether calls of this view must reject as closed (the view or its store was closed). */
  closed(): boolean;
  /**
   * Close the view. `beforeClose` runs on the open connection first (cached functions release their fill
   * locks). An own store then closes its engine; a shared store releases nothing shared.
   */
  close(beforeClose: (engine: Engine) => Promise<void>): Promise<void>;
}

/**
 * Key of the (unexported) option a `TenantCaches` passes to `new CacheClient(...)` to make a view over its
 * store instead of a store of the client's own. A symbol: option-name checks and JSON never see it.
 */
export const VIEW_STORE: unique symbol = Symbol('peak-cache.viewStore');
