/**
 * `CacheClient#stats()`: calls, errors, hits and misses per operation, counted whether or not anyone
 * traces, on memory:// and on a real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheAuthError, CacheValidationError, type OperationStats } from '../src/index.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const ZERO: OperationStats = { calls: 0, errors: 0, hits: 0, misses: 0 };

let server: RedisServer;
const pool = new ClientPool();

beforeAll(async () => {
  server = await startRedis({ password: 'stats-pw' });
});

afterAll(async () => {
  await pool.closeAll();
  await server?.stop();
});

function memoryClient(tenant = 'stats') {
  return pool.open({ connectionConfig: { url: 'memory://', tenant }, env: {} });
}

describe('stats()', () => {
  it('starts at zero for every operation of the client', () => {
    const stats = memoryClient().stats();
    for (const name of [
      'get',
      'set',
      'mget',
      'mset',
      'delete',
      'exists',
      'expire',
      'ttl',
      'flushByPattern',
      'flushTenant',
      'ping',
    ] as const) {
      expect(stats.operations[name]).toEqual(ZERO);
    }
    expect(stats.totals).toEqual(ZERO);
  });

  it('counts calls, hits and misses of get and mget per key', async () => {
    const cache = memoryClient();
    await cache.set('a', 1);
    await cache.set('b', 2);
    await cache.get('a');
    await cache.get('missing');
    await cache.get('missing', 'default');
    await cache.mget('a', 'b', 'missing');
    const { operations, totals } = cache.stats();
    expect(operations.set).toEqual({ calls: 2, errors: 0, hits: 0, misses: 0 });
    expect(operations.get).toEqual({ calls: 3, errors: 0, hits: 1, misses: 2 });
    expect(operations.mget).toEqual({ calls: 1, errors: 0, hits: 2, misses: 1 });
    expect(totals).toEqual({ calls: 6, errors: 0, hits: 3, misses: 3 });
  });

  it('counts every other operation once per call', async () => {
    const cache = memoryClient();
    await cache.mset({ a: 1, b: 2 });
    await cache.exists('a', 'b');
    await cache.expire('a', 10);
    await cache.ttl('a');
    await cache.delete('a');
    await cache.flushByPattern('*');
    await cache.flushTenant();
    await cache.ping();
    const { operations } = cache.stats();
    for (const name of [
      'mset',
      'exists',
      'expire',
      'ttl',
      'delete',
      'flushByPattern',
      'flushTenant',
      'ping',
    ]) {
      expect(operations[name], name).toEqual({ calls: 1, errors: 0, hits: 0, misses: 0 });
    }
  });

  it('does not count calls rejected by input validation, or calls with nothing to do', async () => {
    const cache = memoryClient();
    await expect(cache.get(42 as unknown as string)).rejects.toBeInstanceOf(CacheValidationError);
    await expect(cache.set('k', 1, -1)).rejects.toBeInstanceOf(CacheValidationError);
    expect(await cache.mget()).toEqual([]);
    expect(cache.stats().totals).toEqual(ZERO);
  });

  it('counts failures as errors (wrong password on a real redis-server)', async () => {
    const cache = pool.open({
      connectionConfig: { url: `redis://:wrong-pw@127.0.0.1:${server.port}`, tenant: 'stats' },
      env: {},
    });
    await expect(cache.get('a')).rejects.toBeInstanceOf(CacheAuthError);
    await expect(cache.set('a', 1)).rejects.toBeInstanceOf(CacheAuthError);
    const { operations, totals } = cache.stats();
    expect(operations.get).toEqual({ calls: 1, errors: 1, hits: 0, misses: 0 });
    expect(operations.set).toEqual({ calls: 1, errors: 1, hits: 0, misses: 0 });
    expect(totals.errors).toBe(2);
  });

  it('counts hits and misses against a real redis-server, and errors of a closed client', async () => {
    const cache = pool.open({
      connectionConfig: { url: `redis://:stats-pw@127.0.0.1:${server.port}`, tenant: 'stats-redis' },
      env: {},
    });
    await cache.set('a', 'x');
    await cache.get('a');
    await cache.mget('a', 'b');
    await cache.close();
    await expect(cache.get('a')).rejects.toThrow();
    const { operations } = cache.stats();
    expect(operations.get).toEqual({ calls: 2, errors: 1, hits: 1, misses: 0 });
    expect(operations.mget).toEqual({ calls: 1, errors: 0, hits: 1, misses: 1 });
  });

  it('returns snapshots: a later call does not change an earlier result', async () => {
    const cache = memoryClient();
    const before = cache.stats();
    await cache.get('a');
    expect(before.operations.get).toEqual(ZERO);
    expect(cache.stats().operations.get.calls).toBe(1);
    expect(JSON.parse(JSON.stringify(cache.stats())).operations.get.misses).toBe(1);
  });

  it('keeps each client its own counters', async () => {
    const one = memoryClient('one');
    const two = memoryClient('two');
    await one.get('a');
    expect(one.stats().operations.get.calls).toBe(1);
    expect(two.stats().operations.get.calls).toBe(0);
  });
});
