/**
 * Write coalescing (src/engines/set-batch.ts) under attack: probes of the promise that a caller cannot
 * tell a coalesced `set` from one `SET` per call, against real redis-server processes. Order against every
 * other operation in the same tick and across ticks (a seeded random model), the interplay with the batch
 * of `get`s, `close()` in the same tick, connections lost or servers frozen while an `MSET` is in flight,
 * the `maxQueueLength` bound shared by gets and sets, large values, the near cache, tenants and stats.
 *
 * The tests marked `it.skip` show defects left open (see the comment on each).
 */
import { tracingChannel } from 'node:diagnostics_channel';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisEngine } from '../src/engines/redis.js';
import { MAX_BATCH_CHARS } from '../src/engines/set-batch.js';
import { MAX_BATCH_KEYS } from '../src/engines/tick-batch.js';
import {
  CacheClient,
  type CacheClientOptions,
  OPERATION_CHANNEL,
  type OperationContext,
  TenantCaches,
} from '../src/index.js';
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
  const c = new CacheClient({
    connectionConfig: { url, tenant: 't' },
    env: {},
    debugLogs: false,
    ...options,
  });
  closers.push(() => c.close());
  return c;
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

describe('order: a coalesced set takes effect at its place among the commands of its tick', () => {
  it('random ticks of gets, sets with and without a TTL, deletes, msets, increments, locks and expires', async () => {
    const e = engine();
    const rand = seeded(0x1f2e3d4c);
    const strings = ['s1', 's2', 's3', 's4'];
    const counters = ['n1', 'n2'];
    const model = new Map<string, string>();
    // The mset-with-TTL script cached first (see the skipped NOSCRIPT defect below).
    await e.mset([['warm', 'x']], 1);
    for (let round = 0; round < 60; round++) {
      const reads: [Promise<string | null>, string | null, string][] = [];
      const writes: Promise<unknown>[] = [];
      const expected: unknown[] = [];
      const labels: string[] = [];
      // Some rounds span ticks: an await in the middle lets the open batch go out at the end of a tick.
      const split = rand(3) === 0 ? rand(40) : -1;
      for (let op = 0; op < 40; op++) {
        if (op === split) await Promise.resolve().then(() => new Promise((r) => setImmediate(r)));
        const choice = rand(14);
        // Counters are only read, deleted, incremented, expired and probed (a string there fails INCRBY).
        const isCounter = rand(3) === 0 && (choice < 9 || choice > 11);
        const key = isCounter ? (counters[rand(2)] as string) : (strings[rand(4)] as string);
        if (choice >= 4) labels.push(`${round}.${op} #${choice} ${key}`);
        if (choice < 4) {
          reads.push([e.get(key), model.get(key) ?? null, `${round}.${op} get ${key}`]);
        } else if (choice === 4) {
          const other = strings[rand(4)] as string;
          labels[labels.length - 1] += ` ${other}`;
          writes.push(e.unlink([key, other]));
          let n = 0;
          for (const k of new Set([key, other])) if (model.delete(k)) n++;
          expected.push(n);
        } else if (isCounter && choice < 9) {
          const by = 1 + rand(5);
          writes.push(e.incrBy(key, by));
          const next = String(Number(model.get(key) ?? '0') + by);
          model.set(key, next);
          expected.push(Number(next));
        } else if (choice < 9) {
          const value = `v${round}.${op}`;
          writes.push(e.set(key, value));
          model.set(key, value);
          expected.push(undefined);
        } else if (choice === 9) {
          const value = `t${round}.${op}`;
          writes.push(e.set(key, value, 1_000));
          model.set(key, value);
          expected.push(undefined);
        } else if (choice === 10) {
          const other = strings[rand(4)] as string;
          const entries: [string, string][] = [
            [key, `m${round}.${op}`],
            [other, `o${round}.${op}`],
          ];
          labels[labels.length - 1] += ` ${other}`;
          writes.push(e.mset(entries, rand(2) === 0 ? undefined : 1_000));
          for (const [k, v] of entries) model.set(k, v);
          expected.push(undefined);
        } else if (choice === 11) {
          // A getOrSet lock: SET NX PX.
          const value = `l${round}.${op}`;
          writes.push(e.setIfAbsent(key, value, 100_000));
          const absent = !model.has(key);
          if (absent) model.set(key, value);
          expected.push(absent);
        } else if (choice === 12) {
          writes.push(e.expire(key, 1_000));
          expected.push(model.has(key));
        } else {
          writes.push(e.exists([key]));
          expected.push(model.has(key) ? 1 : 0);
        }
      }
      // Engine.set resolves with nothing to use ('OK' from a lone SET, undefined from an MSET).
      const results = (await Promise.all(writes)).map((v) => (v === 'OK' ? undefined : v));
      expect(results.map((v, i) => [labels[i], v])).toEqual(expected.map((v, i) => [labels[i], v]));
      const got = await Promise.all(reads.map(([read]) => read));
      expect(got.map((v, i) => [reads[i]?.[2], v])).toEqual(reads.map(([, want, at]) => [at, want]));
    }
    const keys = [...strings, ...counters];
    expect(await Promise.all(keys.map((k) => e.get(k)))).toEqual(keys.map((k) => model.get(k) ?? null));
    for (const k of keys) expect(await redis.rawGet(k)).toBe(model.get(k) ?? null);
  });

  // Found by the random model above (a later setIfAbsent found the key absent), fixed in mset-ttl.ts: an
  // `mset` with a TTL was one `EVALSHA`, whose `NOSCRIPT` retry on a cold script cache went out after the
  // commands issued later in the tick, so a later `set` of the same key was overwritten (a lost update).
  it('an mset with a TTL on a cold script cache is not overtaken by a set issued after it', async () => {
    const e = engine();
    await e.ping();
    await redis.cli('SCRIPT', 'FLUSH');
    await Promise.all([e.mset([['k', 'old']], 100), e.set('k', 'new')]);
    expect(await e.get('k')).toBe('new');
  });

  it('a set issued when a batch of gets answers (its EXISTS still to go) does not overtake the EXISTS', async () => {
    const e = engine();
    await e.set('a', '1');
    for (let round = 0; round < 20; round++) {
      // The MGET answers 'a'; in that callback, a set of the missing key is issued before the EXISTS is sent.
      let written: Promise<void> | undefined;
      const first = e.get('a').then((v) => {
        written = e.set(`m${round}`, 'late');
        return v;
      });
      const reads = await Promise.all([first, e.get(`m${round}`), e.get(`n${round}`)]);
      expect(reads).toEqual(['1', null, null]);
      await written;
      expect(await e.get(`m${round}`)).toBe('late');
    }
  });

  it('a batch of sets open when the get batch sends its follow-ups: the follow-ups read as of the MGET', async () => {
    const e = engine();
    await redis.cli('HSET', 'h', 'f', 'x');
    for (let round = 0; round < 20; round++) {
      let later: Promise<unknown> | undefined;
      // 'a' answers first: in its callback two coalesced sets open a batch; 'h' (WRONGTYPE) and the miss
      // still await the EXISTS and GET follow-ups of the MGET.
      const first = e.get('a').then((v) => {
        later = Promise.all([e.set(`m${round}`, 'late'), e.set('a', `a${round}`)]);
        return v;
      });
      const settled = await Promise.allSettled([first, e.get('h'), e.get(`m${round}`)]);
      expect(settled[0]).toEqual({ status: 'fulfilled', value: round === 0 ? null : `a${round - 1}` });
      expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
      expect(settled[2]).toEqual({ status: 'fulfilled', value: null });
      await later;
      expect(await Promise.all([e.get(`m${round}`), e.get('a')])).toEqual(['late', `a${round}`]);
    }
  });

  it('alternating gets and sets of one key in one tick: each get reads the set before it', async () => {
    const e = engine();
    await redis.cli('CONFIG', 'RESETSTAT');
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 50; i++) {
      ops.push(e.set('k', `v${i}`), e.set('j', `w${i}`), e.get('k'), e.get('j'));
    }
    const got = await Promise.all(ops);
    for (let i = 0; i < 50; i++) expect(got.slice(i * 4 + 2, i * 4 + 4)).toEqual([`v${i}`, `w${i}`]);
    const counts = await commandCounts(redis);
    // Each pair of sets is one MSET, each pair of gets one MGET: the batches alternate, never both open.
    expect(counts.mset).toBe(50);
    expect(counts.mget).toBe(50);
  });

  it('CacheClient: sets, getOrSet, delete, flushTenant and near-cache-free reads in one tick keep their order', async () => {
    const c = client();
    let runs = 0;
    const tick = Promise.all([
      c.set('a', 'A1'),
      c.getOrSet('g', () => {
        runs++;
        return 'G';
      }),
      c.set('b', 'B1'),
      c.delete('a'),
      c.get('a'),
      c.get('b'),
    ]);
    const [, g, , , a, b] = await tick;
    expect([g, a, b]).toEqual(['G', null, 'B1']);
    expect(runs).toBe(1);
    // flushTenant (SCAN then UNLINK) issued after coalesced sets of its tick deletes them.
    const w = Promise.all([c.set('x', 'X'), c.set('y', 'Y')]);
    const flushed = c.flushTenant();
    await w;
    expect(await flushed).toBeGreaterThanOrEqual(3);
    expect(await Promise.all([c.get('x'), c.get('y'), c.get('b')])).toEqual([null, null, null]);
  });
});

describe('close() in the tick of the sets', () => {
  it('sets, gets and sets with a TTL issued before close() all complete, in order', async () => {
    const e = engine();
    await e.ping();
    const ops = Promise.all([
      e.set('a', '1'),
      e.set('b', '2'),
      e.get('a'),
      e.set('a', '3'),
      e.set('c', '4', 100),
      e.set('d', '5'),
      e.set('e', '6'),
    ]);
    const closed = e.close();
    expect((await ops)[2]).toBe('1');
    await closed;
    expect(await redis.cli('MGET', 'a', 'b', 'c', 'd', 'e')).toBe('3\n2\n4\n5\n6');
  });

  it('CacheClient.close() in the tick of its sets: each set is acknowledged and written', async () => {
    const c = new CacheClient({
      connectionConfig: { url: redis.url, tenant: 't' },
      env: {},
      debugLogs: false,
    });
    await c.ping();
    const sets = Promise.all([c.set('a', 'A'), c.set('b', 'B'), c.set('c', 'C', 100)]);
    const closed = c.close();
    expect(await sets).toEqual([true, true, true]);
    await closed;
    expect(await redis.cli('MGET', 't:a', 't:b', 't:c')).toBe('A\nB\nC');
  });

  it('close() before the first connection: the sets of its tick settle (a value or a CacheError)', async () => {
    const e = engine();
    const sets = [e.set('a', '1'), e.set('b', '2')];
    const closed = e.close();
    expectValuesOrCacheErrors(await Promise.allSettled(sets));
    await closed;
  });
});

describe('faults while an MSET is in flight: every caller settles, no stale value lands later', () => {
  let own: RedisServer;

  beforeAll(async () => {
    own = await startRedis();
  });

  afterAll(async () => {
    await own?.stop();
  });

  it('CLIENT KILL mid-stream: every set settles; a later acknowledged set is the final value', async () => {
    const e = engine(own.url, { maxQueueLength: 64 });
    await e.ping();
    for (let round = 0; round < 5; round++) {
      const sets = Array.from({ length: 64 }, (_, i) => e.set(`k${i % 8}`, `r${round}.${i}`));
      const killed = own.cli('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      expectValuesOrCacheErrors(await Promise.allSettled(sets));
      await killed;
      await eventually(() =>
        Promise.all(Array.from({ length: 8 }, (_, i) => e.set(`k${i}`, `final${round}`))),
      );
      await sleep(20);
      expect(await Promise.all(Array.from({ length: 8 }, (_, i) => e.get(`k${i}`)))).toEqual(
        Array.from({ length: 8 }, () => `final${round}`),
      );
    }
    // The bound did not drift: 64 sets in one tick are accepted again.
    await Promise.all(Array.from({ length: 64 }, (_, i) => e.set(`z${i}`, 'z')));
  });

  it('the server frozen with an MSET in flight: the sets fail with a CacheError; the later set wins', async () => {
    const e = engine(own.url, { timeoutMs: 300 });
    await e.ping();
    own.pause();
    let settled: PromiseSettledResult<void>[];
    try {
      settled = await Promise.allSettled([e.set('k', 'stale'), e.set('j', 'stale')]);
    } finally {
      own.resume();
    }
    for (const s of settled) expect(s.status).toBe('rejected');
    expectValuesOrCacheErrors(settled);
    await eventually(() => Promise.all([e.set('k', 'fresh'), e.set('j', 'fresh')]));
    await sleep(100);
    expect(await Promise.all([e.get('k'), e.get('j')])).toEqual(['fresh', 'fresh']);
  });

  it('close() while an MSET waits on a frozen server: close and every set settle within timeoutMs', async () => {
    const e = engine(own.url, { timeoutMs: 300 });
    await e.ping();
    own.pause();
    try {
      const sets = Promise.allSettled([e.set('a', '1'), e.set('b', '2'), e.set('c', '3')]);
      await new Promise((r) => setImmediate(r)); // the MSET is on the wire
      const closed = e.close();
      const settled = await sets;
      await closed;
      for (const s of settled) expect(s.status).toBe('rejected');
      expectValuesOrCacheErrors(settled);
    } finally {
      own.resume();
    }
  });

  it('a refused batch (out of memory) gives its room back: the whole bound is available after', async () => {
    const e = engine(own.url, { maxQueueLength: 8 });
    await e.ping();
    await own.cli('CONFIG', 'SET', 'maxmemory', '1');
    let refused: PromiseSettledResult<void>[];
    try {
      refused = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => e.set(`k${i}`, 'v')));
    } finally {
      await own.cli('CONFIG', 'SET', 'maxmemory', '0');
    }
    for (const s of refused) expect(String((s as PromiseRejectedResult).reason)).toMatch(/OOM/);
    await Promise.all(Array.from({ length: 8 }, (_, i) => e.set(`k${i}`, 'w')));
    expect(await e.get('k7')).toBe('w');
  });

  it('the reply of an MSET dropped, then the connection closed: each set settles, reads work again', async () => {
    const proxy = await startFaultProxy(own.port);
    try {
      const e = engine(`redis://127.0.0.1:${proxy.port}`);
      await e.ping();
      proxy.mode = 'drop-reply-then-close';
      const settled = await Promise.allSettled([e.set('a', '1'), e.set('b', '2'), e.set('c', '3')]);
      expectValuesOrCacheErrors(settled);
      proxy.mode = 'forward';
      await eventually(() => Promise.all([e.set('a', 'x'), e.set('b', 'y')]));
      expect(await Promise.all([e.get('a'), e.get('b')])).toEqual(['x', 'y']);
    } finally {
      await proxy.close();
    }
  });

  it('the server killed with batches in flight, then restarted: every set settles; writes work again', async () => {
    const e = engine(own.url, { timeoutMs: 1_000 });
    await e.ping();
    const sets = Array.from({ length: 600 }, (_, i) => e.set(`k${i}`, 'v'));
    const stopped = own.stop(true);
    expectValuesOrCacheErrors(await Promise.allSettled(sets));
    await stopped;
    await own.restart();
    await eventually(() => Promise.all([e.set('a', '1'), e.set('b', '2')]));
    expect(await Promise.all([e.get('a'), e.get('b')])).toEqual(['1', '2']);
  });
});

describe('the maxQueueLength bound', () => {
  it('sets past the bound are refused at once; the room comes back once the MSET is answered', async () => {
    const e = engine(redis.url, { maxQueueLength: 8 });
    await e.ping();
    for (let round = 0; round < 3; round++) {
      const settled = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => e.set(`k${i}`, 'v')));
      expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(8);
      for (const s of settled.slice(8)) expect(String((s as PromiseRejectedResult).reason)).toMatch(/queue/i);
    }
  });

  it('gets and sets of one tick share the bound: no more calls accepted than maxQueueLength', async () => {
    // Was a defect: the batch of gets and the batch of sets each counted only their own waiting calls
    // against the room, so 8 gets then 8 sets in one tick accepted 15 calls with maxQueueLength 8.
    const e = engine(redis.url, { maxQueueLength: 8 });
    await e.ping();
    const gets = Array.from({ length: 8 }, () => e.get('a'));
    const sets = Array.from({ length: 8 }, (_, i) => e.set(`k${i}`, 'v'));
    const settled = await Promise.allSettled([...gets, ...sets]);
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(8);
    for (const s of settled.slice(8)) expect(String((s as PromiseRejectedResult).reason)).toMatch(/queue/i);
    // And the other way round, and with commands that are not coalesced (node-redis's own bound).
    const sets2 = Array.from({ length: 8 }, (_, i) => e.set(`k${i}`, 'w'));
    const gets2 = Array.from({ length: 8 }, () => e.get('k0'));
    const settled2 = await Promise.allSettled([...sets2, ...gets2]);
    expect(settled2.filter((s) => s.status === 'fulfilled')).toHaveLength(8);
    const sets3 = Array.from({ length: 8 }, (_, i) => e.set(`k${i}`, 'x'));
    const incrs = Array.from({ length: 8 }, () => e.incrBy('n', 1));
    const settled3 = await Promise.allSettled([...sets3, ...incrs]);
    expect(settled3.filter((s) => s.status === 'fulfilled')).toHaveLength(8);
    for (const s of settled3.slice(8)) expect(String((s as PromiseRejectedResult).reason)).toMatch(/queue/i);
  });
});

describe('large values', () => {
  it('sets that each fit the server query buffer limit are not refused together as one MSET', async () => {
    // Values that each fit the server's `client-query-buffer-limit` (1 GB by default; 1 MB here, its
    // minimum) but not together: each is written, as with one SET per call (batches end at
    // MAX_BATCH_CHARS, and Redis reads arguments of 32 KB or more outside the query buffer anyway).
    const own = await startRedis();
    try {
      await own.cli('CONFIG', 'SET', 'client-query-buffer-limit', '1mb');
      const e = engine(own.url);
      await e.ping();
      const value = 'x'.repeat(300_000);
      const keys = ['a', 'b', 'c', 'd', 'e'];
      const settled = await Promise.allSettled(keys.map((k) => e.set(k, value)));
      expect(settled.map((s) => s.status)).toEqual(keys.map(() => 'fulfilled'));
      for (const k of keys) expect((await e.get(k))?.length).toBe(value.length);
    } finally {
      await Promise.all(engines.splice(0).map((x) => x.close()));
      await own.stop();
    }
  });

  it('a tick of large sets is not one MSET that outlasts timeoutMs where each SET would answer in time', async () => {
    // Was a defect: 100 sets of 4 MB in one tick went as one 400 MB MSET, whose only reply came after
    // ~0.5 s: the watchdog (no reply within timeoutMs) destroyed the connection and all 100 failed with
    // CacheTimeoutError, where 100 SETs (or these sets with a TTL) each answer within a few ms. A batch now
    // goes out once its keys and values reach MAX_BATCH_CHARS, so a large value is a SET of its own.
    const own = await startRedis();
    try {
      const e = engine(own.url, { timeoutMs: 250 });
      await e.ping();
      const value = 'x'.repeat(4_000_000);
      const settled = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => e.set(`k${i}`, value)));
      expect(settled.filter((s) => s.status === 'rejected').map((s) => String(s.reason))).toEqual([]);
      expect(await own.cli('DBSIZE')).toBe('100');
    } finally {
      await Promise.all(engines.splice(0).map((x) => x.close()));
      await own.stop();
    }
  });

  it('a batch goes out once its keys and values reach MAX_BATCH_CHARS, in order with the rest', async () => {
    const e = engine();
    await e.ping();
    await redis.cli('CONFIG', 'RESETSTAT');
    const third = 'v'.repeat(Math.ceil(MAX_BATCH_CHARS / 3));
    // Three values fill a batch: 9 sets are 3 MSETs, the 10th a SET of its own, then a get reads them.
    const sets = Array.from({ length: 10 }, (_, i) => e.set(`k${i}`, `${i}${third}`));
    const read = e.get('k9');
    await Promise.all(sets);
    expect(await read).toBe(`9${third}`);
    const counts = await commandCounts(redis);
    expect([counts.mset, counts.set, counts.get]).toEqual([3, 1, 1]);
  });

  it.skip('DEFECT (reads): a tick of gets of large values is one MGET that outlasts timeoutMs', async () => {
    // Left open (src/engines/get-batch.ts): the same as the sets above, for reads. 100 gets of 4 MB values
    // in one tick are one MGET whose single 400 MB reply comes after timeoutMs: the watchdog destroys the
    // connection and all 100 fail with CacheTimeoutError, where 100 GETs would each be answered in turn.
    // A batch cannot know the sizes before the reply; a fix might stop coalescing on a connection whose
    // recent replies were large, or count bytes received as progress.
    const own = await startRedis();
    try {
      const e = engine(own.url, { timeoutMs: 250 });
      const value = 'x'.repeat(4_000_000);
      for (let i = 0; i < 100; i++) await e.set(`k${i}`, value, 1_000);
      const settled = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => e.get(`k${i}`)));
      expect(settled.filter((s) => s.status === 'rejected').map((s) => String(s.reason))).toEqual([]);
    } finally {
      await Promise.all(engines.splice(0).map((x) => x.close()));
      await own.stop();
    }
  });

  it('values near maxValueBytes share a tick with small ones: each written exactly, the one over refused', async () => {
    const c = client({ maxValueBytes: 100_000 });
    const big = 'é'.repeat(49_000); // ~98 KB in UTF-8 once encoded
    const settled = await Promise.allSettled([
      c.set('small', 's'),
      c.set('big', big),
      c.set('over', 'x'.repeat(200_000)),
      c.set('ü-key', 'ü'),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(await Promise.all([c.get('small'), c.get('big'), c.get('over'), c.get('ü-key')])).toEqual([
      's',
      big,
      null,
      'ü',
    ]);
  });
});

describe('near cache (RESP3 tracking)', () => {
  it('an own coalesced set is never hidden by the near cache: the next get reads it', async () => {
    const c = client({ nearCache: { maxEntries: 100 } });
    await c.set('k', 'old');
    for (let round = 0; round < 20; round++) {
      // Fill the near cache (twice: the second is served from memory), then write in one tick with reads.
      await c.get('k');
      await c.get('k');
      const tick = Promise.all([c.get('k'), c.set('k', `new${round}`), c.set('j', `j${round}`), c.get('k')]);
      const [before, , , after] = await tick;
      expect(before).toBe(round === 0 ? 'old' : `new${round - 1}`);
      expect(after).toBe(`new${round}`);
      expect(await c.get('k')).toBe(`new${round}`);
      expect(await c.get('k')).toBe(`new${round}`);
    }
  });

  it('random ticks of own gets, sets, deletes and msets with the near cache: every get reads the model', async () => {
    const c = client({ nearCache: { maxEntries: 100 } });
    const rand = seeded(0x5eed1234);
    const keys = ['a', 'b', 'c'];
    const model = new Map<string, string>();
    for (let round = 0; round < 80; round++) {
      const reads: [Promise<unknown>, string | null, string][] = [];
      const writes: Promise<unknown>[] = [];
      const split = rand(2) === 0 ? rand(12) : -1;
      for (let op = 0; op < 12; op++) {
        if (op === split) await new Promise((r) => setImmediate(r));
        const key = keys[rand(3)] as string;
        const choice = rand(8);
        if (choice < 4) reads.push([c.get(key), model.get(key) ?? null, `${round}.${op} get ${key}`]);
        else if (choice < 6) {
          const value = `v${round}.${op}`;
          writes.push(choice === 4 ? c.set(key, value) : c.set(key, value, 1_000));
          model.set(key, value);
        } else if (choice === 6) {
          writes.push(c.delete(key));
          model.delete(key);
        } else {
          const other = keys[rand(3)] as string;
          const value = `m${round}.${op}`;
          writes.push(c.mset(key === other ? { [key]: value } : { [key]: value, [other]: value }));
          model.set(key, value);
          model.set(other, value);
        }
      }
      await Promise.all(writes);
      const got = await Promise.all(reads.map(([read]) => read));
      expect(got.map((v, i) => [reads[i]?.[2], v])).toEqual(reads.map(([, want, at]) => [at, want]));
      // Read twice after the tick: the second may be served from memory, and must still be the model's.
      for (let i = 0; i < 2; i++)
        expect(await Promise.all(keys.map((k) => c.get(k)))).toEqual(keys.map((k) => model.get(k) ?? null));
    }
    expect(c.stats().nearCache?.hits ?? 0).toBeGreaterThan(0);
  });

  it("another client's coalesced writes invalidate the reader's near cache", async () => {
    const reader = client({ nearCache: { maxEntries: 100 } });
    const writer = client();
    await writer.set('k', 0);
    for (let n = 1; n <= 10; n++) {
      await reader.get('k');
      await reader.get('k');
      await Promise.all([writer.set('k', n), writer.set('other', n)]);
      let seen: unknown;
      for (let i = 0; i < 200; i++) {
        seen = await reader.get('k');
        if (seen === String(n)) break;
        await sleep(5);
      }
      expect(seen).toBe(String(n));
    }
  });
});

describe('tenants and per-call accounting', () => {
  it('shared mode: the sets of several tenants in one tick each land in their own key space', async () => {
    const caches = new TenantCaches({ connectionConfig: { url: redis.url }, debugLogs: false });
    closers.push(() => caches.close());
    const [a, b] = [caches.tenant('sa'), caches.tenant('sb')];
    await Promise.all([a.set('k', 'from-a'), b.set('k', 'from-b'), a.set('only-a', 'a')]);
    expect(await Promise.all([a.get('k'), b.get('k'), a.get('only-a'), b.get('only-a')])).toEqual([
      'from-a',
      'from-b',
      'a',
      null,
    ]);
  });

  it('stats count each coalesced set once; a refused batch counts an error per call', async () => {
    const own = await startRedis();
    try {
      const c = client({}, own.url);
      await Promise.all([c.set('a', 1), c.set('b', 2), c.set('c', 3)]);
      expect(c.stats().operations.set).toEqual({ calls: 3, errors: 0, hits: 0, misses: 0 });
      await own.cli('CONFIG', 'SET', 'maxmemory', '1');
      const settled = await Promise.allSettled([c.set('d', 4), c.set('e', 5)]);
      await own.cli('CONFIG', 'SET', 'maxmemory', '0');
      expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
      expect(c.stats().operations.set).toEqual({ calls: 5, errors: 2, hits: 0, misses: 0 });
    } finally {
      await Promise.all(closers.splice(0).map((close) => close()));
      await own.stop();
    }
  });

  it('pooled mode, one connection for two ACL tenants: the sets of each go out under its own user', async () => {
    const tenants = ['pa', 'pb'];
    const pw = (t: string) => `pw-${t}`;
    for (const t of tenants) await redis.cli(...aclRecipe(t, pw(t)));
    try {
      await redis.cli('ACL', 'LOG', 'RESET');
      const caches = new TenantCaches({
        connectionFor: (t) => ({ url: `redis://${t}:${pw(t)}@127.0.0.1:${redis.port}` }),
        maxConnections: 1,
        debugLogs: false,
      });
      closers.push(() => caches.close());
      const [a, b] = [caches.tenant('pa'), caches.tenant('pb')];
      for (let round = 0; round < 5; round++) {
        await Promise.all([
          ...Array.from({ length: 20 }, (_, i) => a.set(`k${i}`, `a${round}`)),
          ...Array.from({ length: 20 }, (_, i) => b.set(`k${i}`, `b${round}`)),
        ]);
        const reads = await Promise.all([a.get('k0'), b.get('k0'), a.get('k19'), b.get('k19')]);
        expect(reads).toEqual([`a${round}`, `b${round}`, `a${round}`, `b${round}`]);
      }
      expect(await redis.cli('ACL', 'LOG')).toBe('');
      expect(caches.stats().totals.errors).toBe(0);
    } finally {
      await Promise.all(closers.splice(0).map((close) => close()));
      for (const t of tenants) await redis.cli('ACL', 'DELUSER', t);
    }
  });

  it('tracing publishes one operation per coalesced set; a refused batch one error per call', async () => {
    const own = await startRedis();
    const channel = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);
    const ends: OperationContext[] = [];
    const errors: unknown[] = [];
    const handlers = {
      start() {},
      end() {},
      asyncStart() {},
      asyncEnd(ctx: unknown) {
        ends.push({ ...(ctx as OperationContext) });
      },
      error(ctx: unknown) {
        errors.push(ctx);
      },
    };
    channel.subscribe(handlers);
    try {
      const c = client({}, own.url);
      await c.ping();
      await own.cli('CONFIG', 'RESETSTAT');
      await Promise.all([c.set('a', 1), c.set('b', 2), c.set('c', 3)]);
      expect(ends.filter((ctx) => ctx.operation === 'set')).toHaveLength(3);
      expect((await commandCounts(own)).mset).toBe(1);
      await own.cli('CONFIG', 'SET', 'maxmemory', '1');
      await Promise.allSettled([c.set('d', 4), c.set('e', 5)]);
      await own.cli('CONFIG', 'SET', 'maxmemory', '0');
      expect(ends.filter((ctx) => ctx.operation === 'set')).toHaveLength(5);
      expect(errors).toHaveLength(2);
    } finally {
      channel.unsubscribe(handlers);
      await Promise.all(closers.splice(0).map((close) => close()));
      await own.stop();
    }
  });

  it('two clients filling one key with getOrSet (no TTL): the factory runs once, both read its value', async () => {
    const [c1, c2] = [client(), client()];
    let runs = 0;
    const factory = async () => {
      runs++;
      await sleep(20);
      return { filled: runs };
    };
    for (let round = 0; round < 5; round++) {
      runs = 0;
      const got = await Promise.all([
        c1.getOrSet(`k${round}`, factory),
        c2.getOrSet(`k${round}`, factory),
        c1.set(`other${round}`, 'o'),
        c2.set(`other${round}`, 'o2'),
      ]);
      expect(got.slice(0, 2)).toEqual([{ filled: 1 }, { filled: 1 }]);
      expect(runs).toBe(1);
    }
  });

  it('a refused batch writes nothing: gets later in the tick read the old values; the near cache drops them', async () => {
    const own = await startRedis();
    try {
      const c = client({ nearCache: { maxEntries: 100 } }, own.url);
      await c.mset({ a: 'A0', b: 'B0' });
      expect(await Promise.all([c.get('a'), c.get('a'), c.get('b')])).toEqual(['A0', 'A0', 'B0']);
      await own.cli('CONFIG', 'SET', 'maxmemory', '1');
      const settled = await Promise.allSettled([c.set('a', 'A1'), c.set('b', 'B1'), c.get('a'), c.get('b')]);
      await own.cli('CONFIG', 'SET', 'maxmemory', '0');
      expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'fulfilled', 'fulfilled']);
      expect(settled.slice(2).map((s) => (s as PromiseFulfilledResult<unknown>).value)).toEqual(['A0', 'B0']);
      expect(await Promise.all([c.get('a'), c.get('b')])).toEqual(['A0', 'B0']);
      await Promise.all([c.set('a', 'A2'), c.set('b', 'B2')]);
      expect(await Promise.all([c.get('a'), c.get('b'), c.get('a')])).toEqual(['A2', 'B2', 'A2']);
    } finally {
      await Promise.all(closers.splice(0).map((close) => close()));
      await own.stop();
    }
  });

  it('under an ACL without MSET, every batch sent before the first refusal is answered fails whole', async () => {
    // The documented exception (a set alone would have been written), here across ticks: the batches of
    // the ticks before the NOPERM reply are on the wire already and fail too; the ones after are SETs.
    await redis.cli('ACL', 'SETUSER', 'nomset2', 'on', '>pw', '~*', '+@all', '-mset');
    try {
      const e = engine(`redis://nomset2:pw@127.0.0.1:${redis.port}`);
      await e.ping();
      const first = Promise.allSettled([e.set('a', '1'), e.set('b', '2')]);
      await new Promise((r) => process.nextTick(r));
      const second = Promise.allSettled([e.set('c', '3'), e.set('d', '4')]);
      for (const r of [...(await first), ...(await second)])
        expect(String((r as PromiseRejectedResult).reason)).toMatch(/NOPERM/);
      await Promise.all([e.set('a', '1'), e.set('b', '2')]);
      expect(await redis.cli('MGET', 'a', 'b')).toBe('1\n2');
      expect(await redis.cli('EXISTS', 'c', 'd')).toBe('0');
    } finally {
      await Promise.all(engines.splice(0).map((x) => x.close()));
      await redis.cli('ACL', 'DELUSER', 'nomset2');
    }
  });

  it(`${MAX_BATCH_KEYS * 2 + 1} sets of one key in one tick: the last one wins`, async () => {
    const e = engine();
    await Promise.all(Array.from({ length: MAX_BATCH_KEYS * 2 + 1 }, (_, i) => e.set('k', `v${i}`)));
    expect(await e.get('k')).toBe(`v${MAX_BATCH_KEYS * 2}`);
  });
});
