/**
 * An {@link Engine} that puts a {@link NearCache} in front of another: reads (`get`, `mget`) are served
 * from memory when they can be, and every write invalidates its keys at once. The client uses it in place
 * of its engine when the near cache is on, so every path (the API, flushes, cached functions,
 * integrations) reads and writes through the near cache, and nothing changes when it is off.
 *
 * @module
 */
import type { Engine } from '../engines/engine.js';
import type { NearCache } from './near-cache.js';

/** `inner` behind `near`. Reads go through the near cache; writes invalidate; the rest passes through. */
export class NearCacheEngine implements Engine {
  readonly #inner: Engine;
  readonly #near: NearCache;

  /**
   * @param inner - the engine that talks to the server; it must support tracking, and `near` must already
   * be its tracking listener (see `attachNearCache`).
   * @param near - the near cache.
   */
  constructor(inner: Engine, near: NearCache) {
    this.#inner = inner;
    this.#near = near;
  }

  /** {@inheritDoc Engine.get} */
  get(key: string): Promise<string | null> {
    return this.#near.get(this.#inner, key);
  }

  /** {@inheritDoc Engine.mget} */
  mget(keys: readonly string[]): Promise<(string | null)[]> {
    return this.#near.mget(this.#inner, keys);
  }

  /** {@inheritDoc Engine.set} */
  set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    return this.#near.written([key], this.#inner.set(key, value, ttlSeconds));
  }

  /** {@inheritDoc Engine.mset} */
  mset(entries: readonly (readonly [string, string])[], ttlSeconds?: number): Promise<void> {
    return this.#near.written(
      entries.map(([key]) => key),
      this.#inner.mset(entries, ttlSeconds),
    );
  }

  /** {@inheritDoc Engine.unlink} */
  unlink(keys: readonly string[]): Promise<number> {
    return this.#near.written(keys, this.#inner.unlink(keys));
  }

  /** {@inheritDoc Engine.expire} */
  expire(key: string, ttlSeconds: number): Promise<boolean> {
    return this.#near.written([key], this.#inner.expire(key, ttlSeconds));
  }

  /** {@inheritDoc Engine.setIfAbsent} */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.#near.written([key], this.#inner.setIfAbsent(key, value, ttlMs));
  }

  /** {@inheritDoc Engine.incrBy} */
  incrBy(key: string, by: number, ttlSeconds?: number): Promise<number> {
    return this.#near.written([key], this.#inner.incrBy(key, by, ttlSeconds));
  }

  /** {@inheritDoc Engine.deleteIfEquals} */
  deleteIfEquals(key: string, value: string): Promise<boolean> {
    return this.#near.written([key], this.#inner.deleteIfEquals(key, value));
  }

  /** {@inheritDoc Engine.pexpireIfEquals} */
  pexpireIfEquals(key: string, value: string, ttlMs: number): Promise<boolean> {
    return this.#inner.pexpireIfEquals(key, value, ttlMs);
  }

  /** {@inheritDoc Engine.exists} */
  exists(keys: readonly string[]): Promise<number> {
    return this.#inner.exists(keys);
  }

  /** {@inheritDoc Engine.ttl} */
  ttl(key: string): Promise<number> {
    return this.#inner.ttl(key);
  }

  /** {@inheritDoc Engine.pttl} Answered from memory when the near cache holds the key (see `NearCache.pttl`). */
  pttl(key: string): Promise<number> {
    const held = this.#near.pttl(key);
    return held === undefined ? this.#inner.pttl(key) : Promise.resolve(held);
  }

  /** {@inheritDoc Engine.scan} */
  scan(match: string, count: number): AsyncIterable<string[]> {
    return this.#inner.scan(match, count);
  }

  /** {@inheritDoc Engine.ping} */
  ping(): Promise<void> {
    return this.#inner.ping();
  }

  /** {@inheritDoc Engine.close} Drops the near cache's entries and stops its heartbeat too. */
  close(): Promise<void> {
    this.#near.detach(this.#inner);
    return this.#inner.close();
  }
}
