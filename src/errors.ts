/**
 * Error classes of peak-cache. Every failure of a client operation rejects with a {@link CacheError}
 * (or a subclass): never a raw driver error, never a secret or a cached value in a message.
 *
 * @module
 */

/** Options accepted by every peak-cache error constructor. */
export interface CacheErrorOptions {
  /** The underlying error (driver, network, JSON), kept for diagnosis. */
  cause?: unknown;
}

/**
 * Base class of every error peak-cache throws. Check `instanceof CacheError` or `err.code`.
 *
 * @example
 * ```ts
 * try { await cache.get('k'); } catch (err) { if (err instanceof CacheError) console.error(err.code); }
 * ```
 */
export class CacheError extends Error {
  /** Stable machine-readable code of this error class. */
  readonly code: string = 'ERR_CACHE';
  /** The class name (`'CacheError'`, `'CacheTimeoutError'`, ...), shown in stack traces. */
  override readonly name: string = 'CacheError';

  /**
   * @param message - what failed and why; must not contain secrets or cached values.
   * @param options - `cause`: the underlying error.
   */
  constructor(message: string, options?: CacheErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

/**
 * Bad input rejected before any I/O: an invalid tenant, prefix, key, pattern, TTL, option, or a value
 * that cannot be serialised.
 */
export class CacheValidationError extends CacheError {
  override readonly code: string = 'ERR_CACHE_VALIDATION';
  override readonly name: string = 'CacheValidationError';
}

/**
 * The cache could not be reached or configured: nothing configured, platform credentials missing or
 * rejected, server unreachable, connection lost, or the server stopped answering.
 */
export class CacheConnectionError extends CacheError {
  override readonly code: string = 'ERR_CACHE_CONNECTION';
  override readonly name: string = 'CacheConnectionError';
}

/**
 * The server did not answer within the configured `timeout`; or a cached function's caller got no
 * factory result within its `hardTimeoutMs` (`getOrSet`, `getOrSetMany`, `cacheResult`).
 */
export class CacheTimeoutError extends CacheConnectionError {
  override readonly code: string = 'ERR_CACHE_TIMEOUT';
  override readonly name: string = 'CacheTimeoutError';
}

/** The server rejected the credentials (WRONGPASS / NOAUTH), or the platform refused the token. */
export class CacheAuthError extends CacheConnectionError {
  override readonly code: string = 'ERR_CACHE_AUTH';
  override readonly name: string = 'CacheAuthError';
}

/**
 * A cached function's factory failed in another process while this call waited for its result
 * (`getOrSet`, `cacheResult`): the failure is shared instead of running the factory a second time.
 * Callers in the failing process receive the factory's own error.
 */
export class CacheFactoryError extends CacheError {
  override readonly code: string = 'ERR_CACHE_FACTORY';
  override readonly name: string = 'CacheFactoryError';
}
