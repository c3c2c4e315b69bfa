/**
 * peak-cache: the Peak Cache Client for Node.js, on Redis, Valkey and the embedded `memory://` engine.
 *
 * @packageDocumentation
 */

export type { InvalidateCallOptions } from './cached/invalidation.js';
export type { InvalidateOptions } from './cached/keys.js';
export type {
  CacheResultOptions,
  FactoryContext,
  FallbackOptions,
  GetOrSetOptions,
  ManyFactory,
  ManyResult,
} from './cached/read-through.js';
export type { CachedFunctionStats } from './cached/stats.js';
export type { InvalidateBehavior, InvalidateTagsOptions } from './cached/tags.js';
export { CacheClient, type FlushOptions, getClient } from './client.js';
export { type Codec, type CodecName, jsonCodec, peakCodec } from './codec.js';
export {
  type AsyncMethodDecorator,
  type CacheResultDecoratorOptions,
  type ClientSource,
  cacheResult,
  type InvalidateCacheDecoratorOptions,
  invalidateCache,
} from './decorators.js';
export { OPERATION_CHANNEL, type OperationContext, type ServerInfo } from './diagnostics.js';
export {
  CacheAuthError,
  CacheConnectionError,
  CacheError,
  type CacheErrorCode,
  type CacheErrorOptions,
  CacheFactoryError,
  CacheTimeoutError,
  CacheValidationError,
  type ConnectionErrorCode,
} from './errors.js';
export type { CacheLogger } from './logger.js';
export type { NearCacheStats } from './near-cache/near-cache.js';
export type { NearCacheOptions } from './near-cache/options.js';
export { DEFAULT_NEAR_CACHE_TTL_MS } from './near-cache/options.js';
export type { CacheClientOptions, ConnectionConfig } from './options.js';
export { Session, type SessionOptions } from './session.js';
export type { CacheStats, OperationName, OperationStats } from './stats.js';
export {
  TenantCaches,
  type TenantCachesOptions,
  type TenantCachesStats,
  type TenantConnection,
  type TenantStats,
  type TenantViewOptions,
} from './tenants.js';
export type {
  ClientCodecChoice,
  CodecOption,
  DecodedValue,
  JsonObject,
  JsonValue,
  PeakJsonObject,
  PeakJsonValue,
  PeakValue,
  ReadableType,
  TypedCodecChoice,
} from './value-types.js';
