/**
 * Cached function rows of `npm run bench` (issue 10):
 *
 * - `cached-hit-1`, `cached-hit-256`: a cached function's hit path (`cacheResult`: key digest, `GET`,
 *   typed decode) against a plain `get` of one key on the same client (the baseline). At 256 in flight
 *   concurrent calls of the same arguments share one read (in-process coalescing), as in production.
 * - `cached-stampede`: each call is one stampede: 1,000 callers at once on a fresh cold key whose
 *   factory takes 20 ms. Baseline: an unprotected read-through (`get`, on a miss run the factory and
 *   `set`), where every caller misses and runs the factory. The call's latency is the stampede's wall
 *   time; the factory runs per stampede are in the note under the table.
 *
 * @module
 */

import type { Contender, ContenderSpec } from './contenders.ts';
import { VALUE } from './contenders.ts';
import type { Workload } from './workloads.ts';

/** Callers per stampede. */
const STAMPEDE_CALLERS = 1000;
/** Factory time of the stampede rows, in milliseconds. */
const FACTORY_MS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function peakClient(url: string, tenant: string) {
  const { CacheClient } = await import('../src/index.ts');
  const cache = new CacheClient({ connectionConfig: { url, tenant }, debugLogs: false, env: {} });
  await cache.ping();
  return cache;
}

/** Plain `get` of one key (the baseline of the hit rows). */
async function plainGet(url: string): Promise<Contender> {
  const cache = await peakClient(url, 'bench-cf-get');
  await cache.set('user:42', VALUE);
  return {
    api: { get: 'get (one key)' },
    get: () => cache.get('user:42'),
    close: () => cache.close(),
  };
}

/** A cached function's hit: `cacheResult(fn)(42)`, warmed once. */
async function cachedHit(url: string): Promise<Contender> {
  const cache = await peakClient(url, 'bench-cf-hit');
  const findUser = cache.cacheResult(async (_id: number) => VALUE, { keyPrefix: 'users' });
  await findUser(42);
  return {
    api: { get: 'cacheResult(fn)(42), a hit' },
    get: () => findUser(42),
    close: () => cache.close(),
  };
}

/** Factory runs per stampede, by contender (filled while measuring, read by the note). */
const runsPerStampede = new Map<string, number[]>();

function record(id: string, runs: number): void {
  let list = runsPerStampede.get(id);
  if (list === undefined) {
    list = [];
    runsPerStampede.set(id, list);
  }
  list.push(runs);
}

function describeRuns(id: string): string {
  const list = runsPerStampede.get(id) ?? [];
  if (list.length === 0) return 'n/a';
  const min = Math.min(...list);
  const max = Math.max(...list);
  return min === max ? String(min) : `${min}-${max}`;
}

/** One stampede per call: `STAMPEDE_CALLERS` callers of `read` on a fresh key. */
function stampede(id: string, read: (key: string, factory: () => Promise<unknown>) => Promise<unknown>) {
  let seq = 0;
  return async () => {
    const key = `stampede:${process.pid}:${++seq}`;
    let runs = 0;
    const factory = async () => {
      runs++;
      await sleep(FACTORY_MS);
      return VALUE;
    };
    const results = await Promise.all(Array.from({ length: STAMPEDE_CALLERS }, () => read(key, factory)));
    record(id, runs);
    return results[0];
  };
}

/** Unprotected read-through: every caller misses, runs the factory and writes. */
async function unprotected(url: string): Promise<Contender> {
  const cache = await peakClient(url, 'bench-cf-raw');
  return {
    api: { get: 'get, on a miss factory + set' },
    get: stampede('stampede-raw', async (key, factory) => {
      const hit = await cache.get(key);
      if (hit !== null) return hit;
      const value = await factory();
      await cache.set(key, value, 60);
      return value;
    }),
    close: () => cache.close(),
  };
}

/** getOrSet: one factory run per stampede. */
async function protectedStampede(url: string): Promise<Contender> {
  const cache = await peakClient(url, 'bench-cf-peak');
  return {
    api: { get: 'getOrSet(key, factory, { ttl: 60 })' },
    get: stampede('stampede-peak', (key, factory) => cache.getOrSet(key, factory, { ttl: 60 })),
    close: () => cache.close(),
  };
}

/** Contenders of the cached function rows. */
export const CACHED_CONTENDERS: readonly ContenderSpec[] = [
  { id: 'cf-get', label: 'peak-cache get (baseline)', kind: 'redis', create: plainGet },
  { id: 'cf-hit', label: 'peak-cache cacheResult hit', kind: 'redis', create: cachedHit },
  {
    id: 'stampede-raw',
    label: 'unprotected read-through (baseline)',
    kind: 'redis',
    create: unprotected,
  },
  { id: 'stampede-peak', label: 'peak-cache getOrSet', kind: 'redis', create: protectedStampede },
];

/** The cached function workloads, in report order. */
export const CACHED_WORKLOADS: readonly Workload[] = [
  {
    id: 'cached-hit-1',
    title: 'cached function: hit path vs a plain get, 1 in flight',
    op: 'get',
    concurrency: 1,
    keysPerCall: 1,
    latency: true,
    contenders: ['cf-get', 'cf-hit'],
    baseline: 'cf-get',
    note: 'The cost of a hit: argument digest (SHA-256 of a canonical encoding), GET, typed decode (devalue).',
  },
  {
    id: 'cached-hit-256',
    title: 'cached function: hit path vs a plain get, 256 in flight',
    op: 'get',
    concurrency: 256,
    keysPerCall: 1,
    latency: false,
    contenders: ['cf-get', 'cf-hit'],
    baseline: 'cf-get',
    note: 'Concurrent calls with the same arguments share one read (in-process coalescing).',
  },
  {
    id: 'cached-stampede',
    title: `cached function: ${STAMPEDE_CALLERS.toLocaleString('en-US')}-caller stampede on a cold key (factory ${FACTORY_MS} ms)`,
    op: 'get',
    concurrency: 1,
    keysPerCall: 1,
    latency: true,
    contenders: ['stampede-raw', 'stampede-peak'],
    baseline: 'stampede-raw',
    // Read when the report is rendered, after the runs.
    get note() {
      return (
        'One call = one stampede; p50/p99 are its wall time. Factory runs per stampede: unprotected ' +
        `${describeRuns('stampede-raw')}, getOrSet ${describeRuns('stampede-peak')}.`
      );
    },
  },
];
