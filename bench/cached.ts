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

/** `MANY_KEYS` keys of one call (`half`: the second half fresh, missing, on each call). */
const MANY_KEYS = 100;

function manyKeys(half: boolean): () => string[] {
  const hot = Array.from({ length: MANY_KEYS }, (_, i) => `many:${i}`);
  let seq = 0;
  return () => {
    if (!half) return hot;
    seq++;
    return hot.map((key, i) => (i < MANY_KEYS / 2 ? key : `${key}:${process.pid}:${seq}`));
  };
}

async function warmMany(url: string, tenant: string) {
  const cache = await peakClient(url, tenant);
  await cache.getOrSetMany(manyKeys(false)(), async (missing) => new Map(missing.map((k) => [k, VALUE])), {
    ttl: 600,
  });
  return cache;
}

/** 100 concurrent `getOrSet` calls (the baseline of the getOrSetMany rows). */
function manySingles(half: boolean) {
  return async (url: string): Promise<Contender> => {
    const cache = await warmMany(url, `bench-many-1-${half}`);
    const next = manyKeys(half);
    return {
      api: { get: `${MANY_KEYS} x getOrSet(key, factory)` },
      get: () =>
        Promise.all(next().map((key) => cache.getOrSet(key, async () => VALUE, { ttl: 600 }))).then(
          (values) => values[0],
        ),
      close: () => cache.close(),
    };
  };
}

/** One `getOrSetMany` of 100 keys. */
function manyBatch(half: boolean) {
  return async (url: string): Promise<Contender> => {
    const cache = await warmMany(url, `bench-many-n-${half}`);
    const next = manyKeys(half);
    const load = async (missing: string[]) => new Map(missing.map((k) => [k, VALUE]));
    return {
      api: { get: `getOrSetMany(${MANY_KEYS} keys, factory)` },
      get: () => cache.getOrSetMany(next(), load, { ttl: 600 }).then((values) => values[0]),
      close: () => cache.close(),
    };
  };
}

/** Misses callers met on the hot key, by contender (read by the note). */
const hotMisses = new Map<string, () => number>();

/**
 * TTL of the hot key, in seconds: longer than a slice's pause (the contenders take turns), so that with
 * eager refresh a read always comes before the key expires, as under steady load.
 */
const HOT_TTL = 2;

/** A hot key with a 2 s TTL and a 20 ms factory, with or without eager refresh. */
function hotKey(id: string, eager: boolean) {
  return async (url: string): Promise<Contender> => {
    const cache = await peakClient(url, `bench-eager-${eager}`);
    const options = eager ? { ttl: HOT_TTL, eagerRefresh: 0.5 } : { ttl: HOT_TTL };
    const factory = async () => {
      await sleep(FACTORY_MS);
      return VALUE;
    };
    await cache.getOrSet('hot', factory, options);
    const before = cache.stats().cachedFunctions.misses;
    hotMisses.set(id, () => cache.stats().cachedFunctions.misses - before);
    // Steady traffic between this contender's turns (other callers of the hot key), so the key is read
    // throughout the run as in production; its misses count too.
    const traffic = setInterval(() => {
      cache.getOrSet('hot', factory, options).catch(() => {});
    }, 50);
    return {
      api: { get: `getOrSet(hot, f, { ttl: ${HOT_TTL}${eager ? ', eagerRefresh: 0.5' : ''} })` },
      get: () => cache.getOrSet('hot', factory, options),
      close: () => {
        clearInterval(traffic);
        return cache.close();
      },
    };
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
  { id: 'many-1-hits', label: '100 getOrSet calls (baseline)', kind: 'redis', create: manySingles(false) },
  { id: 'many-n-hits', label: 'peak-cache getOrSetMany', kind: 'redis', create: manyBatch(false) },
  { id: 'many-1-half', label: '100 getOrSet calls (baseline)', kind: 'redis', create: manySingles(true) },
  { id: 'many-n-half', label: 'peak-cache getOrSetMany', kind: 'redis', create: manyBatch(true) },
  { id: 'hot-ttl', label: 'plain TTL expiry (baseline)', kind: 'redis', create: hotKey('hot-ttl', false) },
  { id: 'hot-eager', label: 'peak-cache eagerRefresh', kind: 'redis', create: hotKey('hot-eager', true) },
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
  {
    id: 'cached-many-hits',
    title: `cached function: getOrSetMany of ${MANY_KEYS} keys (all hits) vs ${MANY_KEYS} getOrSet calls`,
    op: 'get',
    concurrency: 1,
    keysPerCall: MANY_KEYS,
    latency: true,
    contenders: ['many-1-hits', 'many-n-hits'],
    baseline: 'many-1-hits',
    note: 'One MGET and one typed decode per key, against 100 GETs (auto-pipelined) and 100 single-flight entries.',
  },
  {
    id: 'cached-many-half',
    title: `cached function: getOrSetMany of ${MANY_KEYS} keys (half misses) vs ${MANY_KEYS} getOrSet calls`,
    op: 'get',
    concurrency: 1,
    keysPerCall: MANY_KEYS,
    latency: true,
    contenders: ['many-1-half', 'many-n-half'],
    baseline: 'many-1-half',
    note: 'Each call: 50 cached keys and 50 fresh ones (instant factory). getOrSetMany: one read, 50 locks, one factory call, one MSET, one recheck read.',
  },
  {
    id: 'cached-eager',
    title: `cached function: hot key, ${HOT_TTL} s TTL, factory ${FACTORY_MS} ms: eager refresh vs plain expiry`,
    op: 'get',
    concurrency: 1,
    keysPerCall: 1,
    latency: true,
    contenders: ['hot-ttl', 'hot-eager'],
    baseline: 'hot-ttl',
    get note() {
      const seen = (id: string) => hotMisses.get(id)?.() ?? 'n/a';
      return (
        `Misses callers met, background traffic (a call every 50 ms) included (each waited for the ${FACTORY_MS} ms ` +
        `factory): plain expiry ${seen('hot-ttl')}, eager refresh ${seen('hot-eager')}. The p99 shows the wait; ` +
        'a hit with eager refresh also reads the PTTL (in the same round trip).'
      );
    },
  },
];
