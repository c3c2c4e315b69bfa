/**
 * Write coalescing (src/engines/set-batch.ts): the `set`s without a TTL of one tick reach a real
 * redis-server as one `MSET`, in order with every other command; failures fail the whole batch, none
 * written, and are never retried key by key.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisEngine } from '../src/engines/redis.js';
import { MAX_BATCH_KEYS } from '../src/engines/tick-batch.js';
import { CacheClient, CacheConnectionError, CacheError, CacheTimeoutError } from '../src/index.js';
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

describe('set coalescing', () => {
  it('sends the sets without a TTL of one tick as one MSET; a lone set as a plain SET', async () => {
    const e = engine();
    await e.ping();
    await redis.cli('CONFIG', 'RESETSTAT');
    await Promise.all([e.set('a', '1'), e.set('b', '2'), e.set('c', '3')]);
    expect(await redis.cli('MGET', 'a', 'b', 'c')).toBe('1\n2\n3');
    await e.set('d', '4');
    const counts = await commandCounts();
    expect(counts.mset).toBe(1);
    expect(counts.set).toBe(1);
    expect(await redis.rawGet('d')).toBe('4');
  });

  it(`splits a tick's sets into MSETs of at most ${MAX_BATCH_KEYS} keys`, async () => {
    const e = engine();
    await e.ping();
    await redis.cli('CONFIG', 'RESETSTAT');
    const n = MAX_BATCH_KEYS * 2 + 3;
    await Promise.all(Array.from({ length: n }, (_, i) => e.set(`k${i}`, `v${i}`)));
    expect((await commandCounts()).mset).toBe(3);
    expect(await redis.cli('DBSIZE')).toBe(String(n));
    expect(await redis.rawGet(`k${n - 1}`)).toBe(`v${n - 1}`);
  });

  it('keeps the order of commands: gets, sets with and without a TTL and deletes of one tick', async () => {
    const e = engine();
    await e.set('k', 'old');
    const reads = [e.get('k')];
    const writes = [e.set('k', 'a')];
    reads.push(e.get('k'));
    writes.push(e.set('k', 'b', 100), e.set('k', 'c'), e.set('k', 'd'));
    reads.push(e.get('k'));
    writes.push(e.set('t', 'x'), e.unlink(['t']) as Promise<unknown> as Promise<void>, e.set('t', 'y'));
    reads.push(e.get('t'));
    await Promise.all(writes);
    expect(await Promise.all(reads)).toEqual(['old', 'a', 'd', 'y']);
    // The last write of k has no TTL: the SET EX before it is overwritten, TTL included.
    expect(await e.ttl('k')).toBe(-1);
    // The same key twice in one batch: the later value, as two SETs.
    await Promise.all([e.set('dup', '1'), e.set('dup', '2')]);
    expect(await redis.rawGet('dup')).toBe('2');
  });

  it('fails the whole batch when the server refuses it (out of memory): none written, each caller told', async () => {
    const e = engine();
    await e.set('seed', 'x');
    await redis.cli('CONFIG', 'SET', 'maxmemory', '1');
    try {
      const results = await Promise.allSettled([e.set('a', '1'), e.set('b', '2')]);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CacheError);
        expect(String((r as PromiseRejectedResult).reason.message)).toMatch(/OOM|memory/i);
      }
    } finally {
      await redis.cli('CONFIG', 'SET', 'maxmemory', '0');
    }
    expect(await redis.cli('EXISTS', 'a', 'b')).toBe('0');
    // Not refused for good: the next batch is an MSET again.
    await redis.cli('CONFIG', 'RESETSTAT');
    await Promise.all([e.set('a', '1'), e.set('b', '2')]);
    expect((await commandCounts()).mset).toBe(1);
  });

  it('under an ACL without MSET: the refused batch fails (never re-sent key by key), then plain SETs', async () => {
    await redis.cli('ACL', 'SETUSER', 'nomset', 'on', '>pw', '~*', '+@all', '-mset');
    try {
      const e = engine(`redis://nomset:pw@127.0.0.1:${redis.port}`);
      await e.ping();
      const first = await Promise.allSettled([e.set('a', '1'), e.set('b', '2')]);
      for (const r of first) expect(String((r as PromiseRejectedResult).reason)).toMatch(/NOPERM/);
      expect(await redis.cli('EXISTS', 'a', 'b')).toBe('0');
      await redis.cli('CONFIG', 'RESETSTAT');
      await Promise.all([e.set('a', '1'), e.set('b', '2')]);
      expect(await redis.cli('MGET', 'a', 'b')).toBe('1\n2');
      const counts = await commandCounts();
      expect(counts.set).toBe(2);
      expect(counts.mset).toBeUndefined();
    } finally {
      await Promise.all(engines.splice(0).map((e) => e.close()));
      await redis.cli('ACL', 'DELUSER', 'nomset');
    }
  });

  it('bounds the calls waiting: beyond maxQueueLength sets reject at once; a frozen server times the batch out', async () => {
    const e = engine(redis.url, { timeoutMs: 300, maxQueueLength: 50 });
    await e.ping();
    redis.pause();
    let results: PromiseSettledResult<void>[];
    try {
      results = await Promise.allSettled(Array.from({ length: 80 }, (_, i) => e.set(`q${i}`, 'v')));
    } finally {
      redis.resume();
    }
    const full = results.filter((r) => r.status === 'rejected' && /queue is full/.test(String(r.reason)));
    expect(full).toHaveLength(30);
    for (const r of full) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CacheConnectionError);
    const timedOut = results.filter(
      (r) => r.status === 'rejected' && (r as PromiseRejectedResult).reason instanceof CacheTimeoutError,
    );
    expect(timedOut).toHaveLength(50);
    // The batch gave its room back: once a connection answers again, a full batch is accepted.
    let done = false;
    for (let i = 0; i < 100 && !done; i++) {
      done = await Promise.all(Array.from({ length: 50 }, (_, j) => e.set(`r${j}`, 'v'))).then(
        () => true,
        () => false,
      );
      if (!done) await new Promise((r) => setTimeout(r, 20));
    }
    expect(done).toBe(true);
  });

  it('sends the sets of the tick before close() and writes them', async () => {
    const e = engine();
    await e.ping();
    const writes = [e.set('a', '1'), e.set('b', '2')];
    const closed = e.close();
    await Promise.all(writes);
    await closed;
    expect(await redis.cli('MGET', 'a', 'b')).toBe('1\n2');
    await expect(e.set('c', '3')).rejects.toBeInstanceOf(CacheConnectionError);
  });

  it('CacheClient.set: concurrent sets, read back by concurrent gets, counted as before', async () => {
    const client = new CacheClient({ connectionConfig: { url: redis.url, tenant: 't1' }, env: {} });
    try {
      await client.ping();
      await redis.cli('CONFIG', 'RESETSTAT');
      expect(
        await Promise.all([client.set('x', { n: 1 }), client.set('y', 'two'), client.set('z', 3, 60)]),
      ).toEqual([true, true, true]);
      expect(await Promise.all([client.get('x'), client.get('y'), client.get('z')])).toEqual([
        { n: 1 },
        'two',
        '3',
      ]);
      const counts = await commandCounts();
      expect(counts.mset).toBe(1); // x and y; z has a TTL
      expect(client.stats().operations.set).toEqual({ calls: 3, errors: 0, hits: 0, misses: 0 });
    } finally {
      await client.close();
    }
  });
});
