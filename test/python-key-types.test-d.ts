import { describe, expectTypeOf, it } from 'vitest';
import { CacheClient, type CacheResultOptions, cacheResult, type PeakValue } from '../src/index.js';

const cache = new CacheClient({ connectionConfig: { url: 'memory://', tenant: 't' } });

describe("keyStyle 'python' option types", () => {
  it('accepts the Python key options and keeps the function type', () => {
    const f = cache.cacheResult(async (q: string, _opts?: { page?: number }) => [q], {
      keyStyle: 'python',
      kwargs: 'last',
      entityParam: 'q',
    });
    expectTypeOf(f).parameters.toEqualTypeOf<[q: string, _opts?: { page?: number }]>();
    // Python's key style stores in the client's codec: results are its round trip, not the function's type.
    expectTypeOf(f).returns.toEqualTypeOf<Promise<PeakValue>>();
    expectTypeOf<CacheResultOptions<[string]>['keyStyle']>().toEqualTypeOf<'digest' | 'python' | undefined>();
    // @ts-expect-error keyStyle is 'digest' or 'python'
    cache.cacheResult(async (q: string) => q, { keyStyle: 'sha' });
    // @ts-expect-error kwargs is 'last' or 'none'
    cache.cacheResult(async (q: string) => q, { keyStyle: 'python', kwargs: 'first' });
    // @ts-expect-error entityParam names a parameter
    cache.cacheResult(async (q: string) => q, { keyStyle: 'python', entityParam: 1 });
  });

  it('the decorator takes them too', () => {
    class Repo {
      @cacheResult({ client: cache, keyStyle: 'python', entityParam: 'id' })
      async find(id: number): Promise<string> {
        return String(id);
      }
    }
    expectTypeOf(new Repo().find).returns.toEqualTypeOf<Promise<string>>();
  });
});
