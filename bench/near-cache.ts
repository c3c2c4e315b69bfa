/**
 * Near cache rows of `npm run bench` (issue 11): one hot key read at 1 and 256 calls in flight, with the
 * near cache against the raw driver, and the invalidation lag of a write by another connection.
 *
 * - `near-get-1`, `near-get-256`: every call reads the same key (`hot`). Baseline: raw node-redis GET +
 *   JSON.parse. Also shown: peak-cache without the near cache, and node-redis 6's own client-side cache
 *   (RESP3 `clientSideCache`, which caches raw replies and `structuredClone`s each hit). Issue 20: the
 *   limit (a `Promise`-returning `Map` holding the decoded value), a `cacheResult` hit with the near cache
 *   (with and without grace; compare with the no-near-cache row, a network `get`), and 1,000 tenant views
 *   of one `TenantCaches` read round-robin (compare with `peak-near`, one client; `peak-near-keys` is one
 *   client reading 1,000 keys round-robin, the same LRU traffic). Not in the rows, for
 *   `bench/hot-path.ts` (`HOT_ONLY=...`): `peak-near-gos` (a `getOrSet` hit), `peak-near-cf-tagged` (a
 *   `cacheResult` hit with `entityId` and one tag: three stamps checked per hit).
 * - `near-lag`: each call writes a new value from ANOTHER connection (raw node-redis SET) and then reads
 *   through the near-cached client until it returns that value (yielding to I/O between reads): the call's
 *   latency is the invalidation lag as a caller sees it (write sent -> new value read). Baseline: the same
 *   write followed by one GET on the raw driver (the time to see a write without any cache).
 *
 * @module
 */
import { type Contender, type ContenderSpec, connectRawNodeRedis, send, VALUE } from './contenders.ts';
import type { Workload } from './workloads.ts';

/** The one key every hot-key call reads. */
const HOT = 'hot';
const turn = () => new Promise((resolve) => setImmediate(resolve));

function parseOrNull(raw: string | null): unknown {
  return raw === null ? null : JSON.parse(raw);
}

/** Raw node-redis: GET of the hot key + JSON.parse (the baseline). */
async function rawHot(url: string): Promise<Contender> {
  const client = await connectRawNodeRedis(url);
  const key = `raw-hot:${HOT}`;
  return {
    api: { get: 'sendCommand GET (one key)', set: 'sendCommand SET' },
    get: async () => parseOrNull(await send<string | null>(client, ['GET', key])),
    set: async (_key, value) => {
      await send(client, ['SET', key, JSON.stringify(value)]);
    },
    close: () => client.close(),
  };
}

/** node-redis 6's own client-side cache (RESP3, `clientSideCache`): `client.get` of the hot key. */
async function rawCsc(url: string): Promise<Contender> {
  const { createClient } = await import('@redis/client');
  const client = createClient({
    url,
    RESP: 3,
    clientSideCache: { maxEntries: 1000 },
    disableOfflineQueue: true,
    commandOptions: { timeout: 0 },
  });
  client.on('error', () => {});
  await client.connect();
  const key = `raw-csc:${HOT}`;
  return {
    api: { get: 'client.get (clientSideCache)', set: 'client.set' },
    get: async () => parseOrNull((await client.get(key)) as string | null),
    set: async (_key, value) => {
      await client.set(key, JSON.stringify(value));
    },
    close: () => client.close(),
  };
}

/** peak-cache reading the hot key, with or without the near cache. */
async function peakHot(url: string, near: boolean): Promise<Contender> {
  const { CacheClient } = await import('../src/index.ts');
  const cache = new CacheClient({
    connectionConfig: { url, tenant: near ? 'bench-near' : 'bench-hot' },
    debugLogs: false,
    env: {},
    ...(near ? { nearCache: { maxEntries: 1000 } } : {}),
  });
  await cache.ping();
  return {
    api: { get: near ? 'get (nearCache)' : 'get', set: 'set' },
    get: () => cache.get(HOT),
    set: (_key, value) => cache.set(HOT, value),
    close: () => cache.close(),
  };
}

/** The limit: a `Map` lookup behind a `Promise` (the hot value already decoded, as a near hit returns it). */
async function promiseMap(): Promise<Contender> {
  const map = new Map<string, unknown>([[HOT, Object.freeze({ ...VALUE })]]);
  return {
    api: { get: 'Promise.resolve(Map.get)' },
    get: () => Promise.resolve(map.get(HOT)),
    close: async () => {},
  };
}

/** A cached function's hit with the near cache on: `cacheResult(fn)(42)`, warmed once. */
async function peakNearCached(url: string, grace = 0): Promise<Contender> {
  const { CacheClient } = await import('../src/index.ts');
  const cache = new CacheClient({
    connectionConfig: { url, tenant: 'bench-near-cf' },
    debugLogs: false,
    env: {},
    nearCache: { maxEntries: 1000 },
  });
  await cache.ping();
  const findUser = cache.cacheResult(async (_id: number) => VALUE, {
    keyPrefix: grace === 0 ? 'users' : 'graced-users',
    ttl: 3600,
    grace,
  });
  await findUser(42);
  await findUser(42); // the fill's own write invalidated the entry: this read keeps it
  return {
    api: { get: `cacheResult(fn)(42) (nearCache${grace === 0 ? '' : `, grace ${grace} s`}), a hit` },
    get: () => findUser(42),
    close: () => cache.close(),
  };
}

/** A `getOrSet` hit with the near cache on (options given per call, as usual), warmed once. */
async function peakNearGetOrSet(url: string): Promise<Contender> {
  const { CacheClient } = await import('../src/index.ts');
  const cache = new CacheClient({
    connectionConfig: { url, tenant: 'bench-near-gos' },
    debugLogs: false,
    env: {},
    nearCache: { maxEntries: 1000 },
  });
  await cache.ping();
  const load = () => cache.getOrSet('user:42', async () => VALUE, { ttl: 3600 });
  await load();
  await load(); // the fill's own write invalidated the entry: this read keeps it
  return {
    api: { get: "getOrSet('user:42', fn, { ttl }) (nearCache), a hit" },
    get: load,
    close: () => cache.close(),
  };
}

/** A `cacheResult` hit with an entity and a tag (three stamps per hit: prefix, entity, tag), warmed once. */
async function peakNearCachedTagged(url: string): Promise<Contender> {
  const { CacheClient } = await import('../src/index.ts');
  const cache = new CacheClient({
    connectionConfig: { url, tenant: 'bench-near-cft' },
    debugLogs: false,
    env: {},
    nearCache: { maxEntries: 1000 },
  });
  await cache.ping();
  const findUser = cache.cacheResult(async (_id: number) => VALUE, {
    keyPrefix: 'users',
    entityId: (id) => id,
    tags: ['users'],
    ttl: 3600,
  });
  await findUser(42);
  await findUser(42);
  return {
    api: { get: "cacheResult(fn, { entityId, tags: ['users'] })(42) (nearCache), a hit" },
    get: () => findUser(42),
    close: () => cache.close(),
  };
}

/** Tenants of the round-robin row. */
const TENANTS = 1000;

/** `get` of the hot key on tenant `i % 1000` (views of one `TenantCaches`, one near cache). */
async function peakNearTenants(url: string): Promise<Contender> {
  const { TenantCaches } = await import('../src/index.ts');
  const caches = new TenantCaches({
    connectionConfig: { url },
    debugLogs: false,
    env: {},
    nearCache: { maxEntries: 2000 },
  });
  const views = Array.from({ length: TENANTS }, (_, i) => caches.tenant(`bench-rr${i}`));
  await Promise.all(views.map((view) => view.set(HOT, VALUE)));
  await Promise.all(views.map((view) => view.get(HOT)));
  let next = 0;
  return {
    api: { get: 'get (nearCache) on tenant i % 1000 (TenantCaches views)' },
    get: () => {
      const view = views[next] as (typeof views)[number];
      next = next + 1 === TENANTS ? 0 : next + 1;
      return view.get(HOT);
    },
    close: () => caches.close(),
  };
}

/** The round-robin row's baseline: one client, `get` of key `i % 1000` (the same near-cache traffic). */
async function peakNearKeys(url: string): Promise<Contender> {
  const { CacheClient } = await import('../src/index.ts');
  const cache = new CacheClient({
    connectionConfig: { url, tenant: 'bench-near-keys' },
    debugLogs: false,
    env: {},
    nearCache: { maxEntries: 2000 },
  });
  const keys = Array.from({ length: TENANTS }, (_, i) => `${HOT}${i}`);
  await Promise.all(keys.map((key) => cache.set(key, VALUE)));
  await Promise.all(keys.map((key) => cache.get(key)));
  let next = 0;
  return {
    api: { get: 'get (nearCache) of key i % 1000, one client' },
    get: () => {
      const key = keys[next] as string;
      next = next + 1 === TENANTS ? 0 : next + 1;
      return cache.get(key);
    },
    close: () => cache.close(),
  };
}

/** Baseline of the lag row: a write by one connection, then a GET by another. */
async function rawWriteRead(url: string): Promise<Contender> {
  const writer = await connectRawNodeRedis(url);
  const reader = await connectRawNodeRedis(url);
  const key = `raw-lag:${HOT}`;
  let seq = 0;
  return {
    api: { get: 'SET by a 2nd connection, then GET' },
    get: async () => {
      await send(writer, ['SET', key, JSON.stringify({ ...VALUE, seq: ++seq })]);
      const { seq: _seq, ...value } = parseOrNull(await send<string | null>(reader, ['GET', key])) as {
        seq: number;
      };
      return value;
    },
    set: async (_key, value) => {
      await send(writer, ['SET', key, JSON.stringify(value)]);
    },
    close: async () => {
      await Promise.all([writer.close(), reader.close()]);
    },
  };
}

/** The lag row: a write by another connection, then near-cached reads until the new value shows. */
async function peakNearLag(url: string): Promise<Contender> {
  const { CacheClient } = await import('../src/index.ts');
  const writer = await connectRawNodeRedis(url);
  const cache = new CacheClient({
    connectionConfig: { url, tenant: 'bench-lag' },
    debugLogs: false,
    env: {},
    nearCache: { maxEntries: 1000 },
  });
  await cache.ping();
  const stored = `bench-lag:${HOT}`;
  let seq = 0;
  return {
    api: { get: 'SET by another connection, get (nearCache) until seen' },
    get: async () => {
      const current = ++seq;
      await cache.get(HOT); // cached before the write
      await send(writer, ['SET', stored, JSON.stringify({ ...VALUE, seq: current })]);
      for (;;) {
        const read = (await cache.get(HOT)) as { seq?: number } | null;
        if (read?.seq === current) {
          const { seq: _seq, ...value } = read;
          return value;
        }
        await turn();
      }
    },
    set: async (_key, value) => {
      await cache.set(HOT, value);
    },
    close: async () => {
      await Promise.all([writer.close(), cache.close()]);
    },
  };
}

/**
 * The near-cache contender `id` (see {@link NEAR_CACHE_CONTENDERS}) created on `url`, holding the hot key
 * `hot` (set, then read once so a near cache has it): what the standalone hot-key drivers start from.
 * @throws when no contender has that id.
 */
export async function openHotContender(id: string, url: string): Promise<Contender> {
  const spec = NEAR_CACHE_CONTENDERS.find((c) => c.id === id);
  if (spec === undefined) throw new Error(`no contender ${id}`);
  const contender = await spec.create(url);
  await contender.set?.('hot', { hello: 'world' });
  await contender.get?.('hot');
  return contender;
}

/** Contenders of the near cache rows. */
export const NEAR_CACHE_CONTENDERS: readonly ContenderSpec[] = [
  { id: 'raw-hot', label: 'node-redis 6 raw, one key (baseline)', kind: 'redis', create: rawHot },
  { id: 'peak-near', label: 'peak-cache nearCache', kind: 'redis', create: (url) => peakHot(url, true) },
  {
    id: 'peak-hot',
    label: 'peak-cache, no near cache (info; its gets of one tick go as one MGET)',
    kind: 'redis',
    create: (url) => peakHot(url, false),
  },
  { id: 'raw-csc', label: 'node-redis clientSideCache (info)', kind: 'redis', create: rawCsc },
  { id: 'map-hot', label: 'Promise-returning Map (the limit)', kind: 'memory', create: promiseMap },
  {
    id: 'peak-near-cf',
    label: 'peak-cache cacheResult hit, nearCache',
    kind: 'redis',
    create: (url) => peakNearCached(url),
  },
  {
    id: 'peak-near-cf-grace',
    label: 'peak-cache cacheResult hit with grace, nearCache',
    kind: 'redis',
    create: (url) => peakNearCached(url, 60),
  },
  {
    id: 'peak-near-gos',
    label: 'peak-cache getOrSet hit, nearCache (hot-path.ts only)',
    kind: 'redis',
    create: peakNearGetOrSet,
  },
  {
    id: 'peak-near-cf-tagged',
    label: 'peak-cache cacheResult hit with entity and tag, nearCache (hot-path.ts only)',
    kind: 'redis',
    create: peakNearCachedTagged,
  },
  {
    id: 'peak-near-keys',
    label: 'peak-cache nearCache, one client, 1,000 keys round-robin',
    kind: 'redis',
    create: peakNearKeys,
  },
  {
    id: 'peak-near-rr',
    label: 'peak-cache nearCache, 1,000 tenant views round-robin',
    kind: 'redis',
    create: peakNearTenants,
  },
  {
    id: 'raw-write-read',
    label: 'raw SET + GET, 2 connections (baseline)',
    kind: 'redis',
    create: rawWriteRead,
  },
  { id: 'peak-near-lag', label: 'peak-cache nearCache, foreign SET', kind: 'redis', create: peakNearLag },
];

const HOT_CONTENDERS = [
  'raw-hot',
  'map-hot',
  'peak-near',
  'peak-near-cf',
  'peak-near-cf-grace',
  'peak-near-keys',
  'peak-near-rr',
  'peak-hot',
  'raw-csc',
] as const;

/** The near cache workloads, in report order. */
export const NEAR_CACHE_WORKLOADS: readonly Workload[] = [
  {
    id: 'near-get-1',
    title: 'near cache: get of one hot key, 1 in flight',
    op: 'get',
    concurrency: 1,
    keysPerCall: 1,
    latency: true,
    contenders: HOT_CONTENDERS,
    baseline: 'raw-hot',
  },
  {
    id: 'near-get-256',
    title: 'near cache: get of one hot key, 256 in flight',
    op: 'get',
    concurrency: 256,
    keysPerCall: 1,
    latency: false,
    contenders: HOT_CONTENDERS,
    baseline: 'raw-hot',
    note: "Targets (issue 20): peak-cache nearCache >= 15x the raw driver at 256 in flight (stretch 20x); cacheResult hit >= 10x a plain network get (a GET of the raw driver, one command per call; peak-cache's own network get coalesces the 256 reads of the hot key in flight into one MGET, so against it the ratio is lower: shown for information); 1,000 tenant views round-robin >= 0.9x one client with the same traffic (1,000 keys round-robin: the same near-cache entries touched, so the ratio is what the views themselves cost). Against one client reading one hot key, the views also pay for touching 1,000 entries instead of one (shown for information).",
  },
  {
    id: 'near-lag',
    title: 'near cache: invalidation lag (write by another connection, then read until seen)',
    op: 'get',
    concurrency: 1,
    keysPerCall: 1,
    latency: true,
    contenders: ['raw-write-read', 'peak-near-lag'],
    baseline: 'raw-write-read',
    note:
      'Each call: a SET from another connection, then reads until the new value is returned. The p50/p99 ' +
      'of the near cache row are the invalidation lag as a caller sees it (target p99 < 5 ms).',
  },
];
