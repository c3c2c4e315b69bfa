/**
 * One connection source and the engine serving it: connected lazily on first use, credentials fetched
 * again once when the server rejects them (platform sources), closed once. A plain `CacheClient` has
 * one; a `TenantCaches` has one in shared mode and one per open tenant connection in pooled mode.
 *
 * @module
 */
import { type ConnectionSource, createEngine, resolveEndpoint } from '../connection.js';
import { describeServer } from '../diagnostics.js';
import type { Engine } from '../engines/engine.js';
import { isAuthFailure } from '../engines/redis-errors.js';
import { CacheConnectionError } from '../errors.js';
import type { CacheLogger } from '../logger.js';
import { type NearCache, withNearCache } from '../near-cache/near-cache.js';
import type { ConnectionSettings } from '../options.js';
import type { Connected } from './binding.js';

/** After a credentials refresh, rejected credentials fail calls without another refresh for this long. */
export const CREDENTIALS_REFRESH_COOLDOWN_MS = 30_000;

/** Options of {@link EngineSlot}. */
export interface EngineSlotOptions {
  readonly source: ConnectionSource;
  readonly settings: ConnectionSettings;
  readonly near: NearCache | undefined;
  readonly logger: CacheLogger;
  /**
   * The tenant the credentials must name (pooled tenant connections): a platform reply naming another
   * tenant fails the connection with {@link CacheConnectionError}, and no engine is created.
   */
  readonly expectTenant?: string;
  /** The message calls reject with once closed. @defaultValue `'the client is closed'` */
  readonly closedMessage?: string;
}

/** A lazily connected engine for one connection source. */
export class EngineSlot {
  readonly #options: EngineSlotOptions;
  /** The connection, once established (calls run on it without waiting). */
  connected: Connected | undefined;
  #connecting: Promise<Connected> | undefined;
  #closed = false;
  #lastRefresh = Number.NEGATIVE_INFINITY;

  /** @param options - see {@link EngineSlotOptions}. */
  constructor(options: EngineSlotOptions) {
    this.#options = options;
  }

  /** The connection source (direct or platform). */
  get source(): ConnectionSource {
    return this.#options.source;
  }

  /** Whether {@link EngineSlot.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether a connection is established or being established. */
  get open(): boolean {
    return !this.#closed && (this.connected !== undefined || this.#connecting !== undefined);
  }

  /**
   * The connection (the established one, else established now); rejects with {@link CacheConnectionError}
   * once closed.
   */
  connect(): Promise<Connected> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.connected !== undefined) return Promise.resolve(this.connected);
    this.#connecting ??= resolveEndpoint(this.#options.source, this.#options.settings)
      .then((endpoint) => {
        const expected = this.#options.expectTenant;
        if (expected !== undefined && endpoint.tenant !== expected) {
          throw new CacheConnectionError(
            `the credentials returned for tenant ${JSON.stringify(expected)} name another tenant`,
          );
        }
        const connected: Connected = {
          engine: withNearCache(this.#options.near, createEngine(endpoint, this.#options.settings)),
          tenant: endpoint.tenant,
          server: describeServer(endpoint.url, endpoint.clusterNodes !== undefined),
        };
        if (this.#closed) {
          abandon(connected.engine);
          throw this.#closedError();
        }
        this.connected = connected;
        return connected;
      })
      .finally(() => {
        this.#connecting = undefined;
      });
    return this.#connecting;
  }

  /**
   * Platform credentials rotate: when the server rejected them (`err`) on `conn`, fetch them again once
   * and resolve the new connection to retry on. The command never ran (the connection was not
   * authenticated), so a retry cannot duplicate a write. At most one refresh per
   * {@link CREDENTIALS_REFRESH_COOLDOWN_MS}, so rejected credentials never cause a storm of requests.
   * @throws `err` when it is not a rejection of platform credentials, during the cool-down, or once closed.
   */
  async recover(conn: Connected, err: unknown): Promise<Connected> {
    if (this.#options.source.kind !== 'platform' || !isAuthFailure(err) || this.#closed) throw err;
    if (this.connected?.engine === conn.engine) {
      if (performance.now() - this.#lastRefresh < CREDENTIALS_REFRESH_COOLDOWN_MS) throw err;
      this.#lastRefresh = performance.now();
      this.#options.logger.warn(
        'peak-cache: the server rejected the platform credentials; fetching them again once',
      );
      this.connected = undefined;
      abandon(conn.engine);
    }
    return this.connected ?? (await this.connect());
  }

  /**
   * Stop: later {@link EngineSlot.connect} calls reject. `beforeClose` runs on the open connection (if
   * any), then its engine closes once pending commands finished.
   */
  async close(beforeClose?: (engine: Engine) => Promise<void>): Promise<void> {
    this.#closed = true;
    const connected = this.connected ?? (await this.#connecting?.catch(() => undefined));
    this.connected = undefined;
    if (connected === undefined) return;
    if (beforeClose !== undefined) await beforeClose(connected.engine);
    await connected.engine.close();
  }

  #closedError(): CacheConnectionError {
    return new CacheConnectionError(this.#options.closedMessage ?? 'the client is closed');
  }
}

/**
 * Close an engine no one uses any more, in the background. It has no caller to report a failure to, and
 * an unowned rejection would crash the host: the failure is dropped.
 */
export function abandon(engine: Engine): void {
  engine.close().catch(() => {});
}
