/**
 * One conformance suite for every engine: the whole public API and the edge cases of SPEC.md, run
 * unchanged against the memory engine, a real redis-server, and a Redis Cluster.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CacheClient, type CacheClientOptions, CacheValidationError } from '../src/index.js';
import { ClientPool } from './helpers/clients.js';

/** What an engine under test provides. */
export interface ConformanceTarget {
  /** Options (connection included) for a client of `tenant`; `extra` is merged in. */
  options(tenant: string, extra?: Partial<CacheClientOptions>): CacheClientOptions;
  /** Every stored key (all tenants) matching a raw Redis glob, read beside the client under test. */
  rawKeys(match?: string): Promise<string[]>;
  /** Raw stored string at a full key, read beside the client. */
  rawGet(key: string): Promise<string | null>;
  /** Whether rawKeys/rawGet see the stored keys (false for memory://, which has no outside view). */
  readonly inspectable: boolean;
  /** Called before each test with the tenants it uses (e.g. to create their ACL users). */
  prepareTenants?(tenants: string[]): Promise<void>;
  /**
   * Commands the server (every node of a cluster) has run so far, bookkeeping excluded (see
   * helpers/command-stats.ts): unchanged across a call proves it sent nothing. Absent for memory://.
   */
  commandCalls?(): Promise<number>;
  /**
   * Issue 18: how to make the client for options (default `new CacheClient(options)`); the tenant-view
   * targets return a `TenantCaches` view instead (helpers/tenant-views.ts).
   */
  open?(options: CacheClientOptions): CacheClient;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Register the conformance suite for one engine. `setup` runs in `beforeAll`; `teardown` in `afterAll`. */
export function registerConformanceSuite(
  name: string,
  setup: () => Promise<ConformanceTarget>,
  teardown: () => Promise<void> = async () => {},
): void {
  describe(`conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let cache: CacheClient;
    let counter = 0;
    let tenant: string;
    const pool = new ClientPool();
    const client = (extra: Partial<CacheClientOptions> = {}, t = tenant) =>
      pool.open(target.options(t, extra), target.open);

    beforeAll(async () => {
      target = await setup();
    });
    afterAll(async () => {
      await pool.closeAll();
      await teardown();
    });
    beforeEach(async () => {
      counter++;
      tenant = `t${counter}-${Math.random().toString(36).slice(2, 8)}`;
      await target.prepareTenants?.([tenant, `${tenant}x`]);
      cache = client();
    });

    describe('set / get', () => {
      it('round-trips objects, arrays and strings with the peak codec', async () => {
        expect(await cache.set('obj', { name: 'Ada', tags: ['x', 'y'], n: 1.5, ok: true, none: null })).toBe(
          true,
        );
        expect(await cache.get('obj')).toEqual({
          name: 'Ada',
          tags: ['x', 'y'],
          n: 1.5,
          ok: true,
          none: null,
        });
        await cache.set('arr', [1, 'two', { three: 3 }]);
        expect(await cache.get('arr')).toEqual([1, 'two', { three: 3 }]);
        await cache.set('str', 'hello world');
        expect(await cache.get('str')).toBe('hello world');
      });

      it('returns scalars as the string stored, as Python does', async () => {
        await cache.set('n', 42);
        expect(await cache.get('n')).toBe('42');
        await cache.set('b', true);
        expect(await cache.get('b')).toBe('true');
        await cache.set('nul', null);
        expect(await cache.get('nul')).toBe('null');
        await cache.set('s', '{not json');
        expect(await cache.get('s')).toBe('{not json');
      });

      it('returns null for a missing key, or the default value', async () => {
        expect(await cache.get('missing')).toBeNull();
        expect(await cache.get('missing', 'fallback')).toBe('fallback');
        expect(await cache.get('missing', { a: 1 })).toEqual({ a: 1 });
        expect(await cache.get('missing', 0)).toBe(0);
        await cache.set('present', 'x');
        expect(await cache.get('present', 'fallback')).toBe('x');
      });

      it('sets a ttl, and no ttl when omitted', async () => {
        await cache.set('with', 'v', 100);
        const ttl = await cache.ttl('with');
        expect(ttl).toBeGreaterThan(95);
        expect(ttl).toBeLessThanOrEqual(100);
        await cache.set('without', 'v');
        expect(await cache.ttl('without')).toBe(-1);
        await cache.set('with', 'v2');
        expect(await cache.ttl('with')).toBe(-1);
      });

      it('expires a key after its ttl', async () => {
        await cache.set('short', 'v', 1);
        expect(await cache.get('short')).toBe('v');
        await sleep(2100);
        expect(await cache.get('short')).toBeNull();
        expect(await cache.ttl('short')).toBe(-2);
      });

      it('stores keys with any characters byte-exact', async () => {
        const keys = ['a*b', 'q?', '[x]', 'back\\slash', '{tag}', 'ünïcødé', '日本', '😀', 'sp ace', ''];
        for (const key of keys) await cache.set(key, `v:${key}`);
        for (const key of keys) expect(await cache.get(key)).toBe(`v:${key}`);
        expect(await cache.exists(...keys)).toBe(keys.length);
        if (target.inspectable) {
          expect(await target.rawGet(`${tenant}:😀`)).toBe('v:😀');
          expect(await target.rawGet(`${tenant}:{tag}`)).toBe('v:{tag}');
        }
      });

      it('rejects invalid ttls before any I/O', async () => {
        for (const ttl of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number]) {
          await expect(cache.set('k', 'v', ttl)).rejects.toBeInstanceOf(CacheValidationError);
        }
        expect(await cache.exists('k')).toBe(0);
      });

      it('rejects values JSON cannot represent before any I/O', async () => {
        const circular: Record<string, unknown> = {};
        circular.self = circular;
        // bigint, NaN and ±Infinity are not here: the peak codec stores them as Python's json does
        // (test/codec.test.ts, test/python-interop.test.ts).
        for (const value of [circular, () => 1, Symbol('s'), undefined]) {
          await expect(cache.set('bad', value)).rejects.toBeInstanceOf(CacheValidationError);
        }
        expect(await cache.exists('bad')).toBe(0);
      });
    });

    describe('delete / exists', () => {
      it('counts deleted and existing keys; repeats count in exists, once in delete', async () => {
        await cache.mset({ a: 1, b: 2, c: 3 });
        expect(await cache.exists('a', 'b', 'missing')).toBe(2);
        expect(await cache.exists('a', 'a', 'a')).toBe(3);
        expect(await cache.delete('a', 'a', 'missing')).toBe(1);
        expect(await cache.delete('b', 'c')).toBe(2);
        expect(await cache.exists('a', 'b', 'c')).toBe(0);
        expect(await cache.delete('a')).toBe(0);
      });

      it('returns 0 for no keys without connecting', async () => {
        const lazy = new CacheClient(
          target.options(tenant, { connectionConfig: { url: 'redis://127.0.0.1:1', tenant } }),
        );
        expect(await lazy.delete()).toBe(0);
        expect(await lazy.exists()).toBe(0);
        expect(await lazy.mget()).toEqual([]);
        expect(await lazy.mset({})).toBe(true);
        expect(await lazy.mset(new Map())).toBe(true);
        await lazy.close();
      });
    });

    describe('expire / ttl', () => {
      it('expire is false for a missing key and sets the ttl of an existing one', async () => {
        expect(await cache.expire('missing', 10)).toBe(false);
        await cache.set('k', 'v');
        expect(await cache.ttl('k')).toBe(-1);
        expect(await cache.expire('k', 50)).toBe(true);
        const ttl = await cache.ttl('k');
        expect(ttl).toBeGreaterThan(45);
        expect(ttl).toBeLessThanOrEqual(50);
        expect(await cache.ttl('missing')).toBe(-2);
      });

      it('rejects an invalid expire ttl', async () => {
        await cache.set('k', 'v');
        await expect(cache.expire('k', 0)).rejects.toBeInstanceOf(CacheValidationError);
        await expect(cache.expire('k', -5)).rejects.toBeInstanceOf(CacheValidationError);
        expect(await cache.ttl('k')).toBe(-1);
      });
    });

    describe('mget / mset', () => {
      it('keeps order and returns null for misses, with duplicates', async () => {
        await cache.mset({ a: { v: 1 }, b: 'two', c: [3] });
        expect(await cache.mget('c', 'missing', 'a', 'b', 'a')).toEqual([
          [3],
          null,
          { v: 1 },
          'two',
          { v: 1 },
        ]);
      });

      it('accepts a Map and a Record', async () => {
        await cache.mset(
          new Map<string, unknown>([
            ['m1', { x: 1 }],
            ['m2', 'y'],
          ]),
        );
        await cache.mset({ r1: [1], r2: 'z' });
        expect(await cache.mget('m1', 'm2', 'r1', 'r2')).toEqual([{ x: 1 }, 'y', [1], 'z']);
      });

      it('applies the ttl to every key', async () => {
        const mapping: Record<string, number> = {};
        for (let i = 0; i < 50; i++) mapping[`k${i}`] = i;
        await cache.mset(mapping, 60);
        for (let i = 0; i < 50; i++) {
          const ttl = await cache.ttl(`k${i}`);
          expect(ttl).toBeGreaterThan(55);
          expect(ttl).toBeLessThanOrEqual(60);
        }
      });

      it('rejects a mapping that is not a Record or a Map', async () => {
        for (const bad of [null, 'ab', ['a', 'b'], 42]) {
          await expect(cache.mset(bad as never)).rejects.toThrow(/mset needs a Record or a Map/);
        }
        expect(await cache.exists('0', '1')).toBe(0);
      });

      it('rejects a bad value in a mapping before writing any of it', async () => {
        await expect(cache.mset({ ok: 1, bad: Symbol('s') })).rejects.toBeInstanceOf(CacheValidationError);
        expect(await cache.exists('ok', 'bad')).toBe(0);
      });

      it('types the values of get and mget', async () => {
        await cache.set('typed', { id: 1 });
        const one = await cache.get<{ id: number }>('typed');
        const many = await cache.mget<{ id: number }>('typed');
        expect(one?.id).toBe(1);
        expect(many[0]?.id).toBe(1);
      });
    });

    describe('prefixes', () => {
      it('namespaces keys by tenant and prefix, changeable on a live client', async () => {
        const prefixed = client({ additionalPrefix: 'pricing' });
        expect(prefixed.getAdditionalPrefix()).toBe('pricing');
        expect(await prefixed.getTenant()).toBe(tenant);
        await prefixed.set('k', 'in-pricing');
        await cache.set('k', 'no-prefix');
        expect(await cache.get('k')).toBe('no-prefix');
        expect(await prefixed.get('k')).toBe('in-pricing');
        if (target.inspectable) {
          expect(await target.rawGet(`${tenant}:pricing:k`)).toBe('in-pricing');
          expect(await target.rawGet(`${tenant}:k`)).toBe('no-prefix');
        }
        prefixed.setAdditionalPrefix('other');
        expect(prefixed.getAdditionalPrefix()).toBe('other');
        expect(await prefixed.get('k')).toBeNull();
        await prefixed.set('k', 'in-other');
        prefixed.setAdditionalPrefix(null);
        expect(prefixed.getAdditionalPrefix()).toBeNull();
        expect(await prefixed.get('k')).toBe('no-prefix');
        prefixed.setAdditionalPrefix('');
        expect(prefixed.getAdditionalPrefix()).toBeNull();
        prefixed.setAdditionalPrefix('a:b');
        await prefixed.set('k', 'nested');
        if (target.inspectable) expect(await target.rawGet(`${tenant}:a:b:k`)).toBe('nested');
      });

      it('rejects invalid prefixes', () => {
        for (const bad of [
          '*',
          'a?',
          '[x]',
          'back\\',
          '{t}',
          'sp ace',
          'tab\t',
          'nl\n',
          'ａ',
          'x'.repeat(1000),
        ]) {
          expect(() => cache.setAdditionalPrefix(bad)).toThrow(CacheValidationError);
        }
        expect(cache.getAdditionalPrefix()).toBeNull();
      });
    });

    describe('flushes', () => {
      it('flushByPattern deletes matches inside the namespace only', async () => {
        const pricing = client({ additionalPrefix: 'pricing' });
        await cache.mset({ 'user:1': 1, 'user:2': 2, 'order:1': 3 });
        await pricing.mset({ 'user:1': 1, 'user:9': 9 });
        expect(await cache.flushByPattern('user:*')).toBe(2);
        expect(await cache.mget('user:1', 'user:2', 'order:1')).toEqual([null, null, '3']);
        expect(await pricing.mget('user:1', 'user:9')).toEqual(['1', '9']);
        expect(await pricing.flushByPattern('*')).toBe(2);
        expect(await cache.exists('order:1')).toBe(1);
        expect(await cache.flushByPattern('nothing*')).toBe(0);
      });

      it('flushByPattern supports ? and [] and literal escapes', async () => {
        await cache.mset({ a1: 1, a2: 2, a10: 3, 'b*': 4, bx: 5 });
        expect(await cache.flushByPattern('a?')).toBe(2);
        expect(await cache.exists('a10')).toBe(1);
        expect(await cache.flushByPattern('b\\*')).toBe(1);
        expect(await cache.exists('bx')).toBe(1);
        expect(await cache.flushByPattern('[ab]*')).toBe(2);
      });

      it('flushTenant deletes every key of the tenant whatever the prefix', async () => {
        const pricing = client({ additionalPrefix: 'pricing' });
        const neighbour = client({}, `${tenant}x`);
        await cache.mset({ a: 1, b: 2 });
        await pricing.set('c', 3);
        await neighbour.set('a', 'keep');
        let progress = 0;
        expect(await pricing.flushTenant({ onProgress: (n) => (progress = n) })).toBe(3);
        expect(progress).toBe(3);
        expect(await cache.exists('a', 'b')).toBe(0);
        expect(await neighbour.get('a')).toBe('keep');
        expect(await cache.flushTenant()).toBe(0);
      });

      it('flushes many keys in batches with an exact count', async () => {
        const mapping: Record<string, string> = {};
        for (let i = 0; i < 3500; i++) mapping[`bulk:${i}`] = 'v';
        await cache.mset(mapping);
        await cache.set('other', 'v');
        expect(await cache.flushByPattern('bulk:*')).toBe(3500);
        expect(await cache.exists('other')).toBe(1);
        if (target.inspectable) expect(await target.rawKeys(`${tenant}:bulk:*`)).toEqual([]);
      });

      it('rejects patterns beyond the complexity bound', async () => {
        await expect(cache.flushByPattern('*'.repeat(17))).rejects.toBeInstanceOf(CacheValidationError);
        await expect(cache.flushByPattern('x'.repeat(2000))).rejects.toBeInstanceOf(CacheValidationError);
      });
    });

    describe('well-formed unicode (keys, prefixes, patterns)', () => {
      /** Keys with a lone surrogate (no UTF-8 form), and where the first one is. */
      const ILL_FORMED: readonly (readonly [string, string])[] = [
        ['a\uD800', 'U+D800 at index 1'],
        ['a\uDC00', 'U+DC00 at index 1'],
        ['\uDFFF', 'U+DFFF at index 0'],
        ['x\uD83D', 'U+D83D at index 1'],
        ['\uDE00y', 'U+DE00 at index 0'],
        ['ok😀\uD800z', 'U+D800 at index 4'],
        ['\uDE00\uD83D', 'U+DE00 at index 0'],
      ];

      it('rejects a key with a lone surrogate in every operation, before any command reaches the server', async () => {
        await cache.set('ok', 'kept');
        const before = await target.commandCalls?.();
        for (const [key, where] of ILL_FORMED) {
          const rejected = [
            cache.set(key, 'one'),
            cache.set(key, 'one', 60),
            cache.get(key),
            cache.get(key, 'default'),
            cache.delete('ok', key),
            cache.exists('ok', key),
            cache.expire(key, 60),
            cache.ttl(key),
            cache.mget('ok', key),
            cache.mset({ fine: 1, [key]: 2 }),
            cache.mset(new Map([[key, 1]]), 60),
          ];
          for (const call of rejected) {
            await expect(call).rejects.toBeInstanceOf(CacheValidationError);
            await expect(call).rejects.toThrow(
              `A key must be well-formed Unicode, but has a lone surrogate ${where}`,
            );
          }
        }
        if (before !== undefined) {
          expect(await target.commandCalls?.()).toBe(before);
          // The count does see this client's commands.
          expect(await cache.get('ok')).toBe('kept');
          expect(await target.commandCalls?.()).toBe(before + 1);
        }
        expect(await cache.exists('ok', 'fine')).toBe(1);
      });

      it('rejects patterns and prefixes with a lone surrogate before any I/O', async () => {
        await cache.set('a\uFFFD', 'replacement character');
        const before = await target.commandCalls?.();
        for (const pattern of ['a\uD800', 'a\uD800*', '*\uDC00', '[\uD800]']) {
          const flush = cache.flushByPattern(pattern);
          await expect(flush).rejects.toBeInstanceOf(CacheValidationError);
          await expect(flush).rejects.toThrow(
            /^flushByPattern: The pattern must be well-formed Unicode, but has a lone surrogate/,
          );
        }
        for (const prefix of ['p\uD800', '\uDC00']) {
          expect(() => cache.setAdditionalPrefix(prefix)).toThrow(
            /^setAdditionalPrefix: The additional prefix must be well-formed Unicode/,
          );
          expect(() => client({ additionalPrefix: prefix })).toThrow(CacheValidationError);
        }
        expect(() => client({}, 't\uD800')).toThrow(CacheValidationError);
        expect(cache.getAdditionalPrefix()).toBeNull();
        if (before !== undefined) expect(await target.commandCalls?.()).toBe(before);
        // U+FFFD itself is a character like any other: the lone surrogates never reached it.
        expect(await cache.get('a\uFFFD')).toBe('replacement character');
      });

      it('engines agree: lone surrogates never collide on U+FFFD; surrogate pairs and U+FFFD are keys like any other', async () => {
        await expect(cache.set('a\uD800', 'one')).rejects.toBeInstanceOf(CacheValidationError);
        await expect(cache.set('a\uDC00', 'two')).rejects.toBeInstanceOf(CacheValidationError);
        expect(await cache.get('a\uFFFD')).toBeNull();
        await cache.mset({ 'a😀': 'pair', 'a\uFFFD': 'fffd', '\uD83D\uDE00': 'pair only' });
        expect(await cache.mget('a😀', 'a\uFFFD', '😀')).toEqual(['pair', 'fffd', 'pair only']);
        if (target.inspectable) {
          expect(await target.rawGet(`${tenant}:a😀`)).toBe('pair');
          expect(await target.rawGet(`${tenant}:a\uFFFD`)).toBe('fffd');
        }
        expect(await cache.flushByPattern('a*')).toBe(2);
        expect(await cache.exists('😀')).toBe(1);
      });
    });

    describe('ping / close', () => {
      it('ping is true; close is idempotent; calls after close reject', async () => {
        expect(await cache.ping()).toBe(true);
        await cache.set('k', 'v');
        const pending = cache.get('k');
        await Promise.all([cache.close(), cache.close()]);
        expect(await pending).toBe('v');
        await cache.close();
        await expect(cache.get('k')).rejects.toMatchObject({ name: 'CacheConnectionError' });
      });

      it('close before first use does no I/O and succeeds', async () => {
        const fresh = client();
        await fresh.close();
        await expect(fresh.ping()).rejects.toMatchObject({ name: 'CacheConnectionError' });
      });
    });

    describe('codecs', () => {
      it("the 'json' codec round-trips types losslessly", async () => {
        const typed = client({ codec: 'json' });
        await typed.set('n', 42);
        await typed.set('s', '42');
        await typed.set('b', false);
        await typed.set('nul', null);
        expect(await typed.get('n')).toBe(42);
        expect(await typed.get('s')).toBe('42');
        expect(await typed.get('b')).toBe(false);
        expect(await typed.get('nul')).toBeNull();
        if (target.inspectable) expect(await target.rawGet(`${tenant}:s`)).toBe('"42"');
      });

      it('a custom codec encodes and decodes', async () => {
        const custom = client({
          codec: { encode: (v) => `X${JSON.stringify(v)}`, decode: (raw) => JSON.parse(raw.slice(1)) },
        });
        await custom.set('k', { a: 1 });
        expect(await custom.get('k')).toEqual({ a: 1 });
        if (target.inspectable) expect(await target.rawGet(`${tenant}:k`)).toBe('X{"a":1}');
      });
    });
  });
}
