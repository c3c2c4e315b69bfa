/**
 * Conformance suite of cached functions (`getOrSet`, `cacheResult`, `invalidate`, the decorators), run
 * unchanged on the memory engine, a real redis-server (also as a per-tenant ACL user) and a Redis
 * Cluster. Two clients on one server stand for two processes (each has its own in-process state); the
 * real multi-process cases are in cached-redis.test.ts.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { functionIdentity, resultKey } from '../src/cached/keys.js';
import { FAILURE_MARK_MS, lockKey } from '../src/cached/lock.js';
import { decodeEntry, encodeResult } from '../src/cached/result-codec.js';
import {
  CacheClient,
  type CacheClientOptions,
  CacheConnectionError,
  CacheTimeoutError,
  CacheValidationError,
  cacheResult,
  type FactoryContext,
  invalidateCache,
  OPERATION_CHANNEL,
  type OperationContext,
} from '../src/index.js';
import { ClientPool } from './helpers/clients.js';

/** What an engine under test provides. */
export interface CachedTarget {
  /** Options (connection included) for a client of `tenant`; `extra` is merged in. */
  options(tenant: string, extra?: Partial<CacheClientOptions>): CacheClientOptions;
  /** Called before each test with its tenant (e.g. to create its ACL user). */
  prepareTenant?(tenant: string): Promise<void>;
  /**
   * Issue 18: how to make the client for options (default `new CacheClient(options)`); the tenant-view
   * targets return a `TenantCaches` view instead (helpers/tenant-views.ts).
   */
  open?(options: CacheClientOptions): CacheClient;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Register the suite for one engine. `setup` runs in `beforeAll`; `teardown` in `afterAll`. */
export function registerCachedSuite(
  name: string,
  setup: () => Promise<CachedTarget>,
  teardown: () => Promise<void> = async () => {},
  { timed = true }: { timed?: boolean } = {},
): void {
  /** Tests that wait out TTLs and timeouts (seconds each): skipped where `timed` is false. */
  const timedIt = timed ? it : it.skip;
  describe(`cached functions: ${name}`, () => {
    let target: CachedTarget;
    const pool = new ClientPool();
    let counter = 0;
    let tenant: string;
    /** A client of this test's tenant (deployment `dep-1` unless `extra` says otherwise). */
    const open = (extra: Partial<CacheClientOptions> = {}): CacheClient =>
      pool.open(target.options(tenant, { deploymentId: 'dep-1', ...extra }), target.open);

    beforeAll(async () => {
      target = await setup();
    });
    afterAll(async () => {
      await pool.closeAll();
      await teardown();
    });
    beforeEach(async () => {
      tenant = `cf${process.pid}x${counter++}`;
      await target.prepareTenant?.(tenant);
    });

    it('concurrent callers of one cold key (two clients) run the factory once', async () => {
      const [a, b] = [open(), open()];
      let runs = 0;
      const factory = async () => {
        runs++;
        await sleep(150);
        return { report: 42 };
      };
      const calls = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).getOrSet('report', factory));
      const results = await Promise.all(calls);
      expect(runs).toBe(1);
      for (const r of results) expect(r).toEqual({ report: 42 });
      expect(a.stats().cachedFunctions.coalesced).toBeGreaterThan(0);
      // The loser client waited on the lock, then read the owner's value.
      const waits = (a.stats().cachedFunctions.lockWaits ?? 0) + (b.stats().cachedFunctions.lockWaits ?? 0);
      expect(waits).toBe(1);
      // The lock is released once the value is stored (in the background: as the ACL user, GET then DEL).
      const plain = open({ deploymentId: null });
      for (let i = 0; i < 20 && (await plain.exists(lockKey('report'))) > 0; i++) await sleep(25);
      expect(await plain.exists(lockKey('report'))).toBe(0);
    });

    it('results keep their types on a hit (numbers, strings of digits, null, Date, bigint, nested)', async () => {
      const cache = open();
      const value = {
        n: 42,
        s: '123',
        f: 1.5,
        t: true,
        z: null,
        u: undefined,
        d: new Date('2024-01-02T03:04:05.678Z'),
        big: 2n ** 70n,
        nested: [[1, '1'], { deep: [null, false] }],
      };
      let runs = 0;
      const fn = cache.cacheResult(async (id: string) => {
        runs++;
        return { ...value, id };
      });
      const first = await fn('a');
      const hit = await fn('a');
      expect(runs).toBe(1);
      expect(hit).toEqual({ ...value, id: 'a' });
      expect(hit.d).toBeInstanceOf(Date);
      expect(typeof hit.big).toBe('bigint');
      expect(hit.s).toBe('123');
      expect(hit).not.toBe(first); // a hit is decoded afresh: mutating it cannot corrupt the cache
      // Primitives and null are values too.
      const prim = cache.cacheResult(async (k: string) => (k === 'null' ? null : k === 'num' ? 7 : '7'));
      expect([await prim('null'), await prim('num'), await prim('str')]).toEqual([null, 7, '7']);
      expect([await prim('null'), await prim('num'), await prim('str')]).toEqual([null, 7, '7']);
      expect(cache.stats().cachedFunctions.hits).toBe(4);
    });

    it('different functions never share an entry; object key order does not matter, types do', async () => {
      const cache = open();
      const calls: string[] = [];
      const double = cache.cacheResult(async (x: unknown) => {
        calls.push(`double ${JSON.stringify(x)}`);
        return 'double';
      });
      const triple = cache.cacheResult(async (x: unknown) => {
        calls.push(`triple ${JSON.stringify(x)}`);
        return 'triple';
      });
      expect(await double({ a: 1, b: 2 })).toBe('double');
      expect(await triple({ a: 1, b: 2 })).toBe('triple');
      expect(await double({ b: 2, a: 1 })).toBe('double'); // same entry
      expect(await double('123')).toBe('double');
      expect(await double(123)).toBe('double'); // '123' and 123 differ
      expect(await double([1, 2])).toBe('double');
      expect(await double([2, 1])).toBe('double'); // positional order matters
      expect(calls).toEqual([
        'double {"a":1,"b":2}',
        'triple {"a":1,"b":2}',
        'double "123"',
        'double 123',
        'double [1,2]',
        'double [2,1]',
      ]);
    });

    it('arguments whose state is not plain data: URL and bytes are digested whole, a Request needs `key`', async () => {
      const cache = open();
      let runs = 0;
      const fetchPage = cache.cacheResult(async (url: URL) => {
        runs++;
        return url.href;
      });
      expect(await fetchPage(new URL('http://a/'))).toBe('http://a/');
      expect(await fetchPage(new URL('http://b/'))).toBe('http://b/'); // not the first call's entry
      expect(await fetchPage(new URL('http://a/'))).toBe('http://a/');
      expect(runs).toBe(2);
      const sum = cache.cacheResult(async (bytes: Uint8Array) => bytes.reduce((a, b) => a + b, 0));
      expect([await sum(new Uint8Array([1])), await sum(new Uint8Array([2]))]).toEqual([1, 2]);
      // No guessing for a Request (its URL, method, headers and body are internal state).
      const noKey = cache.cacheResult(async (req: Request) => req.url);
      await expect(noKey(new Request('http://a/'))).rejects.toThrow(/pass the `key` option/);
      // The README's Cache-Control example: a `key` from the request, the header from the request.
      const search = cache.cacheResult(
        async (req: Request) => {
          runs++;
          return new URL(req.url).searchParams.get('q');
        },
        {
          key: (req) => `search:${req.url}`,
          cacheControl: (req) => req.headers.get('cache-control'),
        },
      );
      const req = (q: string, cc?: string) =>
        new Request(`http://app/search?q=${q}`, cc === undefined ? {} : { headers: { 'cache-control': cc } });
      const before = runs;
      expect(await search(req('x', 'max-age=60'))).toBe('x');
      expect(await search(req('y', 'max-age=60'))).toBe('y');
      expect(await search(req('x', 'max-age=60'))).toBe('x');
      expect(runs - before).toBe(2);
      expect(await search(req('z', 'private, max-age=60'))).toBe('z');
      expect(await search(req('z', 'private, max-age=60'))).toBe('z');
      expect(runs - before).toBe(4); // private: never stored in this shared cache
    });

    it('stores results under <tenant>:[<prefix>:]<deploymentId>:<keyPrefix>[:<entityId>]:<digest>', async () => {
      const cache = open({ additionalPrefix: 'svc' });
      async function findUser(id: number) {
        return { id };
      }
      const find = cache.cacheResult(findUser, { keyPrefix: 'users', entityId: (id) => id });
      await find(42);
      const expected = resultKey('dep-1', 'users', '42', functionIdentity(findUser), [42]);
      expect(expected).toMatch(/^dep-1:users:42:[A-Za-z0-9_-]{43}$/);
      const plain = open({ deploymentId: null, additionalPrefix: 'svc' });
      expect(await plain.exists(expected)).toBe(1);
      expect(await plain.flushByPattern('dep-1:users:42:*')).toBe(1);
      // Without a deployment id (none configured, no PRESS_DEPLOYMENT_ID) the segment is omitted.
      const bare = pool.open(target.options(tenant, { env: {} }), target.open);
      const noDep = bare.cacheResult(findUser, { keyPrefix: 'users', entityId: (id) => id });
      await noDep(7);
      expect(await bare.flushByPattern('users:7:*')).toBe(1);
      // The env variable is the default.
      const fromEnv = pool.open(
        target.options(tenant, { env: { PRESS_DEPLOYMENT_ID: 'env-dep' } }),
        target.open,
      );
      await fromEnv.cacheResult(findUser, { keyPrefix: 'users' })(1);
      expect(await bare.flushByPattern('env-dep:users:*')).toBe(1);
    });

    it("entity 42's invalidation keeps 420's entries; broad patterns clear the prefix", async () => {
      const cache = open();
      let runs = 0;
      const find = cache.cacheResult(
        async (id: number) => {
          runs++;
          return id;
        },
        { keyPrefix: 'users', entityId: (id) => id },
      );
      const list = cache.cacheResult(async () => [1, 2], { keyPrefix: 'user-lists' });
      await Promise.all([find(42), find(420), find(4), list()]);
      expect(runs).toBe(3);
      expect(await cache.invalidate({ entityId: 42, targetedPatterns: ['users'] }, { wait: true })).toBe(1);
      await find(420);
      await find(4);
      expect(runs).toBe(3); // 420 and 4 still cached
      await find(42);
      expect(runs).toBe(4); // 42 ran again
      expect(await cache.invalidate({ broadPatterns: ['user-lists'] }, { wait: true })).toBe(1);
      expect(await cache.invalidate({ entityId: 'x*', targetedPatterns: ['users'] }, { wait: true })).toBe(0); // escaped
      // Entity ids are kept apart: 'org' vs 'org-1' / 'org1'; an id with ':' ('org:1' would fall under
      // 'org:*') is refused, by the cached call and by invalidate, before any I/O.
      const org = cache.cacheResult(
        async (id: string) => {
          runs++;
          return id;
        },
        { keyPrefix: 'orgs', entityId: (id) => id },
      );
      await Promise.all([org('org'), org('org-1'), org('org1'), org('org*')]);
      expect(await cache.invalidate({ entityId: 'org', targetedPatterns: ['orgs'] }, { wait: true })).toBe(1);
      const runsBefore = runs;
      await Promise.all([org('org-1'), org('org1'), org('org*')]);
      expect(runs).toBe(runsBefore); // still cached
      await expect(org('org:1')).rejects.toThrow(/must not contain ':'/);
      await expect(org('org:1')).rejects.toBeInstanceOf(CacheValidationError);
      await expect(
        cache.invalidate({ entityId: 'org:1', targetedPatterns: ['orgs'] }),
      ).rejects.toBeInstanceOf(CacheValidationError);
      expect(runs).toBe(runsBefore);
      await expect(cache.invalidate({ targetedPatterns: ['users'] })).rejects.toBeInstanceOf(
        CacheValidationError,
      );
    });

    it('invalidate clears a Python-layout entry; a Python-style pattern delete clears ours', async () => {
      const cache = open();
      const plain = open({ deploymentId: null });
      // As Python's cache_result writes it: <dep>:<prefix>:<entity>:<base64 of the sorted JSON args>.
      const pythonKey = `dep-1:users:42:${Buffer.from('{"args": [42], "kwargs": {}}').toString('base64')}`;
      await plain.set(pythonKey, '{"id": 42}');
      await plain.set(`dep-1:users:420:${Buffer.from('{"args": [420]}').toString('base64')}`, '{"id": 420}');
      expect(await cache.invalidate({ entityId: 42, targetedPatterns: ['users'] }, { wait: true })).toBe(1);
      expect(await plain.exists(pythonKey)).toBe(0);
      // Python's invalidate_cache(targeted) runs flush_by_pattern('<dep>:<pattern>:<entity>*').
      let runs = 0;
      const find = cache.cacheResult(
        async (id: number) => {
          runs++;
          return id;
        },
        { keyPrefix: 'users', entityId: (id) => id },
      );
      await find(7);
      expect(await plain.flushByPattern('dep-1:users:7*')).toBe(1);
      await find(7);
      expect(runs).toBe(2);
      // Python's broad delete: flush_by_pattern('<dep>:<pattern>*').
      expect(await plain.flushByPattern('dep-1:users*')).toBe(2); // 7 and the Python 420 entry
    });

    it('a failing factory: every concurrent caller gets its error, one run, nothing cached', async () => {
      const [a, b] = [open(), open()];
      let runs = 0;
      const boom = new Error('factory broke');
      const factory = async () => {
        runs++;
        await sleep(100);
        throw boom;
      };
      const calls = Array.from({ length: 10 }, (_, i) => (i < 5 ? a : b).getOrSet('fails', factory));
      const settled = await Promise.allSettled(calls);
      expect(runs).toBe(1);
      for (const s of settled) {
        expect(s.status).toBe('rejected');
        const reason = (s as PromiseRejectedResult).reason as Error;
        // Same process: the factory's own error; the other client: a CacheFactoryError.
        expect(reason === boom || reason.name === 'CacheFactoryError').toBe(true);
      }
      expect(settled.filter((s) => (s as PromiseRejectedResult).reason === boom).length).toBeGreaterThan(0);
      // Not cached: the next call runs the factory again (after the failure mark, no wait).
      expect(await a.getOrSet('fails', async () => 'ok')).toBe('ok');
    });

    it('Cache-Control: no-store/no-cache/must-revalidate bypass, max-age/s-maxage set the TTL, 0 stores nothing', async () => {
      const cache = open();
      const plain = open({ deploymentId: null });
      let runs = 0;
      const f = async () => ++runs;
      for (const header of ['no-store', 'No-Cache', 'must-revalidate, max-age=60', 'max-age=0']) {
        const before = runs;
        await cache.getOrSet(`cc-${header}`, f, { cacheControl: header });
        await cache.getOrSet(`cc-${header}`, f, { cacheControl: header });
        expect(runs - before).toBe(2); // each call runs the function once
        expect(await plain.exists(`cc-${header}`)).toBe(0);
      }
      await cache.getOrSet('cc-max', f, { cacheControl: 'public, max-age=120' });
      expect(await plain.ttl('cc-max')).toBeGreaterThan(100);
      expect(await plain.ttl('cc-max')).toBeLessThanOrEqual(120);
      await cache.getOrSet('cc-s', f, { cacheControl: 'max-age=10, s-maxage=300', ttl: 60 });
      expect(await plain.ttl('cc-s')).toBeGreaterThan(250);
      // Malformed or private: not stored; too large: clamped to the largest TTL, not the default.
      for (const header of ['max-age=abc', 'max-age=-1', 'private, max-age=60']) {
        await cache.getOrSet(`cc-bad-${header}`, f, { cacheControl: header, ttl: 60 });
        expect(await plain.exists(`cc-bad-${header}`)).toBe(0);
      }
      await cache.getOrSet('cc-huge', f, { cacheControl: 'max-age=99999999999', ttl: 60 });
      expect(await plain.ttl('cc-huge')).toBeGreaterThan(2 ** 32 - 100);
      // cacheResult: the header comes from the arguments.
      const g = cache.cacheResult(async (_req: { cc: string }) => ++runs, { cacheControl: (req) => req.cc });
      const before = runs;
      await g({ cc: 'no-store' });
      await g({ cc: 'no-store' });
      expect(runs - before).toBe(2);
      await g({ cc: 'max-age=30' });
      await g({ cc: 'max-age=30' });
      expect(runs - before).toBe(3);
      expect(cache.stats().cachedFunctions.bypasses).toBe(13);
    });

    it('grace serves the stale value while exactly one refresh runs (two clients)', async () => {
      const [a, b] = [open(), open()];
      let refreshes = 0;
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      await a.getOrSet('g', async () => 'v1', { ttl: 1, grace: 60 });
      await sleep(1100); // past its TTL, within its grace
      const refresh = async () => {
        refreshes++;
        await gate;
        return 'v2';
      };
      const t0 = performance.now();
      const stale = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).getOrSet('g', refresh, { ttl: 1, grace: 60 })),
      );
      expect(performance.now() - t0).toBeLessThan(1000); // nobody waited for the refresh
      expect(stale.every((v) => v === 'v1')).toBe(true);
      await sleep(100);
      expect(refreshes).toBe(1);
      release();
      await sleep(200);
      expect(await b.getOrSet('g', refresh, { ttl: 1, grace: 60 })).toBe('v2');
      expect(refreshes).toBe(1);
      const served =
        (a.stats().cachedFunctions.staleServed ?? 0) + (b.stats().cachedFunctions.staleServed ?? 0);
      expect(served).toBeGreaterThanOrEqual(2);
    });

    it('a failed refresh keeps the stale value and is reported, not thrown', async () => {
      const warnings: string[] = [];
      const cache = open({ logger: { debug: () => {}, warn: (m) => warnings.push(m) } });
      await cache.getOrSet('gf', async () => 'old', { ttl: 1, grace: 60 });
      await sleep(1100);
      const failing = async (): Promise<string> => {
        throw new Error('backend down');
      };
      expect(await cache.getOrSet('gf', failing, { ttl: 1, grace: 60 })).toBe('old');
      await sleep(50);
      expect(cache.stats().cachedFunctions.refreshErrors).toBe(1);
      expect(warnings.some((w) => w.includes('refreshing "gf" failed'))).toBe(true);
      // A failed refresh is retried at most every FAILURE_MARK_MS (across processes): no hammering.
      expect(await cache.getOrSet('gf', failing, { ttl: 1, grace: 60 })).toBe('old');
      await sleep(50);
      expect(cache.stats().cachedFunctions.refreshErrors).toBe(1);
      await sleep(FAILURE_MARK_MS);
      // With timeoutMs a quick refresh is awaited.
      expect(await cache.getOrSet('gf', async () => 'new', { ttl: 1, grace: 60, timeoutMs: 1000 })).toBe(
        'new',
      );
    });

    it('close() abandons a running background refresh and fill quietly: locks released at once, nothing stored, no warnings', async () => {
      const warnings: string[] = [];
      const cache = open({ logger: { debug: () => {}, warn: (m) => warnings.push(m) } });
      const other = open({ deploymentId: null });
      await cache.getOrSet('bg', async () => 'v1', { ttl: 1, grace: 60 });
      await sleep(1100); // stale, within grace
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => {
        release = r;
      });
      let started = 0;
      const slow = async (value: string) => {
        started++;
        await gate;
        return value;
      };
      expect(await cache.getOrSet('bg', () => slow('v2'), { ttl: 1, grace: 60 })).toBe('v1');
      const fill = cache.getOrSet('fg', () => slow('fresh'), { ttl: 60 });
      while (started < 2) await sleep(5);
      expect(await other.exists(lockKey('bg'), lockKey('fg'))).toBe(2);
      const t0 = performance.now();
      await cache.close();
      expect(performance.now() - t0).toBeLessThan(2000); // does not wait for the factories
      expect(await other.exists(lockKey('bg'), lockKey('fg'))).toBe(0); // released by close()
      release();
      expect(await fill).toBe('fresh'); // the waiting caller still gets its result
      await sleep(100);
      expect(warnings).toEqual([]);
      expect(await other.exists('fg')).toBe(0); // nothing stored after close
      // Another process's refresh is not blocked by the abandoned lock: it refreshes at once.
      expect(await other.getOrSet('bg', async () => 'v3', { ttl: 1, grace: 60, timeoutMs: 1000 })).toBe('v3');
    });

    it("codec 'client': a plain get (and Python) reads the value getOrSet stored; grace adds nothing to it", async () => {
      const cache = open({ codec: 'json' });
      await cache.getOrSet('plain', async () => ({ a: [1, 2] }), { codec: 'client', grace: 30 });
      expect(await cache.get('plain')).toEqual({ a: [1, 2] });
      // An entry written by set reads as a hit through getOrSet (typed codec falls back to the client's).
      await cache.set('written', { b: 1 });
      expect(await cache.getOrSet('written', async () => 'unused')).toEqual({ b: 1 });
    });

    it('decorators: @cacheResult caches per arguments, @invalidateCache clears the entity after success', async () => {
      const cache = open();
      let runs = 0;
      class Users {
        @cacheResult({ client: () => cache, keyPrefix: 'users', entityId: (id: number) => id })
        async find(id: number): Promise<{ id: number; at: Date }> {
          runs++;
          return { id, at: new Date(0) };
        }

        @invalidateCache({ client: () => cache, entityId: (id: number) => id, targetedPatterns: ['users'] })
        async rename(id: number, _name: string): Promise<string> {
          return `renamed ${id}`;
        }

        @invalidateCache({ client: () => cache, entityId: (id: number) => id, targetedPatterns: ['users'] })
        async failingRename(_id: number): Promise<string> {
          throw new Error('write failed');
        }
      }
      const users = new Users();
      expect((await users.find(1)).at).toBeInstanceOf(Date);
      await users.find(1);
      await new Users().find(1); // instances share entries (this is not part of the key)
      await users.find(10);
      expect(runs).toBe(2);
      await expect(users.failingRename(1)).rejects.toThrow('write failed');
      await users.find(1);
      expect(runs).toBe(2); // a failed write invalidates nothing
      expect(await users.rename(1, 'x')).toBe('renamed 1');
      await users.find(1);
      await users.find(10);
      expect(runs).toBe(3); // only entity 1 ran again
    });

    it('a result larger than maxValueBytes is returned, not cached, with a warning; the lock is released', async () => {
      const warnings: string[] = [];
      const cache = open({ maxValueBytes: 100, logger: { debug: () => {}, warn: (m) => warnings.push(m) } });
      let runs = 0;
      const big = async () => {
        runs++;
        return 'x'.repeat(500);
      };
      expect(await cache.getOrSet('big', big)).toHaveLength(500);
      expect(await cache.getOrSet('big', big)).toHaveLength(500);
      expect(runs).toBe(2);
      expect(warnings.some((w) => w.includes('"big" is not cached'))).toBe(true);
      const plain = open({ deploymentId: null });
      await new Promise((r) => setTimeout(r, 50)); // the release is sent after the result is returned
      expect(await plain.exists('big', lockKey('big'))).toBe(0);
    });

    it('a closed client rejects instead of running the factory uncached', async () => {
      const cache = open();
      const f = cache.cacheResult(async () => 1, { fallback: true });
      expect(await f()).toBe(1);
      await cache.close();
      let runs = 0;
      await expect(cache.getOrSet('after-close', async () => ++runs)).rejects.toBeInstanceOf(
        CacheConnectionError,
      );
      await expect(f()).rejects.toBeInstanceOf(CacheConnectionError);
      expect(runs).toBe(0);
    });

    // Regression tests of issue 21 (each named after the failure it prevents).

    it('close() right after a factory failure leaves no lock behind: another client does not wait for it', async () => {
      const [a, b] = [open(), open()];
      const quiet = { lockTimeoutMs: 2000 };
      for (let i = 0; i < 3; i++) {
        const key = `closed-after-failure-${i}`;
        const failing = async (): Promise<string> => {
          throw new Error('factory broke');
        };
        await a.getOrSet(key, failing, quiet).catch(() => {});
        if (i === 2) await a.close();
        expect(await b.getOrSet(key, async () => 'ok', quiet)).toBe('ok');
      }
      expect(b.stats().cachedFunctions.lockTimeouts).toBe(0); // nobody waited for a dead lock
    });

    timedIt(
      'a hung factory does not block its key forever: past hardTimeoutMs callers reject and the next call fills afresh',
      async () => {
        const [a, b] = [open(), open()];
        const hung = () => new Promise<string>(() => {});
        const opts = { hardTimeoutMs: 300, lockTimeoutMs: 5000 };
        const first = a.getOrSet('hung', hung, opts);
        const joiner = a.getOrSet('hung', async () => 'unused', opts);
        await expect(first).rejects.toBeInstanceOf(CacheTimeoutError);
        await expect(joiner).rejects.toBeInstanceOf(CacheTimeoutError);
        // The abandoned fill frees the key in this process and across processes (its lock is released).
        expect(await a.getOrSet('hung', async () => 'fresh', opts)).toBe('fresh');
        expect(await b.getOrSet('hung-b', async () => 'b', opts)).toBe('b');
        const again = a.getOrSet('hung-b2', hung, opts).catch((e: unknown) => e);
        await sleep(50);
        // b waits for a's lease until a's fill is abandoned (its lock released), then fills the key itself.
        expect(await b.getOrSet('hung-b2', async () => 'other', { ...opts, hardTimeoutMs: 5000 })).toBe(
          'other',
        );
        expect(b.stats().cachedFunctions.lockTimeouts).toBe(0);
        expect(await again).toBeInstanceOf(CacheTimeoutError);
      },
    );

    timedIt(
      'an abandoned fill (hardTimeoutMs) still stores its late result, unless this client invalidated meanwhile',
      async () => {
        const cache = open();
        const late = (value: string) => async () => {
          await sleep(300);
          return value;
        };
        const opts = { hardTimeoutMs: 100 };
        await expect(cache.getOrSet('late', late('late value'), opts)).rejects.toBeInstanceOf(
          CacheTimeoutError,
        );
        await sleep(400); // the factory finished after its callers gave up
        expect(await cache.getOrSet('late', async () => 'fresh', opts)).toBe('late value');
        // An invalidation while the abandoned factory runs: its result is not stored.
        await expect(cache.getOrSet('late-2', late('late value'), opts)).rejects.toBeInstanceOf(
          CacheTimeoutError,
        );
        await cache.invalidate({ broadPatterns: ['late-2'] });
        await sleep(400);
        expect(await cache.getOrSet('late-2', async () => 'fresh', opts)).toBe('fresh');
        expect(cache.stats().cachedFunctions.hardTimeouts).toBe(2);
      },
    );

    it("a caller that starts after another owner's failure runs its own factory instead of getting that failure", async () => {
      const [a, b] = [open(), open()];
      let own = 0;
      for (let i = 0; i < 20; i++) {
        const key = `after-failure-${i}`;
        const failing = async (): Promise<string> => {
          await sleep(5);
          throw new Error('factory broke');
        };
        await Promise.allSettled(Array.from({ length: 3 }, () => a.getOrSet(key, failing)));
        expect(await b.getOrSet(key, async () => `own ${++own}`)).toBe(`own ${own}`);
      }
    });

    it('one span and one stats call per public getOrSet call, with its hit or miss', async () => {
      const cache = open();
      await cache.ping();
      const spans: string[] = [];
      const channel = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);
      const handlers = {
        start: () => {},
        end: () => {},
        asyncStart: () => {},
        // Every operation ends with one asyncEnd (an answer from memory publishes nothing else).
        asyncEnd: (ctx: OperationContext) => spans.push(ctx.operation),
        error: () => {},
      };
      channel.subscribe(handlers);
      try {
        await cache.getOrSet('counted', async () => 1, { grace: 10 }); // miss: read, lock, recheck, store, release
        await cache.getOrSet('counted', async () => 2, { grace: 10 }); // hit
      } finally {
        channel.unsubscribe(handlers);
      }
      expect(spans).toEqual(['getOrSet', 'getOrSet']);
      const op = cache.stats().operations.getOrSet;
      expect(op).toMatchObject({ calls: 2, errors: 0, hits: 1, misses: 1 });
      const fn = cache.cacheResult(async () => 3);
      await fn();
      await fn();
      expect(cache.stats().operations.cacheResult).toMatchObject({ calls: 2, hits: 1, misses: 1 });
    });

    it("codec 'client': a miss returns what the next hit returns (the codec's round trip), not the factory's own value", async () => {
      for (const codec of ['peak', 'json'] as const) {
        const cache = open({ codec });
        const produce = async () => ({ n: 42, s: '42', d: new Date(0), nested: [1, '1'] });
        const miss = await cache.getOrSet(`round-trip-${codec}`, produce, { codec: 'client' });
        const hit = await cache.getOrSet(`round-trip-${codec}`, produce, { codec: 'client' });
        expect(miss).toEqual(hit);
        expect(typeof (miss as { d: unknown }).d).toBe('string'); // typed as the codec's value, not the factory's
        const text = async () => '42';
        expect(await cache.getOrSet(`text-${codec}`, text, { codec: 'client' })).toEqual(
          await cache.getOrSet(`text-${codec}`, text, { codec: 'client' }),
        );
      }
    });

    it('the fill lock is a lease: a factory 3x longer than lockTtlMs runs once across two clients', async () => {
      const [a, b] = [open(), open()];
      await Promise.all([a.ping(), b.ping()]);
      let runs = 0;
      const slow = async () => {
        runs++;
        await sleep(600);
        return 'slow';
      };
      const opts = { lockTtlMs: 200, lockTimeoutMs: 5000 };
      const first = a.getOrSet('leased', slow, opts);
      await sleep(50);
      expect(await Promise.all([first, b.getOrSet('leased', slow, opts)])).toEqual(['slow', 'slow']);
      expect(runs).toBe(1); // without the lease b took the expired lock after 200 ms and ran it again
      expect(b.stats().cachedFunctions.lockWaits).toBe(1);
    });

    it('the factory context: ctx.ttl and ctx.grace set the entry, ctx.tags travel with it, ctx.skip() stores nothing', async () => {
      const cache = open();
      const plain = open({ deploymentId: null });
      await cache.getOrSet(
        'ctx-ttl',
        (ctx) => {
          ctx.ttl = 120;
          return 1;
        },
        { ttl: 10 },
      );
      expect(await plain.ttl('ctx-ttl')).toBeGreaterThan(100);
      // The entry's own grace is honoured on a hit, though the call has none.
      await cache.getOrSet('ctx-grace', (ctx) => {
        ctx.ttl = 1;
        ctx.grace = 60;
        return 'v1';
      });
      expect(await plain.ttl('ctx-grace')).toBeGreaterThan(55); // stored for ttl + grace
      // Such an entry 30 s from its end (past its 1 s TTL, within its 60 s grace) is stale for a call
      // without a grace option: it is served while one refresh runs.
      const entry = encodeResult('v1', { ttl: 1, grace: 60, tags: [] });
      await plain.set('ctx-stale', entry, 30);
      expect(await cache.getOrSet('ctx-stale', async () => 'v2')).toBe('v1');
      expect(cache.stats().cachedFunctions.staleServed).toBe(1);
      // Tags are stored with the entry (typed codec), for tag invalidation.
      await cache.getOrSet('ctx-tags', (ctx) => {
        ctx.tags = ['user:1', 'users', 'users'];
        return { id: 1 };
      });
      const raw = (await plain.get('ctx-tags')) as string;
      expect(decodeEntry(raw, () => null).meta?.tags).toEqual(['user:1', 'users']);
      // skip(): the value is returned, nothing is cached.
      let runs = 0;
      const skipping = (ctx: FactoryContext) => {
        ctx.skip();
        return ++runs;
      };
      expect(await cache.getOrSet('ctx-skip', skipping)).toBe(1);
      expect(await cache.getOrSet('ctx-skip', skipping)).toBe(2);
      expect(await plain.exists('ctx-skip')).toBe(0);
      // Invalid values throw in the factory: the call rejects, nothing is stored.
      await expect(
        cache.getOrSet('ctx-bad', (ctx) => {
          ctx.ttl = 0;
          return 1;
        }),
      ).rejects.toBeInstanceOf(CacheValidationError);
      // cacheResult with `context: true`: the context comes after the arguments (not part of the key).
      const find = cache.cacheResult(
        async (id: number, ctx: FactoryContext) => {
          runs++;
          if (id < 0) ctx.skip();
          else ctx.ttl = 300;
          return id;
        },
        { context: true, ttl: 5 },
      );
      const before = runs;
      expect([await find(1), await find(1), await find(-1), await find(-1)]).toEqual([1, 1, -1, -1]);
      expect(runs - before).toBe(3);
    });

    timedIt(
      'eager refresh: a hot key is refreshed before it expires, so no caller sees a miss across its TTL',
      async () => {
        const [a, b] = [open(), open()];
        let version = 0;
        let runs = 0;
        const factory = async () => {
          runs++;
          await sleep(30);
          return ++version;
        };
        const opts = { ttl: 1, eagerRefresh: 0.2 }; // refreshed from 0.2 s of age: 0.8 s of margin
        expect(await a.getOrSet('hot', factory, opts)).toBe(1);
        const seen = new Set<number>();
        const t0 = performance.now();
        while (performance.now() - t0 < 1400) {
          const values = await Promise.all(
            Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).getOrSet('hot', factory, opts)),
          );
          for (const v of values) seen.add(v);
          await sleep(20);
        }
        const [sa, sb] = [a.stats().cachedFunctions, b.stats().cachedFunctions];
        expect(sa.misses + sb.misses).toBe(1); // the very first call only
        expect(seen.size).toBeGreaterThanOrEqual(2); // refreshed before its TTL passed, and again
        expect(sa.refreshes + sb.refreshes).toBe(runs - 1); // one factory run per refresh, across clients
      },
    );

    timedIt(
      'graceBackoffMs bounds factory runs while the data source is down; a stale value is served throughout',
      async () => {
        const quietLogger = { logger: { debug: () => {}, warn: () => {} } };
        const [a, b] = [open(quietLogger), open(quietLogger)];
        const opts = (graceBackoffMs: number) => ({ ttl: 1, grace: 60, graceBackoffMs });
        // Stale at once: 30 s left of a 1 s TTL plus 60 s grace.
        const plain = open({ deploymentId: null });
        await Promise.all([0, 600].map((ms) => plain.set(`outage-${ms}`, encodeResult('old'), 30)));
        const run = async (graceBackoffMs: number) => {
          const key = `outage-${graceBackoffMs}`;
          let runs = 0;
          const down = async (): Promise<string> => {
            runs++;
            throw new Error('data source down');
          };
          const t0 = performance.now();
          while (performance.now() - t0 < 1000) {
            const values = await Promise.all([
              a.getOrSet(key, down, opts(graceBackoffMs)),
              b.getOrSet(key, down, opts(graceBackoffMs)),
            ]);
            expect(values).toEqual(['old', 'old']);
            await sleep(10);
          }
          return runs;
        };
        const [quiet, none] = await Promise.all([run(600), run(0)]);
        expect(quiet).toBeGreaterThanOrEqual(1);
        expect(quiet).toBeLessThanOrEqual(3); // at 0, ~600 ms (and a late one at most), across both clients
        expect(none).toBeGreaterThan(10); // no backoff: every call retries the factory
      },
    );

    it('getOrSetMany: one factory call with only the missing keys, results in key order, repeats answered once', async () => {
      const cache = open();
      const calls: string[][] = [];
      const load = async (missing: string[]) => {
        calls.push(missing);
        return new Map(missing.map((k) => [k, { k, at: new Date(0) }]));
      };
      await cache.getOrSet('m-b', async () => ({ k: 'm-b', at: new Date(0) }));
      const first = await cache.getOrSetMany(['m-a', 'm-b', 'm-c', 'm-a'], load);
      expect(first.map((v) => v?.k)).toEqual(['m-a', 'm-b', 'm-c', 'm-a']);
      expect(first[0]?.at).toBeInstanceOf(Date);
      expect(calls).toEqual([['m-a', 'm-c']]); // m-b was a hit; m-a asked once
      // All hits now: no factory call. A record works as well as a Map; left-out keys are undefined.
      const record = async (missing: string[]) => {
        calls.push(missing);
        return Object.fromEntries(
          missing.filter((k) => k !== 'm-none').map((k) => [k, { k, at: new Date(1) }]),
        );
      };
      const second = await cache.getOrSetMany(['m-c', 'm-d', 'm-none', 'm-b'], record);
      expect(second.map((v) => v?.k)).toEqual(['m-c', 'm-d', undefined, 'm-b']);
      expect(calls).toEqual([
        ['m-a', 'm-c'],
        ['m-d', 'm-none'],
      ]);
      const plain = open({ deploymentId: null });
      expect(await plain.exists('m-d', 'm-none')).toBe(1); // the left-out key is not stored
      expect(await plain.exists(lockKey('m-d'), lockKey('m-none'))).toBe(0); // locks released
      expect(cache.stats().operations.getOrSetMany).toMatchObject({ calls: 2, hits: 3, misses: 4 });
      expect(await cache.getOrSetMany([], record)).toEqual([]);
      await expect(cache.getOrSetMany(['x'], async () => [1] as never)).rejects.toBeInstanceOf(
        CacheValidationError,
      );
    });

    it('getOrSetMany: a failing factory fails the call, stores nothing, and the next call runs again', async () => {
      const [a, b] = [open(), open()];
      await Promise.all([a.ping(), b.ping()]);
      let runs = 0;
      const failing = async (): Promise<Map<string, number>> => {
        runs++;
        await sleep(50);
        throw new Error('batch broke');
      };
      const settled = await Promise.allSettled([
        a.getOrSetMany(['f-1', 'f-2'], failing),
        sleep(20).then(() => a.getOrSet('f-1', async () => 0)), // joins the batch's fill of f-1
        b.getOrSetMany(['f-2', 'f-3'], failing), // waits for a's lock on f-2
      ]);
      expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(runs).toBeLessThanOrEqual(2); // a's batch, and b's for f-3 at most (f-2 was a's)
      const reason = (settled[2] as PromiseRejectedResult).reason as Error;
      expect(reason.message === 'batch broke' || reason.name === 'CacheFactoryError').toBe(true);
      const ok = await a.getOrSetMany(['f-1', 'f-2'], async (missing) => new Map(missing.map((k) => [k, 1])));
      expect(ok).toEqual([1, 1]);
    });

    it('getOrSetMany: four clients on overlapping keys run the factory once per key', async () => {
      const clients = [open(), open(), open(), open()];
      const runs = new Map<string, number>();
      const load = async (missing: string[]) => {
        for (const k of missing) runs.set(k, (runs.get(k) ?? 0) + 1);
        await sleep(100);
        return new Map(missing.map((k) => [k, `v-${k}`]));
      };
      const keysOf = (i: number) => Array.from({ length: 10 }, (_, j) => `o-${i * 5 + j}`); // 0-9, 5-14, ...
      const results = await Promise.all(
        clients.flatMap((c, i) => [
          c.getOrSetMany(keysOf(i), load),
          c.getOrSetMany(keysOf(i).reverse(), load),
        ]),
      );
      results.forEach((values, n) => {
        const i = Math.floor(n / 2);
        const keys = n % 2 === 0 ? keysOf(i) : keysOf(i).reverse();
        expect(values).toEqual(keys.map((k) => `v-${k}`));
      });
      expect(runs.size).toBe(25);
      expect([...runs].filter(([, r]) => r !== 1)).toEqual([]);
    });

    it('validates options before any I/O', async () => {
      const cache = open();
      await expect(cache.getOrSet('k', async () => 1, { ttl: 0 })).rejects.toBeInstanceOf(
        CacheValidationError,
      );
      await expect(cache.getOrSet('k', async () => 1, { grace: -1 })).rejects.toBeInstanceOf(
        CacheValidationError,
      );
      expect(() => cache.cacheResult(async () => 1, { keyPrefix: '' })).toThrow(CacheValidationError);
      const f = cache.cacheResult(async (_cb: unknown) => 1);
      await expect(f(() => 1)).rejects.toThrow(/key/);
      // Unknown (misspelt) options are named, not ignored.
      const typo = { tll: 5 } as unknown as { ttl: number };
      await expect(cache.getOrSet('k', async () => 1, typo)).rejects.toThrow(/Unknown getOrSet option `tll`/);
      expect(() => cache.cacheResult(async () => 1, typo)).toThrow(/Unknown cacheResult option `tll`/);
      expect(() => cache.cacheResult(async () => 1, { fallback: { maxEntres: 5 } as never })).toThrow(
        /Unknown `fallback` option `maxEntres`/,
      );
      // cacheControl is a header value for getOrSet, a function of the arguments for cacheResult: both known.
      expect(() => cache.cacheResult(async () => 1, { cacheControl: () => null })).not.toThrow();
      await expect(cache.invalidate({ broadPattern: ['x'] } as never)).rejects.toThrow(
        /Unknown invalidate option `broadPattern`/,
      );
      expect(() => cacheResult({ client: cache, tll: 5 } as never)).toThrow(
        /Unknown @cacheResult option `tll`/,
      );
      expect(() => invalidateCache({ client: cache, targetPatterns: ['u'] } as never)).toThrow(
        /Unknown @invalidateCache option `targetPatterns`/,
      );
      expect(() => new CacheClient({ ...target.options(tenant), deploymentId: 'a b' })).toThrow(
        CacheValidationError,
      );
    });
  });
}
