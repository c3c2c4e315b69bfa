/** Test helper: wait until a client answers again after a fault (it reconnects in the background). */
import type { CacheClient } from '../../src/index.js';

/**
 * Resolve once `cache.ping()` succeeds, polling every 50 ms for at most `withinMs` milliseconds; reject
 * with the last failure after that. After a stall a client fails fast until its background replacement
 * connection answers, so the first call after a resumed server may still fail.
 */
export async function untilAnswering(cache: CacheClient, withinMs = 5000): Promise<void> {
  const end = Date.now() + withinMs;
  for (;;) {
    try {
      await cache.ping();
      return;
    } catch (err) {
      if (Date.now() > end) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
