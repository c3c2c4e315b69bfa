/**
 * Tags and invalidation of cached functions (SPEC section 7, "Tags, scale and the fill's lifecycle") on
 * the memory engine, a real redis-server and a Redis Cluster; then what only a real server shows: the
 * near cache's invalidation lag, processes with skewed clocks, Python-layout keys written with
 * redis-cli, and a burst of invalidations.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { implicitStampKeys } from '../src/cached/invalidation.js';
import { decodeEntry, ENTRY_MARKER, encodeResult, RESULT_MARKER } from '../src/cached/result-codec.js';
import { compareStamps, REMOVE_STEP, tagStampKey } from '../src/cached/tags.js';
import { keySlot } from '../src/engines/slot.js';
import type { CacheClientOptions } from '../src/index.js';
import { ClientPool } from './helpers/clients.js';
import { clusterTarget } from './helpers/cluster-target.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

type Options = (tenant: string, extra?: Partial<CacheClientOptions>) => CacheClientOptions;

/** A factory that waits for `release()` before returning `value`, and tells when it started. */
function gated<T>(value: T) {
  let release!: () => void;
  let started!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const running = new Promise<void>((r) => {
    started = r;
  });
  return {
    release,
    running,
    factory: async () => {
      started();
      await gate;
      return value;
    },
  };
}

function registerTagSuite(name: string, setup: () => Promise<Options>, teardown: () => Promise<void>) {
  describe(`tags: ${name}`, () => {
    let options: Options;
    const pool = new ClientPool();
    let n = 0;
    const pair = () => {
      const tenant = `tg${process.pid}x${n++}`;
      return [
        pool.open(options(tenant, { deploymentId: 'dep-1' })),
        pool.open(options(tenant, { deploymentId: 'dep-1' })),
      ] as const;
    };
    beforeAll(async () => {
      options = await setup();
    });
    afterAll(async () => {
      await pool.closeAll();
      await teardown();
    });

    it('an invalidated tag is seen by a second client at once; several tags; untouched tags keep hits', async () => {
      const [a, b] = pair();
      let runs = 0;
      const load = () => a.getOrSet('k', () => ++runs, { tags: ['user:1', 'org:7'] });
      const loadB = () => b.getOrSet('k', () => ++runs, { tags: ['user:1', 'org:7'] });
      expect(await load()).toBe(1);
      expect(await loadB()).toBe(1); // a hit in the other client
      await a.invalidateTags(['org:7']);
      expect(await loadB()).toBe(2); // b sees a's invalidation at once
      expect(await load()).toBe(2);
      await b.invalidateTags(['user:1']);
      expect(await load()).toBe(3);
      await a.invalidateTags(['other']);
      expect(await loadB()).toBe(3);
      // Tags the call does not name are still checked (read from the entry itself).
      expect(await b.getOrSet('k', () => -1)).toBe(3);
      await a.invalidateTags(['org:7']);
      expect(await b.getOrSet('k', () => -1)).toBe(-1);
      expect(a.stats().cachedFunctions.tagInvalidations).toBe(3);
    });

    it('an entry produced after its tag was invalidated is fresh', async () => {
      const [a, b] = pair();
      await a.invalidateTags(['t'], { behavior: 'remove' });
      await b.invalidateTags(['t']);
      let runs = 0;
      expect(await a.getOrSet('k', () => ++runs, { tags: ['t'] })).toBe(1);
      expect(await b.getOrSet('k', () => ++runs, { tags: ['t'] })).toBe(1);
      expect(await a.getOrSet('k', () => ++runs, { tags: ['t'] })).toBe(1);
    });

    it("'expire' keeps the value as stale within grace while one refresh runs; 'remove' never serves it", async () => {
      const [a, b] = pair();
      let runs = 0;
      const opts = { tags: ['t'], grace: 60, ttl: 600 };
      expect(await a.getOrSet('k', () => ++runs, opts)).toBe(1);
      await a.invalidateTags(['t']); // expire (default)
      const refresh = gated(100);
      expect(await b.getOrSet('k', refresh.factory, opts)).toBe(1); // stale, refresh started
      await refresh.running;
      expect(await a.getOrSet('k', () => ++runs, opts)).toBe(1); // still stale; one refresh (b's) runs
      refresh.release();
      await expect.poll(() => a.getOrSet('k', () => ++runs, opts)).toBe(100);
      expect(runs).toBe(1);
      // Without grace an expired entry is a miss.
      await b.invalidateTags(['t']);
      expect(await a.getOrSet('k', () => 200, { tags: ['t'] })).toBe(200);
      await b.invalidateTags(['t'], { behavior: 'remove' });
      expect(await a.getOrSet('k', () => 300, opts)).toBe(300); // grace does not bring it back
      expect(await b.getOrSet('k', () => 400, opts)).toBe(300);
    });

    it('an invalidation during an in-flight fill wins, here and in another client', async () => {
      const [a, b] = pair();
      const fill = gated('old');
      const first = a.getOrSet('k', fill.factory, { tags: ['t'] });
      await fill.running;
      await a.invalidateTags(['t']);
      // A later caller in the invalidating process does not join the old fill.
      const later = a.getOrSet('k', () => 'new-a', { tags: ['t'], lockTimeoutMs: 5000 });
      fill.release();
      expect(await first).toBe('old'); // its own caller still gets it
      expect(await later).toBe('new-a');
      expect(await b.getOrSet('k', () => 'new-b', { tags: ['t'] })).toBe('new-a');
      // Invalidated by another client: the old fill's result is stored but is not fresh for anyone.
      const fill2 = gated('old2');
      const second = a.getOrSet('k2', fill2.factory, { tags: ['t'] });
      await fill2.running;
      await b.invalidateTags(['t']);
      fill2.release();
      expect(await second).toBe('old2');
      expect(await b.getOrSet('k2', () => 'new-b', { tags: ['t'] })).toBe('new-b');
      expect(await a.getOrSet('k2', () => 'new-a', { tags: ['t'] })).toBe('new-b');
    });

    it('an invalidation during a grace refresh wins: the refreshed value is not fresh anywhere', async () => {
      const [a, b] = pair();
      const opts = { tags: ['t'], grace: 60, ttl: 600 };
      expect(await a.getOrSet('k', () => 'v1', opts)).toBe('v1');
      await a.invalidateTags(['t']);
      const refresh = gated('v2');
      // timeoutMs: this caller waits for the refresh (which stores v2 before it resolves).
      const waiting = a.getOrSet('k', refresh.factory, { ...opts, timeoutMs: 10_000 });
      await refresh.running;
      await b.invalidateTags(['t']); // lands while the refresh runs
      refresh.release();
      expect(await waiting).toBe('v2');
      // v1 and v2 are only ever served as stale (never as hits), in both clients, until v3 is stored.
      for (const c of [b, a]) {
        for (let i = 0; ; i++) {
          const hits = c.stats().cachedFunctions.hits;
          const value = await c.getOrSet('k', async () => 'v3', opts);
          if (c.stats().cachedFunctions.hits > hits) {
            expect(value).toBe('v3');
            break;
          }
          expect(i).toBeLessThan(100);
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    });

    it('an entity invalidation during an in-flight fill wins: the old result is not written back (gcache PR #14)', async () => {
      const [a, b] = pair();
      let impl: (id: number) => Promise<string> = async (id) => `${id}:v1`;
      const load = (id: number) => impl(id); // one function (one identity) wrapped by both clients
      const findA = a.cacheResult(load, { keyPrefix: 'users', entityId: (id) => id });
      const findB = b.cacheResult(load, { keyPrefix: 'users', entityId: (id) => id });
      const fill = gated('42:old');
      impl = fill.factory;
      const first = findA(42);
      await fill.running;
      await b.invalidate({ entityId: 42, targetedPatterns: ['users'] });
      await b.invalidationSettled?.();
      fill.release();
      expect(await first).toBe('42:old');
      impl = async (id) => `${id}:new`;
      expect(await findB(42)).toBe('42:new');
      expect(await findA(42)).toBe('42:new');
    });

    it('delete and flush in this process win over a running fill of the key', async () => {
      const [a] = pair();
      const fill = gated('old');
      const first = a.getOrSet('k', fill.factory);
      await fill.running;
      await a.delete('k');
      const later = a.getOrSet('k', () => 'new', { lockTimeoutMs: 5000 });
      fill.release();
      expect(await first).toBe('old');
      expect(await later).toBe('new');
      expect(await a.getOrSet('k', () => 'x')).toBe('new');
      const again = gated('old2');
      const second = a.getOrSet('k2', again.factory);
      await again.running;
      await a.flushByPattern('k2');
      again.release();
      expect(await second).toBe('old2');
      expect(await a.getOrSet('k2', () => 'new2', { lockTimeoutMs: 5000 })).toBe('new2');
    });

    it('invalidate() hides our entity entries at once (no wait), then deletes them; a Python-layout entry too', async () => {
      const [a, b] = pair();
      let runs = 0;
      const find = a.cacheResult(async (id: number) => `${id}:${++runs}`, {
        keyPrefix: 'users',
        entityId: (id) => id,
      });
      const findB = b.cacheResult(async (id: number) => `${id}:${++runs}`, {
        keyPrefix: 'users',
        entityId: (id) => id,
      });
      expect(await find(42)).toBe('42:1');
      expect(await find(420)).toBe('420:2');
      const plain = pool.open(options(`tg${process.pid}x${n - 1}`, { deploymentId: null }));
      await plain.set('dep-1:users:42:cHl0aG9u', { from: 'python' });
      expect(await b.invalidate({ entityId: 42, targetedPatterns: ['users'] })).toBe(0);
      expect(await findB(42)).toBe('42:3'); // invisible at once in another client
      expect(await findB(420)).toBe('420:2');
      await b.invalidationSettled();
      expect(await plain.exists('dep-1:users:42:cHl0aG9u')).toBe(0); // Python's entry is gone
      expect(b.stats().cachedFunctions.scanPasses).toBeGreaterThan(0);
      // Broad: exact key prefix at once.
      const list = a.cacheResult(async () => ++runs, { keyPrefix: 'user-lists' });
      const first = await list();
      await b.invalidate({ broadPatterns: ['user-lists'] });
      expect(await list()).toBe(first + 1);
      // The deletion runs in the background and may remove the entry just written (deleting more is
      // safe): settle it, and read once more so that exactly one entry is there to count.
      await b.invalidationSettled();
      await list();
      expect(await b.invalidate({ broadPatterns: ['user-lists'] }, { wait: true })).toBe(1);
    });

    it('tags are validated', async () => {
      const [a] = pair();
      await expect(a.getOrSet('k', () => 1, { tags: [''] })).rejects.toThrow(/tag/);
      await expect(a.getOrSet('k', () => 1, { tags: ['t'], codec: 'client' })).rejects.toThrow(/typed/);
      await expect(a.invalidateTags(['t'], { behavior: 'drop' as never })).rejects.toThrow(/behavior/);
      expect(() => a.cacheResult(async () => 1, { tags: 'x' as never })).toThrow(/tags/);
    });
  });
}

registerTagSuite(
  'memory engine',
  async () =>
    (tenant, extra = {}) => ({ connectionConfig: { url: 'memory://tags-suite', tenant }, ...extra }),
  async () => {},
);

let server: RedisServer;
registerTagSuite(
  'redis-server',
  async () => {
    server = await startRedis();
    return (tenant, extra = {}) => ({ connectionConfig: { url: server.url, tenant }, ...extra });
  },
  () => server.stop(),
);

const cluster = clusterTarget();
registerTagSuite(
  'redis-cluster',
  async () => (await cluster.setup()).options,
  () => cluster.teardown(),
);

describe('tag stamps (units)', () => {
  it("a cacheResult entry's two implicit stamps share a cluster slot, whatever the prefix holds", () => {
    for (const [dep, prefix] of [
      ['dep-1', 'users'],
      [null, 'a}b{c'],
      ['d', '{x}'],
    ] as const) {
      const [p, e] = implicitStampKeys(dep, prefix, 'ent-42');
      expect(p).not.toBe(e);
      expect(keySlot(`tenant:${p}`)).toBe(keySlot(`tenant:${e}`));
    }
  });

  it('a tagged entry keeps its stamps in the typed envelope (v2) with its ttl and grace; untagged ones stay v1', () => {
    const stamps = [[tagStampKey('t'), 7]] as const;
    const tagged = encodeResult({ at: new Date(0) }, { ttl: 5, grace: 0, tags: [], stamps });
    expect(tagged.startsWith(ENTRY_MARKER)).toBe(true);
    expect(decodeEntry(tagged, (raw) => raw)).toEqual({
      value: { at: new Date(0) },
      meta: { ttl: 5, grace: 0, tags: [], stamps },
    });
    expect(encodeResult(1, { ttl: 5, grace: 0, tags: [], stamps: [] })).not.toContain('__peak_tag__');
    expect(encodeResult(1).startsWith(RESULT_MARKER)).toBe(true);
    expect(() => decodeEntry(`${ENTRY_MARKER}[1,5,0,[],[["k","x"]]]`, (raw) => raw)).toThrow(/corrupt/);
  });

  it('stamps compare as fresh, expired (expirations only) or removed (a removal, or a reset)', () => {
    expect(compareStamps([0, 5], [0, 5])).toBe('fresh');
    expect(compareStamps([0, 5], [1, 5])).toBe('expired');
    expect(compareStamps([0, 5], [REMOVE_STEP, 5])).toBe('removed');
    expect(compareStamps([3], [0])).toBe('removed'); // the stamp key was flushed
    expect(compareStamps([REMOVE_STEP + 1], [REMOVE_STEP + 7])).toBe('expired');
  });
});

const CHILD = join(import.meta.dirname, 'fixtures', 'tags-child.ts');
const run = promisify(execFile);

describe('tags on a real server: near cache, skewed clocks, Python-layout keys, bursts', () => {
  let redis: RedisServer;
  const pool = new ClientPool();
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await pool.closeAll();
    await redis.stop();
  });

  async function child(tenant: string, skewMs: number, ops: unknown[]): Promise<unknown[]> {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', CHILD], {
      env: {
        ...process.env,
        URL: redis.url,
        TENANT: tenant,
        SKEW_MS: String(skewMs),
        OPS: JSON.stringify(ops),
      },
    });
    return JSON.parse(stdout.trim()) as unknown[];
  }

  it('a near cache keeps the stamps and sees an invalidation within its invalidation lag', async () => {
    const near = pool.open({
      connectionConfig: { url: redis.url, tenant: 'nc' },
      nearCache: { maxEntries: 100 },
    });
    const other = pool.open({ connectionConfig: { url: redis.url, tenant: 'nc' } });
    let runs = 0;
    const load = () => near.getOrSet('k', () => ++runs, { tags: ['t'] });
    expect(await load()).toBe(1);
    expect(await load()).toBe(1);
    const before = near.stats().nearCache?.hits ?? 0;
    expect(await load()).toBe(1);
    expect(near.stats().nearCache?.hits ?? 0).toBeGreaterThanOrEqual(before + 2); // value and stamp from memory
    await other.invalidateTags(['t']);
    await expect.poll(load, { timeout: 3000 }).toBe(2);
  });

  it('processes with clocks 5 s ahead and 5 s behind neither resurrect nor hide entries', async () => {
    const here = pool.open({ connectionConfig: { url: redis.url, tenant: 'skew' } });
    const opts = { tags: ['t'], ttl: 600 };
    expect(await here.getOrSet('k', () => 'v1', opts)).toBe('v1');
    // Ahead: its invalidation is seen; its own later fill is fresh for a process behind.
    expect(
      await child('skew', 5000, [
        ['invalidate', 't'],
        ['get', 'k', 't', 'ahead'],
      ]),
    ).toEqual([null, 'ahead']);
    // Behind: the fill of the process ahead is fresh for it; its invalidation is seen by a process on
    // time, whose next fill stays fresh for the process ahead.
    expect(
      await child('skew', -5000, [
        ['get', 'k', 't', 'behind'],
        ['invalidate', 't'],
      ]),
    ).toEqual(['ahead', null]);
    expect(await here.getOrSet('k', () => 'v2', opts)).toBe('v2');
    expect(await child('skew', 5000, [['get', 'k', 't', 'ahead2']])).toEqual(['v2']);
  });

  it('a Python-layout entry written with redis-cli under a targeted pattern is deleted after the call', async () => {
    const cache = pool.open({ connectionConfig: { url: redis.url, tenant: 'py' }, deploymentId: 'dep-9' });
    const pyKey = `py:dep-9:orders:42:${Buffer.from('{"args": [42], "kwargs": {}}').toString('base64')}`;
    await redis.cli('SET', pyKey, '{"total": 3}', 'EX', '600');
    await redis.cli('SET', 'py:dep-9:orders:420:abc', '{"total": 4}', 'EX', '600');
    await cache.invalidate({ entityId: 42, targetedPatterns: ['orders'] });
    await cache.invalidationSettled();
    expect(await redis.scanKeys('py:dep-9:*')).toEqual(['py:dep-9:orders:420:abc']);
  });

  it('a burst of 1,000 invalidations starts a bounded number of scans and deletes every key', async () => {
    const cache = pool.open({ connectionConfig: { url: redis.url, tenant: 'burst' }, deploymentId: 'd' });
    await cache.mset(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`d:users:${i}:x`, i])));
    await cache.mset(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`d:other:${i}:x`, i])));
    await Promise.all(
      Array.from({ length: 1000 }, (_, i) => cache.invalidate({ entityId: i, targetedPatterns: ['users'] })),
    );
    await cache.invalidationSettled();
    const stats = cache.stats().cachedFunctions;
    expect(stats.scanPatterns).toBe(1000);
    expect(stats.scanPasses).toBeLessThanOrEqual(3);
    expect(stats.scanDeleted).toBe(1000);
    expect(await redis.scanKeys('burst:d:users:*')).toEqual([]);
    expect((await redis.scanKeys('burst:d:other:*')).length).toBe(1000);
  });
});
