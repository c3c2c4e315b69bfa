/**
 * Test helper: what the adversarial tests of read and write coalescing (`get-batch-adversarial`,
 * `set-batch-adversarial`) share: a standalone engine with their tuning, command counts, outcome checks,
 * waiting for recovery after a fault, and a seeded generator.
 */
import { expect } from 'vitest';
import { RedisEngine } from '../../src/engines/redis.js';
import { CacheError } from '../../src/index.js';
import type { RedisServer } from './redis-server.js';

/** The tuning a probe may change: `maxQueueLength` (default 10,000) and `timeoutMs` (default 2,000). */
export interface ProbeTuning {
  readonly maxQueueLength?: number;
  readonly timeoutMs?: number;
}

/** A standalone engine on `url` (no keep-alive, 2 s to connect), with `tuning`. */
export function probeEngine(url: string, tuning: ProbeTuning = {}): RedisEngine {
  return new RedisEngine({
    url,
    timeoutMs: tuning.timeoutMs ?? 2_000,
    connectTimeoutMs: 2_000,
    maxQueueLength: tuning.maxQueueLength ?? 10_000,
    keepAliveMs: false,
  });
}

/** Calls per command since the last `CONFIG RESETSTAT` of `server`, e.g. `{ get: 1, mget: 2 }`. */
export async function commandCounts(server: RedisServer): Promise<Record<string, number>> {
  const info = await server.cli('INFO', 'commandstats');
  const counts: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) counts[m[1] as string] = Number(m[2]);
  return counts;
}

/** Every outcome is a value or a {@link CacheError} (never another error). */
export function expectValuesOrCacheErrors(settled: PromiseSettledResult<unknown>[]): void {
  for (const s of settled) if (s.status === 'rejected') expect(s.reason).toBeInstanceOf(CacheError);
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Retry `body` until it resolves (a connection comes back after a fault), at most ~5 s. */
export async function eventually<T>(body: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await body();
    } catch (err) {
      if (i >= 100) throw err;
      await sleep(50);
    }
  }
}

/** A seeded generator (xorshift) of integers in `[0, n)`: the same sequence on every run. */
export function seeded(start: number): (n: number) => number {
  let seed = start;
  return (n) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
}
