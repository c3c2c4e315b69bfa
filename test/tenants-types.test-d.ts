import { describe, expectTypeOf, it } from 'vitest';
import {
  type CacheClient,
  type Codec,
  type JsonValue,
  type PeakValue,
  TenantCaches,
  type TenantCachesOptions,
} from '../src/index.js';

describe('TenantCaches types: views carry the codec', () => {
  it('defaults to the peak codec', () => {
    const caches = new TenantCaches({ connectionConfig: { url: 'redis://x' } });
    expectTypeOf(caches).toEqualTypeOf<TenantCaches<'peak'>>();
    expectTypeOf(caches.tenant('a')).toEqualTypeOf<CacheClient<'peak'>>();
    expectTypeOf(caches.tenant('a').get('k')).resolves.toEqualTypeOf<PeakValue | null>();
    // @ts-expect-error the peak codec reads a stored number back as a string
    caches.tenant('a').get<number>('n');
  });

  it("codec 'json' makes CacheClient<'json'> views (typed reads)", () => {
    const caches = new TenantCaches({ connectionConfig: { url: 'redis://x' }, codec: 'json' });
    expectTypeOf(caches.tenant('a')).toEqualTypeOf<CacheClient<'json'>>();
    expectTypeOf(caches.tenant('a').get<number>('n')).resolves.toEqualTypeOf<number | null>();
    expectTypeOf(caches.tenant('a').get('n')).resolves.toEqualTypeOf<JsonValue | null>();
    const pooled = new TenantCaches({ connectionFor: () => ({ url: 'redis://x' }), codec: 'json' });
    expectTypeOf(pooled.tenant('a')).toEqualTypeOf<CacheClient<'json'>>();
  });

  it('a custom codec reads unknown', () => {
    const codec: Codec = { encode: (v) => JSON.stringify(v), decode: (raw) => JSON.parse(raw) };
    const caches = new TenantCaches({ connectionConfig: { url: 'redis://x' }, codec });
    expectTypeOf(caches.tenant('a').get('k')).resolves.toEqualTypeOf<unknown>();
  });

  it('options are generic over the codec', () => {
    expectTypeOf<TenantCachesOptions<'json'>['codec']>().toEqualTypeOf<'json' | undefined>();
  });
});
