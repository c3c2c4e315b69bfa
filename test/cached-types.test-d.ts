import { describe, expectTypeOf, it } from 'vitest';
import {
  CacheClient,
  type CachedFunctionStats,
  cacheResult,
  type FactoryContext,
  type GetOrSetOptions,
  type JsonValue,
  type PeakValue,
} from '../src/index.js';

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

  it('the factory context: getOrSet factories get it; cacheResult with context: true drops it from the wrapper', () => {
    expectTypeOf(
      cache.getOrSet('k', (ctx) => {
        expectTypeOf(ctx).toEqualTypeOf<FactoryContext>();
        ctx.ttl = 5;
        return 1;
      }),
    ).toEqualTypeOf<Promise<number>>();
    const f = cache.cacheResult(async (id: number, ctx: FactoryContext) => (ctx.skipped ? null : id), {
      context: true,
      entityId: (id) => id,
    });
    expectTypeOf(f).parameters.toEqualTypeOf<[id: number]>();
    expectTypeOf(f).returns.toEqualTypeOf<Promise<number | null>>();
  });

  it("codec 'client' and keyStyle 'python' results are typed as the client codec's value, not the factory's", () => {
    // Under 'peak', 42 stored in the client codec reads back as '42': the type must not say number.
    expectTypeOf(
      cache.getOrSet('n', async () => 42, { codec: 'client' }),
    ).resolves.toEqualTypeOf<PeakValue>();
    expectTypeOf(cache.getOrSet('n', async () => 42, { codec: 'typed' })).resolves.toEqualTypeOf<number>();
    expectTypeOf(cache.getOrSet('n', async () => 42, { ttl: 5 })).resolves.toEqualTypeOf<number>();
    const json = new CacheClient({ connectionConfig: { url: 'memory://', tenant: 't' }, codec: 'json' });
    expectTypeOf(json.getOrSet('n', () => 42, { codec: 'client' })).resolves.toEqualTypeOf<JsonValue>();
    expectTypeOf(json.getOrSetMany(['a'], () => ({ a: 1 }), { codec: 'client' })).resolves.toEqualTypeOf<
      (JsonValue | undefined)[]
    >();
    expectTypeOf(cache.cacheResult(async (id: number) => id, { codec: 'client' })).returns.toEqualTypeOf<
      Promise<PeakValue>
    >();
    expectTypeOf(cache.cacheResult(async (id: number) => id, { keyStyle: 'python' })).returns.toEqualTypeOf<
      Promise<PeakValue>
    >();
    // Options whose codec is not known statically: either.
    const options: GetOrSetOptions = {};
    expectTypeOf(cache.getOrSet('n', async () => 42, options)).resolves.toEqualTypeOf<number | PeakValue>();
  });

  it('getOrSetMany returns the values in key order, undefined for keys the factory left out', () => {
    const many = cache.getOrSetMany(
      ['a', 'b'],
      async (missing) => new Map(missing.map((k) => [k, k.length])),
    );
    expectTypeOf(many).toEqualTypeOf<Promise<(number | undefined)[]>>();
    const record = cache.getOrSetMany(['a'], (missing) => Object.fromEntries(missing.map((k) => [k, true])));
    expectTypeOf(record).toEqualTypeOf<Promise<(boolean | undefined)[]>>();
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
