/**
 * A frozen single server (SIGSTOP), seen from a FRESH client: the first call pays the timeout (the
 * connection attempt or the reply), every later call fails fast until a replacement connection answers,
 * and close() is bounded whatever the order of calls and close(). Asserted as an order (a fail-fast call
 * settles before a timer of half the timeout, started with it, fires) and with generous bounds only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CacheClient, CacheConnectionError, CacheTimeoutError } from '../src/index.js';
import { ClientPool } from './helpers/clients.js';
import { untilAnswering } from './helpers/recovery.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const TIMEOUT_MS = 400;
const quiet = { debug: () => {}, warn: () => {} };

/** Whether `call` settles before a `ms` timer started at the same time fires. */
async function settlesWithin(
  call: Promise<unknown>,
  ms: number,
): Promise<{ first: boolean; error: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timer'>((r) => {
    timer = setTimeout(() => r('timer'), ms);
  });
  const settled = call.then(
    () => ({ error: undefined }),
    (error: unknown) => ({ error }),
  );
  const winner = await Promise.race([settled.then(() => 'call' as const), timeout]);
  clearTimeout(timer);
  return { first: winner === 'call', error: (await settled).error };
}

async function elapsedMs(promise: Promise<unknown>): Promise<number> {
  const start = performance.now();
  await promise.catch(() => undefined);
  return performance.now() - start;
}

describe('a frozen single server, from a fresh client', () => {
  let server: RedisServer;
  const pool = new ClientPool();
  const fresh = (extra: { connectTimeoutMs?: number } = {}): CacheClient =>
    pool.open({
      connectionConfig: { url: server.url, tenant: 'frozen', timeoutMs: TIMEOUT_MS, ...extra },
      logger: quiet,
    });

  beforeAll(async () => {
    server = await startRedis();
    await server.cli('SET', 'frozen:k', 'v');
  });
  afterAll(async () => {
    server.resume();
    await pool.closeAll();
    await server.stop();
  });

  it('the first connection attempt is bounded by timeoutMs, then calls fail fast until the server answers', async () => {
    const cache = fresh(); // connectTimeoutMs not set: timeoutMs bounds the connection attempt
    server.pause();
    try {
      const first = await settlesWithin(cache.get('k'), TIMEOUT_MS * 3);
      expect(first.first).toBe(true);
      expect(first.error).toBeInstanceOf(CacheTimeoutError);
      expect((first.error as Error).message).toMatch(/^get failed: could not connect to .* within 400 ms/);
      for (let i = 0; i < 5; i++) {
        const later = await settlesWithin(cache.get('k'), TIMEOUT_MS / 2);
        expect(later.first).toBe(true);
        expect(later.error).toBeInstanceOf(CacheTimeoutError);
        expect((later.error as Error).message).toMatch(/failing fast until a new connection answers/);
      }
    } finally {
      server.resume();
    }
    await untilAnswering(cache);
    expect(await cache.get('k')).toBe('v');
  });

  it('a connected client: the first call times out, the calls after it fail fast, each wave too', async () => {
    const cache = fresh();
    expect(await cache.get('k')).toBe('v');
    server.pause();
    try {
      const first = await settlesWithin(Promise.all([cache.get('k'), cache.ping()]), TIMEOUT_MS * 3);
      expect(first.first).toBe(true);
      expect(first.error).toBeInstanceOf(CacheTimeoutError);
      for (let wave = 0; wave < 3; wave++) {
        const calls = Promise.allSettled([cache.get('k'), cache.set('x', 1), cache.mget('a', 'b')]);
        const later = await settlesWithin(calls, TIMEOUT_MS / 2);
        expect(later.first).toBe(true);
        for (const result of await calls) {
          expect(result.status).toBe('rejected');
          expect((result as PromiseRejectedResult).reason).toBeInstanceOf(CacheTimeoutError);
        }
        // Longer than a connection attempt: a background attempt failed meanwhile, calls still fail fast.
        await new Promise((r) => setTimeout(r, TIMEOUT_MS * 1.5));
      }
    } finally {
      server.resume();
    }
    await untilAnswering(cache);
    expect(await cache.get('k')).toBe('v');
  });

  it('a get in flight, then close(): both settle within the timeout, the get with a typed error', async () => {
    const cache = fresh();
    await cache.ping();
    server.pause();
    try {
      const get = cache.get('k');
      const getSettled = get.catch((error: unknown) => error);
      const close = await settlesWithin(cache.close(), TIMEOUT_MS * 3);
      expect(close.first).toBe(true);
      expect(close.error).toBeUndefined();
      expect(await settlesWithin(getSettled, 0).then((r) => r.first)).toBe(true);
      expect(await getSettled).toBeInstanceOf(CacheTimeoutError);
    } finally {
      server.resume();
    }
  });

  it('close() while the first connection is in progress does not wait for connectTimeoutMs', async () => {
    const cache = fresh({ connectTimeoutMs: 30_000 });
    server.pause();
    try {
      const get = cache.get('k').catch((error: unknown) => error);
      await new Promise((r) => setTimeout(r, 50)); // the TCP connection is up, the handshake unanswered
      const close = await settlesWithin(cache.close(), TIMEOUT_MS * 3);
      expect(close.first).toBe(true);
      expect(await get).toBeInstanceOf(CacheConnectionError);
      expect(String(await get)).toMatch(/closed/);
      // After close(), calls reject at once.
      expect((await settlesWithin(cache.get('k'), TIMEOUT_MS)).error).toBeInstanceOf(CacheConnectionError);
    } finally {
      server.resume();
    }
  });

  it('close() while calls fail fast stops the background reconnection and settles at once', async () => {
    const cache = fresh();
    server.pause();
    try {
      await expect(cache.get('k')).rejects.toBeInstanceOf(CacheTimeoutError);
      const close = await settlesWithin(cache.close(), TIMEOUT_MS * 3);
      expect(close.first).toBe(true);
      expect(close.error).toBeUndefined();
    } finally {
      server.resume();
    }
  });

  it('20 calls of a cached function cost one timeout plus 20 runs of the function, not 20 timeouts', async () => {
    const cache = fresh();
    let runs = 0;
    const compute = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 50));
      return runs;
    };
    server.pause();
    try {
      // breakerMs: 0, so the bound comes from failing fast alone (not from the circuit breaker).
      const ms = await elapsedMs(
        (async () => {
          for (let i = 0; i < 20; i++) await cache.getOrSet(`f:${i}`, compute, { ttl: 60, breakerMs: 0 });
        })(),
      );
      expect(runs).toBe(20);
      expect(ms).toBeLessThan(20 * 50 + TIMEOUT_MS * 3 + 1000);
    } finally {
      server.resume();
    }
  });
});
