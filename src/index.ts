/**
 * peak-cache: the Peak Cache Client for Node.js, on Redis, Valkey and the embedded `memory://` engine.
 *
 * @packageDocumentation
 */
export { CacheClient, type FlushOptions, getClient } from './client.js';
export { type Codec, type CodecName, jsonCodec, peakCodec } from './codec.js';
export { OPERATION_CHANNEL, type OperationContext, type ServerInfo } from './diagnostics.js';
export {
  CacheAuthError,
  CacheConnectionError,
  CacheError,
  type CacheErrorOptions,
  CacheTimeoutError,
  CacheValidationError,
} from './errors.js';
export type { CacheLogger } from './logger.js';
export type { CacheClientOptions, ConnectionConfig } from './options.js';
export { Session, type SessionOptions } from './session.js';
export type { CacheStats, OperationName, OperationStats } from './stats.js';
