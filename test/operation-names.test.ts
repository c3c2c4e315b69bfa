/**
 * Every error of a client operation names the operation: input errors (`get: A key must be ...`, before
 * any I/O) as well as failures (`get failed: ...`).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CacheClient, CacheValidationError } from '../src/index.js';

describe('error messages name the operation', () => {
  const cache = new CacheClient({ connectionConfig: { url: 'memory://names', tenant: 't' }, env: {} });
  afterAll(() => cache.close());
  const bad = 42 as unknown as string;

  const cases: [string, () => unknown][] = [
    ['get', () => cache.get(bad)],
    ['set', () => cache.set('k', Buffer.from('binary'))],
    ['set', () => cache.set('k', 1, -5)],
    ['mget', () => cache.mget('a', bad)],
    ['mset', () => cache.mset({ a: new Map() })],
    ['delete', () => cache.delete(bad)],
    ['exists', () => cache.exists(bad)],
    ['expire', () => cache.expire('k', 0)],
    ['ttl', () => cache.ttl(bad)],
    ['flushByPattern', () => cache.flushByPattern(bad)],
    ['setAdditionalPrefix', () => cache.setAdditionalPrefix('not valid!')],
    ['getOrSet', () => cache.getOrSet('k', () => 1, { ttl: -1 })],
    ['cacheResult', () => cache.cacheResult(() => 1, { ttl: 'x' as unknown as number })],
    ['invalidate', () => cache.invalidate({ targetedPatterns: ['x'] } as never)],
  ];

  it.each(cases)(
    '%s: a CacheValidationError whose message starts with the operation',
    async (operation, call) => {
      let error: unknown;
      try {
        await call();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(CacheValidationError);
      expect((error as Error).message).toMatch(new RegExp(`^${operation}[: ]`));
    },
  );

  it("the integrations' operations are named by their own name (keyv.get), not rawOperation", async () => {
    const call = cache.rawOperation('keyv.get', { keys: [bad] }, async () => null);
    await expect(call).rejects.toThrow(/^keyv\.get: A key must be a string/);
    const values = cache.rawOperation(
      'keyv.set',
      { keys: ['k'], values: [1 as unknown as string] },
      async () => 0,
    );
    await expect(values).rejects.toThrow(/^keyv\.set: values must be strings/);
  });

  it('a validation error raised outside any operation is not prefixed', () => {
    expect(new CacheValidationError('plain').message).toBe('plain');
  });

  it('after a failed operation, later errors do not inherit its name', async () => {
    await expect(cache.get(bad)).rejects.toThrow(/^get: /);
    await expect(cache.ttl(bad)).rejects.toThrow(/^ttl: /);
    expect(new CacheValidationError('plain').message).toBe('plain');
  });
});
