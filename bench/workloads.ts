/**
 * The throughput workloads (get, set, mget, mset, mset with TTL, memory engine) and the timed loop
 * that drives one contender through one workload for a fixed duration.
 *
 * @module
 */
import { isDeepStrictEqual } from 'node:util';
import { type Batch, type Contender, type OpName, VALUE } from './contenders.ts';
import { percentile } from './stats.ts';

/** Distinct keys each contender reads and writes. */
export const KEYSPACE = 10_000;
/** Keys per mget/mset call. */
export const BATCH_SIZE = 100;
/** TTL of the mset-with-TTL workload, in seconds. */
export const MSET_TTL_SECONDS = 300;

/** Logical keys `k:0` … `k:9999`, built once so the loops allocate no key strings of their own. */
export const KEYS: readonly string[] = Array.from({ length: KEYSPACE }, (_, i) => `k:${i}`);

/** The 100 batches of 100 consecutive keys that cover the keyspace. */
export const BATCHES: readonly Batch[] = Array.from({ length: KEYSPACE / BATCH_SIZE }, (_, b) => {
  const keys = KEYS.slice(b * BATCH_SIZE, (b + 1) * BATCH_SIZE);
  const entries = keys.map((key) => [key, VALUE] as const);
  return {
    keys,
    entries,
    record: Object.fromEntries(entries),
    list: keys.map((key) => ({ key, value: VALUE as unknown })),
  };
});

/** A workload: one operation at a fixed number of calls in flight. */
export interface Workload {
  readonly id: string;
  readonly title: string;
  readonly op: OpName;
  /** Calls in flight at once. */
  readonly concurrency: number;
  /** Keys per call (1 for get/set). */
  readonly keysPerCall: number;
  /** Record per-call latency (single-in-flight runs). */
  readonly latency: boolean;
  /** Contender ids, baseline first. */
  readonly contenders: readonly string[];
  /** The contender the ratios are computed against. */
  readonly baseline: string;
  /** Shown under the table. */
  readonly note?: string;
}

const REDIS = ['raw', 'peak', 'ioredis', 'keyv', 'cache-manager', 'bentocache'] as const;

/** Every throughput workload, in report order. */
export const WORKLOADS: readonly Workload[] = [
  {
    id: 'get-1',
    title: 'get, 1 in flight',
    op: 'get',
    concurrency: 1,
    keysPerCall: 1,
    latency: true,
    contenders: REDIS,
    baseline: 'raw',
  },
  {
    id: 'get-256',
    title: 'get, 256 in flight',
    op: 'get',
    concurrency: 256,
    keysPerCall: 1,
    latency: false,
    contenders: REDIS,
    baseline: 'raw',
  },
  {
    id: 'set-1',
    title: 'set, 1 in flight',
    op: 'set',
    concurrency: 1,
    keysPerCall: 1,
    latency: true,
    contenders: REDIS,
    baseline: 'raw',
  },
  {
    id: 'set-256',
    title: 'set, 256 in flight',
    op: 'set',
    concurrency: 256,
    keysPerCall: 1,
    latency: false,
    contenders: REDIS,
    baseline: 'raw',
  },
  {
    id: 'mget-100',
    title: 'mget of 100 keys, 1 call in flight',
    op: 'mget',
    concurrency: 1,
    keysPerCall: BATCH_SIZE,
    latency: true,
    contenders: REDIS,
    baseline: 'raw',
  },
  {
    id: 'mset-100',
    title: 'mset of 100 keys (no TTL), 1 call in flight',
    op: 'mset',
    concurrency: 1,
    keysPerCall: BATCH_SIZE,
    latency: true,
    contenders: REDIS,
    baseline: 'raw',
  },
  {
    id: 'mset-ttl-100',
    title: `mset of 100 keys with a TTL (${MSET_TTL_SECONDS} s), 1 call in flight`,
    op: 'msetTtl',
    concurrency: 1,
    keysPerCall: BATCH_SIZE,
    latency: true,
    contenders: [...REDIS, 'raw-eval', 'raw-pipeline'],
    baseline: 'raw',
    note:
      'Baseline: raw node-redis MULTI of 100 SET EX. The two "(info)" rows are not contenders: one EVALSHA ' +
      'of a Lua loop of SET EX (atomic, like MULTI) and a plain pipeline of SET EX (each key atomic, ' +
      'the batch not), to show what the MULTI costs.',
  },
  {
    id: 'mem-get-1',
    title: 'memory engine: get, 1 in flight',
    op: 'get',
    concurrency: 1,
    keysPerCall: 1,
    latency: true,
    contenders: ['map', 'peak-memory'],
    baseline: 'map',
  },
  {
    id: 'mem-set-1',
    title: 'memory engine: set, 1 in flight',
    op: 'set',
    concurrency: 1,
    keysPerCall: 1,
    latency: true,
    contenders: ['map', 'peak-memory'],
    baseline: 'map',
  },
];

/** One timed run of one contender on one workload. */
export interface CellRun {
  /** Calls completed (a 100-key mget is one call). */
  readonly calls: number;
  readonly elapsedMs: number;
  readonly callsPerSec: number;
  /** Median call latency in microseconds (single-in-flight runs only). */
  readonly p50Us?: number;
  /** 99th percentile call latency in microseconds (single-in-flight runs only). */
  readonly p99Us?: number;
}

/** Latency samples kept per contender and round (a ring: the last ones win on very fast contenders). */
const LATENCY_CAPACITY = 1 << 18;

/** Accumulates the calls, time and latencies of one contender over the slices of one round. */
export class RunAccumulator {
  calls = 0;
  elapsedMs = 0;
  /** Latency samples in ms, or `undefined` when latency is not recorded. */
  readonly samples: Float64Array | undefined;
  sampleCount = 0;

  /** @param latency - whether to record per-call latency. */
  constructor(latency: boolean) {
    this.samples = latency ? new Float64Array(LATENCY_CAPACITY) : undefined;
  }

  /** Record one call's latency in ms. */
  record(ms: number): void {
    (this.samples as Float64Array)[this.sampleCount++ & (LATENCY_CAPACITY - 1)] = ms;
  }

  /** The round's result: calls/s over every slice, and latency percentiles when recorded. */
  result(): CellRun {
    const run: CellRun = {
      calls: this.calls,
      elapsedMs: this.elapsedMs,
      callsPerSec: (this.calls / this.elapsedMs) * 1000,
    };
    if (!this.samples) return run;
    const n = Math.min(this.sampleCount, LATENCY_CAPACITY);
    return {
      ...run,
      p50Us: percentile(this.samples, n, 50) * 1000,
      p99Us: percentile(this.samples, n, 99) * 1000,
    };
  }
}

/** The function a timed loop calls, given the call's sequence number. */
type Call = (i: number) => Promise<unknown>;

/** Bind a contender's operation to the keyspace: call `i` uses key `i % KEYSPACE` or batch `i % 100`. */
export function callFor(contender: Contender, op: OpName): Call | undefined {
  switch (op) {
    case 'get': {
      const get = contender.get;
      return get && ((i) => get(KEYS[i % KEYSPACE] as string));
    }
    case 'set': {
      const set = contender.set;
      return set && ((i) => set(KEYS[i % KEYSPACE] as string, VALUE));
    }
    case 'mget': {
      const mget = contender.mget;
      return mget && ((i) => mget(BATCHES[i % BATCHES.length] as Batch));
    }
    case 'mset': {
      const mset = contender.mset;
      return mset && ((i) => mset(BATCHES[i % BATCHES.length] as Batch));
    }
    case 'msetTtl': {
      const msetTtl = contender.msetTtl;
      return msetTtl && ((i) => msetTtl(BATCHES[i % BATCHES.length] as Batch, MSET_TTL_SECONDS));
    }
  }
}

/** Fewest calls between two clock reads of a throughput loop (at the start, and for slow calls). */
const MIN_STRIDE = 1;
/** Most calls between two clock reads (fast contenders: a near-cache hit takes ~0.3 µs). */
const MAX_STRIDE = 64;
/** A stride is doubled while clock reads come closer than this (ms)... */
const CLOSE_CHECKS_MS = 0.02;
/** ...and halved when they come further apart than this (ms): the duration overshoot stays below it. */
const FAR_CHECKS_MS = 0.2;

/**
 * Run `call` with `concurrency` loops in flight until `durationMs` have passed, then wait for the calls
 * still in flight; adds the calls and the time to `acc` (and each call's latency when `acc` records
 * latency, meant for `concurrency` 1). The first error stops every loop and is thrown.
 *
 * The clock costs as much as a near-cache hit (`performance.now()` ~50 ns), so throughput loops do not
 * read it on every call: the loops share one countdown and read the clock every `stride` completed
 * calls, the stride adapting (1 to 64) so that reads come 20-200 µs apart. The run thus stops at most
 * ~0.2 ms (plus one stride) after `durationMs`, and `elapsedMs` is the real time from the first call to
 * the last reply. Latency loops read the clock once per call (the end of one call starts the next).
 * @param first - sequence number of the first call (so slices walk the keyspace on).
 * @returns the next sequence number.
 */
export async function timedLoop(
  call: Call,
  concurrency: number,
  durationMs: number,
  acc: RunAccumulator,
  first = 0,
): Promise<number> {
  let next = first;
  let done = 0;
  let stop = false;
  const start = performance.now();
  const end = start + durationMs;
  let stride = MIN_STRIDE;
  let countdown = stride;
  let lastCheck = start;
  const throughput = async (): Promise<void> => {
    while (!stop) {
      await call(next++);
      done++;
      if (--countdown === 0) {
        const now = performance.now();
        if (now >= end) {
          stop = true;
          return;
        }
        const gap = now - lastCheck;
        lastCheck = now;
        if (gap < CLOSE_CHECKS_MS) {
          if (stride < MAX_STRIDE) stride *= 2;
        } else if (gap > FAR_CHECKS_MS && stride > MIN_STRIDE) {
          stride >>= 1;
        }
        countdown = stride;
      }
    }
  };
  const latency = async (): Promise<void> => {
    let t0 = performance.now();
    while (!stop && t0 < end) {
      await call(next++);
      const t1 = performance.now();
      acc.record(t1 - t0);
      done++;
      t0 = t1;
    }
  };
  const loop = acc.samples === undefined ? throughput : latency;
  const guarded = async (): Promise<void> => {
    try {
      await loop();
    } catch (err) {
      stop = true;
      throw err;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, guarded));
  acc.elapsedMs += performance.now() - start;
  acc.calls += done;
  return next;
}

/** Reject with a clear error when `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Throw unless `value` is the benchmark value (a contender that silently returns misses is not fast). */
function expectValue(value: unknown, what: string): void {
  if (!isDeepStrictEqual(value, VALUE)) {
    throw new Error(`${what} returned ${JSON.stringify(value)?.slice(0, 80)} instead of the stored value`);
  }
}

/**
 * Check, untimed, that a read workload reads the stored values. Throws on a wrong answer.
 */
export async function checkRead(contender: Contender, op: OpName): Promise<void> {
  if (op === 'get' && contender.get) expectValue(await contender.get(KEYS[7] as string), 'get');
  if (op === 'mget' && contender.mget) {
    const values = await contender.mget(BATCHES[3] as Batch);
    if (values.length !== BATCH_SIZE) throw new Error(`mget returned ${values.length} values`);
    for (const value of values) expectValue(value, 'mget');
  }
}

/**
 * Check, untimed, that a write workload's keys read back (and, with a TTL, have one).
 * @param ttlOf - the TTL of a stored Redis key, in seconds (`-1` none, `-2` missing).
 */
export async function checkWrite(
  contender: Contender,
  op: OpName,
  ttlOf: (storedKey: string) => Promise<number>,
): Promise<void> {
  const key = (op === 'set' ? KEYS[11] : BATCHES[0]?.keys[5]) as string;
  if (contender.get) expectValue(await contender.get(key), `${op} then get`);
  if (op === 'msetTtl' && contender.storedKey) {
    const ttl = await ttlOf(contender.storedKey(key));
    if (!(ttl > 0 && ttl <= MSET_TTL_SECONDS)) throw new Error(`key written by mset with ttl has TTL ${ttl}`);
  }
}

/**
 * Store the value at every key of the keyspace through the contender's own `set` (untimed), so reads
 * hit and decode the contender's own format.
 */
export async function seedKeyspace(contender: Contender): Promise<void> {
  const set = contender.set;
  if (set) {
    await timedLoopCount((i) => set(KEYS[i] as string, VALUE), KEYSPACE, 64);
    return;
  }
  const msetTtl = contender.msetTtl;
  if (msetTtl) await timedLoopCount((i) => msetTtl(BATCHES[i] as Batch, MSET_TTL_SECONDS), BATCHES.length, 4);
}

async function timedLoopCount(call: Call, count: number, concurrency: number): Promise<void> {
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < count) await call(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
}
