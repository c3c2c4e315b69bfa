/**
 * Quick hot-path driver (issue 20), for profiling and fast before/after checks outside `npm run bench`:
 * `node --import tsx bench/hot-path.ts` starts its own redis-server and runs the near-cache hot-key
 * contenders (`bench/near-cache.ts`) at 256 and 1 in flight, interleaved over rounds, printing calls/s
 * and ratios against the raw driver and the `Promise`-returning `Map`.
 *
 * Environment: `HOT_ROUNDS` (3), `HOT_MS` (400 per contender and round), `HOT_ONLY=peak-near,...`
 * (contender ids; the baselines always run), `HOT_CONCURRENCY=256,1`, `HOT_TRACE=1` (a subscriber on
 * every event of the tracing channel, as `BENCH_TRACE=subscriber`), `HOT_PROFILE=peak-near-cf:256` (only
 * that contender at that concurrency, for `--cpu-prof`), `HOT_CPU=1` (rates per CPU-second of this process
 * instead of per wall-clock second: steadier on a shared machine for the in-memory contenders; the
 * network contenders' figures then leave out the redis-server's work, so compare in-memory rows only).
 *
 * @module
 */
import type { Contender } from './contenders.ts';
import { openHotContender } from './near-cache.ts';
import { startBenchServer } from './server.ts';
import { attachTracing } from './tracing.ts';
import { RunAccumulator, timedLoop } from './workloads.ts';

const rounds = Number(process.env.HOT_ROUNDS ?? 3);
const ms = Number(process.env.HOT_MS ?? 400);
const levels = (process.env.HOT_CONCURRENCY ?? '256,1').split(',').map(Number);
const profile = process.env.HOT_PROFILE?.split(':');
const cpu = process.env.HOT_CPU === '1';
const only = profile ? [profile[0] as string] : process.env.HOT_ONLY?.split(',');
/** Contenders run only when named in `HOT_ONLY` or `HOT_PROFILE`. */
const optIn = new Set(['peak-near-gos', 'peak-near-cf-tagged']);
const ids = [
  'raw-hot',
  'map-hot',
  'peak-near',
  'peak-near-cf',
  'peak-near-cf-grace',
  'peak-near-rr',
  'peak-hot',
  ...optIn,
].filter((id) =>
  profile
    ? id === profile[0]
    : id === 'raw-hot' || id === 'map-hot' || (only === undefined ? !optIn.has(id) : only.includes(id)),
);

const server = await startBenchServer();
try {
  const traced = await attachTracing(process.env.HOT_TRACE ? 'subscriber' : undefined);
  if (traced) console.log(`tracing: ${traced}`);
  const contenders = new Map<string, Contender>();
  for (const id of ids) contenders.set(id, await openHotContender(id, server.url));
  if (profile) {
    const c = contenders.get(profile[0] as string);
    const get = c?.get as (key: string) => Promise<unknown>;
    const acc = new RunAccumulator(false);
    await timedLoop(() => get('hot'), Number(profile[1] ?? 256), ms, acc);
    console.log(`${profile.join(':')}: ${Math.round(acc.calls / (acc.elapsedMs / 1000))}/s`);
  } else {
    for (const concurrency of levels) {
      const rates = new Map<string, number[]>();
      for (let round = 0; round < rounds; round++) {
        const order = [...ids.slice(round % ids.length), ...ids.slice(0, round % ids.length)];
        for (const id of order) {
          const get = contenders.get(id)?.get as (key: string) => Promise<unknown>;
          const acc = new RunAccumulator(false);
          const used = process.cpuUsage();
          await timedLoop(() => get('hot'), concurrency, ms, acc);
          const { user, system } = process.cpuUsage(used);
          const list = rates.get(id) ?? [];
          list.push(acc.calls / (cpu ? (user + system) / 1e6 : acc.elapsedMs / 1000));
          rates.set(id, list);
        }
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
      const raw = median(rates.get('raw-hot') ?? []);
      const map = median(rates.get('map-hot') ?? []);
      const net = rates.has('peak-hot') ? median(rates.get('peak-hot') ?? []) : undefined;
      for (const id of ids) {
        const xs = rates.get(id) ?? [];
        const m = median(xs);
        const range = `${(Math.min(...xs) / raw).toFixed(1)}-${(Math.max(...xs) / raw).toFixed(1)}`;
        console.log(
          `${concurrency} in flight  ${id.padEnd(14)} ${(m / 1e6).toFixed(3)} M/${cpu ? 'cpu-s' : 's'}  ${(m / raw).toFixed(2)}x raw (${range})  ${(m / map).toFixed(3)}x map${net ? `  ${(m / net).toFixed(2)}x peak-hot` : ''}`,
        );
      }
    }
  }
  for (const c of contenders.values()) await c.close();
} finally {
  await server.stop();
}
