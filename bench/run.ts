/**
 * `npm run bench`: starts its own redis-server on a free loopback port, runs every workload over several
 * interleaved rounds (contenders in a rotating order each round), then writes the markdown and JSON
 * reports and the SVG chart, and stops the server (also when something fails).
 *
 * Environment:
 * - `BENCH_QUICK=1`: 2 rounds of 400 ms, a 100,000-key flush keyspace; writes `bench/results/quick.*`.
 * - `BENCH_ROUNDS` (5), `BENCH_DURATION_MS` (1500 per contender, workload and round), `BENCH_SLICES` (5:
 *   each round's time is cut in slices, contenders alternating slice by slice), `BENCH_FLUSH_KEYS`
 *   (1,000,000), `BENCH_FLUSH_ROUNDS` (as many as rounds).
 * - `BENCH_ONLY=get-256,flush`: run only these workloads (ids as in `workloads.ts`, plus `flush`).
 * - `BENCH_CONTENDERS=raw,peak`: only these contenders (the baselines always run).
 * - `BENCH_OUT=name`: write `bench/results/<name>.{md,json}` (and the chart beside them).
 * - `BENCH_RENDER=bench/results/latest.json`: measure nothing; re-render that run's markdown and chart.
 * - `BENCH_TRACE=subscriber|otel`: trace every peak-cache operation during the run (`bench/tracing.ts`).
 * - `BENCH_CLUSTER=1`: then the Redis Cluster rows (`bench/cluster.ts`), in `bench/results/cluster.*`.
 * - The many-tenants rows (`bench/tenants.ts`) run after the others (`BENCH_ONLY` must name `tenants`),
 *   in `bench/results/tenants.*`.
 * - `BENCH_ONLY=invalidation` (or a full run): the invalidation rows (`bench/invalidation.ts`), in
 *   `bench/results/invalidation.md`; `BENCH_INVALIDATION_KEYS` sets the database sizes.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CACHED_CONTENDERS, CACHED_WORKLOADS } from './cached.ts';
import { renderChart } from './chart.ts';
import {
  CONTENDERS,
  type Contender,
  type ContenderSpec,
  connectRawNodeRedis,
  type RawClient,
  send,
} from './contenders.ts';
import {
  FLUSH_TENANT,
  type Flusher,
  peakFlusher,
  prepareFlushKeyspace,
  rawFlusher,
  seedTenant,
  timedFlush,
} from './flush.ts';
import { describeMachine } from './machine.ts';
import { NEAR_CACHE_CONTENDERS, NEAR_CACHE_WORKLOADS } from './near-cache.ts';
import {
  type BenchConfig,
  type BenchResults,
  type CellResult,
  evaluateTargets,
  type FlushCell,
  type FlushResult,
  renderJson,
  renderMarkdown,
  writeText,
} from './report.ts';
import { type BenchServer, startBenchServer } from './server.ts';
import { formatRate } from './stats.ts';
import { attachTracing } from './tracing.ts';
import {
  callFor,
  checkRead,
  checkWrite,
  RunAccumulator,
  seedKeyspace,
  timedLoop,
  WORKLOADS,
  type Workload,
  withTimeout,
} from './workloads.ts';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got ${raw}`);
  return value;
}

/** Read the run's settings from the environment. */
export function readConfig(): BenchConfig {
  const quick = process.env.BENCH_QUICK === '1';
  const rounds = envInt('BENCH_ROUNDS', quick ? 2 : 5);
  const only = process.env.BENCH_ONLY?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    quick,
    rounds,
    durationMs: envInt('BENCH_DURATION_MS', quick ? 400 : 1500),
    slices: envInt('BENCH_SLICES', quick ? 2 : 5),
    warmupMs: quick ? 200 : 400,
    flushKeys: envInt('BENCH_FLUSH_KEYS', quick ? 100_000 : 1_000_000),
    flushRounds: envInt('BENCH_FLUSH_ROUNDS', rounds),
    only: only && only.length > 0 ? only : undefined,
  };
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] || err.name : String(err);
}

/** `items` rotated left by `by` (the order contenders run in during round `by`). */
function rotate<T>(items: readonly T[], by: number): T[] {
  const n = items.length;
  return n === 0 ? [] : items.map((_, i) => items[(i + by) % n] as T);
}

const gc = (globalThis as { gc?: () => void }).gc;

/** A contender that started, or the reason it did not. */
type Started = { contender: Contender } | { error: string };

async function startContenders(specs: readonly ContenderSpec[], url: string): Promise<Map<string, Started>> {
  const started = new Map<string, Started>();
  for (const spec of specs) {
    let contender: Contender | undefined;
    try {
      contender = await withTimeout(spec.create(url), 15_000, `starting ${spec.label}`);
      await withTimeout(seedKeyspace(contender), 120_000, `seeding ${spec.label}`);
      started.set(spec.id, { contender });
      log(`started ${spec.label}`);
    } catch (err) {
      log(`could not start ${spec.label}: ${message(err)}`);
      started.set(spec.id, { error: `could not start: ${message(err)}` });
      await contender?.close().catch(() => undefined);
    }
  }
  return started;
}

/** One contender's state during one round of one workload. */
interface RoundState {
  readonly id: string;
  readonly contender: Contender;
  readonly cell: CellResult;
  readonly call: (i: number) => Promise<unknown>;
  readonly acc: RunAccumulator;
  next: number;
  failed: boolean;
}

/**
 * One round of one workload: `config.slices` slices, each running every contender for its share of
 * the round's duration in a rotating order, so that a slow spell of this shared machine hits every
 * contender alike. Checks (untimed) that reads read the stored value and writes land.
 */
async function runRound(
  workload: Workload,
  round: number,
  states: RoundState[],
  durationMs: number,
  slices: number,
  admin: RawClient,
  warmup: boolean,
): Promise<void> {
  const reads = workload.op === 'get' || workload.op === 'mget';
  const fail = (state: RoundState, err: unknown): void => {
    state.failed = true;
    log(`${workload.id.padEnd(13)} ${state.cell.label.padEnd(32)} ERROR ${message(err)}`);
    if (!warmup) state.cell.errors.push(message(err));
  };
  if (reads) {
    for (const state of states) {
      await withTimeout(checkRead(state.contender, workload.op), 10_000, 'the read check').catch((err) =>
        fail(state, err),
      );
    }
  }
  const sliceMs = durationMs / slices;
  for (let slice = 0; slice < slices; slice++) {
    for (const state of rotate(states, round + slice)) {
      if (state.failed) continue;
      gc?.();
      try {
        state.next = await withTimeout(
          timedLoop(state.call, workload.concurrency, sliceMs, state.acc, state.next),
          sliceMs + 30_000,
          'the timed loop',
        );
      } catch (err) {
        fail(state, err);
      }
    }
  }
  for (const state of states) {
    if (state.failed) continue;
    if (!reads) {
      const ttlOf = async (key: string) => Number(await send<number>(admin, ['TTL', key]));
      try {
        await withTimeout(checkWrite(state.contender, workload.op, ttlOf), 10_000, 'the write check');
      } catch (err) {
        fail(state, err);
        continue;
      }
    }
    if (warmup) continue;
    const run = state.acc.result();
    state.cell.runs.push({ ...run, round });
    log(
      `${workload.id.padEnd(13)} ${state.cell.label.padEnd(32)} ${formatRate(run.callsPerSec).padStart(10)} calls/s`,
    );
  }
}

async function runThroughput(
  config: BenchConfig,
  workloads: readonly Workload[],
  server: BenchServer,
  admin: RawClient,
  results: BenchResults,
): Promise<void> {
  const ids = new Set(workloads.flatMap((w) => w.contenders));
  const specs = [...CONTENDERS, ...NEAR_CACHE_CONTENDERS, ...CACHED_CONTENDERS].filter((c) => ids.has(c.id));
  const started = await startContenders(specs, server.url);
  const cells = new Map<string, CellResult>();
  for (const w of workloads) {
    const row: CellResult[] = [];
    for (const id of w.contenders) {
      const spec = specs.find((s) => s.id === id);
      const s = started.get(id);
      const cell: CellResult = {
        contender: id,
        label: spec?.label ?? id,
        api: s && 'contender' in s ? (s.contender.api[w.op] ?? 'not supported') : '-',
        runs: [],
        errors: s && 'error' in s ? [s.error] : [],
      };
      cells.set(`${w.id}/${id}`, cell);
      row.push(cell);
    }
    results.workloads.push({ workload: w, cells: row });
  }
  try {
    for (let round = -1; round < config.rounds; round++) {
      const warmup = round < 0;
      log(
        warmup
          ? '-- warm-up'
          : `-- round ${round + 1}/${config.rounds} (load average ${loadavg()[0]?.toFixed(2)})`,
      );
      for (const w of workloads) {
        const states: RoundState[] = [];
        for (const id of w.contenders) {
          const s = started.get(id);
          const cell = cells.get(`${w.id}/${id}`);
          if (!s || !('contender' in s) || !cell) continue;
          const call = callFor(s.contender, w.op);
          if (!call) {
            if (!warmup) cell.errors.push(`${w.op} is not supported`);
            continue;
          }
          states.push({
            id,
            contender: s.contender,
            cell,
            call,
            acc: new RunAccumulator(w.latency),
            next: 0,
            failed: false,
          });
        }
        await runRound(
          w,
          Math.max(0, round),
          states,
          warmup ? config.warmupMs : config.durationMs,
          warmup ? 1 : config.slices,
          admin,
          warmup,
        );
      }
      if (!warmup) results.loadAverages.push(loadavg()[0] ?? Number.NaN);
    }
  } finally {
    for (const s of started.values()) {
      if ('contender' in s) await withTimeout(s.contender.close(), 5000, 'close').catch(() => undefined);
    }
  }
}

async function runFlushWorkload(
  config: BenchConfig,
  server: BenchServer,
  admin: RawClient,
  results: BenchResults,
): Promise<void> {
  const tenantKeys = Math.floor(config.flushKeys / 2);
  const makers: { id: string; label: string; make: (url: string) => Promise<Flusher> }[] = [
    { id: 'raw', label: 'raw SCAN COUNT 1000 + UNLINK loop', make: rawFlusher },
    { id: 'peak', label: 'peak-cache flushTenant()', make: peakFlusher },
  ];
  const cells: FlushCell[] = makers.map((m) => ({ contender: m.id, label: m.label, runs: [], errors: [] }));
  const flush: FlushResult = { totalKeys: 2 * tenantKeys, tenantKeys, baseline: 'raw', cells };
  results.flush = flush;
  const flushers = new Map<string, Flusher>();
  try {
    log(`-- flush: seeding ${(2 * tenantKeys).toLocaleString('en-US')} keys`);
    const t0 = performance.now();
    await withTimeout(prepareFlushKeyspace(admin, tenantKeys), 600_000, 'seeding the flush keyspace');
    log(`seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const [i, m] of makers.entries()) {
      try {
        flushers.set(m.id, await withTimeout(m.make(server.url), 15_000, `starting ${m.label}`));
      } catch (err) {
        cells[i]?.errors.push(`could not start: ${message(err)}`);
      }
    }
    const timeoutMs = Math.max(120_000, tenantKeys / 5);
    for (let round = 0; round < config.flushRounds; round++) {
      for (const id of rotate(
        makers.map((m) => m.id),
        round,
      )) {
        const flusher = flushers.get(id);
        const cell = cells.find((c) => c.contender === id);
        if (!flusher || !cell) continue;
        try {
          const size = Number(await send<number>(admin, ['DBSIZE']));
          if (size !== 2 * tenantKeys) {
            await withTimeout(seedTenant(admin, FLUSH_TENANT, tenantKeys), 600_000, 're-seeding the tenant');
          }
          await new Promise((r) => setTimeout(r, 250));
          gc?.();
          const run = await timedFlush(admin, server.port, flusher, tenantKeys, timeoutMs);
          cell.runs.push({ ...run, round });
          log(
            `flush ${cell.label.padEnd(36)} ${formatRate(run.keysPerSec).padStart(10)} keys/s, ` +
              `${(run.elapsedMs / 1000).toFixed(2)} s, longest command ${(run.slowlogMaxUs / 1000).toFixed(2)} ms ` +
              `(${run.slowlogMaxCommand}), probe max ${run.probeMaxMs.toFixed(2)} ms`,
          );
        } catch (err) {
          log(`flush ${cell.label} ERROR ${message(err)}`);
          cell.errors.push(message(err));
        }
      }
    }
  } catch (err) {
    log(`flush workload failed: ${message(err)}`);
    results.flush = { ...flush, error: message(err) };
  } finally {
    for (const f of flushers.values()) await withTimeout(f.close(), 5000, 'close').catch(() => undefined);
  }
}

/** Paths of a run's outputs. */
function outputPaths(name: string) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  return {
    root,
    md: `${root}bench/results/${name}.md`,
    json: `${root}bench/results/${name}.json`,
    chart: name === 'latest' ? `${root}docs/bench.svg` : `${root}bench/results/${name}.svg`,
  };
}

/** Write the markdown, JSON and SVG of `results`; prints the markdown. */
function writeReports(results: BenchResults, name: string, json = true): void {
  const paths = outputPaths(name);
  const targets = evaluateTargets(results);
  const rel = (path: string) => path.slice(paths.root.length);
  const markdown = renderMarkdown(results, targets, { json: rel(paths.json), chart: rel(paths.chart) });
  writeText(paths.md, markdown);
  if (json) writeText(paths.json, renderJson(results, targets));
  writeText(paths.chart, renderChart(results));
  process.stdout.write(markdown);
  log(`wrote ${rel(paths.md)}${json ? `, ${rel(paths.json)}` : ''}, ${rel(paths.chart)}`);
}

async function main(): Promise<void> {
  const render = process.env.BENCH_RENDER;
  if (render) {
    // Re-render the markdown and the chart of an earlier run from its JSON, without measuring.
    const name = /([^/]+)\.json$/.exec(render)?.[1] ?? 'latest';
    writeReports(JSON.parse(readFileSync(render, 'utf8')) as BenchResults, name, false);
    return;
  }
  const config = readConfig();
  const tracing = await attachTracing(process.env.BENCH_TRACE);
  if (tracing) log(`BENCH_TRACE: ${tracing}`);
  const startedAt = new Date();
  const t0 = performance.now();
  const picked = process.env.BENCH_CONTENDERS?.split(',').map((s) => s.trim());
  const workloads = [...WORKLOADS, ...NEAR_CACHE_WORKLOADS, ...CACHED_WORKLOADS]
    .filter((w) => !config.only || config.only.includes(w.id))
    .map((w) =>
      picked ? { ...w, contenders: w.contenders.filter((c) => c === w.baseline || picked.includes(c)) } : w,
    );
  const runFlush = !config.only || config.only.includes('flush');
  const name =
    process.env.BENCH_OUT || (config.quick ? 'quick' : config.only || picked ? 'partial' : 'latest');

  const server = await startBenchServer();
  log(`redis-server ${server.url} (${server.version})`);
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping redis-server`);
    void server.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const results: BenchResults = {
    config,
    machine: describeMachine(server.version, startedAt),
    workloads: [],
    flush: undefined,
    totalSeconds: 0,
    loadAverages: [],
  };
  let admin: RawClient | undefined;
  try {
    admin = await connectRawNodeRedis(server.url);
    if (workloads.length > 0) await runThroughput(config, workloads, server, admin, results);
    if (runFlush) await runFlushWorkload(config, server, admin, results);
  } finally {
    await admin?.close().catch(() => undefined);
    await server.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  results.totalSeconds = (performance.now() - t0) / 1000;
  writeReports(results, name);
  // Issue 18: the many-tenants rows (their own redis-server, about a minute), see bench/tenants.ts.
  if (!config.only || config.only.includes('tenants')) {
    const { runTenantsBench } = await import('./tenants.ts');
    await runTenantsBench(name === 'latest' ? 'tenants' : `${name}-tenants`);
  }
  // Issue 19: invalidation latency against the database's size and the tagged hit path (its own server).
  if (!config.only || config.only.includes('invalidation')) {
    const { runInvalidationBench } = await import('./invalidation.ts');
    process.stdout.write(await runInvalidationBench(config.quick));
  }
  // Issue 13: the cluster rows (their own 3+3 cluster, about 2 minutes), see bench/cluster.ts.
  if (process.env.BENCH_CLUSTER === '1') {
    const { runClusterBench } = await import('./cluster.ts');
    await runClusterBench(name === 'latest' ? 'cluster' : `${name}-cluster`);
  }
}

main().catch((err: unknown) => {
  log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
