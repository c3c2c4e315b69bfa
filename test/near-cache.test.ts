/**
 * Near cache on one redis-server: as the default user (with `DEBUG` enabled, so keys can be kept from
 * expiring in the background), and as the README's per-tenant ACL user. Plus the option's validation and
 * the memory engine, which ignores it.
 */
import { describe, expect, it } from 'vitest';
import { CacheClient, CacheValidationError } from '../src/index.js';
import { nearCacheServer } from './helpers/near-cache-server.js';
import { registerNearCacheSuite } from './near-cache.suite.js';

function serverSuite(name: string, acl: boolean): void {
  const { start, stop } = nearCacheServer(acl);
  registerNearCacheSuite(name, start, stop);
}

serverSuite('redis-server', false);
serverSuite('redis-server as a per-tenant ACL user', true);

describe('near cache: option and engines without tracking', () => {
  it('validates the option with an error naming the field', () => {
    const make = (nearCache: unknown) => () =>
      new CacheClient({
        connectionConfig: { url: 'memory://', tenant: 't' },
        env: {},
        nearCache: nearCache as never,
      });
    expect(make({})).toThrow(/nearCache\.maxEntries.*required/);
    expect(make({ maxEntries: 0 })).toThrow(/nearCache\.maxEntries.*positive integer/);
    expect(make({ maxEntries: 1.5 })).toThrow(CacheValidationError);
    // The LRU reserves its index for the whole bound at start-up: a huge bound must not stall the process.
    expect(make({ maxEntries: 1e9 })).toThrow(/nearCache\.maxEntries.*up to 1000000/);
    expect(make({ maxEntries: 1_000_000 })).not.toThrow();
    expect(make({ maxEntries: 10, maxBytes: -1 })).toThrow(/nearCache\.maxBytes/);
    expect(make({ maxEntries: 10, ttlMs: '5' })).toThrow(/nearCache\.ttlMs/);
    expect(make({ maxEntries: 10, size: 3 })).toThrow(/Unknown nearCache option `size`/);
    expect(make('on')).toThrow(/`nearCache` option must be an object/);
    expect(make(undefined)).not.toThrow();
  });

  it('the memory engine ignores it: every read sees the shared store', async () => {
    const a = new CacheClient({
      connectionConfig: { url: 'memory://', tenant: 't' },
      env: {},
      nearCache: { maxEntries: 10 },
    });
    const b = new CacheClient({ connectionConfig: { url: 'memory://', tenant: 't' }, env: {} });
    try {
      await a.set('k', 'one');
      expect(await a.get('k')).toBe('one');
      await b.set('k', 'two');
      expect(await a.get('k')).toBe('two');
      expect(a.stats().nearCache).toMatchObject({ size: 0, hits: 0 });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
