import { describe, expectTypeOf, it } from 'vitest';
import {
  type CacheAuthError,
  CacheClient,
  type CacheClientOptions,
  type CacheConnectionError,
  type CacheError,
  type CacheErrorCode,
  type CacheFactoryError,
  type CacheTimeoutError,
  type CacheValidationError,
  type CodecOption,
  getClient,
  type JsonValue,
  type PeakValue,
  type Session,
} from '../src/index.js';

describe('public types', () => {
  const cache = new CacheClient({ connectionConfig: { url: 'memory://', tenant: 't' } });

  it('types get with and without a default', () => {
    expectTypeOf(cache.get<{ id: number }>('k')).resolves.toEqualTypeOf<{ id: number } | null>();
    expectTypeOf(cache.get<{ id: number }, string>('k', 'd')).resolves.toEqualTypeOf<
      { id: number } | string
    >();
    expectTypeOf(cache.get('k')).resolves.toEqualTypeOf<PeakValue | null>();
  });

  it("the default value's type is part of the result", () => {
    expectTypeOf(cache.get('missing', 0)).resolves.toEqualTypeOf<PeakValue | number>();
    expectTypeOf(cache.get('missing', 0)).resolves.not.toEqualTypeOf<unknown>();
    expectTypeOf(cache.get<string, number>('n', 0)).resolves.toEqualTypeOf<string | number>();
    const user = { name: 'Ada' };
    expectTypeOf(cache.get<{ name: string }>('u', user)).resolves.toEqualTypeOf<{ name: string }>();
  });

  it("under the default 'peak' codec, get and mget cannot promise a number, boolean or null", () => {
    // @ts-expect-error a number stored reads back as a string ('42') under the peak codec
    void cache.get<number>('n');
    // @ts-expect-error the same with a default value
    void cache.get<number>('n', 0);
    // @ts-expect-error booleans read back as strings too
    void cache.mget<boolean>('a');
    // @ts-expect-error a union with number
    void cache.get<string | number>('n');
    expectTypeOf(cache.get<string>('n')).resolves.toEqualTypeOf<string | null>();
    expectTypeOf(cache.get<number[]>('list')).resolves.toEqualTypeOf<number[] | null>();
    interface User {
      id: number;
    }
    expectTypeOf(cache.get<User>('u')).resolves.toEqualTypeOf<User | null>();
    expectTypeOf(new CacheClient().get('k')).resolves.toEqualTypeOf<PeakValue | null>();
    expectTypeOf(getClient({ codec: 'peak' }).get('k')).resolves.toEqualTypeOf<PeakValue | null>();
  });

  it("under 'json' and custom codecs, the type parameter is free", () => {
    const json = new CacheClient({ codec: 'json', connectionConfig: { url: 'memory://', tenant: 't' } });
    expectTypeOf(json).toEqualTypeOf<CacheClient<'json'>>();
    expectTypeOf(json.get<number>('n')).resolves.toEqualTypeOf<number | null>();
    expectTypeOf(json.get('n')).resolves.toEqualTypeOf<JsonValue | null>();
    expectTypeOf(json.get('missing', 0)).resolves.toEqualTypeOf<JsonValue | number>();
    expectTypeOf(json.mget<boolean>('a')).resolves.toEqualTypeOf<(boolean | null)[]>();
    expectTypeOf(getClient({ codec: 'json' })).toEqualTypeOf<CacheClient<'json'>>();
    const custom = new CacheClient({ codec: { encode: String, decode: Number } });
    expectTypeOf(custom.get<number>('n')).resolves.toEqualTypeOf<number | null>();
    expectTypeOf(custom.get('n')).resolves.toEqualTypeOf<unknown>();
    // Any client fits a parameter typed with the codec left open.
    const anyClient = (_client: CacheClient<CodecOption>) => undefined;
    anyClient(cache);
    anyClient(json);
    anyClient(custom);
  });

  it('types mget per element', () => {
    expectTypeOf(cache.mget<string>('a', 'b')).resolves.toEqualTypeOf<(string | null)[]>();
    expectTypeOf(cache.mget('a', 'b')).resolves.toEqualTypeOf<(PeakValue | null)[]>();
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
    expectTypeOf(getClient()).toEqualTypeOf<CacheClient>();
    expectTypeOf(getClient({ codec: 'json' })).toEqualTypeOf<CacheClient<'json'>>();
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
    expectTypeOf<CacheError['code']>().toEqualTypeOf<CacheErrorCode>();
    expectTypeOf<CacheErrorCode>().toEqualTypeOf<
      | 'ERR_CACHE'
      | 'ERR_CACHE_VALIDATION'
      | 'ERR_CACHE_CONNECTION'
      | 'ERR_CACHE_TIMEOUT'
      | 'ERR_CACHE_AUTH'
      | 'ERR_CACHE_FACTORY'
    >();
    expectTypeOf<CacheTimeoutError['code']>().toEqualTypeOf<'ERR_CACHE_TIMEOUT'>();
    expectTypeOf<CacheAuthError['code']>().toEqualTypeOf<'ERR_CACHE_AUTH'>();
    expectTypeOf<CacheValidationError['code']>().toEqualTypeOf<'ERR_CACHE_VALIDATION'>();
    expectTypeOf<CacheFactoryError['code']>().toEqualTypeOf<'ERR_CACHE_FACTORY'>();
    expectTypeOf<CacheConnectionError['code']>().toEqualTypeOf<
      'ERR_CACHE_CONNECTION' | 'ERR_CACHE_TIMEOUT' | 'ERR_CACHE_AUTH'
    >();
    const check = (err: CacheError) => {
      // @ts-expect-error a typo in a code does not compile
      if (err.code === 'ERR_CACHE_TIMEOT') return;
      if (err.code === 'ERR_CACHE_TIMEOUT') return;
    };
    void check;
    expectTypeOf<CacheClientOptions['session']>().toEqualTypeOf<Session | undefined>();
  });
});
