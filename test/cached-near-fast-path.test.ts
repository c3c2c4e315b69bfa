/**
 * Issue 20: cached functions answered from the near cache. The whole cached-functions conformance suite
 * runs with `nearCache` on (hits then take the in-memory path), and focused tests check that path: the
 * value returned (one deeply frozen value shared by hits, as a near `get`; copies with `copyValues`), that
 * a foreign write, a tag or entity invalidation and expiry are seen, and that a hit is counted and traced
 * once.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveOptions } from '../src/cached/call-options.js';
import { NOT_HELD, nearFresh } from '../src/cached/near-hit.js';
import { encodeResult } from '../src/cached/result-codec.js';
import { storedStampKey, tagStampKey } from '../src/cached/tags.js';
import type { Engine } from '../src/engines/engine.js';
import {
  type CacheClient,
  type CacheClientOptions,
  type NearCacheOptions,
  OPERATION_CHANNEL,
  type OperationContext,
} from '../src/index.js';
import { KeySpace } from '../src/keys.js';
import { NearCache } from '../src/near-cache/near-cache.js';
import { registerCachedSuite } from './cached-conformance.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

let suiteServer: RedisServer;
registerCachedSuite(
  'redis-server with a near cache',
  async () => {
    suiteServer = await startRedis();
    return {
      options: (tenant, extra = {}) => ({
        connectionConfig: { url: suiteServer.url, tenant },
        nearCache: { maxEntries: 1000 },
        ...extra,
      }),
    };
  },
  () => suiteServer.stop(),
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cached functions answered from the near cache', () => {
  let server: RedisServer;
  const pool = new ClientPool();
  let counter = 0;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await pool.closeAll();
    await server.stop();
  });

  /** A client with a near cache (`near`) or without (`false`), on a tenant of its own unless given. */
  function open(near: NearCacheOptions | false = { maxEntries: 100 }, tenant?: string): CacheClient {
    const options: CacheClientOptions = {
      connectionConfig: { url: server.url, tenant: tenant ?? `fp${counter++}` },
      deploymentId: 'dep',
      ...(near === false ? {} : { nearCache: near }),
    };
    return pool.open(options);
  }

  const nearHits = (cache: CacheClient) => cache.stats().nearCache?.hits ?? 0;

  /**
   * Call until a call is answered from memory (the fill's own write drops the entry; the read after it
   * keeps it): at most 20 calls. Returns that call's value.
   */
  async function warm<T>(cache: CacheClient, call: () => Promise<T>): Promise<T> {
    for (let i = 0; i < 20; i++) {
      const before = nearHits(cache);
      const value = await call();
      if (nearHits(cache) > before && cache.stats().cachedFunctions.hits > 0) return value;
    }
    throw new Error('the near cache never answered');
  }

  it('a hit returns one deeply frozen value, the same object every time', async () => {
    const cache = open();
    let runs = 0;
    const find = cache.cacheResult(async (id: number) => ({ id, runs: ++runs, nested: { list: [1, 2] } }), {
      keyPrefix: 'users',
      entityId: (id) => id,
    });
    await warm(cache, () => find(1));
    const first = await find(1);
    const second = await find(1);
    expect(second).toBe(first);
    expect(first).toEqual({ id: 1, runs: 1, nested: { list: [1, 2] } });
    expect(Object.isFrozen(first) && Object.isFrozen(first.nested.list)).toBe(true);
    expect(() => first.nested.list.push(3)).toThrow(TypeError);
    expect(await find(1)).toEqual({ id: 1, runs: 1, nested: { list: [1, 2] } });

    // getOrSet with the client's codec: the very value a near `get` of the key returns.
    await warm(cache, () => cache.getOrSet('plain', async () => ({ a: [1] }), { codec: 'client' }));
    const viaGet = await cache.get('plain');
    expect(await cache.getOrSet('plain', async () => ({ a: [2] }), { codec: 'client' })).toBe(viaGet);

    // A value that cannot be frozen (a Date inside) is decoded afresh on every hit.
    const dated = () => cache.getOrSet('dated', async () => ({ at: new Date(0) }));
    await warm(cache, dated);
    const [d1, d2] = [await dated(), await dated()];
    expect(d1).not.toBe(d2);
    expect(d1.at).toBeInstanceOf(Date);
    expect(Object.isFrozen(d1)).toBe(false);
  });

  it('copyValues: every hit is a copy the caller may change', async () => {
    const cache = open({ maxEntries: 100, copyValues: true });
    const load = () => cache.getOrSet('obj', async () => ({ list: [1] }), { ttl: 60 });
    await warm(cache, load);
    const mine = await load();
    mine.list.push(2);
    const hits = cache.stats().cachedFunctions.hits;
    expect(await load()).toEqual({ list: [1] });
    expect(cache.stats().cachedFunctions.hits).toBe(hits + 1);
  });

  it('a hit is counted once (stats and near-cache stats) and traced as one span with its hit', async () => {
    const cache = open();
    const find = cache.cacheResult(async (id: number) => `user ${id}`, {
      keyPrefix: 'users',
      entityId: (id) => id,
    });
    await warm(cache, () => find(7));
    const before = cache.stats();
    const spans: OperationContext[] = [];
    const channel = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);
    const events: string[] = [];
    const handlers = {
      start: () => events.push('start'),
      end: () => events.push('end'),
      asyncStart: () => events.push('asyncStart'),
      asyncEnd: (ctx: OperationContext) => {
        events.push('asyncEnd');
        spans.push(ctx);
      },
      error: () => events.push('error'),
    };
    expect(await find(7)).toBe('user 7'); // untraced
    channel.subscribe(handlers);
    try {
      expect(await find(7)).toBe('user 7'); // traced
    } finally {
      channel.unsubscribe(handlers);
    }
    const after = cache.stats();
    // An answer from memory publishes asyncEnd only, its context complete (see src/diagnostics.ts).
    expect(events).toEqual(['asyncEnd']);
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({ operation: 'cacheResult', keys: 1, hits: 1, memory: true });
    expect(spans[0]?.misses ?? 0).toBe(0);
    const op = (s: typeof before) => s.operations.cacheResult ?? { calls: NaN, hits: NaN, misses: NaN };
    expect(op(after).calls - op(before).calls).toBe(2);
    expect(op(after).hits - op(before).hits).toBe(2);
    expect(op(after).misses).toBe(op(before).misses);
    expect(after.cachedFunctions.hits - before.cachedFunctions.hits).toBe(2);
    expect(after.cachedFunctions.factoryRuns).toBe(before.cachedFunctions.factoryRuns);
    // Per call: the entry and its two implicit stamps (key prefix, entity), all from memory.
    expect((after.nearCache?.hits ?? 0) - (before.nearCache?.hits ?? 0)).toBe(6);
    expect(after.nearCache?.misses).toBe(before.nearCache?.misses);
  });

  it('a write by another client is seen', async () => {
    const tenant = `fp${counter++}`;
    const [cache, other] = [open(undefined, tenant), open(false, tenant)];
    let runs = 0;
    const load = () => cache.getOrSet('k', async () => `v${++runs}`, { ttl: 60 });
    await warm(cache, load);
    expect(await load()).toBe('v1');
    await other.set('k', 'foreign');
    await expect.poll(load, { timeout: 3000, interval: 1 }).toBe('foreign');
    expect(runs).toBe(1);
  });

  it('an invalidation of a tag or an entity, here or by another client, is seen', async () => {
    const tenant = `fp${counter++}`;
    const [cache, other] = [open(undefined, tenant), open(false, tenant)];
    let runs = 0;
    const load = () => cache.getOrSet('tagged', async () => ++runs, { tags: ['t'] });
    await warm(cache, load);
    expect(await load()).toBe(1);
    await cache.invalidateTags(['t']); // own write: the stamp is dropped at once
    expect(await load()).toBe(2);
    await warm(cache, load);
    await other.invalidateTags(['t'], { behavior: 'remove' });
    await expect.poll(load, { timeout: 3000, interval: 1 }).toBe(3);

    let finds = 0;
    const find = cache.cacheResult(async (id: number) => `${id}:${++finds}`, {
      keyPrefix: 'orders',
      entityId: (id) => id,
    });
    await warm(cache, () => find(5));
    expect(await find(5)).toBe('5:1');
    await other.invalidate({ entityId: 5, targetedPatterns: ['orders'] });
    await expect.poll(() => find(5), { timeout: 3000, interval: 1 }).toBe('5:2');
    await warm(cache, () => find(5));
    await cache.invalidate({ broadPatterns: ['orders'] });
    expect(await find(5)).toBe('5:3');
  });

  it('an entry is not served past its TTL', async () => {
    const cache = open();
    let runs = 0;
    const load = () => cache.getOrSet('short', async () => ++runs, { ttl: 1 });
    await warm(cache, load);
    expect(await load()).toBe(1);
    await sleep(1100);
    expect(await load()).toBe(2);
  });
});

describe('cacheResult: the keys of recent calls (key-memo.ts)', () => {
  const pool = new ClientPool();
  afterAll(() => pool.closeAll());

  it('kept keys are the keys the arguments make: -0 vs 0, undefined vs none, entity checked', async () => {
    const cache = pool.open({
      connectionConfig: { url: 'memory://key-memo', tenant: 'km' },
      deploymentId: 'd',
    });
    let entity: string | null = 'a';
    let runs = 0;
    const fn = cache.cacheResult(async (..._args: unknown[]) => ++runs, {
      keyPrefix: 'memo',
      entityId: () => entity,
    }) as (...args: unknown[]) => Promise<number>;
    for (const args of [[0], [-0], [], [undefined], [null], ['x'], [1n], [1], [true]]) {
      const first = await fn(...args);
      expect(await fn(...args)).toBe(first); // a hit on its own entry
    }
    // Nine distinct argument lists, nine entries (0 and -0, [] and [undefined] apart).
    expect(runs).toBe(9);
    entity = 'b'; // an impure entityId: the kept key is not used for another entity
    expect(await fn(0)).toBe(10);
    expect(await fn(0)).toBe(10);
    entity = 'a';
    expect(await fn(0)).toBe(1);
  });
});

describe('nearFresh: the stamps checked from memory (near-hit.ts)', () => {
  /** A near cache over an engine that answers GET and PTTL from `server` at once. */
  async function setup() {
    const server = new Map<string, [string | null, number]>();
    const engine = {
      get: async (key: string) => server.get(key)?.[0] ?? null,
      pttl: async (key: string) => server.get(key)?.[1] ?? -2,
      ping: async () => {},
    } as unknown as Engine;
    const cache = new NearCache(
      { maxEntries: 100, maxBytes: undefined, ttlMs: undefined, copyValues: false },
      JSON.parse,
    );
    cache.attach(engine);
    await new Promise((r) => setImmediate(r));
    const ks = new KeySpace('ten', null);
    const stamp = storedStampKey(ks, tagStampKey('x'));
    const o = resolveOptions({ tags: ['x'] }, null, new Map());
    server.set(ks.key('k'), [encodeResult('v', { tags: ['x'], stamps: [[tagStampKey('x'), 0]] }), -1]);
    /** Read `key` through the near cache (a miss keeps it), as a call's MGET would. */
    const read = (key: string) => cache.get(engine, key);
    const answer = (now: number) =>
      nearFresh({ cache, keys: () => ks, answered: () => {} }, 'k', o, JSON.parse, now);
    return { cache, engine, server, stamp, read, answer, key: ks.key('k'), done: () => cache.detach(engine) };
  }

  it('a stamp invalidated, changed or expired after a hit is checked again', async () => {
    const t = await setup();
    try {
      t.server.set(t.stamp, ['0', 100]); // a stamp key that expires in 100 ms
      await Promise.all([t.read(t.key), t.read(t.stamp)]);
      const now = performance.now();
      expect(t.answer(now)).toBe('v');
      expect(t.answer(now)).toBe('v'); // the stamp's check is reused
      expect(t.answer(now + 150)).toBe(NOT_HELD); // its entry expired: not reused
      t.server.set(t.stamp, [null, -2]); // a stamp never raised (missing): reads as 0
      await t.read(t.stamp);
      expect(t.answer(performance.now())).toBe('v');
      t.cache.invalidate(t.stamp); // raised elsewhere: dropped
      expect(t.answer(performance.now())).toBe(NOT_HELD);
      t.server.set(t.stamp, ['1', -1]);
      await t.read(t.stamp);
      expect(t.answer(performance.now())).toBe(NOT_HELD); // held, but moved since the fill: a read judges it
      t.server.set(t.stamp, ['0', -1]);
      t.cache.invalidate(t.stamp);
      await t.read(t.stamp);
      expect(t.answer(performance.now())).toBe('v');
    } finally {
      t.done();
    }
  });
});
