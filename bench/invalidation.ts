/**
 * Invalidation rows of `npm run bench` (issue 19), on a dedicated redis-server (DEBUG enabled to fill it):
 *
 * - **Caller's path latency** of `invalidateTags(['tag'])` and of
 *   `invalidate({ entityId, targetedPatterns: ['users'] })` (logical step; the physical SCAN runs after the
 *   call returns), with 0, 1,000,000 and 3,000,000 keys of another tenant in the database. Baseline:
 *   today's SCAN-based invalidation, `flushByPattern('<dep>:users:<entity>:*')` (what `invalidate` awaited
 *   before). Target: flat and under 5 ms at every size.
 * - **Tagged hit path**: `getOrSet` hits with 0 (but still the typed codec), 1 and 3 tags against an
 *   untagged hit, with the near cache on (target >= 0.9x) and off (for information).
 *
 * Environment: `BENCH_INVALIDATION_KEYS=0,1000000,3000000` (sizes), `BENCH_QUICK=1` (0 and 100,000 keys,
 * shorter hit rounds). Writes `bench/results/invalidation.md`.
 *
 * @module
 */
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startRedis } from '../test/helpers/redis-server.ts';
import { writeText } from './report.ts';
import { formatRate, median } from './stats.ts';

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Median and max of `samples` milliseconds, formatted. */
function ms(samples: readonly number[]): string {
  return `${median(samples).toFixed(2)} ms (max ${Math.max(...samples).toFixed(2)})`;
}

async function timed(times: number, body: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await body(i);
    out.push(performance.now() - t0);
  }
  return out;
}

/** Calls in flight in the hit rows, each on its own key (so in-process coalescing does not apply). */
const CONCURRENCY = 32;

/** Calls per second of `call(worker)` with {@link CONCURRENCY} workers for `durationMs`. */
async function rate(call: (worker: number) => Promise<unknown>, durationMs: number): Promise<number> {
  let calls = 0;
  const end = performance.now() + durationMs;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, worker) => {
      while (performance.now() < end) {
        await call(worker);
        calls++;
      }
    }),
  );
  return calls / ((performance.now() - t0) / 1000);
}

/** Run the invalidation rows and write their report; returns the markdown. */
export async function runInvalidationBench(quick: boolean): Promise<string> {
  const sizes = (process.env.BENCH_INVALIDATION_KEYS ?? (quick ? '0,100000' : '0,1000000,3000000'))
    .split(',')
    .map((s) => Number(s.trim().replace(/_/g, '')));
  const server = await startRedis({ args: ['--enable-debug-command', 'yes'] });
  const { CacheClient } = await import('../src/index.ts');
  const open = (extra: Record<string, unknown> = {}) =>
    new CacheClient({
      connectionConfig: { url: server.url, tenant: 'bench-inv' },
      deploymentId: 'dep',
      debugLogs: false,
      env: {},
      ...extra,
    });
  const cache = open();
  const lines: string[] = [
    '# Invalidation (issue 19)',
    '',
    `Load average at the start: ${loadavg()[0]?.toFixed(2)} (${availableParallelism()} cores).`,
    '',
    `redis-server on loopback, one client; median (max) of the caller's latency. Baseline: today's SCAN-based invalidation (\`flushByPattern\` of the targeted pattern).`,
    '',
    '| foreign keys | invalidateTags([tag]) | invalidate({ entityId, targetedPatterns }) | baseline: SCAN + UNLINK | speed-up | target < 5 ms |',
    '|---:|---:|---:|---:|---:|:---:|',
  ];
  try {
    const find = cache.cacheResult(async (id: number) => ({ id }), {
      keyPrefix: 'users',
      entityId: (id) => id,
    });
    for (const size of sizes) {
      await server.cli('FLUSHALL');
      if (size > 0) {
        log(`-- invalidation: populating ${size.toLocaleString('en-US')} foreign keys`);
        await server.cli('DEBUG', 'POPULATE', String(size), 'other-tenant:key');
      }
      for (let i = 0; i < 50; i++) await find(i);
      const tags = await timed(200, (i) => cache.invalidateTags([`tag:${i % 20}`]));
      const entity = await timed(200, (i) =>
        cache.invalidate({ entityId: i % 50, targetedPatterns: ['users'] }),
      );
      await cache.invalidationSettled();
      const scans = await timed(size >= 1_000_000 ? 3 : 20, (i) => cache.flushByPattern(`dep:users:${i}:*`));
      const worst = Math.max(median(tags), median(entity));
      const row = `| ${size.toLocaleString('en-US')} | ${ms(tags)} | ${ms(entity)} | ${ms(scans)} | ${(median(scans) / median(entity)).toFixed(0)}x | ${worst < 5 ? 'met' : 'missed'} |`;
      lines.push(row);
      log(row);
    }
    await server.cli('FLUSHALL');
    lines.push('', `## Tagged hit path (getOrSet hits, ${CONCURRENCY} in flight on distinct keys)`, '');
    lines.push(
      '| near cache | untagged hit (baseline) | 0 tags | 1 tag | 3 tags | 1 tag / baseline | 3 tags / baseline | target >= 0.9x (near cache) |',
    );
    lines.push('|:---|---:|---:|---:|---:|---:|---:|:---:|');
    for (const near of [true, false]) {
      const client = near ? open({ nearCache: { maxEntries: 1000 } }) : open();
      try {
        type Call = (worker: number) => Promise<unknown>;
        const cases: [string, Call][] = [
          ['untagged', (w) => client.getOrSet(`hit:none:${w}`, () => 1)],
          ['0 tags', (w) => client.getOrSet(`hit:zero:${w}`, () => 1, { tags: [] })],
          ['1 tag', (w) => client.getOrSet(`hit:one:${w}`, () => 1, { tags: ['a'] })],
          ['3 tags', (w) => client.getOrSet(`hit:three:${w}`, () => 1, { tags: ['a', 'b', 'c'] })],
        ];
        const rates = new Map<string, number[]>();
        for (const [, call] of cases) for (let w = 0; w < CONCURRENCY; w++) await call(w);
        // Many short slices, the cases alternating, so a busy spell of a shared machine hits every case alike.
        const rounds = quick ? 3 : 12;
        for (let round = 0; round < rounds; round++) {
          for (let i = 0; i < cases.length; i++) {
            const [name, call] = cases[(i + round) % cases.length] as [string, Call];
            const r = await rate(call, quick ? 200 : 400);
            rates.set(name, [...(rates.get(name) ?? []), r]);
          }
        }
        const m = (name: string) => median(rates.get(name) ?? []);
        const ratio1 = m('1 tag') / m('untagged');
        const ratio3 = m('3 tags') / m('untagged');
        const row = `| ${near ? 'on' : 'off'} | ${formatRate(m('untagged'))}/s | ${formatRate(m('0 tags'))}/s | ${formatRate(m('1 tag'))}/s | ${formatRate(m('3 tags'))}/s | ${ratio1.toFixed(2)}x | ${ratio3.toFixed(2)}x | ${near ? (Math.min(ratio1, ratio3) >= 0.9 ? 'met' : 'missed') : '-'} |`;
        lines.push(row);
        log(row);
      } finally {
        await client.close();
      }
    }
  } finally {
    await cache.close();
    await server.stop();
  }
  lines.push('', `Load average at the end: ${loadavg()[0]?.toFixed(2)}.`);
  const markdown = `${lines.join('\n')}\n`;
  writeText(fileURLToPath(new URL('results/invalidation.md', import.meta.url)), markdown);
  return markdown;
}
