/**
 * The flushTenant workload: a keyspace of N keys, half of them the tenant's, flushed by peak-cache's
 * `flushTenant` and by a hand-written SCAN COUNT 1000 + UNLINK loop on the raw driver, re-seeded
 * between runs. Besides keys/s it records the longest server-side command (SLOWLOG, threshold 1 ms)
 * and the longest round trip of a PING probe running beside the flush in a worker thread.
 *
 * @module
 */
import { Worker } from 'node:worker_threads';
import { connectRawNodeRedis, type RawClient, send } from './contenders.ts';
import { withTimeout } from './workloads.ts';

/** The tenant being flushed and the one that must survive. */
export const FLUSH_TENANT = 'bench';
const OTHER_TENANT = 'other';
/** Keys per seeding MSET, and seeding MSETs in flight. */
const SEED_BATCH = 1000;
const SEED_IN_FLIGHT = 8;
/** SLOWLOG threshold during flushes, in microseconds. */
export const SLOWLOG_THRESHOLD_US = 1000;

/** One timed flush. */
export interface FlushRun {
  readonly deleted: number;
  readonly elapsedMs: number;
  readonly keysPerSec: number;
  /** Longest command in SLOWLOG during the flush, in µs (below the threshold when none was logged). */
  readonly slowlogMaxUs: number;
  /** The command of {@link slowlogMaxUs}, e.g. `SCAN`, or `none` when nothing passed the threshold. */
  readonly slowlogMaxCommand: string;
  /** Commands over the threshold. */
  readonly slowlogCount: number;
  /** Longest PING round trip seen by the probe, in ms. */
  readonly probeMaxMs: number;
  /** 99th percentile PING round trip, in ms. */
  readonly probeP99Ms: number;
  readonly probeSamples: number;
}

/** A flush contender: deletes every key of {@link FLUSH_TENANT}, returns the count. */
export interface Flusher {
  readonly id: string;
  readonly label: string;
  flush(): Promise<number>;
  close(): Promise<void>;
}

/** peak-cache `flushTenant` (SCAN COUNT 1000 + UNLINK batches, several in flight). */
export async function peakFlusher(url: string): Promise<Flusher> {
  const { CacheClient } = await import('../src/index.ts');
  const cache = new CacheClient({
    connectionConfig: { url, tenant: FLUSH_TENANT },
    debugLogs: false,
    env: {},
  });
  await cache.ping();
  return {
    id: 'peak',
    label: 'peak-cache flushTenant()',
    flush: () => cache.flushTenant(),
    close: () => cache.close(),
  };
}

/** The raw loop: SCAN cursor MATCH tenant:* COUNT 1000, UNLINK each page, one command at a time. */
export async function rawFlusher(url: string): Promise<Flusher> {
  const client = await connectRawNodeRedis(url);
  return {
    id: 'raw',
    label: 'raw SCAN COUNT 1000 + UNLINK loop',
    async flush() {
      let cursor = '0';
      let deleted = 0;
      do {
        const [next, keys] = await send<[string, string[]]>(client, [
          'SCAN',
          cursor,
          'MATCH',
          `${FLUSH_TENANT}:*`,
          'COUNT',
          '1000',
        ]);
        cursor = next;
        if (keys.length > 0) deleted += await send<number>(client, ['UNLINK', ...keys]);
      } while (cursor !== '0');
      return deleted;
    },
    close: () => client.close(),
  };
}

/** Write `count` keys `<tenant>:f:<i>` with short values, in pipelined MSET batches. */
export async function seedTenant(client: RawClient, tenant: string, count: number): Promise<void> {
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < count) {
      const from = next;
      const to = Math.min(count, from + SEED_BATCH);
      next = to;
      const args = ['MSET'];
      for (let i = from; i < to; i++) args.push(`${tenant}:f:${i}`, `v${i}`);
      await send(client, args);
    }
  };
  await Promise.all(Array.from({ length: SEED_IN_FLIGHT }, loop));
}

// The probe runs in its own thread so the flushing client's event loop does not delay its replies.
// Plain RESP over a socket: one PING in flight, the next 1 ms after each reply.
const PROBE_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const rtts = [];
let stopping = false;
let sentAt = 0;
let pending = '';
const socket = net.connect(workerData.port, '127.0.0.1');
socket.setNoDelay(true);
const ping = () => {
  if (stopping) {
    socket.destroy();
    parentPort.postMessage({ rtts });
    return;
  }
  sentAt = performance.now();
  socket.write('PING\\r\\n');
};
socket.on('connect', () => {
  parentPort.postMessage('ready');
  ping();
});
socket.on('data', (chunk) => {
  pending += chunk.toString();
  if (!pending.endsWith('\\r\\n')) return;
  pending = '';
  rtts.push(performance.now() - sentAt);
  setTimeout(ping, 1);
});
socket.on('error', (err) => parentPort.postMessage({ error: String(err) }));
parentPort.on('message', () => { stopping = true; });
`;

/** A running PING probe. */
interface Probe {
  /** Stop and return the round trips in ms. */
  stop(): Promise<number[]>;
}

async function startProbe(port: number): Promise<Probe> {
  const worker = new Worker(PROBE_SOURCE, { eval: true, workerData: { port } });
  let onResult: (rtts: number[]) => void = () => {};
  let onError: (err: Error) => void = () => {};
  const result = new Promise<number[]>((resolve, reject) => {
    onResult = resolve;
    onError = reject;
  });
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (msg: 'ready' | { rtts?: number[]; error?: string }) => {
      if (msg === 'ready') resolve();
      else if (msg.error !== undefined) {
        const err = new Error(`probe: ${msg.error}`);
        reject(err);
        onError(err);
      } else onResult(msg.rtts ?? []);
    });
    worker.on('error', (err) => {
      reject(err);
      onError(err);
    });
  });
  return {
    async stop() {
      worker.postMessage('stop');
      try {
        return await withTimeout(result, 5000, 'the latency probe');
      } finally {
        await worker.terminate();
      }
    },
  };
}

type SlowlogEntry = [number, number, number, string[], ...unknown[]];

/**
 * Seed, then flush the tenant with `flusher` while the probe runs; checks that exactly the tenant's
 * keys went and the other tenant's stayed.
 * @param admin - raw client for seeding, SLOWLOG and DBSIZE.
 * @param tenantKeys - keys of the tenant (the other tenant holds as many).
 */
export async function timedFlush(
  admin: RawClient,
  port: number,
  flusher: Flusher,
  tenantKeys: number,
  timeoutMs: number,
): Promise<FlushRun> {
  const before = Number(await send<number>(admin, ['DBSIZE']));
  if (before !== 2 * tenantKeys)
    throw new Error(`expected ${2 * tenantKeys} keys before the flush, found ${before}`);
  await send(admin, ['SLOWLOG', 'RESET']);
  const probe = await startProbe(port);
  const t0 = performance.now();
  let deleted = 0;
  let failure: unknown;
  try {
    deleted = await withTimeout(flusher.flush(), timeoutMs, flusher.label);
  } catch (err) {
    failure = err;
  }
  const elapsedMs = performance.now() - t0;
  const rtts = await probe.stop();
  if (failure !== undefined) throw failure;
  const slowlog = await send<SlowlogEntry[]>(admin, ['SLOWLOG', 'GET', '100000']);
  const after = Number(await send<number>(admin, ['DBSIZE']));
  if (after !== tenantKeys || deleted !== tenantKeys) {
    throw new Error(
      `flush deleted ${deleted} keys and left ${after}; expected ${tenantKeys} and ${tenantKeys}`,
    );
  }
  let slowlogMaxUs = 0;
  let slowlogMaxCommand = 'none';
  for (const entry of slowlog) {
    const command = String(entry[3]?.[0] ?? '?').toUpperCase();
    // SLOWLOG RESET itself may be logged; it is not part of the flush.
    if (command === 'SLOWLOG') continue;
    if (Number(entry[2]) > slowlogMaxUs) {
      slowlogMaxUs = Number(entry[2]);
      slowlogMaxCommand = command;
    }
  }
  const sorted = [...rtts].sort((a, b) => a - b);
  return {
    deleted,
    elapsedMs,
    keysPerSec: (deleted / elapsedMs) * 1000,
    slowlogMaxUs,
    slowlogMaxCommand,
    slowlogCount: slowlog.filter((e) => String(e[3]?.[0]).toUpperCase() !== 'SLOWLOG').length,
    probeMaxMs: sorted.at(-1) ?? Number.NaN,
    probeP99Ms: sorted[Math.max(0, Math.ceil(sorted.length * 0.99) - 1)] ?? Number.NaN,
    probeSamples: sorted.length,
  };
}

/** Prepare the flush keyspace: everything else dropped, both tenants seeded, SLOWLOG threshold set. */
export async function prepareFlushKeyspace(admin: RawClient, tenantKeys: number): Promise<void> {
  await send(admin, ['FLUSHALL']);
  await send(admin, ['CONFIG', 'SET', 'slowlog-log-slower-than', String(SLOWLOG_THRESHOLD_US)]);
  await send(admin, ['CONFIG', 'SET', 'slowlog-max-len', '100000']);
  await seedTenant(admin, OTHER_TENANT, tenantKeys);
  await seedTenant(admin, FLUSH_TENANT, tenantKeys);
}
