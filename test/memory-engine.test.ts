/**
 * MemoryEngine specifics: expiry (with fake timers: the engine reads `Date.now()`), TTL rounding,
 * counting, scan snapshots and close behaviour.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryEngine } from '../src/engines/memory.js';

async function collect(iterable: AsyncIterable<string[]>): Promise<string[][]> {
  const batches: string[][] = [];
  for await (const batch of iterable) batches.push(batch);
  return batches;
}

describe('MemoryEngine', () => {
  let engine: MemoryEngine;

  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2025-01-01T00:00:00Z') });
    engine = new MemoryEngine();
  });

  afterEach(async () => {
    await engine.close();
    vi.useRealTimers();
  });

  describe('expiry', () => {
    it('a key lives until its expiry has passed, then is gone', async () => {
      await engine.set('k', 'v', 1);
      vi.advanceTimersByTime(999);
      expect(await engine.get('k')).toBe('v');
      vi.advanceTimersByTime(1);
      // Redis: expired only once now > expiry.
      expect(await engine.get('k')).toBe('v');
      expect(await engine.ttl('k')).toBe(0);
      vi.advanceTimersByTime(1);
      expect(await engine.get('k')).toBeNull();
      expect(await engine.ttl('k')).toBe(-2);
      expect(await engine.exists(['k'])).toBe(0);
      expect(await engine.mget(['k'])).toEqual([null]);
      expect(await engine.expire('k', 10)).toBe(false);
      expect(await engine.unlink(['k'])).toBe(0);
    });

    it('ttl rounds like Redis: (ms + 500) / 1000, floored', async () => {
      await engine.set('k', 'v', 10);
      expect(await engine.ttl('k')).toBe(10);
      vi.advanceTimersByTime(500); // 9500 ms left
      expect(await engine.ttl('k')).toBe(10);
      vi.advanceTimersByTime(1); // 9499 ms left
      expect(await engine.ttl('k')).toBe(9);
      vi.advanceTimersByTime(9000); // 499 ms left
      expect(await engine.ttl('k')).toBe(0);
    });

    it('ttl is -1 without expiry and -2 when missing', async () => {
      await engine.set('k', 'v');
      expect(await engine.ttl('k')).toBe(-1);
      expect(await engine.ttl('missing')).toBe(-2);
    });

    it('set without a TTL clears a previous expiry; set with one replaces it', async () => {
      await engine.set('k', 'v', 5);
      await engine.set('k', 'w');
      expect(await engine.ttl('k')).toBe(-1);
      await engine.set('k', 'x', 100);
      expect(await engine.ttl('k')).toBe(100);
      vi.advanceTimersByTime(10_000);
      expect(await engine.get('k')).toBe('x');
    });

    it('expire sets, replaces and (at zero or less) deletes; false when missing', async () => {
      expect(await engine.expire('missing', 10)).toBe(false);
      await engine.set('k', 'v');
      expect(await engine.expire('k', 30)).toBe(true);
      expect(await engine.ttl('k')).toBe(30);
      expect(await engine.expire('k', 3)).toBe(true);
      expect(await engine.ttl('k')).toBe(3);
      expect(await engine.expire('k', 0)).toBe(true);
      expect(await engine.exists(['k'])).toBe(0);
      await engine.set('k', 'v');
      expect(await engine.expire('k', -5)).toBe(true);
      expect(await engine.get('k')).toBeNull();
    });

    it('rejects TTLs Redis rejects', async () => {
      await expect(engine.set('k', 'v', 0)).rejects.toThrow(/invalid expire time/);
      await expect(engine.set('k', 'v', 1.5)).rejects.toThrow(/invalid expire time/);
      await expect(engine.mset([['k', 'v']], -1)).rejects.toThrow(/invalid expire time/);
      await expect(engine.expire('k', 1.5)).rejects.toThrow(/not an integer/);
      expect(await engine.exists(['k'])).toBe(0);
    });

    it('the background sweep removes expired keys nobody touches', async () => {
      const entries = Array.from({ length: 5000 }, (_, i) => [`t:${i}`, 'v'] as const);
      await engine.mset(entries, 1);
      await engine.set('forever', 'v');
      await engine.set('later', 'v', 3600);
      expect(engine.size).toBe(5002);
      vi.advanceTimersByTime(1001);
      expect(engine.size).toBeGreaterThan(2); // not swept in one go
      vi.advanceTimersByTime(12_000);
      expect(engine.size).toBe(2);
      expect(await engine.mget(['forever', 'later'])).toEqual(['v', 'v']);
    });

    it('the sweep timer does not outlive close', async () => {
      expect(vi.getTimerCount()).toBe(1);
      await engine.close();
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  describe('counting and batches', () => {
    it('exists counts repeats; unlink counts each existing key once', async () => {
      await engine.mset([
        ['a', '1'],
        ['b', '2'],
      ]);
      expect(await engine.exists(['a', 'a', 'b', 'missing'])).toBe(3);
      expect(await engine.unlink(['a', 'a', 'missing'])).toBe(1);
      expect(await engine.exists(['a', 'b'])).toBe(1);
    });

    it('mset gives every key the TTL, keeps the last of repeated keys, and clears TTLs without one', async () => {
      await engine.mset(
        [
          ['a', '1'],
          ['b', '2'],
          ['a', '3'],
        ],
        20,
      );
      expect(await engine.mget(['a', 'b', 'c'])).toEqual(['3', '2', null]);
      expect(await engine.ttl('a')).toBe(20);
      expect(await engine.ttl('b')).toBe(20);
      await engine.mset([['a', '4']]);
      expect(await engine.ttl('a')).toBe(-1);
      expect(await engine.ttl('b')).toBe(20);
    });

    it('mset is visible all at once', async () => {
      const entries = Array.from({ length: 100 }, (_, i) => [`m:${i}`, String(i)] as const);
      const write = engine.mset(entries);
      // Issued right after, before the write's promise settles: all or nothing.
      const seen = await engine.exists(entries.map(([key]) => key));
      await write;
      expect(seen).toBe(100);
    });
  });

  describe('scan', () => {
    beforeEach(async () => {
      await engine.mset(Array.from({ length: 50 }, (_, i) => [`user:${i}`, 'v'] as const));
      await engine.mset(Array.from({ length: 10 }, (_, i) => [`other:${i}`, 'v'] as const));
    });

    it('yields every matching key in batches of at most count', async () => {
      const batches = await collect(engine.scan('user:*', 7));
      expect(batches.every((b) => b.length > 0 && b.length <= 7)).toBe(true);
      const keys = batches.flat();
      expect(new Set(keys).size).toBe(keys.length);
      expect(keys.sort()).toEqual(Array.from({ length: 50 }, (_, i) => `user:${i}`).sort());
      expect((await collect(engine.scan('user:[0-4]', 1000))).flat().sort()).toEqual([
        'user:0',
        'user:1',
        'user:2',
        'user:3',
        'user:4',
      ]);
      expect(await collect(engine.scan('nothing:*', 10))).toEqual([]);
    });

    it('is safe against deletions and insertions during iteration', async () => {
      const seen: string[] = [];
      const deleted = new Set<string>();
      for await (const batch of engine.scan('*', 5)) {
        seen.push(...batch);
        if (seen.length === 5) {
          // Delete keys not returned yet, and add new ones.
          const pending = Array.from({ length: 50 }, (_, i) => `user:${i}`).filter((k) => !seen.includes(k));
          for (const key of pending.slice(0, 20)) deleted.add(key);
          expect(await engine.unlink([...deleted])).toBe(20);
          await engine.mset([
            ['new:1', 'v'],
            ['new:2', 'v'],
          ]);
        }
      }
      expect(seen.filter((k) => deleted.has(k))).toEqual([]);
      expect(seen).not.toContain('new:1');
      const survivors = [
        ...Array.from({ length: 50 }, (_, i) => `user:${i}`),
        ...Array.from({ length: 10 }, (_, i) => `other:${i}`),
      ].filter((k) => !deleted.has(k));
      expect(seen.sort()).toEqual(survivors.sort());
    });

    it('skips and removes expired keys', async () => {
      await engine.set('user:short', 'v', 1);
      vi.advanceTimersByTime(1001);
      const sizeBefore = engine.size;
      const keys = (await collect(engine.scan('user:*', 1000))).flat();
      expect(keys).not.toContain('user:short');
      expect(keys).toHaveLength(50);
      expect(engine.size).toBeLessThanOrEqual(sizeBefore);
      expect(engine.size).toBe(60);
    });

    it('treats the pattern * like SCAN does: it matches even the empty key', async () => {
      await engine.set('', 'v');
      expect((await collect(engine.scan('*', 1000))).flat()).toContain('');
      expect((await collect(engine.scan('**', 1000))).flat()).not.toContain('');
    });

    it('rejects a COUNT below 1', async () => {
      await expect(collect(engine.scan('*', 0))).rejects.toThrow(/COUNT/);
    });
  });

  describe('close', () => {
    it('is idempotent, drops the data, and every later call rejects', async () => {
      await engine.set('k', 'v');
      await engine.ping();
      await engine.close();
      await engine.close();
      expect(engine.size).toBe(0);
      const closed = /client is closed/;
      await expect(engine.get('k')).rejects.toThrow(closed);
      await expect(engine.set('k', 'v')).rejects.toThrow(closed);
      await expect(engine.mget(['k'])).rejects.toThrow(closed);
      await expect(engine.mset([['k', 'v']])).rejects.toThrow(closed);
      await expect(engine.unlink(['k'])).rejects.toThrow(closed);
      await expect(engine.exists(['k'])).rejects.toThrow(closed);
      await expect(engine.expire('k', 1)).rejects.toThrow(closed);
      await expect(engine.ttl('k')).rejects.toThrow(closed);
      await expect(engine.ping()).rejects.toThrow(closed);
      await expect(collect(engine.scan('*', 10))).rejects.toThrow(closed);
    });

    it('a scan in progress rejects once the engine is closed', async () => {
      await engine.mset(Array.from({ length: 20 }, (_, i) => [`k:${i}`, 'v'] as const));
      const iterator = engine.scan('*', 5)[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.done).toBe(false);
      await engine.close();
      await expect(iterator.next()).rejects.toThrow(/client is closed/);
    });
  });
});
