import { describe, expectTypeOf, it } from 'vitest';
import {
  CacheClient,
  type CacheClientOptions,
  type CacheConnectionError,
  type CacheError,
  getClient,
  type Session,
} from '../src/index.js';

describe('public types', () => {
  const cache = new CacheClient({ connectionConfig: { url: 'memory://', tenant: 't' } });

  it('types get with and without a default', () => {
    expectTypeOf(cache.get<{ id: number }>('k')).resolves.toEqualTypeOf<{ id: number } | null>();
    expectTypeOf(cache.get<number, string>('k', 'd')).resolves.toEqualTypeOf<number | string>();
    expectTypeOf(cache.get('k')).resolves.toEqualTypeOf<unknown>();
  });

  it('types mget per element', () => {
    expectTypeOf(cache.mget<string>('a', 'b')).resolves.toEqualTypeOf<(string | null)[]>();
  });

  it('types the other methods', () => {
    expectTypeOf(cache.set('k', { a: 1 }, 10)).resolves.toEqualTypeOf<boolean>();
    expectTypeOf(cache.delete('a', 'b')).resolves.toEqualTypeOf<number>();
    expectTypeOf(cache.exists('a')).resolves.toEqualTypeOf<number>();
    expectTypeOf(cache.expire('a', 1)).resolves.toEqualTypeOf<boolean>();
    expectTypeOf(cache.ttl('a')).resolves.toEqualTypeOf<number>();
    expectTypeOf(cache.mset(new Map([['a', 1]]))).resolves.toEqualTypeOf<boolean>();
    expectTypeOf(cache.mset({ a: 1 }, 5)).resolves.toEqualTypeOf<boolean>();
    expectTypeOf(cache.flushByPattern('x*')).resolves.toEqualTypeOf<number>();
    expectTypeOf(cache.flushTenant()).resolves.toEqualTypeOf<number>();
    expectTypeOf(cache.ping()).resolves.toEqualTypeOf<boolean>();
    expectTypeOf(cache.close()).resolves.toEqualTypeOf<void>();
    expectTypeOf(cache.getAdditionalPrefix()).toEqualTypeOf<string | null>();
    expectTypeOf(getClient).returns.toEqualTypeOf<CacheClient>();
  });

  it('rejects wrong argument types at compile time', () => {
    // @ts-expect-error keys are strings
    void cache.delete(1);
    // @ts-expect-error ttl is a number
    void cache.set('k', 'v', '10');
    // @ts-expect-error unknown option
    void new CacheClient({ debug_logs: true });
    // @ts-expect-error session must be a Session
    void new CacheClient({ session: { authToken: 'x' } });
  });

  it('keeps the error hierarchy', () => {
    expectTypeOf<CacheConnectionError>().toMatchTypeOf<CacheError>();
    expectTypeOf<CacheError['code']>().toEqualTypeOf<string>();
    expectTypeOf<CacheClientOptions['session']>().toEqualTypeOf<Session | undefined>();
  });
});
