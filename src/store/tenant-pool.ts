/**
 * Pooled mode of a `TenantCaches` (issue 18): one connection per tenant, authenticated with the
 * credentials `connectionFor(tenant)` returns, opened on first use, at most `maxConnections` open at once
 * (the least recently used idle one is closed to make room; a later call for it reconnects), closed after
 * `idleTimeoutMs` without calls (one unref'd timer for the whole pool). A call that finds every
 * connection busy waits in a bounded queue, at most the connection's `timeoutMs`, then rejects with
 * {@link CacheTimeoutError}: it never hangs.
 *
 * Oversubscribed (more tenants active at once than `maxConnections`): a connection is not given to another
 * tenant until it has served its own for `minHoldMs` (at most half of `timeoutMs`). Past that, a waiting
 * tenant gets the least recently used idle connection at once, or else the least recently used busy one is
 * drained: no new calls on it, closed once its running calls settled, then opened for the first waiting
 * tenant. So a connection in continuous use switches tenants at most once per `minHoldMs` (each switch
 * costs a close, a connect and AUTH), instead of once per call, and a waiting tenant is served after about
 * a hold plus a drain, or its calls fail with {@link CacheTimeoutError} after `timeoutMs`. An idle
 * connection within its hold goes to another tenant once idle for a 20th of the hold, checked by a timer
 * (its tenant stopped using it: one with calls in a loop takes it again within the turn that released it). A connection whose
 * call waits on a frozen node stays busy until that call's `timeoutMs`: draining it takes that long.
 *
 * Waiting calls are served in batches per tenant: once a tenant's connection is open, every call waiting
 * for it runs on it at once (not one at a time behind other tenants' calls), and an idle connection is
 * closed to make room only for a tenant none of whose calls could run otherwise. A call for a tenant whose
 * connection is closed queues behind the calls already waiting, so a burst over many tenants opens each
 * tenant's connection about once instead of thrashing.
 *
 * Opening a connection is bounded: `connectionFor` must settle within `connectTimeoutMs` (else
 * `timeoutMs` capped at 5000 ms: see `ConnectionSettings.connectTimeoutMs`), or the calls waiting for it
 * reject with {@link CacheTimeoutError} and its place in the pool is freed. When the server rejects a
 * tenant's credentials (WRONGPASS / NOAUTH: a rotated password), the pool drops that tenant's connection
 * and calls `connectionFor` again once, then retries the call, at most once per
 * {@link CREDENTIALS_REFRESH_COOLDOWN_MS} per tenant (as a client does for platform credentials).
 *
 * A connection is idle when no call holds it: a call holds its tenant's connection from the moment it
 * gets it until its body settled (a flush holds it for the whole flush).
 *
 * @module
 */
import { type ConnectionSource, chooseSource } from '../connection.js';
import type { Engine } from '../engines/engine.js';
import { isAuthFailure } from '../engines/redis-errors.js';
import { CacheConnectionError, CacheTimeoutError, CacheValidationError } from '../errors.js';
import type { CacheLogger } from '../logger.js';
import { type ConnectionConfig, type ConnectionSettings, resolveSettings } from '../options.js';
import { Session } from '../session.js';
import type { TenantConnection } from '../tenants.js';
import type { Connected } from './binding.js';
import { CREDENTIALS_REFRESH_COOLDOWN_MS, EngineSlot } from './engine-slot.js';

/** Options of {@link TenantPool}. */
export interface TenantPoolOptions {
  readonly connectionFor: (tenant: string) => TenantConnection | Promise<TenantConnection>;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  /**
   * Least time, in ms, a connection serves its tenant (from when it was given to it) before it may be
   * closed or drained for another tenant; capped at half of `settings.timeoutMs`. 0: no hold.
   */
  readonly minHoldMs: number;
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
  /** When the connection was given to this tenant (its hold runs from then). */
  readonly since = performance.now();
  /** Being drained for a waiting tenant: no new calls; closed once `holds` is 0. */
  draining = false;
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
  /** Calls of `connectionFor` in progress: each rejects its open at once when the pool closes. */
  readonly #opening = new Set<() => void>();
  /** When `connectionFor` was last called again after the server rejected a tenant's credentials. */
  readonly #refreshed = new Map<string, number>();
  /** Most connections open at once so far (for stats and tests). */
  #peak = 0;
  /** Closes in progress not yet followed by an open: each counts against `maxConnections`. */
  readonly #closing: Promise<void>[] = [];
  /** Fires when the next hold ends while a tenant waits for a connection. */
  #holdTimer: NodeJS.Timeout | undefined;
  /** The hold in effect: `minHoldMs`, at most half of `timeoutMs`. */
  readonly #hold: number;
  /** An idle connection within its hold may go to another tenant once idle this long (a 20th of the hold). */
  readonly #grace: number;
  #inDrain = false;
  /** Set while the hold timer serves waiting calls: only then may an idle connection go before its hold ends. */
  #onTimer = false;

  constructor(options: TenantPoolOptions) {
    this.#options = options;
    this.#hold = Math.min(options.minHoldMs, Math.floor(options.settings.timeoutMs / 2));
    this.#grace = Math.ceil(this.#hold / 20);
  }

  /** The hold in effect, in ms (see {@link TenantPoolOptions.minHoldMs}). */
  get holdMs(): number {
    return this.#hold;
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

  /** Whether `tenant`'s connection is open now (or opening, or draining: see the module's notes). */
  isOpen(tenant: string): boolean {
    return this.#entries.has(tenant);
  }

  /** Whether a call of `tenant` gets its connection at once: open (or opening) and not draining. */
  isUsable(tenant: string): boolean {
    return this.#usable(tenant);
  }

  /**
   * `tenant`'s connection, held by the caller until it calls `release()` once. Opens it (closing the
   * least recently used idle one when the pool is full) or waits for room.
   * @throws {CacheTimeoutError} after waiting `timeoutMs` for room; {@link CacheConnectionError} when the
   * queue is full, the pool closed, or the credentials fail or name another tenant.
   */
  acquire(tenant: string): Promise<Connected> {
    if (this.#closed) return Promise.reject(new CacheConnectionError(POOL_CLOSED));
    // A closed (or draining) tenant's call goes behind the calls already waiting (batches: see #drain).
    if (this.#waiters.length > 0 && !this.#usable(tenant)) return this.#wait(tenant);
    return this.#acquireNow(tenant);
  }

  /** {@link TenantPool.acquire} without the queue check (a call that waited already, or none waits). */
  #acquireNow(tenant: string): Promise<Connected> {
    if (this.#closed) return Promise.reject(new CacheConnectionError(POOL_CLOSED));
    let entry = this.#entries.get(tenant);
    /** The connection closed to make room: the new one opens once it is closed (never more than the bound). */
    let evicted: Promise<void> | undefined;
    if (entry?.draining) {
      // Nobody waits for its place any more: it serves its tenant again.
      if (this.#waiters.length > 0) return this.#wait(tenant);
      entry.draining = false;
    }
    if (entry !== undefined) {
      // Most recently used last.
      this.#entries.delete(tenant);
      this.#entries.set(tenant, entry);
    } else {
      if (this.#entries.size >= this.#options.maxConnections && !this.#evictIdle()) return this.#wait(tenant);
      entry = new Entry(tenant, (e) => this.#release(e));
      this.#entries.set(tenant, entry);
      // Open once a connection closing (to make room) is closed: the server never sees more than the bound.
      if (this.#entries.size + this.#closing.length > this.#options.maxConnections)
        evicted = this.#closing.shift();
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
    if (entry?.slot === undefined || this.#closed || !isAuthFailure(err)) throw err;
    entry.holds++;
    let opening: Promise<EngineSlot> | undefined;
    try {
      if (entry.base?.engine === conn.engine) {
        // Still the connection that failed: ask connectionFor again (once per cool-down).
        const now = performance.now();
        if (now - (this.#refreshed.get(tenant) ?? Number.NEGATIVE_INFINITY) < CREDENTIALS_REFRESH_COOLDOWN_MS)
          throw err;
        this.#forgetRefreshesBefore(now - CREDENTIALS_REFRESH_COOLDOWN_MS);
        this.#refreshed.set(tenant, now);
        this.#options.logger.warn(
          "peak-cache: the server rejected a tenant connection's credentials; calling connectionFor again once",
        );
        const stale = entry.slot;
        entry.base = undefined;
        entry.slot = opening = this.#open(tenant);
        stale.then((slot) => slot.close()).catch(() => {});
      }
      const slot = await entry.slot;
      return entry.wrap(await slot.connect());
    } catch (failure) {
      // New credentials that fail too do not stay: the next call asks connectionFor again (after the cool-down).
      if (opening !== undefined && entry.slot === opening && this.#entries.get(tenant) === entry)
        this.#drop(entry);
      entry.release();
      throw failure;
    }
  }

  /** Forget credential refreshes older than `before` (their cool-down is over). */
  #forgetRefreshesBefore(before: number): void {
    for (const [tenant, at] of this.#refreshed) if (at < before) this.#refreshed.delete(tenant);
  }

  /**
   * Close every connection; waiting and later calls reject with {@link CacheConnectionError}.
   * `beforeClose` runs first on each open connection, with its tenant (cached functions release their
   * fill locks); the connection closes once it settled and pending commands finished. Then, for each of
   * `reopen` (tenants whose connection was closed while they hold locks: idle, or to make room), a short
   * connection is opened for `beforeClose` alone (`connectionFor` again, within `connectTimeoutMs`), at
   * most `maxConnections` at a time, once the others are closed.
   */
  async close(
    beforeClose?: (tenant: string, engine: Engine) => Promise<void>,
    reopen: readonly string[] = [],
  ): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new CacheConnectionError(POOL_CLOSED));
    }
    for (const abort of [...this.#opening]) abort();
    const entries = [...this.#entries.values()];
    this.#entries.clear();
    await Promise.allSettled(entries.map((entry) => closeEntry(entry, beforeClose)));
    if (beforeClose === undefined) return;
    const max = this.#options.maxConnections;
    for (let at = 0; at < reopen.length; at += max) {
      await Promise.allSettled(
        reopen.slice(at, at + max).map(async (tenant) => {
          const slot = await this.#open(tenant);
          await slot.connect().catch(() => undefined); // cannot connect: the locks expire by themselves
          await slot.close((engine) => beforeClose(tenant, engine));
        }),
      );
    }
  }

  /** The source and engine slot of `tenant`, from `connectionFor`. */
  async #open(tenant: string): Promise<EngineSlot> {
    const { tuning, logger } = this.#options;
    const result = await this.#callConnectionFor(tenant);
    let source: ConnectionSource;
    let settings: ConnectionSettings;
    if (result instanceof Session) {
      source = chooseSource(result, {}, {}, logger);
      settings = resolveSettings(tuning);
    } else if (result !== null && typeof result === 'object') {
      if (result.url === undefined && result.nodes === undefined) throw invalidResult(tenant);
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
      throw invalidResult(tenant);
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

  /**
   * `connectionFor(tenant)`, bounded by `connectTimeoutMs` and by {@link TenantPool.close}. A call that
   * never settles is abandoned (its late result, or failure, is dropped).
   * @throws {CacheTimeoutError} when it does not settle in time; {@link CacheConnectionError} when it
   * throws or the pool closes first.
   */
  #callConnectionFor(tenant: string): Promise<TenantConnection> {
    const { connectionFor, settings } = this.#options;
    const name = `connectionFor(${JSON.stringify(tenant)})`;
    return new Promise<TenantConnection>((resolve, reject) => {
      const settle = (done: () => void) => {
        clearTimeout(timer);
        this.#opening.delete(abort);
        done();
      };
      const abort = () => settle(() => reject(new CacheConnectionError(POOL_CLOSED)));
      const timer = setTimeout(
        () =>
          settle(() =>
            reject(
              new CacheTimeoutError(
                `${name} did not settle within ${settings.connectTimeoutMs} ms (connectTimeoutMs, else timeoutMs)`,
              ),
            ),
          ),
        settings.connectTimeoutMs,
      );
      this.#opening.add(abort);
      Promise.resolve()
        .then(() => connectionFor(tenant))
        .then(
          (result) => settle(() => resolve(result)),
          (err: unknown) => settle(() => reject(new CacheConnectionError(`${name} failed`, { cause: err }))),
        );
    });
  }

  #release(entry: Entry): void {
    entry.holds--;
    entry.lastUsed = performance.now();
    if (entry.holds > 0) return;
    if (entry.draining && this.#entries.get(entry.tenant) === entry) this.#drop(entry);
    this.#drain();
  }

  /** Whether `tenant`'s connection is open (or opening) and not draining. */
  #usable(tenant: string): boolean {
    const entry = this.#entries.get(tenant);
    return entry !== undefined && !entry.draining;
  }

  /** Whether `entry` served its tenant for the hold already (it may go to another tenant). */
  #heldLongEnough(entry: Entry, now: number): boolean {
    return now - entry.since >= this.#hold;
  }

  /**
   * Whether idle `entry` may go to another tenant: past its hold, or, from the hold timer (a later
   * event-loop turn than its last release), idle for the grace already: its tenant stopped using it (one
   * with calls in a loop takes it again within the turn that released it, before any timer).
   */
  #idleFree(entry: Entry, now: number): boolean {
    if (entry.holds > 0) return false;
    return this.#heldLongEnough(entry, now) || (this.#onTimer && now - entry.lastUsed >= this.#grace);
  }

  /** The least recently used idle connection that may go to another tenant, if any. */
  #idlePastHold(): Entry | undefined {
    const now = performance.now();
    for (const entry of this.#entries.values()) if (this.#idleFree(entry, now)) return entry;
    return undefined;
  }

  /** Close the least recently used idle connection past its hold (see `#closing`); false when none. */
  #evictIdle(): boolean {
    const entry = this.#idlePastHold();
    if (entry === undefined) return false;
    this.#drop(entry);
    return true;
  }

  /** Forget `entry` and close its connection (counted in `#closing` until closed or followed by an open). */
  #drop(entry: Entry): void {
    this.#entries.delete(entry.tenant);
    if (this.#entries.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
    const closing = closeEntry(entry).catch(() => {});
    this.#closing.push(closing);
    void closing.then(() => {
      const at = this.#closing.indexOf(closing);
      if (at >= 0) this.#closing.splice(at, 1);
    });
  }

  /**
   * Make room to come for the tenants waiting without a usable connection: drain (least recently used
   * first) connections past their hold until as many places are coming as tenants wait; if that is not
   * enough, wake {@link TenantPool.#drain} when the next hold (or grace) ends.
   */
  #plan(): void {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    if (this.#closed || this.#waiters.length === 0) return;
    const waiting = new Set<string>();
    for (const waiter of this.#waiters) if (!this.#usable(waiter.tenant)) waiting.add(waiter.tenant);
    let coming = Math.max(0, this.#options.maxConnections - this.#entries.size);
    for (const entry of this.#entries.values()) if (entry.draining) coming++;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const entry of [...this.#entries.values()]) {
      if (coming >= waiting.size) return;
      if (entry.draining) continue;
      if (!this.#heldLongEnough(entry, now)) {
        next = Math.min(next, entry.since + this.#hold);
        if (entry.holds === 0) next = Math.min(next, entry.lastUsed + this.#grace);
        continue;
      }
      entry.draining = true;
      coming++;
      if (entry.holds === 0) {
        this.#drop(entry);
        queueMicrotask(() => this.#drain());
      }
    }
    if (coming >= waiting.size || next === Number.POSITIVE_INFINITY) return;
    this.#holdTimer = setTimeout(
      () => {
        this.#holdTimer = undefined;
        this.#onTimer = true;
        try {
          this.#drain();
        } finally {
          this.#onTimer = false;
        }
      },
      Math.max(1, Math.ceil(next - now)),
    );
    this.#holdTimer.unref();
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
      if (!this.#inDrain) this.#plan();
    });
  }

  /**
   * Serve waiting calls: every call whose tenant's connection is open (or opening) and not draining at
   * once; then, while there is room (a free place, or an idle connection past its hold to close), open
   * the connection of the first waiting call whose tenant has none and serve every call waiting for it.
   * Then plan the room still missing (see {@link TenantPool.#plan}).
   */
  #drain(): void {
    if (this.#inDrain) return;
    this.#inDrain = true;
    try {
      while (this.#waiters.length > 0 && !this.#closed) {
        const ready: Waiter[] = [];
        const rest: Waiter[] = [];
        for (const waiter of this.#waiters) (this.#usable(waiter.tenant) ? ready : rest).push(waiter);
        this.#waiters.splice(0, this.#waiters.length, ...rest);
        for (const waiter of ready) this.#serve(waiter);
        // A tenant whose connection drains gets a new one once it closed.
        const at = this.#waiters.findIndex((waiter) => !this.#entries.has(waiter.tenant));
        if (at < 0) break;
        const room = this.#entries.size < this.#options.maxConnections || this.#idlePastHold() !== undefined;
        if (!room) break;
        const [first] = this.#waiters.splice(at, 1);
        // Opens its tenant's connection; the next round serves the other calls waiting for it.
        this.#serve(first as Waiter);
      }
    } finally {
      this.#inDrain = false;
    }
    this.#plan();
  }

  /** Give `waiter` its tenant's connection (the queue is skipped: it waited already). */
  #serve(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    waiter.resolve(this.#acquireNow(waiter.tenant));
  }

  /** Close connections idle for `idleTimeoutMs` (checked every half of it). */
  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const { idleTimeoutMs } = this.#options;
    this.#sweeper = setInterval(
      () => {
        const now = performance.now();
        let dropped = false;
        for (const entry of [...this.#entries.values()]) {
          if (entry.holds === 0 && now - entry.lastUsed >= idleTimeoutMs) {
            this.#drop(entry);
            dropped = true;
          }
        }
        if (dropped) this.#drain();
      },
      Math.max(10, Math.floor(idleTimeoutMs / 2)),
    );
    this.#sweeper.unref();
  }
}

/** The error of a `connectionFor` result that is neither a config with a URL nor a Session. */
function invalidResult(tenant: string): CacheValidationError {
  return new CacheValidationError(
    `connectionFor(${JSON.stringify(tenant)}) must return a ConnectionConfig with a url (redis://, rediss:// or memory://; or nodes) or a Session`,
  );
}

/**
 * Close an entry's connection once its pending commands finished (opening ones close once open), after
 * `beforeClose` on it when given.
 */
async function closeEntry(
  entry: Entry,
  beforeClose?: (tenant: string, engine: Engine) => Promise<void>,
): Promise<void> {
  const slot = await entry.slot?.catch(() => undefined);
  await slot?.close(beforeClose && ((engine) => beforeClose(entry.tenant, engine)));
}
