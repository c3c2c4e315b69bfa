/**
 * Cluster rows of `npm run bench` (`BENCH_CLUSTER=1 npm run bench`, or `node --expose-gc --import tsx
 * bench/cluster.ts` alone): peak-cache in cluster mode against node-redis 6's raw cluster client (the
 * baseline of the ratios), node-redis 6 sending straight to each slot's primary connection (what
 * peak-cache's engine does underneath: the tightest raw reference) and ioredis 5's `Cluster`, on a real
 * 3 + 3 Redis Cluster this script starts on free loopback ports.
 *
 * Workloads (each contender under its own key prefix, values JSON-encoded by hand for the raw drivers):
 * - `get` / `set` with 256 calls in flight;
 * - `mget` / `mset` of 100 keys spread over the slots of every primary, 16 in flight;
 * - `mset` of 100 keys with a TTL, 16 in flight: the raw baseline is a `MULTI` of `SET EX` per slot (all
 *   slots at once); peak-cache runs its SET EX script per slot;
 * - `flushTenant`: 20,000 keys of the tenant beside 20,000 of another, deleted by peak-cache's
 *   `flushTenant` and by a hand-written SCAN + per-slot UNLINK loop on every primary (raw node-redis).
 *
 * Rounds are interleaved (the contenders' order rotates each round) and the ratios reported are the
 * medians of each round's ratio to the raw cluster client, measured in the same run: the machine is
 * shared and noisy, so only ratios are comparable. Writes `bench/results/cluster.{md,json}`
 * (`BENCH_OUT=name`: `bench/results/<name>-cluster.*`).
 *
 * Environment: `BENCH_QUICK=1` (2 rounds of 400 ms), `BENCH_ROUNDS` (5), `BENCH_DURATION_MS` (1000).
 *
 * @module
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createCluster } from '@redis/client';
import { Cluster as IoCluster } from 'ioredis';
import { groupBySlot, keySlot } from '../src/engines/slot.ts';
import { CacheClient } from '../src/index.ts';
import { type RedisCluster, startRedisCluster } from '../test/helpers/redis-cluster.ts';
import { VALUE } from './contenders.ts';

type Entries = readonly (readonly [string, unknown])[];

/** One contender's implementation of each operation (keys without the contender's prefix). */
interface ClusterContender {
  readonly id: string;
  readonly label: string;
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  mget(keys: readonly string[]): Promise<unknown[]>;
  mset(entries: Entries): Promise<void>;
  msetTtl(entries: Entries, ttl: number): Promise<void>;
  /** Delete every key of `tenant` (`<tenant>:*`) on every primary; the number deleted. */
  flush(tenant: string): Promise<number>;
  close(): Promise<void>;
}

interface Workload {
  readonly id: string;
  readonly label: string;
  readonly concurrency: number;
  /** Keys touched per call (throughput is reported in keys/s for batches). */
  readonly keysPerCall: number;
  run(c: ClusterContender, i: number): Promise<unknown>;
}

const KEYSPACE = 10_000;
const BATCH = 100;
const TTL = 3600;
const parse = (raw: string | null): unknown => (raw === null ? null : JSON.parse(raw));
const keyOf = (i: number) => `k${i % KEYSPACE}`;
/** `BATCH` consecutive keys from `i`: spread over many slots (and so every primary). */
const batchOf = (i: number) => Array.from({ length: BATCH }, (_, j) => keyOf(i * BATCH + j));

const WORKLOADS: readonly Workload[] = [
  {
    id: 'get-256',
    label: 'get, 256 in flight',
    concurrency: 256,
    keysPerCall: 1,
    run: (c, i) => c.get(keyOf(i)),
  },
  {
    id: 'set-256',
    label: 'set, 256 in flight',
    concurrency: 256,
    keysPerCall: 1,
    run: (c, i) => c.set(keyOf(i), VALUE),
  },
  {
    id: 'mget-100',
    label: 'mget of 100 keys across slots, 16 in flight',
    concurrency: 16,
    keysPerCall: BATCH,
    run: (c, i) => c.mget(batchOf(i)),
  },
  {
    id: 'mset-100',
    label: 'mset of 100 keys across slots, 16 in flight',
    concurrency: 16,
    keysPerCall: BATCH,
    run: (c, i) => c.mset(batchOf(i).map((k) => [k, VALUE] as const)),
  },
  {
    id: 'mset-100-ttl',
    label: 'mset of 100 keys with a ttl, 16 in flight',
    concurrency: 16,
    keysPerCall: BATCH,
    run: (c, i) =>
      c.msetTtl(
        batchOf(i).map((k) => [k, VALUE] as const),
        TTL,
      ),
  },
];

/**
 * MGET of `keys` (each behind `prefix`) split by slot, one MGET per slot through `fetch`, decoded and put
 * back in the callers' order: what a raw baseline has to do by hand across slots.
 */
async function mgetBySlot(
  prefix: string,
  keys: readonly string[],
  fetch: (group: string[]) => Promise<(string | null)[]>,
): Promise<unknown[]> {
  const out = new Array<unknown>(keys.length);
  const groups = groupBySlot(keys.map((k) => prefix + k));
  await Promise.all(
    [...groups.values()].map(async (indices) => {
      const values = await fetch(indices.map((i) => prefix + keys[i]));
      indices.forEach((position, j) => {
        out[position] = parse(values[j] ?? null);
      });
    }),
  );
  return out;
}

/** Group `keys` by slot: one array of keys per slot. */
function slotGroups<T>(items: readonly T[], keyOfItem: (item: T) => string): T[][] {
  const groups = groupBySlot(items.map(keyOfItem));
  return [...groups.values()].map((indices) => indices.map((i) => items[i] as T));
}

/** peak-cache in cluster mode. */
async function peak(nodes: readonly string[]): Promise<ClusterContender> {
  const open = (tenant: string) =>
    new CacheClient({ connectionConfig: { nodes: [...nodes], tenant }, debugLogs: false, env: {} });
  const cache = open('peak');
  const flushers = new Map<string, CacheClient>();
  await cache.ping();
  return {
    id: 'peak',
    label: 'peak-cache (cluster mode)',
    get: (key) => cache.get(key),
    set: async (key, value) => {
      await cache.set(key, value);
    },
    mget: (keys) => cache.mget(...keys),
    mset: async (entries) => {
      await cache.mset(Object.fromEntries(entries));
    },
    msetTtl: async (entries, ttl) => {
      await cache.mset(Object.fromEntries(entries), ttl);
    },
    flush: async (tenant) => {
      let client = flushers.get(tenant);
      if (client === undefined) {
        client = open(tenant);
        flushers.set(tenant, client);
      }
      return client.flushTenant();
    },
    close: async () => {
      await Promise.all([cache, ...flushers.values()].map((c) => c.close()));
    },
  };
}

/** node-redis 6's cluster client, public API: typed commands, per-slot MULTI, SCAN per primary. */
async function rawCluster(nodes: readonly string[]): Promise<ClusterContender> {
  const cluster = await connectRaw(nodes);
  const P = 'raw:';
  return {
    id: 'raw',
    label: 'node-redis 6 cluster client (raw)',
    get: async (key) => parse(await cluster.get(P + key)),
    set: async (key, value) => {
      await cluster.set(P + key, JSON.stringify(value));
    },
    // node-redis splits a multi-key MGET / MSET by slot itself (request policy multi_shard).
    mget: async (keys) => (await cluster.mGet(keys.map((k) => P + k))).map((v) => parse(v as string | null)),
    mset: async (entries) => {
      await cluster.mSet(entries.map(([k, v]) => [P + k, JSON.stringify(v)] as [string, string]));
    },
    msetTtl: async (entries, ttl) => {
      await Promise.all(
        slotGroups(entries, ([k]) => P + k).map((group) => {
          const multi = cluster.multi();
          for (const [k, v] of group)
            multi.set(P + k, JSON.stringify(v), { expiration: { type: 'EX', value: ttl } });
          return multi.exec();
        }),
      );
    },
    flush: (tenant) => scanUnlink(cluster, `${tenant}:*`),
    close: () => cluster.close(),
  };
}

type RawCluster = Awaited<ReturnType<typeof connectRaw>>;
type NodeClient = Awaited<ReturnType<RawCluster['nodeClient']>>;

/**
 * node-redis 6 used the way peak-cache's engine uses it: the slot computed by hand and each command sent
 * straight to the slot's primary connection (no routing layer). The tightest raw baseline.
 */
async function rawDirect(nodes: readonly string[]): Promise<ClusterContender> {
  const cluster = await connectRaw(nodes);
  const byMaster = new Map<string, NodeClient>();
  // No per-command timer on the node connections either (node-redis arms one per command by default,
  // which costs it 3-5x; the cluster's commandOptions only apply to its routed commands).
  for (const master of cluster.masters) {
    const client = await cluster.nodeClient(master);
    byMaster.set(master.address, client.withCommandOptions({ timeout: 0 }) as unknown as NodeClient);
  }
  const P = 'direct:';
  const clientOf = (key: string) =>
    byMaster.get(cluster.slots[keySlot(key)]?.master.address ?? '') as NodeClient;
  const send = (key: string, args: string[]): Promise<unknown> => clientOf(key).sendCommand(args);
  return {
    id: 'direct',
    label: "node-redis 6, straight to the slot's primary",
    get: async (key) => parse((await send(P + key, ['GET', P + key])) as string | null),
    set: async (key, value) => {
      await send(P + key, ['SET', P + key, JSON.stringify(value)]);
    },
    mget: (keys) =>
      mgetBySlot(
        P,
        keys,
        async (group) => (await send(group[0] as string, ['MGET', ...group])) as (string | null)[],
      ),
    mset: async (entries) => {
      await Promise.all(
        slotGroups(entries, ([k]) => P + k).map((group) =>
          send(P + group[0]?.[0], ['MSET', ...group.flatMap(([k, v]) => [P + k, JSON.stringify(v)])]),
        ),
      );
    },
    msetTtl: async (entries, ttl) => {
      await Promise.all(
        slotGroups(entries, ([k]) => P + k).map((group) => {
          const multi = clientOf(P + group[0]?.[0]).multi();
          for (const [k, v] of group) multi.addCommand(['SET', P + k, JSON.stringify(v), 'EX', String(ttl)]);
          return multi.exec();
        }),
      );
    },
    flush: (tenant) => scanUnlink(cluster, `${tenant}:*`),
    close: () => cluster.close(),
  };
}

async function connectRaw(nodes: readonly string[]) {
  const cluster = createCluster({
    rootNodes: nodes.map((url) => ({ url })),
    defaults: { disableOfflineQueue: true },
    commandOptions: { timeout: 0 },
  });
  cluster.on('error', () => {});
  return cluster.connect();
}

/** SCAN COUNT 1000 on every primary, UNLINK of each page's keys slot by slot: the hand-written flush. */
async function scanUnlink(cluster: RawCluster, match: string): Promise<number> {
  let deleted = 0;
  await Promise.all(
    cluster.masters.map(async (master) => {
      const client = await cluster.nodeClient(master);
      for await (const keys of client.scanIterator({ MATCH: match, COUNT: 1000 })) {
        if (keys.length === 0) continue;
        const counts = await Promise.all(slotGroups(keys, (k) => String(k)).map((g) => client.unlink(g)));
        for (const n of counts) deleted += n;
      }
    }),
  );
  return deleted;
}

/** ioredis 5's `Cluster`: per-slot MGET / MSET / MULTI (it does not split multi-key commands). */
async function ioredisCluster(ports: readonly number[]): Promise<ClusterContender> {
  const cluster = new IoCluster(
    ports.map((port) => ({ host: '127.0.0.1', port })),
    { enableAutoPipelining: true },
  );
  cluster.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    cluster.once('ready', resolve);
    cluster.once('end', () => reject(new Error('ioredis cluster ended')));
  });
  const P = 'io:';
  return {
    id: 'ioredis',
    label: 'ioredis 5 Cluster',
    get: async (key) => parse(await cluster.get(P + key)),
    set: async (key, value) => {
      await cluster.set(P + key, JSON.stringify(value));
    },
    mget: (keys) => mgetBySlot(P, keys, (group) => cluster.mget(...group)),
    mset: async (entries) => {
      await Promise.all(
        slotGroups(entries, ([k]) => P + k).map((group) =>
          cluster.mset(...group.flatMap(([k, v]) => [P + k, JSON.stringify(v)])),
        ),
      );
    },
    msetTtl: async (entries, ttl) => {
      await Promise.all(
        slotGroups(entries, ([k]) => P + k).map((group) => {
          const multi = cluster.multi();
          for (const [k, v] of group) multi.set(P + k, JSON.stringify(v), 'EX', ttl);
          return multi.exec();
        }),
      );
    },
    flush: async (tenant) => {
      let deleted = 0;
      await Promise.all(
        cluster.nodes('master').map(async (node) => {
          let cursor = '0';
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', `${tenant}:*`, 'COUNT', 1000);
            cursor = next;
            const counts = await Promise.all(slotGroups(keys, (k) => k).map((g) => node.unlink(...g)));
            for (const n of counts) deleted += n;
          } while (cursor !== '0');
        }),
      );
      return deleted;
    },
    close: async () => {
      await cluster.quit();
    },
  };
}

/** Medians: the middle value (mean of the two middle ones for an even count). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Calls of `w` on `c` for `ms` milliseconds with `w.concurrency` loops; keys per second. */
async function throughput(c: ClusterContender, w: Workload, ms: number): Promise<number> {
  let next = 0;
  let calls = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: w.concurrency }, async () => {
      while (performance.now() < end) {
        await w.run(c, next++);
        calls++;
      }
    }),
  );
  return (calls * w.keysPerCall * 1000) / (performance.now() - start);
}

/** Seed `count` keys of `tenant` and of another tenant through redis-cli-free raw writes (untimed). */
async function seedTenants(raw: RawCluster, tenant: string, count: number): Promise<void> {
  for (const t of [tenant, 'other']) {
    for (let i = 0; i < count; i += 500) {
      const entries = Array.from(
        { length: Math.min(500, count - i) },
        (_, j) => [`${t}:f${i + j}`, 'x'] as [string, string],
      );
      await raw.mSet(entries);
    }
  }
}

/** One measured row: medians over the rounds, and the median of each round's ratio to the baseline. */
export interface ClusterRow {
  readonly workload: string;
  readonly label: string;
  readonly unit: string;
  /** Contender id -> median rate. */
  readonly rates: Record<string, number>;
  /** Contender id -> median of the per-round ratio to `raw`. */
  readonly ratios: Record<string, number>;
}

/** What {@link runClusterBench} measured. */
export interface ClusterBenchResult {
  readonly rounds: number;
  readonly durationMs: number;
  readonly flushKeys: number;
  readonly contenders: Record<string, string>;
  readonly rows: ClusterRow[];
  readonly totalSeconds: number;
}

const log = (line: string) => console.error(`[bench:cluster] ${line}`);

/**
 * Start a 3 + 3 cluster, measure every workload and the flush, stop the cluster, and write
 * `bench/results/<name>.{md,json}`.
 */
export async function runClusterBench(name = 'cluster'): Promise<ClusterBenchResult> {
  const quick = process.env.BENCH_QUICK === '1';
  const rounds = Number(process.env.BENCH_ROUNDS ?? (quick ? 2 : 5));
  const durationMs = Number(process.env.BENCH_DURATION_MS ?? (quick ? 400 : 1000));
  const flushKeys = quick ? 5000 : 20_000;
  const t0 = performance.now();
  const cluster: RedisCluster = await startRedisCluster({ nodeTimeoutMs: 5000 });
  const rows: ClusterRow[] = [];
  const contenders: ClusterContender[] = [];
  let admin: RawCluster | undefined;
  try {
    const nodes = cluster.ports.map((p) => `redis://127.0.0.1:${p}`);
    log(`cluster on ${cluster.ports.join(',')}; ${rounds} rounds of ${durationMs} ms`);
    contenders.push(
      await rawCluster(nodes),
      await peak(nodes),
      await rawDirect(nodes),
      await ioredisCluster(cluster.ports),
    );
    admin = await connectRaw(nodes);
    // The keyspace every read finds (each contender writes its own prefix through its own set).
    for (const c of contenders) {
      for (let i = 0; i < KEYSPACE; i += BATCH)
        await c.mset(batchOf(i / BATCH).map((k) => [k, VALUE] as const));
      const probe = await c.get(keyOf(1));
      if (JSON.stringify(probe) !== JSON.stringify(VALUE))
        throw new Error(`${c.id} read back ${JSON.stringify(probe)}`);
    }
    for (const w of WORKLOADS) {
      const perRound = new Map<string, number[]>(contenders.map((c) => [c.id, []]));
      for (let round = 0; round < rounds; round++) {
        const order = contenders.map(
          (_, i) => contenders[(i + round) % contenders.length] as ClusterContender,
        );
        for (const c of order) perRound.get(c.id)?.push(await throughput(c, w, durationMs));
      }
      rows.push(row(w.id, w.label, w.keysPerCall === 1 ? 'calls/s' : 'keys/s', perRound));
      log(`${w.id}: ${JSON.stringify(rows.at(-1)?.ratios)}`);
    }
    // flushTenant over every primary: keys deleted per second.
    const perRound = new Map<string, number[]>(contenders.map((c) => [c.id, []]));
    for (let round = 0; round < rounds; round++) {
      const order = contenders.map((_, i) => contenders[(i + round) % contenders.length] as ClusterContender);
      for (const c of order) {
        await seedTenants(admin, 'flushme', flushKeys);
        const start = performance.now();
        const deleted = await c.flush('flushme');
        const seconds = (performance.now() - start) / 1000;
        if (deleted !== flushKeys) throw new Error(`${c.id} flush deleted ${deleted}, expected ${flushKeys}`);
        perRound.get(c.id)?.push(deleted / seconds);
      }
      await admin.sendCommand(undefined, false, ['FLUSHALL']).catch(() => undefined);
      for (const c of contenders) {
        for (let i = 0; i < KEYSPACE; i += BATCH)
          await c.mset(batchOf(i / BATCH).map((k) => [k, VALUE] as const));
      }
    }
    rows.push(
      row(
        'flush',
        `flushTenant of ${flushKeys.toLocaleString('en-US')} keys beside as many others`,
        'keys/s',
        perRound,
      ),
    );
    log(`flush: ${JSON.stringify(rows.at(-1)?.ratios)}`);
  } finally {
    await admin?.close().catch(() => undefined);
    for (const c of contenders) await c.close().catch(() => undefined);
    await cluster.stop();
  }
  const result: ClusterBenchResult = {
    rounds,
    durationMs,
    flushKeys,
    contenders: Object.fromEntries(contenders.map((c) => [c.id, c.label])),
    rows,
    totalSeconds: (performance.now() - t0) / 1000,
  };
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  writeFileSync(`${dir}${name}.json`, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(`${dir}${name}.md`, renderClusterMarkdown(result));
  return result;
}

function row(workload: string, label: string, unit: string, perRound: Map<string, number[]>): ClusterRow {
  const base = perRound.get('raw') ?? [];
  const rates: Record<string, number> = {};
  const ratios: Record<string, number> = {};
  for (const [id, values] of perRound) {
    rates[id] = Math.round(median(values));
    ratios[id] = Number(median(values.map((v, i) => v / (base[i] as number))).toFixed(2));
  }
  return { workload, label, unit, rates, ratios };
}

/** The markdown table of a cluster run. */
export function renderClusterMarkdown(r: ClusterBenchResult): string {
  const ids = Object.keys(r.contenders);
  const lines = [
    '# peak-cache on Redis Cluster (3 primaries + 3 replicas, loopback)',
    '',
    `${r.rounds} interleaved rounds of ${r.durationMs} ms per contender and workload; medians; ratio = median of the per-round ratios to the raw node-redis cluster client (same run). ${r.totalSeconds.toFixed(0)} s in all.`,
    '',
    `| workload | unit | ${ids.map((id) => r.contenders[id]).join(' | ')} | ${ids
      .filter((id) => id !== 'raw')
      .map((id) => `${id} / raw`)
      .join(' | ')} |`,
    `|---|---|${ids.map(() => '---:').join('|')}|${ids
      .filter((id) => id !== 'raw')
      .map(() => '---:')
      .join('|')}|`,
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.label} | ${row.unit} | ${ids.map((id) => (row.rates[id] ?? 0).toLocaleString('en-US')).join(' | ')} | ${ids
        .filter((id) => id !== 'raw')
        .map((id) => `${row.ratios[id]}x`)
        .join(' | ')} |`,
    );
  }
  lines.push(
    '',
    'The raw baseline of "mset with a ttl" is a MULTI of SET EX per slot, all slots at once; peak-cache runs the',
    'SET EX script per slot (EVALSHA). The raw flush is a SCAN COUNT 1000 + per-slot UNLINK loop on every primary.',
    '',
  );
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  runClusterBench(process.env.BENCH_OUT ? `${process.env.BENCH_OUT}-cluster` : 'cluster').then(
    (r) => console.log(renderClusterMarkdown(r)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
