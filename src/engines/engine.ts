/**
 * The narrow, string-only storage contract every engine implements. Tenant prefixing, validation and
 * the codec live above it (in the client), so engines only move strings.
 *
 * Engines may throw anything; the client maps failures to {@link CacheError}s via `mapError`.
 *
 * @module
 */
import type { TrackingListener } from '../near-cache/tracking.js';

/** A storage engine: Redis/Valkey, Redis Cluster, or the embedded in-memory engine. */
export interface Engine {
  /** Value of `key`, or `null` when missing. */
  get(key: string): Promise<string | null>;
  /** Store `value` at `key`, with an expiry of `ttlSeconds` when given. */
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  /** Values of `keys` in order, `null` for misses. `keys` is never empty. */
  mget(keys: readonly string[]): Promise<(string | null)[]>;
  /**
   * Store every entry. With `ttlSeconds`, no key is ever visible without its TTL. On one server the
   * whole batch appears at once. `entries` is never empty.
   */
  mset(entries: readonly (readonly [string, string])[], ttlSeconds?: number): Promise<void>;
  /** Remove `keys` (UNLINK); the number removed. Repeats count once. `keys` is never empty. */
  unlink(keys: readonly string[]): Promise<number>;
  /** Number of `keys` that exist, counting repeats (as Redis EXISTS does). `keys` is never empty. */
  exists(keys: readonly string[]): Promise<number>;
  /** Set an expiry; `false` when the key does not exist. */
  expire(key: string, ttlSeconds: number): Promise<boolean>;
  /** Remaining TTL in seconds; `-1` no expiry; `-2` missing. */
  ttl(key: string): Promise<number>;
  /**
   * Every key matching the Redis glob `match`, in batches (SCAN with COUNT `count`), on every primary.
   * A key may appear more than once (as with SCAN); callers must tolerate repeats.
   */
  scan(match: string, count: number): AsyncIterable<string[]>;
  /** Remaining TTL in milliseconds; `-1` no expiry; `-2` missing (PTTL). */
  pttl(key: string): Promise<number>;
  /**
   * Store `value` at `key` only if `key` does not exist, expiring after `ttlMs` milliseconds
   * (SET NX PX); `true` when stored. Used for short-lived lock keys.
   */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /**
   * Delete `key` only while its value is `value` (compare-and-delete, for releasing a lock only by its
   * owner); `true` when deleted. Atomic where the server allows scripting; see `conditional.ts`.
   */
  deleteIfEquals(key: string, value: string): Promise<boolean>;
  /**
   * Set the expiry of `key` to `ttlMs` milliseconds only while its value is `value` (compare-and-extend,
   * for renewing a lock lease only by its owner); `true` when extended. Atomic where the server allows
   * scripting; see `conditional.ts`.
   */
  pexpireIfEquals(key: string, value: string, ttlMs: number): Promise<boolean>;
  /**
   * Near cache hook (optional: the Redis and Cluster engines have it, the memory engine does not): every
   * connection opened afterwards uses RESP3 with `CLIENT TRACKING ON` in its handshake and reports the
   * server's invalidations, and every failed, closed or replaced connection, to `listener`. Call once,
   * before the first command.
   */
  track?(listener: TrackingListener): void;
  /**
   * Add `by` (an integer) to the integer at `key` (a missing key counts as `0`), atomically on the server
   * (`INCRBY`); with `ttlSeconds`, (re)set the key's expiry too. Resolves with the new value. Used for
   * the tag stamps of cached functions.
   */
  incrBy(key: string, by: number, ttlSeconds?: number): Promise<number>;
  /** Round trip to the server. */
  ping(): Promise<void>;
  /** Release the connection after pending commands finish. Idempotent. */
  close(): Promise<void>;
}
