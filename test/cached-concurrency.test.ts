/**
 * Cached functions under random concurrency (issue 21): several worker processes, each with its own
 * `CacheClient` on one real redis-server, play a random schedule (fast-check, fixed seed) of `getOrSet`
 * calls whose factories settle, fail or hang, `invalidate`, `delete` and SIGKILLs of workers; the history
 * they write (server-ordered, see helpers/cached-worker-protocol.ts) is judged by
 * helpers/cached-worker-check.ts: at most one factory run per key while the fill lock holds, no caller
 * past its bound, no host crash, no value older than a completed invalidation served, no failure from a
 * fill the caller did not wait for.
 *
 * The checker is first shown to catch each violation on hand-made histories (so the random run cannot
 * pass vacuously). `npm run soak:cached` runs random schedules for longer.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHistory, type ViolationKind } from './helpers/cached-worker-check.js';
import {
  DEFAULT_SHAPE,
  DEFAULT_TIMING,
  probeHardTimeout,
  type RunOptions,
  runAndCheck,
  type Step,
  scheduleArbitrary,
} from './helpers/cached-worker-harness.js';
import { KNOWN_OPEN } from './helpers/cached-worker-known.js';
import type { EventBody, EventRecord } from './helpers/cached-worker-protocol.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

/** The seed of the CI run (any failure replays with `npm run soak:cached -- --seed 21 --seconds 1`). */
const SEED = 21;

/** A hand-made history: records get the next sequence number and the given server time (ms). */
class History {
  readonly records: EventRecord[] = [];
  add(body: EventBody, t = this.records.length * 10): number {
    const v = this.records.length + 1;
    this.records.push({ ...body, v, t } as EventRecord);
    return v;
  }
  /** A complete call `c` on key `k` whose own factory settles with its value. */
  fill(c: string, k = 0): number {
    this.add({ e: 'call', c, w: 0, k, f: { kind: 'ok', ms: 10 } });
    const v = this.add({ e: 'fstart', c, w: 0, k });
    this.add({ e: 'fend', c, k, ok: true });
    this.add({ e: 'cend', c, k, ms: 10, value: { v, c, k } });
    return v;
  }
}

const TIMING = { lockTimeoutMs: 1500, lockTtlMs: 400, hardTimeoutMs: 2500, lease: true };

function kinds(h: History, exits = []): ViolationKind[] {
  return checkHistory(h.records, exits, TIMING).violations.map((v) => v.kind);
}

describe('the concurrency checker, on hand-made histories', () => {
  it('passes a history without faults', () => {
    const h = new History();
    const v = h.fill('1@0.0');
    h.add({ e: 'call', c: '2@1.0', w: 1, k: 0, f: { kind: 'ok', ms: 10 } });
    h.add({ e: 'cend', c: '2@1.0', k: 0, ms: 1, value: { v, c: '1@0.0', k: 0 } });
    expect(kinds(h)).toEqual([]);
  });

  it('finds two factory runs of one key at once, unless the second waited out the lock', () => {
    const h = new History();
    h.add({ e: 'call', c: '1@0.0', w: 0, k: 0, f: { kind: 'ok', ms: 10 } });
    h.add({ e: 'call', c: '2@1.0', w: 1, k: 0, f: { kind: 'ok', ms: 10 } });
    h.add({ e: 'fstart', c: '1@0.0', w: 0, k: 0 });
    h.add({ e: 'fstart', c: '2@1.0', w: 1, k: 0 });
    expect(kinds(h)).toContain('double-fill');

    const waited = new History();
    waited.add({ e: 'call', c: '1@0.0', w: 0, k: 0, f: { kind: 'hang' } }, 0);
    waited.add({ e: 'fstart', c: '1@0.0', w: 0, k: 0 }, 10);
    waited.add({ e: 'call', c: '2@1.0', w: 1, k: 0, f: { kind: 'ok', ms: 10 } }, 20);
    waited.add({ e: 'fstart', c: '2@1.0', w: 1, k: 0 }, 20 + TIMING.lockTimeoutMs);
    expect(kinds(waited)).not.toContain('double-fill');
  });

  it('holds a lock for its whole factory run when it is a lease, else for lockTtlMs', () => {
    const h = new History();
    h.add({ e: 'call', c: '1@0.0', w: 0, k: 0, f: { kind: 'ok', ms: 1000 } }, 0);
    h.add({ e: 'fstart', c: '1@0.0', w: 0, k: 0 }, 10);
    h.add({ e: 'call', c: '2@1.0', w: 1, k: 0, f: { kind: 'ok', ms: 10 } }, 500);
    h.add({ e: 'fstart', c: '2@1.0', w: 1, k: 0 }, 20 + TIMING.lockTtlMs + 100);
    const judge = (lease: boolean) =>
      checkHistory(h.records, [], { ...TIMING, lease }).violations.map((v) => v.kind);
    expect(judge(true)).toContain('double-fill');
    expect(judge(false)).not.toContain('double-fill');

    // The owner's process starved for longer than half a lease: reported apart (not a lock fault).
    h.add({ e: 'stall', p: '0.0', ms: TIMING.lockTtlMs }, 20 + TIMING.lockTtlMs);
    expect(judge(true).sort()).toEqual(['double-fill-after-stall', 'missing-outcome', 'missing-outcome']);
  });

  it('finds a value stored before a completed invalidation, and tells a fill that overlapped it apart', () => {
    for (const [overlap, kind] of [
      [false, 'stale-after-invalidation'],
      [true, 'invalidation-race'],
    ] as const) {
      const h = new History();
      h.add({ e: 'call', c: '1@0.0', w: 0, k: 0, f: { kind: 'ok', ms: 10 } });
      const v = h.add({ e: 'fstart', c: '1@0.0', w: 0, k: 0 });
      h.add({ e: 'fend', c: '1@0.0', k: 0, ok: true });
      if (!overlap) h.add({ e: 'cend', c: '1@0.0', k: 0, ms: 10, value: { v, c: '1@0.0', k: 0 } });
      h.add({ e: 'istart', c: '2@1.0', k: 0, kind: 'invalidate' });
      if (overlap) h.add({ e: 'cend', c: '1@0.0', k: 0, ms: 10, value: { v, c: '1@0.0', k: 0 } });
      h.add({ e: 'idone', c: '2@1.0', k: 0, ok: true });
      h.add({ e: 'call', c: '3@1.0', w: 1, k: 0, f: { kind: 'ok', ms: 10 } });
      h.add({ e: 'cend', c: '3@1.0', k: 0, ms: 1, value: { v, c: '1@0.0', k: 0 } });
      expect(kinds(h)).toEqual([kind]);
    }
  });

  it('finds a call past its bound, and one stuck behind a hung factory of its process', () => {
    const h = new History();
    h.add({ e: 'call', c: '1@0.0', w: 0, k: 0, f: { kind: 'hang' } });
    h.add({ e: 'fstart', c: '1@0.0', w: 0, k: 0 });
    h.add({ e: 'call', c: '2@0.0', w: 0, k: 0, f: { kind: 'ok', ms: 10 } });
    h.add({ e: 'overdue', c: '2@0.0', w: 0, k: 0, boundMs: 4500 });
    h.add({ e: 'call', c: '3@1.0', w: 1, k: 1, f: { kind: 'ok', ms: 10 } });
    h.add({ e: 'overdue', c: '3@1.0', w: 1, k: 1, boundMs: 4500 });
    // With hardTimeoutMs, the hung call itself must settle too.
    expect(kinds(h).sort()).toEqual(['missing-outcome', 'overdue', 'overdue-behind-hung-factory']);
  });

  it('finds a CacheFactoryError with no failing factory while the call waited', () => {
    const failure = { name: 'CacheFactoryError', message: 'another process failed', cacheError: true };
    const own = { name: 'Error', message: 'factory failure of 1@0.0', cacheError: false };
    const h = new History();
    h.add({ e: 'call', c: '1@0.0', w: 0, k: 0, f: { kind: 'fail', ms: 10 } }, 0);
    h.add({ e: 'fstart', c: '1@0.0', w: 0, k: 0 }, 0);
    h.add({ e: 'fend', c: '1@0.0', k: 0, ok: false }, 10);
    h.add({ e: 'cend', c: '1@0.0', k: 0, ms: 10, err: own }, 10);
    h.add({ e: 'call', c: '2@1.0', w: 1, k: 0, f: { kind: 'ok', ms: 10 } }, 5000);
    h.add({ e: 'cend', c: '2@1.0', k: 0, ms: 30, err: failure }, 5030);
    expect(kinds(h)).toEqual(['foreign-failure']);

    const waited = new History();
    waited.add({ e: 'call', c: '1@0.0', w: 0, k: 0, f: { kind: 'fail', ms: 10 } });
    waited.add({ e: 'fstart', c: '1@0.0', w: 0, k: 0 });
    waited.add({ e: 'call', c: '2@1.0', w: 1, k: 0, f: { kind: 'ok', ms: 10 } });
    waited.add({ e: 'fend', c: '1@0.0', k: 0, ok: false });
    waited.add({ e: 'cend', c: '1@0.0', k: 0, ms: 10, err: own });
    waited.add({ e: 'cend', c: '2@1.0', k: 0, ms: 30, err: failure });
    expect(kinds(waited)).toEqual([]);
  });

  it('finds errors that are not the factory’s, a value no factory made, and a crashed host', () => {
    const h = new History();
    h.add({ e: 'call', c: '1@0.0', w: 0, k: 0, f: { kind: 'fail', ms: 10 } });
    h.add({ e: 'fstart', c: '1@0.0', w: 0, k: 0 });
    h.add({ e: 'fend', c: '1@0.0', k: 0, ok: false });
    const foreign = { name: 'Error', message: 'factory failure of 1@0.0', cacheError: false };
    h.add({ e: 'cend', c: '1@0.0', k: 0, ms: 10, err: foreign });
    h.add({ e: 'call', c: '2@1.0', w: 1, k: 0, f: { kind: 'ok', ms: 10 } });
    h.add({ e: 'cend', c: '2@1.0', k: 0, ms: 1, err: foreign });
    h.add({ e: 'call', c: '3@1.0', w: 1, k: 1, f: { kind: 'ok', ms: 10 } });
    h.add({
      e: 'cend',
      c: '3@1.0',
      k: 1,
      ms: 1,
      err: { name: 'TypeError', message: 'x', cacheError: false },
    });
    h.add({ e: 'call', c: '4@1.0', w: 1, k: 2, f: { kind: 'ok', ms: 10 } });
    h.add({ e: 'cend', c: '4@1.0', k: 2, ms: 1, value: { v: 99, c: '4@1.0', k: 2 } });
    const crash = { worker: 2, gen: 0, code: 1, signal: null, stderr: 'unhandled rejection' };
    expect(kinds(h, [crash] as never).sort()).toEqual([
      'crash',
      'unexpected-error',
      'wrong-error',
      'wrong-value',
    ]);
  });
});

describe('cached functions under random concurrency (4 processes, redis-server)', () => {
  let server: RedisServer;
  let options: Omit<RunOptions, 'run'>;
  beforeAll(async () => {
    server = await startRedis();
    const hard = await probeHardTimeout(server.url, 'probe');
    options = {
      url: server.url,
      workers: DEFAULT_SHAPE.workers,
      ...DEFAULT_TIMING,
      hardTimeoutMs: hard ? DEFAULT_TIMING.hardTimeoutMs : 0,
    };
  });
  afterAll(() => server?.stop());

  it(`fixed seed ${SEED}: one fill per key under the lock, every call bounded, no crash, no stale value after an invalidation`, async () => {
    const [schedule] = fc.sample(scheduleArbitrary(DEFAULT_SHAPE), { seed: SEED, numRuns: 1 });
    const { result, violations, stats } = await runAndCheck(schedule as Step[], { ...options, run: 'ci' });
    // The run exercised what it checks (which factories run depends on timing: hits are most calls).
    expect(stats.calls).toBeGreaterThan(50);
    expect(stats.factoryRuns).toBeGreaterThan(5);
    expect(stats.sharedValues).toBeGreaterThan(10);
    expect(stats.failedFactories + stats.hungFactories).toBeGreaterThan(0);
    expect(stats.clearings).toBeGreaterThan(5);
    expect(result.kills).toBeGreaterThan(0);
    const known = violations.filter((v) => KNOWN_OPEN.has(v.kind)).map((v) => v.kind);
    console.info(
      `seed ${SEED}: ${JSON.stringify(stats)}; reported, not failing: ${known.length} ${[...new Set(known)]}`,
    );
    const enforced = violations.filter((v) => !KNOWN_OPEN.has(v.kind));
    expect(enforced).toEqual([]);
  }, 60_000);

  // Issue 19 (tags): an invalidation that completes while a fill runs wins: the fill recorded its tag's
  // stamp before its factory ran, so the value it stores afterwards reads as removed in every process.
  it('an invalidation completed during a fill wins: a call after it never gets the older value (issue 19)', async () => {
    const schedule: Step[] = [
      { gapMs: 0, command: { op: 'getOrSet', worker: 0, key: 0, factory: { kind: 'ok', ms: 1000 } } },
      { gapMs: 0, command: { op: 'waitFor', event: 'fstart', count: 1 } },
      { gapMs: 0, command: { op: 'invalidate', worker: 1, key: 0 } },
      { gapMs: 0, command: { op: 'waitFor', event: 'cend', count: 1 } },
      { gapMs: 0, command: { op: 'getOrSet', worker: 1, key: 0, factory: { kind: 'ok', ms: 0 } } },
    ];
    const { violations, stats } = await runAndCheck(schedule, { ...options, workers: 2, run: 'issue19' });
    expect(stats.factoryRuns).toBeGreaterThan(0);
    expect(violations).toEqual([]);
  }, 30_000);
});
