/**
 * cache-manager 7 over `peak-cache/keyv` on a real redis-server: `wrap` runs its function once, a
 * second cache instance (own client, own connection) reads the value through Redis, and namespaces and
 * tenants stay apart.
 */
import { type Cache, createCache } from 'cache-manager';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CacheClient } from '../src/index.js';
import { createKeyv } from '../src/integrations/keyv.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

describe('cache-manager 7 over KeyvPeakCache', () => {
  let server: RedisServer;
  const pool = new ClientPool();
  const caches: Cache[] = [];

  beforeAll(async () => {
    server = await startRedis();
  });

  afterAll(async () => {
    await Promise.all(caches.map((cache) => cache.disconnect()));
    await pool.closeAll();
    await server?.stop();
  });

  beforeEach(async () => {
    await server.cli('FLUSHALL');
  });

  /** A new client (its own connection) of `tenant`. */
  function client(tenant: string, additionalPrefix: string | null = 'app'): CacheClient {
    return pool.open({ connectionConfig: { url: server.url, tenant }, additionalPrefix });
  }

  /** A cache-manager cache over a new client of `tenant`, Keyv namespace `namespace`. */
  function cache(tenant: string, namespace = 'products', ttl = 60_000): Cache {
    const created = createCache({ stores: [createKeyv(client(tenant), { namespace })], ttl });
    caches.push(created);
    return created;
  }

  /** Calls of `GET` and `MGET` the server has answered so far. */
  async function reads(): Promise<number> {
    const info = await server.cli('INFO', 'commandstats');
    let total = 0;
    for (const match of info.matchAll(/^cmdstat_(?:get|mget):calls=(\d+)/gm)) total += Number(match[1]);
    return total;
  }

  it('wrap runs the function once; a second cache instance reads the value through Redis', async () => {
    const first = cache('acme');
    let calls = 0;
    const load = async () => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { id: 7, price: 9.5, tags: ['a'] };
    };
    // Concurrent and later calls on the same instance: one run.
    const [a, b] = await Promise.all([first.wrap('p:7', load), first.wrap('p:7', load)]);
    expect(await first.wrap('p:7', load)).toEqual({ id: 7, price: 9.5, tags: ['a'] });
    expect(a).toEqual(b);
    expect(calls).toBe(1);

    // Stored in Redis under the tenant, prefix and namespace, with the cache's TTL.
    expect(await server.scanKeys('*')).toEqual(['acme:app:products:p:7']);
    const ttl = Number(await server.cli('TTL', 'acme:app:products:p:7'));
    expect(ttl).toBeGreaterThan(50);
    expect(ttl).toBeLessThanOrEqual(60);

    // Another instance, another client and connection: it reads Redis and never runs its function.
    const second = cache('acme');
    const before = await reads();
    let secondCalls = 0;
    const value = await second.wrap('p:7', async () => {
      secondCalls++;
      return { id: -1 };
    });
    expect(value).toEqual({ id: 7, price: 9.5, tags: ['a'] });
    expect(secondCalls).toBe(0);
    expect(await reads()).toBeGreaterThan(before);
    expect(await second.get('p:7')).toEqual(value);
    // cache-manager's ttl() is the expiry Keyv stamped on the value.
    const expires = await second.ttl('p:7');
    expect(expires).toBeGreaterThan(Date.now() + 50_000);
  });

  it('another tenant, or another namespace, does not see the value: its wrap runs its own function', async () => {
    await cache('acme').wrap('k', async () => 'acme');
    expect(await cache('acme2').wrap('k', async () => 'acme2')).toBe('acme2');
    expect(await cache('acme', 'orders').wrap('k', async () => 'orders')).toBe('orders');
    expect(await cache('acme').get('k')).toBe('acme');
    expect((await server.scanKeys('*')).sort()).toEqual([
      'acme2:app:products:k',
      'acme:app:orders:k',
      'acme:app:products:k',
    ]);
  });

  it('mset/mget/del work (mget as one MGET); clear() empties one namespace only', async () => {
    const products = cache('acme');
    const orders = cache('acme', 'orders');
    const otherTenant = cache('acme2');
    await products.mset<unknown>([
      { key: 'a', value: 1 },
      { key: 'b', value: { n: 2 }, ttl: 5000 },
    ]);
    await orders.set('a', 'order');
    await otherTenant.set('a', 'other tenant');
    const before = await reads();
    expect(await products.mget(['a', 'b', 'missing'])).toEqual([1, { n: 2 }, undefined]);
    expect(await reads()).toBe(before + 1); // one MGET, not three GETs
    expect(Number(await server.cli('TTL', 'acme:app:products:b'))).toBeLessThanOrEqual(5);

    expect(await products.del('a')).toBe(true);
    expect(await products.get('a')).toBeUndefined();

    await products.set('c', 3);
    await products.clear();
    expect(await products.mget(['b', 'c'])).toEqual([undefined, undefined]);
    expect(await orders.get('a')).toBe('order');
    expect(await otherTenant.get('a')).toBe('other tenant');
    expect((await server.scanKeys('*')).sort()).toEqual(['acme2:app:products:a', 'acme:app:orders:a']);
  });
});
