/**
 * One tenant's view of a {@link TenantPool} (pooled mode of a `TenantCaches`): each call holds the
 * tenant's own connection while it runs, so a tenant's call never runs on another tenant's connection.
 *
 * @module
 */
import type { SharedCachedState } from '../cached/read-through.js';
import type { Engine } from '../engines/engine.js';
import { CacheConnectionError } from '../errors.js';
import type { StatsRecorder } from '../stats.js';
import type { Connected, ViewStore } from './binding.js';
import type { TenantPool } from './tenant-pool.js';

/** A view whose calls run on its tenant's pooled connection. */
export class PooledView implements ViewStore {
  readonly kind = 'pooled';
  readonly near = undefined;
  readonly #pool: TenantPool;
  readonly tenant: string;
  readonly cachedState: SharedCachedState;
  readonly stats: StatsRecorder;
  #closed = false;
  readonly #onClose: () => void;

  /** @param onClose - called once, when the view's close() starts (the `TenantCaches` counts open views). */
  constructor(
    pool: TenantPool,
    tenant: string,
    cachedState: SharedCachedState,
    stats: StatsRecorder,
    onClose: () => void = () => {},
  ) {
    this.#onClose = onClose;
    this.#pool = pool;
    this.tenant = tenant;
    this.cachedState = cachedState;
    this.stats = stats;
  }

  /** Always `undefined`: every call takes (holds) the connection through {@link PooledView.connect}. */
  current(): Connected | undefined {
    return undefined;
  }

  connect(): Promise<Connected> {
    if (this.#closed) return Promise.reject(new CacheConnectionError('the client is closed'));
    return this.#pool.acquire(this.tenant);
  }

  recover(conn: Connected, err: unknown): Promise<Connected> {
    return this.#pool.recover(this.tenant, conn, err);
  }

  closed(): boolean {
    return this.#closed || this.#pool.closed;
  }

  async close(beforeClose: (engine: Engine) => Promise<void>): Promise<void> {
    if (!this.#closed) this.#onClose();
    this.#closed = true;
    // Only when the tenant's connection is open (not draining): closing a view never opens one (nor waits
    // for room).
    if (!this.#pool.isUsable(this.tenant)) return;
    const conn = await this.#pool.acquire(this.tenant).catch(() => undefined);
    if (conn === undefined) return;
    try {
      await beforeClose(conn.engine);
    } finally {
      conn.release?.();
    }
  }
}
