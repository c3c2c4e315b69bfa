import { describe, expectTypeOf, it } from 'vitest';
import { CacheClient, type CachedFunctionStats, cacheResult } from '../src/index.js';

const cache = new CacheClient({ connectionConfig: { url: 'memory://', tenant: 't' } });

describe('cached function types', () => {
  it('cacheResult keeps the parameters and returns a promise of the awaited result', () => {
    const f = cache.cacheResult(async (id: number, _name?: string) => ({ id, at: new Date() }));
    expectTypeOf(f).parameters.toEqualTypeOf<[id: number, _name?: string]>();
    expectTypeOf(f).returns.toEqualTypeOf<Promise<{ id: number; at: Date }>>();
    const sync = cache.cacheResult((s: string) => s.length);
    expectTypeOf(sync).returns.toEqualTypeOf<Promise<number>>();
    // entityId and key see the same parameters.
    cache.cacheResult(async (id: number) => id, { entityId: (id) => id, key: (id) => `k${id}` });
    // @ts-expect-error entityId must take the function's parameters
    cache.cacheResult(async (id: number) => id, { entityId: (id: string) => id });
  });

  it('getOrSet returns the factory value type; stats expose the cached function counters', () => {
    expectTypeOf(cache.getOrSet('k', async () => 1n)).toEqualTypeOf<Promise<bigint>>();
    expectTypeOf(cache.getOrSet('k', () => 'x')).toEqualTypeOf<Promise<string>>();
    expectTypeOf(cache.stats().cachedFunctions).toEqualTypeOf<CachedFunctionStats>(); // always present
  });

  it('the decorator accepts async methods whose option functions take a prefix of the parameters', () => {
    class Repo {
      @cacheResult({ client: cache, entityId: (id: number) => id })
      async find(id: number, _verbose: boolean): Promise<string> {
        return String(id);
      }
    }
    expectTypeOf(new Repo().find).returns.toEqualTypeOf<Promise<string>>();
  });
});
