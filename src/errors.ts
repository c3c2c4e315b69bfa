/**
 * Error classes of peak-cache. Every failure of a client operation rejects with a {@link CacheError}
 * (or a subclass): never a raw driver error, never a secret or a cached value in a message.
 *
 * @module
 */

import { currentOperation } from './operation.js';

/**
 * The `code` of every peak-cache error, one per class (see the README's "Failures" table):
 * `ERR_CACHE` ({@link CacheError}), `ERR_CACHE_VALIDATION`, `ERR_CACHE_CONNECTION`, `ERR_CACHE_TIMEOUT`,
 * `ERR_CACHE_AUTH`, `ERR_CACHE_FACTORY`.
 */
export type CacheErrorCode = 'ERR_CACHE' | 'ERR_CACHE_VALIDATION' | ConnectionErrorCode | 'ERR_CACHE_FACTORY';

/** The codes of {@link CacheConnectionError} and its subclasses (timeout, rejected credentials). */
export type ConnectionErrorCode = 'ERR_CACHE_CONNECTION' | 'ERR_CACHE_TIMEOUT' | 'ERR_CACHE_AUTH';

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
  /** Stable machine-readable code of this error class (a subclass narrows it to its own). */
  readonly code: CacheErrorCode = 'ERR_CACHE';
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
 * that cannot be serialised. Raised by a client method, its message starts with the method's name
 * (`get: A key must be a string, got number`).
 */
export class CacheValidationError extends CacheError {
  override readonly code: 'ERR_CACHE_VALIDATION' = 'ERR_CACHE_VALIDATION';
  override readonly name: string = 'CacheValidationError';

  /**
   * @param message - what is invalid; prefixed with the client operation running, if any.
   * @param options - `cause`: the underlying error.
   */
  constructor(message: string, options?: CacheErrorOptions) {
    const operation = currentOperation();
    super(
      operation === undefined || message.startsWith(`${operation}`) ? message : `${operation}: ${message}`,
      options,
    );
  }
}

/**
 * The cache could not be reached or configured: nothing configured, platform credentials missing or
 * rejected, server unreachable, connection lost, or the server stopped answering.
 */
export class CacheConnectionError extends CacheError {
  override readonly code: ConnectionErrorCode = 'ERR_CACHE_CONNECTION';
  override readonly name: string = 'CacheConnectionError';
}

/**
 * The server did not answer within `connectionConfig.timeoutMs` (a reply), or a connection did not come
 * up within `connectionConfig.connectTimeoutMs`; also what calls fail fast with afterwards, until a new
 * connection answers; or a cached function's caller got no factory result within its `hardTimeoutMs`
 * (`getOrSet`, `getOrSetMany`, `cacheResult`).
 */
export class CacheTimeoutError extends CacheConnectionError {
  override readonly code: 'ERR_CACHE_TIMEOUT' = 'ERR_CACHE_TIMEOUT';
  override readonly name: string = 'CacheTimeoutError';
}

/** The server rejected the credentials (WRONGPASS / NOAUTH), or the platform refused the token. */
export class CacheAuthError extends CacheConnectionError {
  override readonly code: 'ERR_CACHE_AUTH' = 'ERR_CACHE_AUTH';
  override readonly name: string = 'CacheAuthError';
}

/**
 * A cached function's factory failed in another process while this call waited for its result
 * (`getOrSet`, `cacheResult`): the failure is shared instead of running the factory a second time.
 * Callers in the failing process receive the factory's own error.
 */
export class CacheFactoryError extends CacheError {
  override readonly code: 'ERR_CACHE_FACTORY' = 'ERR_CACHE_FACTORY';
  override readonly name: string = 'CacheFactoryError';
}
