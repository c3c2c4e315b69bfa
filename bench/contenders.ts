/**
 * The contenders: peak-cache and the libraries it is compared with, each behind the same small
 * {@link Contender} interface. Every library is imported lazily inside its factory, so a library that
 * fails to load or connect costs only its own rows in the report.
 *
 * Values are JSON-encoded by every contender: the raw drivers call `JSON.stringify`/`JSON.parse`
 * themselves, the libraries use their own serializers (keyv and bentocache add an envelope).
 *
 * @module
 */

/** The ~200-byte JSON value every workload stores. */
export const VALUE = {
  id: 482913,
  name: 'Ada Lovelace',
  email: 'ada.lovelace@example.com',
  roles: ['admin', 'editor'],
  active: true,
  score: 98.25,
  address: { city: 'London', zip: 'SW1Y 4JH' },
  updatedAt: '2024-05-01T12:00:00.000Z',
} as const;

/** Operations a workload can drive. */
export type OpName = 'get' | 'set' | 'mget' | 'mset' | 'msetTtl';

/** One multi-key call's keys and values, prepared in every shape the contenders' APIs take. */
export interface Batch {
  /** Logical keys (each contender adds its own namespace). */
  readonly keys: readonly string[];
  /** `[key, value]` pairs. */
  readonly entries: readonly (readonly [string, unknown])[];
  /** The same pairs as a record (peak-cache's `mset` takes a `Record` or a `Map`). */
  readonly record: Readonly<Record<string, unknown>>;
  /** The same pairs as `{ key, value }` objects (keyv `setMany`, cache-manager `mset`). */
  readonly list: readonly { key: string; value: unknown }[];
}

/** A connected contender. Missing methods mean "not supported" (the table says so). */
export interface Contender {
  /** The call used for each operation, shown in the tables. */
  readonly api: Partial<Record<OpName, string>>;
  get?(key: string): Promise<unknown>;
  set?(key: string, value: unknown): Promise<unknown>;
  mget?(batch: Batch): Promise<readonly unknown[]>;
  mset?(batch: Batch): Promise<unknown>;
  msetTtl?(batch: Batch, ttlSeconds: number): Promise<unknown>;
  /** The Redis key a logical key is stored under, when known (used to check TTLs after writes). */
  storedKey?(key: string): string;
  /** Release connections. */
  close(): Promise<void>;
}

/** How to create a contender. */
export interface ContenderSpec {
  /** Short id used in results and workload definitions. */
  readonly id: string;
  /** Name shown in tables. */
  readonly label: string;
  /** `redis` contenders get the server URL; `memory` ones run in process. */
  readonly kind: 'redis' | 'memory';
  /** Connect (or set up) the contender. */
  create(url: string): Promise<Contender>;
}

/** Host and port of a `redis://host:port` URL. */
function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379) };
}

function parseOrNull(raw: string | null): unknown {
  return raw === null ? null : JSON.parse(raw);
}

/**
 * A node-redis 6 client configured as peak-cache's engine configures it: no per-command timer
 * (`commandOptions: { timeout: 0 }`), no offline queue, commands sent with `sendCommand`.
 */
export async function connectRawNodeRedis(url: string) {
  const { createClient } = await import('@redis/client');
  const client = createClient({ url, disableOfflineQueue: true, commandOptions: { timeout: 0 } });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** The type of {@link connectRawNodeRedis}'s client. */
export type RawClient = Awaited<ReturnType<typeof connectRawNodeRedis>>;

/** Send one command on a raw client, typed loosely. */
export function send<T>(client: RawClient, args: string[]): Promise<T> {
  return client.sendCommand(args) as Promise<T>;
}

const RAW_PREFIX = 'raw:';

/** The baseline: raw node-redis 6 `sendCommand`, JSON encoding by hand. */
async function rawNodeRedis(url: string): Promise<Contender> {
  const client = await connectRawNodeRedis(url);
  const P = RAW_PREFIX;
  return {
    api: {
      get: 'sendCommand GET',
      set: 'sendCommand SET',
      mget: 'sendCommand MGET',
      mset: 'sendCommand MSET',
      msetTtl: 'multi() + 100x addCommand SET EX + exec()',
    },
    async get(key) {
      return parseOrNull(await send<string | null>(client, ['GET', P + key]));
    },
    async set(key, value) {
      await send(client, ['SET', P + key, JSON.stringify(value)]);
    },
    async mget(batch) {
      const args = ['MGET'];
      for (const key of batch.keys) args.push(P + key);
      const raws = await send<(string | null)[]>(client, args);
      return raws.map(parseOrNull);
    },
    async mset(batch) {
      const args = ['MSET'];
      for (const [key, value] of batch.entries) args.push(P + key, JSON.stringify(value));
      await send(client, args);
    },
    async msetTtl(batch, ttlSeconds) {
      const ttl = String(ttlSeconds);
      const multi = client.multi();
      for (const [key, value] of batch.entries) {
        multi.addCommand(['SET', P + key, JSON.stringify(value), 'EX', ttl]);
      }
      await multi.exec();
    },
    storedKey: (key) => P + key,
    close: () => client.close(),
  };
}

/** Lua script: SET EX of every KEYS[i] to ARGV[i], the TTL in the last ARGV. Atomic like MULTI. */
const MSET_EX_SCRIPT =
  "local ttl = ARGV[#ARGV] for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i], 'EX', ttl) end return #KEYS";

/** Informational: node-redis with one EVALSHA per 100-key mset-with-ttl (an alternative to MULTI). */
async function rawNodeRedisEval(url: string): Promise<Contender> {
  const client = await connectRawNodeRedis(url);
  const sha = await send<string>(client, ['SCRIPT', 'LOAD', MSET_EX_SCRIPT]);
  const P = 'raweval:';
  return {
    api: { msetTtl: 'sendCommand EVALSHA (Lua loop of SET EX)', get: 'sendCommand GET' },
    async get(key) {
      return parseOrNull(await send<string | null>(client, ['GET', P + key]));
    },
    async msetTtl(batch, ttlSeconds) {
      const n = batch.entries.length;
      const args = new Array<string>(3 + 2 * n + 1);
      args[0] = 'EVALSHA';
      args[1] = sha;
      args[2] = String(n);
      for (let i = 0; i < n; i++) {
        const [key, value] = batch.entries[i] as readonly [string, unknown];
        args[3 + i] = P + key;
        args[3 + n + i] = JSON.stringify(value);
      }
      args[3 + 2 * n] = String(ttlSeconds);
      await send(client, args);
    },
    storedKey: (key) => P + key,
    close: () => client.close(),
  };
}

/** Informational: node-redis pipeline (no MULTI) of 100 SET EX: each key atomic, the batch not. */
async function rawNodeRedisPipeline(url: string): Promise<Contender> {
  const client = await connectRawNodeRedis(url);
  const P = 'rawpipe:';
  return {
    api: {
      msetTtl: 'multi() + 100x addCommand SET EX + execAsPipeline() (not atomic)',
      get: 'sendCommand GET',
    },
    async get(key) {
      return parseOrNull(await send<string | null>(client, ['GET', P + key]));
    },
    async msetTtl(batch, ttlSeconds) {
      const ttl = String(ttlSeconds);
      const multi = client.multi();
      for (const [key, value] of batch.entries) {
        multi.addCommand(['SET', P + key, JSON.stringify(value), 'EX', ttl]);
      }
      await multi.execAsPipeline();
    },
    storedKey: (key) => P + key,
    close: () => client.close(),
  };
}

/** peak-cache `CacheClient` on Redis, tenant `bench`, debug logs off. */
async function peakCache(url: string): Promise<Contender> {
  const { CacheClient } = await import('../src/index.ts');
  const cache = new CacheClient({ connectionConfig: { url, tenant: 'bench' }, debugLogs: false, env: {} });
  await cache.ping();
  return {
    api: {
      get: 'get',
      set: 'set',
      mget: 'mget(...keys)',
      mset: 'mset(record)',
      msetTtl: 'mset(record, ttl)',
    },
    get: (key) => cache.get(key),
    set: (key, value) => cache.set(key, value),
    mget: (batch) => cache.mget(...batch.keys),
    mset: (batch) => cache.mset(batch.record),
    msetTtl: (batch, ttl) => cache.mset(batch.record, ttl),
    storedKey: (key) => `bench:${key}`,
    close: () => cache.close(),
  };
}

/** ioredis 5 with `enableAutoPipelining: true`, JSON encoding by hand. */
async function ioredis(url: string): Promise<Contender> {
  const { Redis } = await import('ioredis');
  const { host, port } = hostPort(url);
  const redis = new Redis({
    host,
    port,
    enableAutoPipelining: true,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
  });
  redis.on('error', () => {});
  await redis.connect();
  const P = 'ioredis:';
  return {
    api: {
      get: 'get',
      set: 'set',
      mget: 'mget',
      mset: 'mset',
      msetTtl: 'multi() + 100x set EX + exec()',
    },
    async get(key) {
      return parseOrNull(await redis.get(P + key));
    },
    async set(key, value) {
      await redis.set(P + key, JSON.stringify(value));
    },
    async mget(batch) {
      const raws = await redis.mget(batch.keys.map((key) => P + key));
      return raws.map(parseOrNull);
    },
    async mset(batch) {
      const args: string[] = [];
      for (const [key, value] of batch.entries) args.push(P + key, JSON.stringify(value));
      await redis.mset(args);
    },
    async msetTtl(batch, ttlSeconds) {
      const multi = redis.multi();
      for (const [key, value] of batch.entries) multi.set(P + key, JSON.stringify(value), 'EX', ttlSeconds);
      await multi.exec();
    },
    storedKey: (key) => P + key,
    close: async () => {
      await redis.quit();
    },
  };
}

/** `{ key, value, ttl }` lists for APIs that take a TTL per entry (milliseconds), built once per batch. */
function ttlLists(): (batch: Batch, ttlMs: number) => { key: string; value: unknown; ttl: number }[] {
  const cache = new WeakMap<Batch, { key: string; value: unknown; ttl: number }[]>();
  return (batch, ttlMs) => {
    let list = cache.get(batch);
    if (list === undefined || list[0]?.ttl !== ttlMs) {
      list = batch.list.map(({ key, value }) => ({ key, value, ttl: ttlMs }));
      cache.set(batch, list);
    }
    return list;
  };
}

/** keyv 5 with `@keyv/redis` (its own node-redis 5 client), errors thrown rather than swallowed. */
async function keyv(url: string): Promise<Contender> {
  const { createKeyv } = await import('@keyv/redis');
  const store = createKeyv(url, { namespace: 'keyv', throwOnErrors: true });
  await store.set('__ping', 1);
  const withTtl = ttlLists();
  return {
    api: {
      get: 'get',
      set: 'set',
      mget: 'getMany (MGET)',
      mset: 'setMany (MULTI of SET)',
      msetTtl: 'setMany with ttl (MULTI of SET PX)',
    },
    get: (key) => store.get(key),
    set: (key, value) => store.set(key, value),
    mget: (batch) => store.getMany([...batch.keys]),
    mset: (batch) => store.setMany([...batch.list]),
    msetTtl: (batch, ttl) => store.setMany(withTtl(batch, ttl * 1000)),
    storedKey: (key) => `keyv::${key}`,
    close: () => store.disconnect(),
  };
}

/** cache-manager 7 over keyv + `@keyv/redis`. */
async function cacheManager(url: string): Promise<Contender> {
  const { createKeyv } = await import('@keyv/redis');
  const { createCache } = await import('cache-manager');
  const store = createKeyv(url, { namespace: 'cm', throwOnErrors: true });
  const cache = createCache({ stores: [store] });
  await cache.set('__ping', 1);
  const withTtl = ttlLists();
  return {
    api: {
      get: 'get',
      set: 'set',
      mget: 'mget (keyv getMany: MGET)',
      mset: 'mset (keyv setMany: MULTI of SET)',
      msetTtl: 'mset with ttl (keyv setMany: MULTI of SET PX)',
    },
    get: (key) => cache.get(key),
    set: (key, value) => cache.set(key, value),
    mget: (batch) => cache.mget([...batch.keys]),
    mset: (batch) => cache.mset([...batch.list]),
    msetTtl: (batch, ttl) => cache.mset(withTtl(batch, ttl * 1000)),
    storedKey: (key) => `cm::${key}`,
    close: async () => {
      await cache.disconnect();
    },
  };
}

/** bentocache with only its Redis (ioredis) L2 driver: no memory tier, no bus. */
async function bentocache(url: string): Promise<Contender> {
  const { BentoCache, bentostore } = await import('bentocache');
  const { redisDriver } = await import('bentocache/drivers/redis');
  const { host, port } = hostPort(url);
  const bento = new BentoCache({
    default: 'redis',
    prefix: 'bento',
    stores: { redis: bentostore().useL2Layer(redisDriver({ connection: { host, port } })) },
  });
  await bento.set({ key: '__ping', value: 1 });
  return {
    api: {
      get: 'get({ key })',
      set: 'set({ key, value })',
      mget: 'no getMany: Promise.all of 100 get',
      mset: 'no setMany: Promise.all of 100 set',
      msetTtl: 'no setMany: Promise.all of 100 set with ttl',
    },
    get: (key) => bento.get({ key }),
    set: (key, value) => bento.set({ key, value }),
    mget: (batch) => Promise.all(batch.keys.map((key) => bento.get({ key }))),
    mset: (batch) => Promise.all(batch.entries.map(([key, value]) => bento.set({ key, value }))),
    msetTtl: (batch, ttl) =>
      Promise.all(batch.entries.map(([key, value]) => bento.set({ key, value, ttl: ttl * 1000 }))),
    close: () => bento.disconnectAll(),
  };
}

/** Baseline of the memory engine: a plain `Map` of JSON strings behind async functions. */
async function plainMap(): Promise<Contender> {
  const map = new Map<string, string>();
  const P = 'bench:';
  return {
    api: { get: 'async Map.get + JSON.parse', set: 'async Map.set + JSON.stringify' },
    async get(key) {
      const raw = map.get(P + key);
      return raw === undefined ? null : JSON.parse(raw);
    },
    async set(key, value) {
      map.set(P + key, JSON.stringify(value));
    },
    close: async () => map.clear(),
  };
}

/** peak-cache on its embedded `memory://` engine. */
async function peakMemory(): Promise<Contender> {
  const { CacheClient } = await import('../src/index.ts');
  const cache = new CacheClient({
    connectionConfig: { url: 'memory://', tenant: 'bench' },
    debugLogs: false,
    env: {},
  });
  await cache.ping();
  return {
    api: { get: 'get (memory://)', set: 'set (memory://)' },
    get: (key) => cache.get(key),
    set: (key, value) => cache.set(key, value),
    close: () => cache.close(),
  };
}

/** Every contender, in table order. */
export const CONTENDERS: readonly ContenderSpec[] = [
  { id: 'raw', label: 'node-redis 6 raw (baseline)', kind: 'redis', create: rawNodeRedis },
  {
    id: 'peak',
    label: process.env.BENCH_TRACE ? `peak-cache (BENCH_TRACE=${process.env.BENCH_TRACE})` : 'peak-cache',
    kind: 'redis',
    create: peakCache,
  },
  { id: 'ioredis', label: 'ioredis (auto-pipelining)', kind: 'redis', create: ioredis },
  { id: 'keyv', label: 'keyv + @keyv/redis', kind: 'redis', create: keyv },
  { id: 'cache-manager', label: 'cache-manager 7 (keyv)', kind: 'redis', create: cacheManager },
  { id: 'bentocache', label: 'bentocache (Redis L2 only)', kind: 'redis', create: bentocache },
  { id: 'raw-eval', label: 'node-redis EVALSHA (info)', kind: 'redis', create: rawNodeRedisEval },
  { id: 'raw-pipeline', label: 'node-redis pipeline (info)', kind: 'redis', create: rawNodeRedisPipeline },
  { id: 'map', label: 'plain Map (baseline)', kind: 'memory', create: plainMap },
  { id: 'peak-memory', label: 'peak-cache memory://', kind: 'memory', create: peakMemory },
];

/** The peers peak-cache is compared with for the 2x targets. */
export const PEERS = ['ioredis', 'keyv', 'cache-manager', 'bentocache'] as const;
