/**
 * Read coalescing (src/engines/get-batch.ts) under attack: probes of the README's promise that a caller
 * cannot tell a coalesced `get` from one `GET` per call, against real redis-server processes. Order against
 * every other operation issued in the same tick, `close()` in the same tick, connections lost or servers
 * stopped while a batch or its `EXISTS` follow-up is in flight, the `maxQueueLength` bound, tenants
 * (shared and pooled, per-tenant ACL users), the near cache, tracing, stats, unicode and large values, big
 * batches with `WRONGTYPE` keys among them, and the engines that do not coalesce (memory, cluster).
 *
 * The tests marked `it.skip` show defects left open (see the comment on each).
 */
import { tracingChannel } from 'node:diagnostics_channel';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisEngine } from '../src/engines/redis.js';
import { MAX_BATCH_KEYS } from '../src/engines/tick-batch.js';
import {
  CacheClient,
  type CacheClientOptions,
  CacheConnectionError,
  CacheError,
  OPERATION_CHANNEL,
  type OperationContext,
  TenantCaches,
} from '../src/index.js';
import { instrumentPeakCache } from '../src/integrations/otel.js';
import { aclRecipe } from './helpers/acl.js';
import {
  commandCounts,
  eventually,
  expectValuesOrCacheErrors,
  type ProbeTuning,
  probeEngine,
  seeded,
  sleep,
} from './helpers/batch-probes.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

let redis: RedisServer;
const engines: RedisEngine[] = [];
const closers: (() => Promise<unknown>)[] = [];

function engine(url = redis.url, tuning: ProbeTuning = {}): RedisEngine {
  const e = probeEngine(url, tuning);
  engines.push(e);
  return e;
}

function client(options: Partial<CacheClientOptions> = {}, url = redis.url): CacheClient {
  const c = new CacheClient({ connectionConfig: { url, tenant: 't' }, env: {}, ...options });
  closers.push(() => c.close());
  return c;
}

/** Settled outcomes as plain data: a value, or the error's class and message. */
function outcomes(settled: PromiseSettledResult<unknown>[]): unknown[] {
  return settled.map((s) =>
    s.status === 'fulfilled' ? { value: s.value } : { error: (s.reason as Error).name, cause: s.reason },
  );
}

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
  await Promise.all(closers.splice(0).map((close) => close()));
  await redis.cli('FLUSHALL');
});

afterAll(async () => {
  await redis?.stop();
});

describe('order: a get is answered as of its place among the commands of its tick', () => {
  it('a missing key read in a batch, then written in the same tick, reads as missing (not the later value)', async () => {
    // Was a defect: the batch's EXISTS went out after the SET, found the key, and its GET returned 'new'.
    const e = engine();
    await e.set('a', '1');
    const reads = Promise.all([e.get('a'), e.get('k')]);
    const written = e.set('k', 'new');
    const after = e.get('k');
    await written;
    expect(await reads).toEqual(['1', null]);
    expect(await after).toBe('new');
  });

  it('the same through incrBy, setIfAbsent (a getOrSet lock) and mset issued later in the tick', async () => {
    const e = engine();
    await e.set('hit', 'h');
    const reads = Promise.all(['hit', 'n', 'lock', 'm1', 'm2'].map((k) => e.get(k)));
    const writes = Promise.all([
      e.incrBy('n', 5),
      e.setIfAbsent('lock', 'token', 10_000),
      e.mset([
        ['m1', 'x'],
        ['m2', 'y'],
      ]),
    ]);
    expect(await reads).toEqual(['h', null, null, null, null]);
    expect(await writes).toEqual([5, true, undefined]);
    expect(await Promise.all(['n', 'lock', 'm1', 'm2'].map((k) => e.get(k)))).toEqual([
      '5',
      'token',
      'x',
      'y',
    ]);
  });

  it('random ticks of gets, sets, deletes, msets and increments: each get reads the state at its place', async () => {
    const e = engine();
    const rand = seeded(0x2545f491);
    const strings = ['s1', 's2', 's3'];
    const counters = ['n1', 'n2'];
    const model = new Map<string, string>();
    for (let round = 0; round < 40; round++) {
      const reads: [Promise<string | null>, string | null][] = [];
      const writes: Promise<unknown>[] = [];
      for (let op = 0; op < 60; op++) {
        const choice = rand(10);
        const key = rand(2) === 0 ? (strings[rand(3)] as string) : (counters[rand(2)] as string);
        if (choice < 5) reads.push([e.get(key), model.get(key) ?? null]);
        else if (choice === 5) {
          writes.push(e.unlink([key]));
          model.delete(key);
        } else if (key.startsWith('n')) {
          const by = 1 + rand(5);
          writes.push(e.incrBy(key, by));
          model.set(key, String(Number(model.get(key) ?? '0') + by));
        } else if (choice < 8) {
          const value = `v${round}.${op}`;
          writes.push(e.set(key, value));
          model.set(key, value);
        } else {
          const other = strings[rand(3)] as string;
          const entries: [string, string][] = [
            [key, `m${round}.${op}`],
            [other, `o${round}.${op}`],
          ];
          writes.push(e.mset(entries));
          for (const [k, v] of entries) model.set(k, v);
        }
      }
      await Promise.all(writes);
      const got = await Promise.all(reads.map(([read]) => read));
      expect(got).toEqual(reads.map(([, expected]) => expected));
    }
  });

  it('CacheClient: set, delete, mset, expire and flushTenant issued after gets in one tick do not overtake them', async () => {
    const c = client({ debugLogs: false });
    await c.mset({ a: 'A0', b: 'B0', d: 'D0', f: 'F0' });
    const reads = Promise.all([c.get('a'), c.get('b'), c.get('c'), c.get('d'), c.get('e'), c.get('f')]);
    const writes = Promise.all([
      c.set('a', 'A1'),
      c.delete('b'),
      c.mset({ c: 'C1', e: 'E1' }),
      c.expire('d', 100),
      c.set('f', 'F1'),
    ]);
    expect(await reads).toEqual(['A0', 'B0', null, 'D0', null, 'F0']);
    await writes;
    expect(await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((k) => c.get(k)))).toEqual([
      'A1',
      null,
      'C1',
      'D0',
      'E1',
      'F1',
    ]);
    const g = Promise.all([c.get('a'), c.get('c')]);
    const flushed = c.flushTenant();
    expect(await g).toEqual(['A1', 'C1']);
    expect(await flushed).toBeGreaterThanOrEqual(5);
    expect(await Promise.all([c.get('a'), c.get('c')])).toEqual([null, null]);
  });

  it('getOrSet in the same tick as gets of its key: the gets read the old state, the fill runs once', async () => {
    const c = client({ debugLogs: false });
    await c.set('other', 'o');
    let runs = 0;
    const reads = Promise.all([c.get('k'), c.get('other')]);
    const filled = c.getOrSet('k', () => {
      runs++;
      return 'filled';
    });
    expect(await reads).toEqual([null, 'o']);
    expect(await filled).toBe('filled');
    // Stored as a cached entry (read back by getOrSet, a hit: the factory does not run again).
    expect(await c.getOrSet('k', () => 'again')).toBe('filled');
    expect(runs).toBe(1);
  });

  it('two clients filling one key with getOrSet: the waiter polls value and lock in one batch, the factory runs once', async () => {
    const [one, two] = [client({ debugLogs: false }), client({ debugLogs: false })];
    for (let round = 0; round < 5; round++) {
      let runs = 0;
      const factory = async () => {
        runs++;
        await sleep(150);
        return `value-${round}`;
      };
      const key = `fill-${round}`;
      const [a, b] = await Promise.all([one.getOrSet(key, factory), two.getOrSet(key, factory)]);
      expect([a, b]).toEqual([`value-${round}`, `value-${round}`]);
      expect(runs).toBe(1);
    }
  });

  it('getOrSetMany and mget mixed with gets in one tick each get their own answers', async () => {
    const c = client({ debugLogs: false });
    await c.mset({ a: 'A', b: 'B' });
    const [g1, many, g2, m, g3] = await Promise.all([
      c.get('a'),
      c.getOrSetMany(['a', 'x', 'b'], (missing) => new Map(missing.map((k) => [k, `made-${k}`]))),
      c.get('x'),
      c.mget('b', 'nope', 'a'),
      c.get('b'),
    ]);
    expect([g1, g2, g3]).toEqual(['A', null, 'B']);
    expect(many).toEqual(['A', 'made-x', 'B']);
    expect(m).toEqual(['B', null, 'A']);
    expect(await c.getOrSetMany(['x'], () => new Map([['x', 'again']]))).toEqual(['made-x']);
  });

  // DEFECT (left open): the MGET answers nil for the hash; the UNLINK issued later in the tick goes out
  // before the EXISTS, which then counts 0, so the caller gets `null` where its `GET` would have failed
  // with WRONGTYPE. Only keys of another type in the cache's namespace are affected (the library itself
  // writes strings only); fixing it needs the EXISTS pipelined with the MGET (one more command per batch).
  it.skip('DEFECT: a hash read in a batch, then deleted in the same tick, reads as null instead of WRONGTYPE', async () => {
    const e = engine();
    await e.set('a', '1');
    await redis.cli('HSET', 'h', 'f', 'x');
    const reads = Promise.allSettled([e.get('a'), e.get('h')]);
    const deleted = e.unlink(['h']);
    const [, h] = await reads;
    await deleted;
    expect(h?.status).toBe('rejected');
    expect(String((h as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
  });

  // DEFECT (left open): where the server refuses the MGET (an ACL without MGET: NOPERM; a cluster node:
  // CROSSSLOT), each key is read again with a GET sent after the refusal, so after commands the caller
  // issued later in the tick. On such a connection the first batch can read a value written after it.
  // Later batches are plain GETs (coalescing is off), so it is once per connection; a fix would need to
  // know the refusal before sending (e.g. `ACL DRYRUN` at connect) or to hold later commands back.
  it.skip('DEFECT: where an ACL refuses MGET, the first batch reads a value a later command of its tick wrote', async () => {
    await redis.cli('ACL', 'SETUSER', 'nomget2', 'on', '>pw', '~*', '+@all', '-mget');
    try {
      const e = engine(`redis://nomget2:pw@127.0.0.1:${redis.port}`);
      await e.set('k', 'old');
      const reads = Promise.all([e.get('k'), e.get('other')]);
      const written = e.set('k', 'new');
      await written;
      expect(await reads).toEqual(['old', null]);
    } finally {
      await Promise.all(engines.splice(0).map((x) => x.close()));
      await redis.cli('ACL', 'DELUSER', 'nomget2');
    }
  });
});

describe('close() and calls after it', () => {
  it('gets of the tick of close() are answered, misses and WRONGTYPE included', async () => {
    // Was a defect: the connection closed once the MGET was answered, and the EXISTS follow-up for the
    // misses failed with "the client is closed".
    const e = engine();
    await e.set('a', '1');
    await redis.cli('HSET', 'h', 'f', 'x');
    const reads = Promise.allSettled([e.get('a'), e.get('missing'), e.get('h'), e.get('also-missing')]);
    const closed = e.close();
    const [a, missing, h, alsoMissing] = await reads;
    await closed;
    expect(a).toEqual({ status: 'fulfilled', value: '1' });
    expect(missing).toEqual({ status: 'fulfilled', value: null });
    expect(alsoMissing).toEqual({ status: 'fulfilled', value: null });
    expect(String((h as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
  });

  it('close() while a batch is on the wire (sent a tick earlier) still answers its misses', async () => {
    const e = engine();
    await e.set('a', '1');
    const reads = Promise.all([e.get('a'), e.get('b'), e.get('c')]);
    await new Promise((r) => setImmediate(r));
    await e.close();
    expect(await reads).toEqual(['1', null, null]);
  });

  it('calls made after close() reject with CacheConnectionError, even while close waits for a batch', async () => {
    const e = engine();
    await e.set('a', '1');
    const reads = Promise.all([e.get('a'), e.get('b')]);
    const closed = e.close();
    const late = await Promise.allSettled([e.get('a'), e.get('b'), e.set('a', '2'), e.ping()]);
    for (const outcome of late) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(CacheConnectionError);
    }
    expect(await reads).toEqual(['1', null]);
    await closed;
    expect(await redis.rawGet('a')).toBe('1');
  });

  it('CacheClient.close() in the tick of its gets answers them', async () => {
    const c = new CacheClient({
      connectionConfig: { url: redis.url, tenant: 't' },
      env: {},
      debugLogs: false,
    });
    await c.set('a', 'A');
    const reads = Promise.all([c.get('a'), c.get('b', 'dflt'), c.get('c')]);
    const closed = c.close();
    expect(await reads).toEqual(['A', 'dflt', null]);
    await closed;
  });
});

describe('faults while a batch or its EXISTS is in flight: every caller settles, nothing hangs', () => {
  let own: RedisServer;

  beforeAll(async () => {
    own = await startRedis();
  });

  afterAll(async () => {
    await own?.stop();
  });

  it('the connection lost after the MGET answered, before the EXISTS answers: a value or a CacheError each', async () => {
    const proxy = await startFaultProxy(own.port);
    try {
      const e = engine(`redis://127.0.0.1:${proxy.port}`);
      await e.set('hit', 'h');
      // The hit is answered by the MGET; the EXISTS for the misses is already on its way: drop its reply.
      const hit = e.get('hit').then((v) => {
        proxy.mode = 'drop-reply-then-close';
        return v;
      });
      const settled = await Promise.allSettled([hit, e.get('m1'), e.get('m2')]);
      expect(settled[0]).toEqual({ status: 'fulfilled', value: 'h' });
      expectValuesOrCacheErrors(settled);
      proxy.mode = 'forward';
      expect(await eventually(() => Promise.all([e.get('hit'), e.get('m1')]))).toEqual(['h', null]);
    } finally {
      await proxy.close();
    }
  });

  it('the server frozen while the EXISTS is in flight: the misses fail with a CacheError within timeoutMs', async () => {
    const e = engine(own.url, { timeoutMs: 300 });
    await e.set('hit', 'h');
    const hit = e.get('hit').then((v) => {
      own.pause();
      return v;
    });
    let settled: PromiseSettledResult<string | null>[];
    try {
      settled = await Promise.allSettled([hit, e.get('m1'), e.get('m2')]);
    } finally {
      own.resume();
    }
    expect(settled[0]).toEqual({ status: 'fulfilled', value: 'h' });
    expectValuesOrCacheErrors(settled);
    expect(await eventually(() => Promise.all([e.get('hit'), e.get('m1')]))).toEqual(['h', null]);
  });

  it('the server killed with batches in flight, then restarted: every get settles, and reads work again', async () => {
    const e = engine(own.url, { timeoutMs: 1_000 });
    await e.set('hit', 'h');
    const gets = Array.from({ length: 600 }, (_, i) => e.get(i % 3 === 0 ? 'hit' : `m${i}`));
    const stopped = own.stop(true);
    const settled = await Promise.allSettled(gets);
    await stopped;
    expectValuesOrCacheErrors(settled);
    for (const [i, s] of settled.entries()) {
      if (s.status === 'fulfilled') expect(s.value).toBe(i % 3 === 0 ? 'h' : null);
    }
    await own.restart();
    // No persistence: the restarted server is empty.
    expect(await eventually(() => Promise.all([e.get('hit'), e.get('m1')]))).toEqual([null, null]);
    await e.set('hit', 'h2');
    expect(await Promise.all([e.get('hit'), e.get('m1')])).toEqual(['h2', null]);
  });

  it('a connection killed by the server (CLIENT KILL) mid-stream: every get settles; the bound does not drift', async () => {
    const e = engine(own.url, { maxQueueLength: 64 });
    await e.set('hit', 'h');
    for (let round = 0; round < 5; round++) {
      const gets = Array.from({ length: 64 }, (_, i) => e.get(i % 2 === 0 ? 'hit' : `m${i}`));
      const killed = own.cli('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      expectValuesOrCacheErrors(await Promise.allSettled(gets));
      await killed;
    }
    // After every kill, the whole bound is available again: 64 gets in one tick are all accepted.
    const values = await eventually(() =>
      Promise.all(Array.from({ length: 64 }, (_, i) => e.get(i % 2 === 0 ? 'hit' : `m${i}`))),
    );
    expect(values).toEqual(Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? 'h' : null)));
  });
});

describe('the maxQueueLength bound', () => {
  it('refuses the gets past the bound at once, as node-redis does for GETs, and frees the room after', async () => {
    const e = engine(redis.url, { maxQueueLength: 8 });
    await e.set('a', '1');
    for (let round = 0; round < 3; round++) {
      const settled = await Promise.allSettled(Array.from({ length: 20 }, () => e.get('a')));
      expect(settled.slice(0, 8)).toEqual(
        Array.from({ length: 8 }, () => ({ status: 'fulfilled', value: '1' })),
      );
      for (const s of settled.slice(8)) {
        expect(s.status).toBe('rejected');
        expect((s as PromiseRejectedResult).reason).toBeInstanceOf(CacheError);
        expect(String((s as PromiseRejectedResult).reason)).toMatch(/queue/i);
      }
    }
  });

  // DEFECT (left open): a batch's follow-up GETs (for nil answers that EXISTS found, or after a refused
  // MGET) are sent after its callers' room was given back, so when calls accepted meanwhile fill the
  // queue, node-redis refuses a follow-up and a get that was accepted fails with "queue full" (a
  // CacheError still) where its own GET, queued at once, would have been answered (here: WRONGTYPE).
  // Only at the bound; a fix would keep the nil keys' room until their follow-ups are answered.
  it.skip('DEFECT: an accepted get whose follow-up GET finds the queue full fails with "queue full"', async () => {
    const e = engine(redis.url, { maxQueueLength: 4 });
    await e.set('a', '1');
    // A large value, so that the MGET reading it is still being received when the EXISTS is answered.
    await e.set('big', 'x'.repeat(20_000_000));
    for (const k of ['h1', 'h2', 'h3']) await redis.cli('HSET', k, 'f', 'x');
    const later: Promise<unknown>[] = [];
    // Once the MGET answered (its EXISTS is on the wire), three more gets and a set take the room back.
    const first = e.get('a').then((v) => {
      later.push(e.get('big'), e.get('big'), e.get('big'), e.set('s', 'x'));
      return v;
    });
    const settled = await Promise.allSettled([first, e.get('h1'), e.get('h2'), e.get('h3')]);
    expectValuesOrCacheErrors(await Promise.allSettled(later));
    expect(settled[0]).toEqual({ status: 'fulfilled', value: '1' });
    for (const s of settled.slice(1))
      expect(String((s as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
  });

  it('a batch that failed (server frozen) gives its room back: the bound is whole again after recovery', async () => {
    const own = await startRedis();
    try {
      const e = engine(own.url, { maxQueueLength: 8, timeoutMs: 300 });
      await e.set('a', '1');
      own.pause();
      let failed: PromiseSettledResult<string | null>[];
      try {
        failed = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => e.get(i % 2 ? 'a' : 'miss')));
      } finally {
        own.resume();
      }
      for (const s of failed) expect(s.status).toBe('rejected');
      expectValuesOrCacheErrors(failed);
      const values = await eventually(() => Promise.all(Array.from({ length: 8 }, () => e.get('a'))));
      expect(values).toEqual(Array.from({ length: 8 }, () => '1'));
    } finally {
      await Promise.all(engines.splice(0).map((x) => x.close()));
      await own.stop();
    }
  });
});

describe('what each caller sees', () => {
  it(`${MAX_BATCH_KEYS * 3}+ gets in one tick with WRONGTYPE keys among them: each fails alone, the rest are right`, async () => {
    const e = engine();
    const n = MAX_BATCH_KEYS * 3 + 7;
    const kind = (i: number) => (i % 37 === 0 ? 'hash' : i % 3 === 0 ? 'miss' : 'hit');
    await e.mset(
      Array.from({ length: n }, (_, i) => i)
        .filter((i) => kind(i) === 'hit')
        .map((i) => [`k${i}`, `v${i}`] as const),
    );
    for (let i = 0; i < n; i++) if (kind(i) === 'hash') await redis.cli('HSET', `k${i}`, 'f', 'x');
    await redis.cli('CONFIG', 'RESETSTAT');
    const settled = await Promise.allSettled(Array.from({ length: n }, (_, i) => e.get(`k${i}`)));
    for (const [i, s] of settled.entries()) {
      if (kind(i) === 'hash') {
        expect(s.status).toBe('rejected');
        expect((s as PromiseRejectedResult).reason).toBeInstanceOf(CacheError);
        expect(String((s as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
      } else expect(s).toEqual({ status: 'fulfilled', value: kind(i) === 'hit' ? `v${i}` : null });
    }
    const counts = await commandCounts(redis);
    expect(counts.mget).toBe(Math.ceil(n / MAX_BATCH_KEYS));
    // Coalescing stays on after WRONGTYPE (a per-key error, not a refusal of MGET).
    await redis.cli('CONFIG', 'RESETSTAT');
    await Promise.all([e.get('k1'), e.get('k2')]);
    expect((await commandCounts(redis)).mget).toBe(1);
  });

  it('unicode keys and a large value share a batch with small ones, each read back exactly', async () => {
    const c = client({ debugLogs: false });
    const big = 'é'.repeat(2_000_000); // ~4 MB encoded
    const keys = ['ünï', '日本語キー', 'emoji-😀-🚀', 'a b\tc', 'ascii', 'big'];
    const values = [{ v: '😀' }, '値', 'x'.repeat(10), { nested: ['ü'] }, 'plain', big];
    await c.mset(new Map(keys.map((k, i) => [k, values[i]])));
    await redis.cli('CONFIG', 'RESETSTAT');
    const read = await Promise.all([...keys, 'missing-ü'].map((k) => c.get(k)));
    expect(read).toEqual([...values, null]);
    expect((await commandCounts(redis)).mget).toBe(1);
  });

  it('a value over maxValueBytes is refused on write; the gets of its tick are unaffected', async () => {
    const c = client({ debugLogs: false, maxValueBytes: 1_000 });
    await c.set('a', 'A');
    const reads = Promise.all([c.get('a'), c.get('b')]);
    await expect(c.set('b', 'x'.repeat(2_000))).rejects.toThrow(/maxValueBytes/);
    expect(await reads).toEqual(['A', null]);
  });

  it('stats count each get of a batch once, with its hit or miss; errors per call', async () => {
    const c = client({ debugLogs: false });
    await c.set('a', 'A');
    await redis.cli('HSET', 't:h', 'f', 'x');
    const settled = await Promise.allSettled([c.get('a'), c.get('b'), c.get('a'), c.get('h')]);
    expect(outcomes(settled.slice(0, 3))).toEqual([{ value: 'A' }, { value: null }, { value: 'A' }]);
    expect(settled[3]?.status).toBe('rejected');
    expect(c.stats().operations.get).toEqual({ calls: 4, errors: 1, hits: 2, misses: 1 });
  });

  it('tracing publishes one operation per get of a batch, with its own hit or miss', async () => {
    const c = client({ debugLogs: false });
    await c.set('a', 'A');
    const channel = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);
    const ends: OperationContext[] = [];
    const handlers = {
      start() {},
      end() {},
      asyncStart() {},
      asyncEnd(ctx: unknown) {
        ends.push({ ...(ctx as OperationContext) });
      },
      error() {},
    };
    channel.subscribe(handlers);
    try {
      await redis.cli('CONFIG', 'RESETSTAT');
      expect(await Promise.all([c.get('a'), c.get('b'), c.get('a')])).toEqual(['A', null, 'A']);
    } finally {
      channel.unsubscribe(handlers);
    }
    const gets = ends.filter((ctx) => ctx.operation === 'get');
    expect(gets).toHaveLength(3);
    expect(gets.map((ctx) => [ctx.hits, ctx.misses]).sort()).toEqual([
      [0, 1],
      [1, 0],
      [1, 0],
    ]);
    expect((await commandCounts(redis)).mget).toBe(1);
  });

  it('otel: each get of a batch has its own span, child of the span active at its call, with its hit or miss', async () => {
    const manager = new AsyncLocalStorageContextManager();
    context.setGlobalContextManager(manager.enable());
    const spans = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
    const instrumentation = instrumentPeakCache({ tracerProvider });
    try {
      const c = client({ debugLogs: false });
      await c.set('a', 'A');
      spans.reset();
      const tracer = tracerProvider.getTracer('test');
      await redis.cli('CONFIG', 'RESETSTAT');
      const values = await Promise.all(
        ['a', 'missing', 'a'].map((key, i) =>
          tracer.startActiveSpan(`parent-${i}`, async (parent) => {
            const value = await c.get(key);
            parent.end();
            return value;
          }),
        ),
      );
      expect(values).toEqual(['A', null, 'A']);
      expect((await commandCounts(redis)).mget).toBe(1);
      const finished = spans.getFinishedSpans();
      for (let i = 0; i < 3; i++) {
        const parent = finished.find((span) => span.name === `parent-${i}`);
        const children = finished.filter(
          (span) => span.name === 'get' && span.parentSpanContext?.spanId === parent?.spanContext().spanId,
        );
        expect(children).toHaveLength(1);
        const hit = i !== 1;
        expect(children[0]?.attributes['peak_cache.hits']).toBe(hit ? 1 : 0);
        expect(children[0]?.attributes['peak_cache.misses']).toBe(hit ? 0 : 1);
      }
    } finally {
      instrumentation.disable();
      await tracerProvider.shutdown();
      context.disable();
    }
  });

  it('debug logs show one line per get of a batch', async () => {
    const lines: string[] = [];
    const c = client({
      logger: { debug: (m: string) => lines.push(m), warn: () => {} } as never,
      debugLogs: true,
    });
    await c.set('a', 'A');
    lines.length = 0;
    expect(await Promise.all([c.get('a'), c.get('b'), c.get('c')])).toEqual(['A', null, null]);
    expect(lines.filter((l) => /\bget\b/.test(l))).toHaveLength(3);
  });
});

describe('tenants', () => {
  const tenants = ['ga', 'gb'];
  const pw = (t: string) => `pw-${t}`;

  beforeAll(async () => {
    for (const t of tenants) await redis.cli(...aclRecipe(t, pw(t)));
  });

  afterAll(async () => {
    for (const t of tenants) await redis.cli('ACL', 'DELUSER', t);
  });

  it('shared mode: the gets of several tenants in one tick each read their own key space', async () => {
    const caches = new TenantCaches({ connectionConfig: { url: redis.url }, debugLogs: false });
    closers.push(() => caches.close());
    const [a, b] = [caches.tenant('ga'), caches.tenant('gb')];
    await a.set('k', 'from-a');
    await b.set('k', 'from-b');
    await b.set('only-b', 'b');
    const reads = await Promise.all([a.get('k'), b.get('k'), a.get('only-b'), b.get('only-b'), a.get('k')]);
    expect(reads).toEqual(['from-a', 'from-b', null, 'b', 'from-a']);
  });

  it('pooled mode, one connection for two ACL tenants: no batch of one tenant goes out under the other', async () => {
    await redis.cli('ACL', 'LOG', 'RESET');
    const caches = new TenantCaches({
      connectionFor: (t) => ({ url: `redis://${t}:${pw(t)}@127.0.0.1:${redis.port}` }),
      maxConnections: 1,
      debugLogs: false,
    });
    closers.push(() => caches.close());
    const [a, b] = [caches.tenant('ga'), caches.tenant('gb')];
    await a.set('k', 'from-a');
    await b.set('k', 'from-b');
    for (let round = 0; round < 5; round++) {
      const reads = await Promise.all([
        ...Array.from({ length: 20 }, () => a.get('k')),
        ...Array.from({ length: 20 }, () => b.get('k')),
        a.get('missing'),
        b.get('missing'),
      ]);
      expect(reads).toEqual([
        ...Array.from({ length: 20 }, () => 'from-a'),
        ...Array.from({ length: 20 }, () => 'from-b'),
        null,
        null,
      ]);
    }
    // A key of the other tenant read under these credentials would have been refused and logged.
    expect(await redis.cli('ACL', 'LOG')).toBe('');
    expect(caches.stats().totals.errors).toBe(0);
  });
});

// With the near cache, a read is a GET then a PTTL of its key: the PTTL flushes the open batch, so these
// gets go out one GET each (not coalesced); they still must never serve a value older than an invalidation.
describe('near cache (RESP3 tracking)', () => {
  it('gets in the tick of an own write never fill the near cache with the value before it', async () => {
    const c = client({ debugLogs: false, nearCache: { maxEntries: 100 } });
    await c.mset({ k: 'old', j: 'J' });
    for (let round = 0; round < 20; round++) {
      const reads = Promise.all([c.get('k'), c.get('j'), c.get('k')]);
      const written = c.set('k', `new${round}`);
      const [k1, j, k2] = await reads;
      expect(j).toBe('J');
      expect([k1, k2]).toEqual([
        round === 0 ? 'old' : `new${round - 1}`,
        round === 0 ? 'old' : `new${round - 1}`,
      ]);
      await written;
      // Twice: the second would be answered from memory if the first had filled it.
      expect(await c.get('k')).toBe(`new${round}`);
      expect(await c.get('k')).toBe(`new${round}`);
    }
  });

  it("after another client's write is invalidated, the gets of one tick never serve the older value", async () => {
    const reader = client({ debugLogs: false, nearCache: { maxEntries: 100 } });
    const writer = client({ debugLogs: false });
    await writer.mset({ k: 0, j: 'J' });
    for (let n = 1; n <= 20; n++) {
      // Fill the near cache, then change the key elsewhere and wait for the invalidation.
      await Promise.all([reader.get('k'), reader.get('j')]);
      const before = reader.stats().nearCache?.invalidations ?? 0;
      await writer.set('k', n);
      for (let i = 0; i < 200 && (reader.stats().nearCache?.invalidations ?? 0) === before; i++)
        await sleep(5);
      expect(reader.stats().nearCache?.invalidations).toBeGreaterThan(before);
      const [k, j, again] = await Promise.all([reader.get('k'), reader.get('j'), reader.get('k')]);
      expect([k, j, again]).toEqual([String(n), 'J', String(n)]);
    }
  });
});

describe('engines that do not coalesce', () => {
  it('memory://: a get then a set of the same key in one tick reads the old value', async () => {
    const c = client({ debugLogs: false }, 'memory://');
    await c.set('k', 'old');
    const reads = Promise.all([c.get('k'), c.get('missing')]);
    const written = c.set('k', 'new');
    expect(await reads).toEqual(['old', null]);
    await written;
    expect(await c.get('k')).toBe('new');
  });

  describe('a one-node cluster (all slots on one server)', () => {
    let node: RedisServer;

    beforeAll(async () => {
      node = await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'] });
      await node.cli('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      for (let i = 0; i < 100 && !(await node.cli('CLUSTER', 'INFO')).includes('cluster_state:ok'); i++) {
        await sleep(50);
      }
    });

    afterAll(async () => {
      await node?.stop();
    });

    it('cluster: true sends GETs (no MGET across slots), each answered', async () => {
      const c = client({ debugLogs: false, connectionConfig: { url: node.url, tenant: 't', cluster: true } });
      await c.mset({ a: 'A', b: 'B' });
      await node.cli('CONFIG', 'RESETSTAT');
      expect(await Promise.all([c.get('a'), c.get('b'), c.get('c')])).toEqual(['A', 'B', null]);
      const counts = await commandCounts(node);
      expect(counts.mget).toBeUndefined();
      expect(counts.get).toBe(3);
    });

    it('a standalone engine on a cluster node: CROSSSLOT turns coalescing off, every get answered', async () => {
      const e = engine(node.url);
      await e.set('a', 'A');
      await e.set('b', 'B');
      expect(await Promise.all([e.get('a'), e.get('b'), e.get('c')])).toEqual(['A', 'B', null]);
      await node.cli('CONFIG', 'RESETSTAT');
      expect(await Promise.all([e.get('a'), e.get('b')])).toEqual(['A', 'B']);
      const counts = await commandCounts(node);
      expect(counts.mget).toBeUndefined();
      expect(counts.get).toBe(2);
    });
  });
});
