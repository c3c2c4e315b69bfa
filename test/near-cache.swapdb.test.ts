/**
 * Changes the server does not signal (issue 20): Redis 7.0 sends no invalidation when `SWAPDB` swaps
 * the client's database, so the near cache keeps the old value until `nearCache.ttlMs` bounds it (10
 * minutes by default; see docs/near-cache.md, "Changes the server does not signal"). A real redis-server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheClient } from '../src/index.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('near cache: SWAPDB (no invalidation from the server)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(() => server.stop());

  it('nearCache.ttlMs bounds how long the swapped-out value is served', async () => {
    const open = (nearCache: { maxEntries: number; ttlMs?: number }) =>
      new CacheClient({ connectionConfig: { url: `${server.url}/0`, tenant: 'swap' }, env: {}, nearCache });
    const bounded = open({ maxEntries: 100, ttlMs: 300 });
    const unbounded = open({ maxEntries: 100 }); // the default bound: 10 minutes
    try {
      // Written first: tracking keys invalidations by key name in every database, so a write in db 1
      // after the reads would invalidate them (that is not the case tested).
      await server.cli('-n', '1', 'SET', 'swap:k', 'new');
      await bounded.set('k', 'old');
      expect(await bounded.get('k')).toBe('old');
      expect(await unbounded.get('k')).toBe('old');
      expect(await unbounded.get('k')).toBe('old');
      expect(unbounded.stats().nearCache?.hits).toBe(1);
      const swappedAt = performance.now();
      await server.cli('SWAPDB', '0', '1');
      // Database 0 now holds `new`; the server told neither client (a plain GET proves the swap).
      expect(await server.cli('GET', 'swap:k')).toBe('new');
      expect(await unbounded.get('k')).toBe('old');
      expect(await bounded.get('k')).toBe('old');
      let seenAt = 0;
      while (seenAt === 0) {
        if ((await bounded.get('k')) === 'new') seenAt = performance.now();
        else if (performance.now() - swappedAt > 3000) throw new Error('ttlMs did not bound the SWAPDB');
        else await sleep(20);
      }
      console.log(
        `SWAPDB seen ${(seenAt - swappedAt).toFixed(0)} ms after the swap with nearCache.ttlMs 300`,
      );
      // With the default bound the old value stays (for up to 10 minutes, as the docs say).
      await sleep(50);
      expect(await unbounded.get('k')).toBe('old');
      expect(unbounded.stats().nearCache?.invalidations).toBe(0);
    } finally {
      await Promise.all([bounded.close(), unbounded.close()]);
    }
  });
});
