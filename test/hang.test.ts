/**
 * No call hangs: a frozen server (SIGSTOP) makes calls reject with CacheTimeoutError within the timeout
 * plus 20%; a server that is down makes calls fail fast; the same client recovers by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheClient, CacheConnectionError, CacheTimeoutError } from '../src/index.js';
import { untilAnswering } from './helpers/recovery.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const TIMEOUT_MS = 1000;

async function elapsed<T>(promise: Promise<T>): Promise<{ ms: number; error: unknown }> {
  const start = performance.now();
  try {
    await promise;
    return { ms: performance.now() - start, error: undefined };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

describe('no call hangs', () => {
  let server: RedisServer;
  let cache: CacheClient;

  beforeAll(async () => {
    server = await startRedis();
    cache = new CacheClient({
      connectionConfig: {
        url: server.url,
        tenant: 'hang',
        timeoutMs: TIMEOUT_MS,
        connectTimeoutMs: TIMEOUT_MS,
      },
    });
  });
  afterAll(async () => {
    server.resume();
    await cache.close();
    await server.stop();
  });

  it('rejects every in-flight call within timeout + 20% when the server freezes (SIGSTOP)', async () => {
    await cache.set('k', 'v');
    server.pause();
    try {
      const calls: Promise<unknown>[] = [
        cache.get('k'),
        cache.set('k2', 'v'),
        cache.mget('a', 'b'),
        cache.ttl('k'),
        cache.ping(),
      ];
      const results = await Promise.all(calls.map(elapsed));
      for (const { ms, error } of results) {
        expect(error).toBeInstanceOf(CacheTimeoutError);
        expect((error as Error).message).toMatch(/did not reply within 1000 ms/);
        expect(ms).toBeLessThan(TIMEOUT_MS * 1.2);
      }
      // A call made while the server is still frozen fails fast (a replacement connection is being tried).
      const again = await elapsed(cache.get('k'));
      expect(again.error).toBeInstanceOf(CacheTimeoutError);
      expect(again.ms).toBeLessThan(TIMEOUT_MS * 1.2);
    } finally {
      server.resume();
    }
    await untilAnswering(cache);
    expect(await cache.get('k')).toBe('v');
  });

  it('after a stall, reconnecting to the still-frozen server is bounded by timeoutMs, not connectTimeoutMs', async () => {
    const slowConnect = new CacheClient({
      connectionConfig: { url: server.url, tenant: 'hang', timeoutMs: TIMEOUT_MS, connectTimeoutMs: 10_000 },
    });
    try {
      await slowConnect.set('k', 'v');
      server.pause();
      const first = await elapsed(slowConnect.get('k'));
      expect(first.error).toBeInstanceOf(CacheTimeoutError);
      // The watchdog replaced the connection; the new one cannot complete its handshake.
      const again = await elapsed(slowConnect.get('k'));
      expect(again.error).toBeInstanceOf(CacheConnectionError);
      expect((again.error as Error).message).toMatch(/within 1000 ms/);
      expect(again.ms).toBeLessThan(TIMEOUT_MS * 1.2);
    } finally {
      server.resume();
    }
    await untilAnswering(slowConnect);
    expect(await slowConnect.get('k')).toBe('v');
    await slowConnect.close();
  });

  it('keeps calls bounded while a steady stream of new calls keeps writing to a frozen server', async () => {
    server.pause();
    const start = performance.now();
    const results: Promise<{ ms: number; error: unknown }>[] = [];
    try {
      while (performance.now() - start < TIMEOUT_MS * 2) {
        results.push(elapsed(cache.get('k')));
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const { ms, error } of await Promise.all(results)) {
        expect(error).toBeInstanceOf(CacheConnectionError);
        expect(ms).toBeLessThan(TIMEOUT_MS * 1.2);
      }
    } finally {
      server.resume();
    }
    await untilAnswering(cache);
    expect(await cache.get('k')).toBe('v');
  });

  it('a blocked event loop (GC pause, CPU-bound work) does not fail healthy calls', async () => {
    for (const blockMs of [TIMEOUT_MS * 1.5, TIMEOUT_MS * 3]) {
      const calls = [cache.get('k'), cache.set('blocked', 1), cache.ttl('k')];
      const end = Date.now() + blockMs;
      while (Date.now() < end) {
        // busy: the event loop runs no timer and reads no socket meanwhile
      }
      const results = await Promise.allSettled(calls);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    }
  });

  it('mset with a ttl fails fast while reconnecting and never runs later', async () => {
    await cache.ping();
    await server.stop(true);
    await new Promise((r) => setTimeout(r, 100));
    // The server comes back while the call is pending: a queued transaction would now run.
    const pending = elapsed(cache.mset({ queued: 'x' }, 60));
    await server.restart();
    const result = await pending;
    expect(result.error).toBeInstanceOf(CacheConnectionError);
    expect(result.ms).toBeLessThan(200);
    for (let i = 0; i < 50 && (await cache.ping().catch(() => false)) !== true; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(await cache.exists('queued')).toBe(0);
  });

  it('fails fast while the server is down and recovers after a restart on the same port', async () => {
    await server.stop(true);
    try {
      for (let i = 0; i < 3; i++) {
        const { ms, error } = await elapsed(cache.get('k'));
        expect(error).toBeInstanceOf(CacheConnectionError);
        expect(ms).toBeLessThan(TIMEOUT_MS * 1.2);
      }
    } finally {
      await server.restart();
    }
    // The same client works again by itself (the restarted server is empty).
    let value: unknown = 'unset';
    for (let i = 0; i < 50 && value === 'unset'; i++) {
      value = await cache.get('k').catch(() => 'unset');
      if (value === 'unset') await new Promise((r) => setTimeout(r, 100));
    }
    expect(value).toBeNull();
    expect(await cache.set('k', 'again')).toBe(true);
  });
});
