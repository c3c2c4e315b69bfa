/**
 * Read coalescing (src/engines/get-batch.ts): the `get`s of one tick reach a real redis-server as one
 * `MGET`, and a caller cannot tell: order with other commands, misses, `WRONGTYPE`, ACL refusals and a
 * lost connection all behave as with one `GET` per call.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisEngine } from '../src/engines/redis.js';
import { MAX_BATCH_KEYS } from '../src/engines/tick-batch.js';
import { CacheClient, CacheError, CacheTimeoutError } from '../src/index.js';
import {
  commandCounts as batchCommandCounts,
  type ProbeTuning,
  probeEngine,
} from './helpers/batch-probes.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

let redis: RedisServer;
const engines: RedisEngine[] = [];

function engine(url = redis.url, tuning: ProbeTuning = {}): RedisEngine {
  const e = probeEngine(url, tuning);
  engines.push(e);
  return e;
}

/** Calls per command since the last `CONFIG RESETSTAT`. */
const commandCounts = () => batchCommandCounts(redis);

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
  await redis.cli('FLUSHALL');
});

afterAll(async () => {
  await redis?.stop();
});

describe('get coalescing', () => {
  it('sends the gets of one tick as one MGET, hits and misses each answered', async () => {
    const e = engine();
    await e.mset([
      ['a', '1'],
      ['b', '2'],
    ]);
    await redis.cli('CONFIG', 'RESETSTAT');
    const values = await Promise.all(['a', 'missing', 'b', 'a'].map((k) => e.get(k)));
    expect(values).toEqual(['1', null, '2', '1']);
    const counts = await commandCounts();
    expect(counts.mget).toBe(1);
    expect(counts.get).toBeUndefined();
    // The batch had a nil answer: one EXISTS tells it is missing (not another type).
    expect(counts.exists).toBe(1);
  });

  it('sends a lone get as a plain GET', async () => {
    const e = engine();
    await e.set('a', 'x');
    await redis.cli('CONFIG', 'RESETSTAT');
    expect(await e.get('a')).toBe('x');
    expect(await e.get('nope')).toBeNull();
    const counts = await commandCounts();
    expect(counts.get).toBe(2);
    expect(counts.mget).toBeUndefined();
    expect(counts.exists).toBeUndefined();
  });

  it(`splits a tick's gets into MGETs of at most ${MAX_BATCH_KEYS} keys`, async () => {
    const e = engine();
    const n = MAX_BATCH_KEYS * 2 + 10;
    await e.mset(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`] as const));
    await redis.cli('CONFIG', 'RESETSTAT');
    const values = await Promise.all(Array.from({ length: n }, (_, i) => e.get(`k${i}`)));
    expect(values).toEqual(Array.from({ length: n }, (_, i) => `v${i}`));
    expect((await commandCounts()).mget).toBe(3);
  });

  it('keeps the order of commands: a get issued before a set in the same tick reads the old value', async () => {
    const e = engine();
    await e.set('k', 'old');
    const before = e.get('k');
    const alsoBefore = e.get('k');
    const written = e.set('k', 'new');
    const after = e.get('k');
    await written;
    expect(await Promise.all([before, alsoBefore, after])).toEqual(['old', 'old', 'new']);
  });

  it('fails a get of a key of another type with WRONGTYPE, alone, as GET does', async () => {
    const e = engine();
    await e.set('s', 'v');
    await redis.cli('HSET', 'h', 'f', 'x');
    const results = await Promise.allSettled(['s', 'h', 'missing'].map((k) => e.get(k)));
    expect(results[0]).toEqual({ status: 'fulfilled', value: 'v' });
    expect(results[2]).toEqual({ status: 'fulfilled', value: null });
    expect(results[1]?.status).toBe('rejected');
    const reason = (results[1] as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(CacheError);
    expect(reason.message).toMatch(/WRONGTYPE/);
  });

  it('falls back to plain GETs where an ACL refuses MGET (NOPERM)', async () => {
    await redis.cli('ACL', 'SETUSER', 'nomget', 'on', '>pw', '~*', '+@all', '-mget');
    try {
      const url = `redis://nomget:pw@127.0.0.1:${redis.port}`;
      const e = engine(url);
      await e.set('a', '1');
      await e.set('b', '2');
      expect(await Promise.all([e.get('a'), e.get('b'), e.get('c')])).toEqual(['1', '2', null]);
      // From then on, plain GETs: no MGET is tried again.
      await redis.cli('CONFIG', 'RESETSTAT');
      expect(await Promise.all([e.get('a'), e.get('b')])).toEqual(['1', '2']);
      const counts = await commandCounts();
      expect(counts.get).toBe(2);
      expect(counts.mget).toBeUndefined();
    } finally {
      await Promise.all(engines.splice(0).map((e) => e.close()));
      await redis.cli('ACL', 'DELUSER', 'nomget');
    }
  });

  it('reads the nil keys with GETs where an ACL refuses EXISTS (NOPERM), then sends plain GETs', async () => {
    await redis.cli('ACL', 'SETUSER', 'noexists', 'on', '>pw', '~*', '+@all', '-exists');
    try {
      const e = engine(`redis://noexists:pw@127.0.0.1:${redis.port}`);
      await e.set('a', '1');
      await redis.cli('HSET', 'h', 'f', 'x');
      const results = await Promise.allSettled([e.get('a'), e.get('c'), e.get('h')]);
      expect(results[0]).toEqual({ status: 'fulfilled', value: '1' });
      expect(results[1]).toEqual({ status: 'fulfilled', value: null });
      expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
      await redis.cli('CONFIG', 'RESETSTAT');
      expect(await Promise.all([e.get('a'), e.get('c')])).toEqual(['1', null]);
      const counts = await commandCounts();
      expect(counts.get).toBe(2);
      expect(counts.mget).toBeUndefined();
    } finally {
      await Promise.all(engines.splice(0).map((e) => e.close()));
      await redis.cli('ACL', 'DELUSER', 'noexists');
    }
  });

  it('sends the gets of the tick before close() and answers them', async () => {
    const e = engine();
    await e.set('a', '1');
    const reads = [e.get('a'), e.get('a')];
    const closed = e.close();
    expect(await Promise.all(reads)).toEqual(['1', '1']);
    await closed;
  });

  it('fails every get of a batch with a CacheError when the server stops answering, and recovers', async () => {
    const e = engine(redis.url, { timeoutMs: 300, maxQueueLength: 100 });
    await e.set('a', '1');
    redis.pause();
    let outcomes: PromiseSettledResult<string | null>[];
    try {
      outcomes = await Promise.allSettled([e.get('a'), e.get('b'), e.get('a')]);
    } finally {
      redis.resume();
    }
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(CacheTimeoutError);
    }
    // Calls fail fast until a new connection answers; then the batch works again.
    let values: (string | null)[] | undefined;
    for (let i = 0; i < 100 && values === undefined; i++) {
      values = await Promise.all([e.get('a'), e.get('b')]).catch(() => undefined);
      if (values === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(values).toEqual(['1', null]);
  });

  it('serves CacheClient.get concurrently with the codec and counters as before', async () => {
    const client = new CacheClient({ connectionConfig: { url: redis.url, tenant: 't1' }, env: {} });
    try {
      await client.set('x', { n: 1 });
      await redis.cli('CONFIG', 'RESETSTAT');
      const values = await Promise.all([client.get('x'), client.get('y', 'dflt'), client.get('x')]);
      expect(values).toEqual([{ n: 1 }, 'dflt', { n: 1 }]);
      expect((await commandCounts()).mget).toBe(1);
      const stats = client.stats();
      expect(stats.operations.get).toEqual({ calls: 3, errors: 0, hits: 2, misses: 1 });
    } finally {
      await client.close();
    }
  });
});
