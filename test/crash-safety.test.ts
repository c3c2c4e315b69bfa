/**
 * No unhandled rejection, no uncaught exception (issue 9, item 6), in the pieces a connection fault does
 * not reach: the watchdog's timer, the connect deadline, and a flush whose own progress callback throws.
 * test/setup.ts fails any of these tests on an unhandled error; the assertions say what the caller sees.
 */
import { describe, expect, it } from 'vitest';
import { startWatchdog, withDeadline } from '../src/engines/watchdog.js';
import { CacheClient, CacheError } from '../src/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watchdog timer', () => {
  it('contains a check that throws: no uncaught exception, and it keeps ticking', async () => {
    let calls = 0;
    const timer = startWatchdog(
      5,
      () => {
        calls++;
        throw new Error('check failed');
      },
      () => {
        calls++;
        throw new Error('restart failed');
      },
    );
    try {
      await sleep(60);
    } finally {
      clearInterval(timer);
    }
    expect(calls).toBeGreaterThanOrEqual(3);
  });
});

describe('withDeadline', () => {
  it('rejects with the error of an onTimeout that throws, and owns a late rejection of the attempt', async () => {
    let fail: (err: Error) => void = () => {};
    const attempt = new Promise<never>((_, reject) => {
      fail = reject;
    });
    const bounded = withDeadline(attempt, 5, () => {
      throw new Error('could not abandon the attempt');
    });
    await expect(bounded).rejects.toThrow('could not abandon the attempt');
    fail(new Error('late failure of the attempt'));
    await sleep(5);
  }, 5_000);

  it('rejects with the timeout error, and resolves when the attempt wins', async () => {
    await expect(withDeadline(sleep(200), 5, () => new Error('too slow'))).rejects.toThrow('too slow');
    await expect(withDeadline(Promise.resolve(7), 1000, () => new Error('too slow'))).resolves.toBe(7);
  });
});

describe('flush with a throwing onProgress', () => {
  it('rejects named after the operation, awaits the batches in flight, and a later flush finishes', async () => {
    const cache = new CacheClient({ connectionConfig: { url: 'memory://crash-safety', tenant: 'flushy' } });
    try {
      const mapping: Record<string, number> = {};
      for (let i = 0; i < 10_000; i++) mapping[`k${i}`] = i;
      await cache.mset(mapping);
      let calls = 0;
      const failed = cache.flushTenant({
        onProgress: () => {
          calls++;
          throw new Error('progress bar broke');
        },
      });
      await expect(failed).rejects.toBeInstanceOf(CacheError);
      await expect(failed).rejects.toThrow('flushTenant failed: progress bar broke');
      const afterFailure = calls;
      expect(afterFailure).toBeGreaterThanOrEqual(1);
      // Every batch had settled when the flush rejected: no callback runs later.
      await sleep(20);
      expect(calls).toBe(afterFailure);
      const left = await cache.exists(...Object.keys(mapping));
      expect(left).toBeLessThan(10_000);
      expect(await cache.flushTenant()).toBe(left);
      expect(await cache.exists(...Object.keys(mapping))).toBe(0);
    } finally {
      await cache.close();
    }
  });
});
