/**
 * The near cache's behaviour against real servers, registered once per setup (one server, one server as
 * the README's per-tenant ACL user, a Redis Cluster): own writes, foreign writes (a node-redis connection,
 * redis-cli and a redis-py script) with the invalidation lag measured, expiry, a killed connection,
 * mutation of results, and the memory bound.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheClient, CacheClientOptions, NearCacheOptions } from '../src/index.js';
import { ClientPool } from './helpers/clients.js';

/** What a setup provides to the suite. */
export interface NearCacheSetup {
  /** Client options of `tenant` with `nearCache`. */
  options(tenant: string, nearCache: NearCacheOptions): CacheClientOptions;
  /** A foreign write through `redis-cli` (following cluster redirects). */
  cli(...args: string[]): Promise<string>;
  /** A foreign connection (node-redis) that sets a stored key. */
  foreignSet(key: string, value: string): Promise<void>;
  /** Arguments of `test/fixtures`-free redis-py: how the Python writer connects. */
  python: { host: string; port: number; username?: string; password?: string; cluster: boolean };
  /** `FLUSHALL` on every primary, by another connection. */
  flushAll(): Promise<void>;
  /** `CLIENT KILL TYPE normal` on every node: drops our connections. */
  killClients(): Promise<void>;
  /** Whether the server accepts `DEBUG SET-ACTIVE-EXPIRE` (keys then expire only when touched). */
  debugCommands: boolean;
  /** Create the tenant's user (ACL setups). */
  prepareTenant?(tenant: string): Promise<void>;
  /**
   * Issue 18: how to make the client for options (default `new CacheClient(options)`); the tenant-view
   * targets return a `TenantCaches` view instead (helpers/tenant-views.ts).
   */
  open?(options: CacheClientOptions): CacheClient;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const turn = () => new Promise((r) => setImmediate(r));

/** Percentile `p` (0-1) of `values`. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

/** Bound the tests assert on the lag (generous: shared, noisy machine); the figures are logged. */
const LAG_BOUND_MS = 250;

const PYTHON_WRITER = `
import sys, redis
host, port, user, password, cluster = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None, sys.argv[4] or None, sys.argv[5] == '1'
if cluster:
    from redis.cluster import RedisCluster
    r = RedisCluster(host=host, port=port, username=user, password=password)
else:
    r = redis.Redis(host=host, port=port, username=user, password=password)
print('ready', flush=True)
for line in sys.stdin:
    key, value = line.rstrip('\\n').split(' ', 1)
    r.set(key, value)
    print('ok', flush=True)
`;

/** A long-running redis-py process: each `set` sends one line and waits for its `ok`. */
class PythonWriter {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;

  constructor(python: NearCacheSetup['python']) {
    this.#child = spawn('/usr/bin/python3', [
      '-c',
      PYTHON_WRITER,
      python.host,
      String(python.port),
      python.username ?? '',
      python.password ?? '',
      python.cluster ? '1' : '0',
    ]);
    this.#child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.#lines = createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
  }

  async #line(): Promise<string> {
    const next = await this.#lines.next();
    if (next.done) throw new Error('the Python writer exited');
    return next.value;
  }

  async ready(): Promise<void> {
    expect(await this.#line()).toBe('ready');
  }

  /** Send the write; resolves when Python has its reply. */
  async set(key: string, value: string): Promise<void> {
    this.#child.stdin.write(`${key} ${value}\n`);
    expect(await this.#line()).toBe('ok');
  }

  async close(): Promise<void> {
    this.#child.stdin.end();
    if (this.#child.exitCode === null) await once(this.#child, 'exit');
  }
}

/**
 * Wait (yielding to I/O between reads) until `key` reads `expected`; the milliseconds since `since`.
 * @throws when it is not seen within 5 s.
 */
async function seenAfter(cache: CacheClient, key: string, expected: unknown, since: number): Promise<number> {
  for (;;) {
    if ((await cache.get(key)) === expected) return performance.now() - since;
    if (performance.now() - since > 5000) throw new Error(`${key} never read ${String(expected)}`);
    await turn();
  }
}

/** Register the near cache suite for one setup. */
export function registerNearCacheSuite(
  name: string,
  start: () => Promise<NearCacheSetup>,
  stop: () => Promise<void>,
): void {
  describe(`near cache: ${name}`, () => {
    let setup: NearCacheSetup;
    const pool = new ClientPool();
    let tenants = 0;

    beforeAll(async () => {
      setup = await start();
    }, 120_000);
    afterAll(async () => {
      await pool.closeAll();
      await stop();
    });

    /** A client of a fresh tenant with a near cache of `maxEntries` (and other options). */
    async function open(nearCache: NearCacheOptions = { maxEntries: 1000 }) {
      const tenant = `near${++tenants}`;
      await setup.prepareTenant?.(tenant);
      const cache = pool.open(setup.options(tenant, nearCache), setup.open);
      return { cache, tenant, stored: (key: string) => `${tenant}:${key}` };
    }

    const near = (cache: CacheClient) => {
      const stats = cache.stats().nearCache;
      if (stats === undefined) throw new Error('no near cache stats');
      return stats;
    };

    it('own writes are never stale (500 rounds of set, get, get)', async () => {
      const { cache } = await open();
      for (let i = 0; i < 500; i++) {
        const key = `own:${i % 7}`;
        switch (i % 5) {
          case 0:
            await cache.mset({ [key]: `v${i}`, other: `v${i}` });
            break;
          case 1:
            await cache.set(key, `v${i}`, 60);
            break;
          default:
            await cache.set(key, `v${i}`);
        }
        expect(await cache.get(key)).toBe(`v${i}`);
        expect(await cache.get(key)).toBe(`v${i}`);
        expect(await cache.mget(key, 'other')).toEqual([`v${i}`, expect.anything()]);
        if (i % 50 === 49) {
          await cache.delete(key);
          expect(await cache.get(key)).toBeNull();
          await cache.set(key, 'back');
          expect(await cache.get(key)).toBe('back');
        }
      }
      await cache.flushTenant();
      expect(await cache.get('own:0')).toBeNull();
      const stats = near(cache);
      expect(stats.hits).toBeGreaterThan(500);
      expect(stats.size).toBeGreaterThan(0);
    });

    it('writes by other connections are seen: node-redis, redis-cli and redis-py (lag over 300 writes)', async () => {
      const { cache, stored } = await open();
      const key = 'foreign';
      await cache.set(key, 'start');
      expect(await cache.get(key)).toBe('start');

      // From the write's send, and from the writer's reply (redis-cli: process spawn excluded).
      const lags = {
        nodeRedisFromSend: [] as number[],
        nodeRedisFromReply: [] as number[],
        pythonFromSend: [] as number[],
        pythonFromReply: [] as number[],
        redisCliFromReply: [] as number[],
      };
      for (let i = 0; i < 300; i++) {
        expect(await cache.get(key)).not.toBe(`n${i}`); // cached (a hit), and not yet the new value
        const t0 = performance.now();
        await setup.foreignSet(stored(key), `n${i}`);
        const t1 = performance.now();
        lags.nodeRedisFromSend.push(await seenAfter(cache, key, `n${i}`, t0));
        lags.nodeRedisFromReply.push(performance.now() - t1);
      }
      const python = new PythonWriter(setup.python);
      try {
        await python.ready();
        for (let i = 0; i < 300; i++) {
          expect(await cache.get(key)).not.toBe(`p${i}`);
          const t0 = performance.now();
          await python.set(stored(key), `p${i}`);
          const t1 = performance.now();
          lags.pythonFromSend.push(await seenAfter(cache, key, `p${i}`, t0));
          lags.pythonFromReply.push(performance.now() - t1);
        }
      } finally {
        await python.close();
      }
      for (let i = 0; i < 20; i++) {
        expect(await cache.get(key)).not.toBe(`c${i}`);
        await setup.cli('SET', stored(key), `c${i}`);
        lags.redisCliFromReply.push(await seenAfter(cache, key, `c${i}`, performance.now()));
      }
      const figures = Object.fromEntries(
        Object.entries(lags).map(([writer, values]) => [
          writer,
          `n=${values.length} p50=${percentile(values, 0.5).toFixed(2)}ms p99=${percentile(values, 0.99).toFixed(2)}ms`,
        ]),
      );
      console.log(`near cache (${name}) foreign-write lag:`, figures);
      for (const values of Object.values(lags)) expect(percentile(values, 0.99)).toBeLessThan(LAG_BOUND_MS);
      expect(near(cache).invalidations).toBeGreaterThanOrEqual(600);
    }, 120_000);

    it('an expired key is not served (own TTL and a foreign PEXPIRE)', async () => {
      if (setup.debugCommands) await setup.cli('DEBUG', 'SET-ACTIVE-EXPIRE', '0');
      try {
        const { cache, stored } = await open();
        await cache.set('short', 'v', 1);
        expect(await cache.get('short')).toBe('v');
        expect(await cache.get('short')).toBe('v');
        const hits = near(cache).hits;
        await setup.cli('PEXPIRE', stored('other'), '1'); // no such key: nothing happens
        await cache.set('other', 'w');
        expect(await cache.get('other')).toBe('w');
        await setup.cli('SET', stored('px'), 'x', 'PX', '300');
        expect(await cache.get('px')).toBe('x');
        expect(await cache.get('px')).toBe('x');
        expect(near(cache).hits).toBeGreaterThan(hits);
        await sleep(350);
        expect(await cache.get('px')).toBeNull();
        await sleep(700);
        expect(await cache.get('short')).toBeNull();
        expect(await cache.get('other')).toBe('w');
      } finally {
        if (setup.debugCommands) await setup.cli('DEBUG', 'SET-ACTIVE-EXPIRE', '1');
      }
    });

    it('after CLIENT KILL of our connection and a foreign write, the new value is read', async () => {
      const { cache, stored } = await open();
      await cache.set('killed', 'old');
      expect(await cache.get('killed')).toBe('old');
      expect(await cache.get('killed')).toBe('old');
      const resets = near(cache).resets;
      await setup.killClients();
      await setup.cli('SET', stored('killed'), 'new');
      let value: unknown;
      for (let attempt = 0; ; attempt++) {
        try {
          value = await cache.get('killed');
          break;
        } catch (err) {
          // Reconnecting: calls fail fast; what matters is that no stale value is ever returned.
          if (attempt > 100) throw err;
          await sleep(20);
        }
      }
      expect(value).toBe('new');
      expect(near(cache).resets).toBeGreaterThan(resets);
      // Tracking is on again on the new connection: foreign writes are seen.
      expect(await cache.get('killed')).toBe('new');
      const t0 = performance.now();
      await setup.foreignSet(stored('killed'), 'newer');
      expect(await seenAfter(cache, 'killed', 'newer', t0)).toBeLessThan(LAG_BOUND_MS);
    });

    it('a FLUSHALL by another client drops everything', async () => {
      const { cache } = await open();
      await cache.mset({ a: 'one', b: 'two' });
      expect(await cache.mget('a', 'b')).toEqual(['one', 'two']);
      expect(await cache.mget('a', 'b')).toEqual(['one', 'two']);
      const hits = near(cache).hits;
      await setup.flushAll();
      const start = performance.now();
      while ((await cache.get('a')) !== null) {
        if (performance.now() - start > LAG_BOUND_MS) throw new Error('the flush was not seen');
        await turn();
      }
      expect(await cache.mget('a', 'b')).toEqual([null, null]);
      expect(near(cache).hits).toBeGreaterThanOrEqual(hits);
    });

    it('a mutated result does not change the next read (shared frozen values, or copies)', async () => {
      const original = { list: [1, 2], nested: { a: 'x' } };
      type Value = { list: number[]; nested: { a: string }; extra?: number };
      // Default: hits share one deeply frozen value; mutating it throws (strict mode) and changes nothing.
      const { cache } = await open();
      await cache.set('obj', original);
      const first = (await cache.get<Value>('obj')) as Value;
      const hits = near(cache).hits;
      expect(() => first.list.push(3)).toThrow(TypeError);
      expect(() => {
        first.nested.a = 'changed';
      }).toThrow(TypeError);
      expect(() => {
        first.extra = 1;
      }).toThrow(TypeError);
      expect(await cache.get('obj')).toEqual(original);
      expect(near(cache).hits).toBe(hits + 1);
      const [fromMget] = await cache.mget<Value>('obj');
      expect(() => fromMget?.list.pop()).toThrow(TypeError);
      expect(await cache.get('obj')).toEqual(original);

      // copyValues: every hit is a fresh copy the caller may change.
      const { cache: copying } = await open({ maxEntries: 100, copyValues: true });
      await copying.set('obj', original);
      const mine = (await copying.get<Value>('obj')) as Value;
      mine.list.push(3);
      mine.nested.a = 'changed';
      mine.extra = 1;
      const copyHits = near(copying).hits;
      expect(await copying.get('obj')).toEqual(original);
      expect(near(copying).hits).toBe(copyHits + 1);
      const [copied] = await copying.mget<Value>('obj');
      copied?.list.pop();
      expect(await copying.get('obj')).toEqual(original);
    });

    it('5,000 distinct keys through a 1,000-entry cache leave at most 1,000 entries', async () => {
      const { cache } = await open({ maxEntries: 1000 });
      const keys = Array.from({ length: 5000 }, (_, i) => `k${i}`);
      for (let i = 0; i < keys.length; i += 500) {
        await cache.mset(Object.fromEntries(keys.slice(i, i + 500).map((k) => [k, k])));
      }
      for (let i = 0; i < keys.length; i += 100) {
        await Promise.all(keys.slice(i, i + 100).map(async (k) => expect(await cache.get(k)).toBe(k)));
      }
      expect(near(cache).size).toBeLessThanOrEqual(1000);
      expect(near(cache).size).toBeGreaterThan(900);
      // The most recent keys are the ones kept.
      const hits = near(cache).hits;
      expect(await cache.mget('k4999', 'k4998')).toEqual(['k4999', 'k4998']);
      expect(near(cache).hits).toBe(hits + 2);
      expect(await cache.get('k0')).toBe('k0');
      expect(near(cache).hits).toBe(hits + 2);
    }, 60_000);

    it('maxBytes bounds the bytes held', async () => {
      const { cache } = await open({ maxEntries: 1000, maxBytes: 20_000 });
      const big = 'x'.repeat(1000);
      for (let i = 0; i < 50; i++) await cache.set(`b${i}`, big);
      for (let i = 0; i < 50; i++) expect(await cache.get(`b${i}`)).toBe(big);
      const stats = near(cache);
      expect(stats.bytes).toBeLessThanOrEqual(20_000);
      expect(stats.size).toBeGreaterThan(0);
      expect(stats.size).toBeLessThan(50);
    });

    // Issue 20: cached functions read through the near cache; the same guarantees as `get`.
    it('cached functions: a hit from the near cache is invalidated by a foreign write', async () => {
      const { cache, stored } = await open();
      let runs = 0;
      const load = () => cache.getOrSet('cf', () => `v${++runs}`, { ttl: 60 });
      // The fill's own SET is invalidated by the server's push too: the next read fills the near cache.
      expect(await load()).toBe('v1');
      expect(await load()).toBe('v1');
      const hits = near(cache).hits;
      expect(await load()).toBe('v1');
      expect(await load()).toBe('v1');
      expect(near(cache).hits).toBe(hits + 2); // served from memory
      for (let i = 0; i < 20; i++) {
        // A plain string written by another client reads back through the client's codec.
        const t0 = performance.now();
        await setup.foreignSet(stored('cf'), `foreign${i}`);
        while ((await load()) !== `foreign${i}`) {
          if (performance.now() - t0 > LAG_BOUND_MS) throw new Error(`foreign${i} was not seen`);
          await turn();
        }
        expect(await load()).toBe(`foreign${i}`);
      }
      expect(runs).toBe(1);
      expect(near(cache).invalidations).toBeGreaterThanOrEqual(20);
    });

    it('cached functions: a near-cache hit is never served past its expiry or its grace', async () => {
      if (setup.debugCommands) await setup.cli('DEBUG', 'SET-ACTIVE-EXPIRE', '0');
      try {
        const { cache } = await open();
        let runs = 0;
        const factory = () => `r${++runs}`;
        const plain = () => cache.getOrSet('exp', factory, { ttl: 1 });
        const graced = () => cache.getOrSet('grace', factory, { ttl: 1, grace: 1 });
        expect(await plain()).toBe('r1');
        expect(await graced()).toBe('r2');
        expect(await plain()).toBe('r1'); // read once more after the fill's own invalidation
        expect(await graced()).toBe('r2');
        const hits = near(cache).hits;
        expect(await plain()).toBe('r1');
        expect(await graced()).toBe('r2');
        expect(near(cache).hits).toBe(hits + 2);
        await sleep(1100);
        expect(await plain()).toBe('r3'); // expired: filled again, never the old value
        await sleep(1000);
        // Past ttl + grace (and never touched within the grace): a new fill, not the stale value.
        expect(await graced()).toBe('r4');
        expect(await graced()).toBe('r4');
      } finally {
        if (setup.debugCommands) await setup.cli('DEBUG', 'SET-ACTIVE-EXPIRE', '1');
      }
    });
  });
}
