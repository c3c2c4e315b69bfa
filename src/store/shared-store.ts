/**
 * Shared mode of a `TenantCaches` (issue 18): every view of every tenant runs on one engine (one
 * connection on a single server, one set of node connections on a cluster), one near cache, one breaker
 * and one in-process single-flight table. A view only adds its tenant: it creates no connection, no
 * timer, and closing it releases nothing shared.
 *
 * @module
 */
import type { SharedCachedState } from '../cached/read-through.js';
import type { Engine } from '../engines/engine.js';
import { CacheConnectionError } from '../errors.js';
import type { NearCache } from '../near-cache/near-cache.js';
import type { StatsRecorder } from '../stats.js';
import type { Connected, ViewStore } from './binding.js';
import type { EngineSlot } from './engine-slot.js';

/** The message of calls of a closed view. */
const VIEW_CLOSED = 'the client is closed';

/** One tenant's view of a shared {@link EngineSlot}. */
export class SharedView implements ViewStore {
  readonly kind = 'shared';
  readonly #slot: EngineSlot;
  readonly tenant: string;
  readonly near: NearCache | undefined;
  readonly cachedState: SharedCachedState;
  readonly stats: StatsRecorder;
  #closed = false;
  readonly #onClose: () => void;
  /** The slot's connection this view last saw, and the same connection under the view's tenant. */
  #base: Connected | undefined;
  #conn: Connected | undefined;

  /**
   * @param slot - the shared engine (connected on first use by any view).
   * @param tenant - a validated tenant: the namespace of every key of this view.
   * @param onClose - called once, when the view's close() starts (the `TenantCaches` counts open views).
   */
  constructor(
    slot: EngineSlot,
    tenant: string,
    near: NearCache | undefined,
    cachedState: SharedCachedState,
    stats: StatsRecorder,
    onClose: () => void = () => {},
  ) {
    this.#onClose = onClose;
    this.#slot = slot;
    this.tenant = tenant;
    this.near = near;
    this.cachedState = cachedState;
    this.stats = stats;
  }

  current(): Connected | undefined {
    const base = this.#slot.connected;
    if (base === undefined || this.#closed) return undefined;
    return base === this.#base ? this.#conn : this.#as(base);
  }

  connect(): Promise<Connected> {
    if (this.#closed) return Promise.reject(new CacheConnectionError(VIEW_CLOSED));
    return this.#slot.connect().then((base) => this.#as(base));
  }

  recover(_conn: Connected, err: unknown): Promise<Connected> {
    // A shared connection has direct credentials: nothing to fetch again.
    return Promise.reject(err);
  }

  closed(): boolean {
    return this.#closed || this.#slot.closed;
  }

  async close(beforeClose: (engine: Engine) => Promise<void>): Promise<void> {
    if (!this.#closed) this.#onClose();
    this.#closed = true;
    const base = this.#slot.connected;
    if (base !== undefined) await beforeClose(base.engine);
  }

  /** `base` under this view's tenant (one object per connection, kept for the fast path). */
  #as(base: Connected): Connected {
    const conn: Connected = { engine: base.engine, tenant: this.tenant, server: base.server };
    this.#base = base;
    this.#conn = conn;
    return conn;
  }
}
