/**
 * Pooled mode of a `TenantCaches` (issue 18): one connection per tenant, authenticated with the
 * credentials `connectionFor(tenant)` returns, opened on first use, at most `maxConnections` open at once
 * (the least recently used idle one is closed to make room; a later call for it reconnects), closed after
 * `idleTimeoutMs` without calls (one unref'd timer for the whole pool). A call that finds every
 * connection busy waits in a bounded queue, at most the connection's `timeoutMs`, then rejects with
 * {@link CacheTimeoutError}: it never hangs.
 *
 * A connection is idle when no call holds it: a call holds its tenant's connection from the moment it
 * gets it until its body settled (a flush holds it for the whole flush).
 *
 * @module
 */
import { type ConnectionSource, chooseSource } from '../connection.js';
import { CacheConnectionError, CacheTimeoutError, CacheValidationError } from '../errors.js';
import type { CacheLogger } from '../logger.js';
import { type ConnectionConfig, type ConnectionSettings, resolveSettings } from '../options.js';
import { Session } from '../session.js';
import type { TenantConnection } from '../tenants.js';
import type { Connected } from './binding.js';
import { EngineSlot } from './engine-slot.js';

/** Options of {@link TenantPool}. */
export interface TenantPoolOptions {
  readonly connectionFor: (tenant: string) => TenantConnection | Promise<TenantConnection>;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  /** Tuning every tenant connection starts from (`connectionFor`'s fields override it). */
  readonly tuning: ConnectionConfig;
  /** Settings of the queue: `timeoutMs` (longest wait) and `maxQueueLength` (most waiting calls). */
  readonly settings: ConnectionSettings;
  readonly logger: CacheLogger;
}

/** The message of calls once the pool is closed. */
export const POOL_CLOSED = 'the TenantCaches is closed';

/** One tenant's connection (opening, open) and the calls holding it. */
class Entry {
  holds = 0;
  lastUsed = performance.now();
  slot: Promise<EngineSlot> | undefined;
  /** The connection seen last, and the same with this entry's `release`. */
  base: Connected | undefined;
  held: Connected | undefined;
  readonly release: () => void;

  constructor(
    readonly tenant: string,
    release: (entry: Entry) => void,
  ) {
    this.release = () => release(this);
  }

  /** `base` with this entry's `release` (one object per connection). */
  wrap(base: Connected): Connected {
    if (base !== this.base) {
      this.base = base;
      this.held = { engine: base.engine, tenant: base.tenant, server: base.server, release: this.release };
    }
    return this.held as Connected;
  }
}

interface Waiter {
  readonly tenant: string;
  readonly resolve: (conn: Promise<Connected>) => void;
  readonly reject: (err: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

/** A bounded pool of per-tenant connections. */
export class TenantPool {
  readonly #options: TenantPoolOptions;
  /** Open (or opening) connections, least recently used first. */
  readonly #entries = new Map<string, Entry>();
  readonly #waiters: Waiter[] = [];
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  /** Most connections open at once so far (for stats and tests). */
  #peak = 0;

  constructor(options: TenantPoolOptions) {
    this.#options = options;
  }

  /** Connections open or opening now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Most connections open at once since the pool was created. */
  get peak(): number {
    return this.#peak;
  }

  /** Calls waiting for a connection. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /** Whether {@link TenantPool.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether `tenant`'s connection is open now. */
  isOpen(tenant: string): boolean {
    return this.#entries.has(tenant);
  }

  /**
   * `tenant`'s connection, held by the caller until it calls `release()` once. Opens it (closing the
   * least recently used idle one when the pool is full) or waits for room.
   * @throws {CacheTimeoutError} after waiting `timeoutMs` for room; {@link CacheConnectionError} when the
   * queue is full, the pool closed, or the credentials fail or name another tenant.
   */
  acquire(tenant: string): Promise<Connected> {
    if (this.#closed) return Promise.reject(new CacheConnectionError(POOL_CLOSED));
    let entry = this.#entries.get(tenant);
    /** The connection closed to make room: the new one opens once it is closed (never more than the bound). */
    let evicted: Promise<void> | undefined;
    if (entry !== undefined) {
      // Most recently used last.
      this.#entries.delete(tenant);
      this.#entries.set(tenant, entry);
    } else {
      if (this.#entries.size >= this.#options.maxConnections) {
        evicted = this.#evictIdle();
        if (evicted === undefined) return this.#wait(tenant);
      }
      entry = new Entry(tenant, (e) => this.#release(e));
      this.#entries.set(tenant, entry);
      this.#peak = Math.max(this.#peak, this.#entries.size);
      this.#startSweeper();
    }
    entry.holds++;
    const held = entry;
    held.slot ??= evicted === undefined ? this.#open(tenant) : evicted.then(() => this.#open(tenant));
    return held.slot
      .then((slot) => slot.connect())
      .then(
        (base) => held.wrap(base),
        (err: unknown) => {
          // A connection that cannot open does not count: the next call asks `connectionFor` again.
          if (this.#entries.get(tenant) === held) this.#drop(held);
          held.release();
          throw err;
        },
      );
  }

  /**
   * After `err` failed a body on `conn` (held by the caller, released already): the tenant's connection
   * with fresh credentials (platform sessions; see `EngineSlot.recover`), held again; else `err`.
   */
  async recover(tenant: string, conn: Connected, err: unknown): Promise<Connected> {
    const entry = this.#entries.get(tenant);
    if (entry?.slot === undefined) throw err;
    const slot = await entry.slot;
    entry.holds++;
    try {
      return entry.wrap(await slot.recover(conn, err));
    } catch (failure) {
      entry.release();
      throw failure;
    }
  }

  /** Close every connection; waiting and later calls reject with {@link CacheConnectionError}. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new CacheConnectionError(POOL_CLOSED));
    }
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.allSettled(entries.map((entry) => closeEntry(entry)));
  }

  /** The source and engine slot of `tenant`, from `connectionFor`. */
  async #open(tenant: string): Promise<EngineSlot> {
    const { connectionFor, tuning, logger } = this.#options;
    let result: TenantConnection;
    try {
      result = await connectionFor(tenant);
    } catch (err) {
      throw new CacheConnectionError(`connectionFor(${JSON.stringify(tenant)}) failed`, { cause: err });
    }
    let source: ConnectionSource;
    let settings: ConnectionSettings;
    if (result instanceof Session) {
      source = chooseSource(result, {}, {}, logger);
      settings = resolveSettings(tuning);
    } else if (result !== null && typeof result === 'object') {
      if (result.tenant !== undefined && result.tenant !== tenant) {
        throw new CacheConnectionError(
          `connectionFor(${JSON.stringify(tenant)}) returned the connection of another tenant`,
        );
      }
      const config = { ...tuning, ...result, tenant };
      settings = resolveSettings(config);
      // No environment fallback: the URL must come from connectionFor.
      source = chooseSource(undefined, config, {}, logger);
    } else {
      throw new CacheValidationError('connectionFor must return a ConnectionConfig or a Session');
    }
    return new EngineSlot({
      source,
      settings,
      near: undefined,
      logger,
      expectTenant: tenant,
      closedMessage: POOL_CLOSED,
    });
  }

  #release(entry: Entry): void {
    entry.holds--;
    entry.lastUsed = performance.now();
    if (entry.holds === 0) this.#drain();
  }

  /** Close the least recently used idle connection (resolves once closed); `undefined` when all are busy. */
  #evictIdle(): Promise<void> | undefined {
    for (const entry of this.#entries.values()) if (entry.holds === 0) return this.#drop(entry);
    return undefined;
  }

  /** Forget `entry` and close its connection; resolves once closed (never rejects). */
  #drop(entry: Entry): Promise<void> {
    this.#entries.delete(entry.tenant);
    if (this.#entries.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
    return closeEntry(entry).catch(() => {});
  }

  /** Queue a call until a connection is free, at most `timeoutMs`. */
  #wait(tenant: string): Promise<Connected> {
    const { maxQueueLength, timeoutMs } = this.#options.settings;
    if (this.#waiters.length >= maxQueueLength) {
      return Promise.reject(
        new CacheConnectionError(
          `all ${this.#options.maxConnections} connections are busy and ${maxQueueLength} calls wait already (maxConnections, maxQueueLength)`,
        ),
      );
    }
    return new Promise<Connected>((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(
          new CacheTimeoutError(
            `no connection became free within ${timeoutMs} ms (all ${this.#options.maxConnections} busy: maxConnections)`,
          ),
        );
      }, timeoutMs);
      timer.unref();
      const waiter: Waiter = { tenant, resolve, reject, timer };
      this.#waiters.push(waiter);
    });
  }

  /** Serve waiting calls while there is room (their tenant open, a free slot, or an idle one to close). */
  #drain(): void {
    while (this.#waiters.length > 0 && !this.#closed) {
      const waiter = this.#waiters[0] as Waiter;
      const room =
        this.#entries.has(waiter.tenant) ||
        this.#entries.size < this.#options.maxConnections ||
        [...this.#entries.values()].some((e) => e.holds === 0);
      if (!room) return;
      this.#waiters.shift();
      clearTimeout(waiter.timer);
      waiter.resolve(this.acquire(waiter.tenant));
    }
  }

  /** Close connections idle for `idleTimeoutMs` (checked every half of it). */
  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const { idleTimeoutMs } = this.#options;
    this.#sweeper = setInterval(
      () => {
        const now = performance.now();
        for (const entry of [...this.#entries.values()]) {
          if (entry.holds === 0 && now - entry.lastUsed >= idleTimeoutMs) this.#drop(entry);
        }
      },
      Math.max(10, Math.floor(idleTimeoutMs / 2)),
    );
    this.#sweeper.unref();
  }
}

/** Close an entry's connection once its pending commands finished (opening ones close once open). */
async function closeEntry(entry: Entry): Promise<void> {
  const slot = await entry.slot?.catch(() => undefined);
  await slot?.close();
}
