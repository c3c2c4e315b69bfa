/**
 * What tracing costs a near-cache hit (issue 20: <= 15 % when subscribed), measured in CPU time so that a
 * loaded machine skews it less: `node --import tsx bench/tracing-cost.ts`.
 *
 * The parent runs child processes in turns, one without a subscriber and one with `BENCH_TRACE=subscriber`'s
 * no-op subscriber (a subscriber is process-wide and subscribing deoptimizes the untraced code, so each
 * mode has its own process). Each child starts its own redis-server and reads one hot key through
 * `peak-near` (a `get` with `nearCache`) and `map-hot` (a `Promise`-returning `Map`, the yardstick) with
 * `timedLoop` at 256 and 1 in flight, rotating, and reports calls per CPU second (`process.cpuUsage`) and
 * per wall second. The cost is `1 - (traced x Map) / (untraced x Map)` per pair of children.
 *
 * The traced child also times, synchronously, what a traced hit adds (ns per call, CPU time, the best of
 * several runs): `traceAnswered` itself (an answer from memory publishes `asyncEnd` only), one `asyncEnd`
 * on a fresh context (that contract's floor), the four `publish` calls the previous contract needed on a
 * fresh context, two `publish` calls (`start` + `asyncEnd`), a fresh context alone, and an empty step (the
 * timing loop's own cost, to subtract).
 *
 * Environment: `COST_PAIRS` (4), `COST_ROUNDS` (5), `COST_MS` (300 per contender and round),
 * `COST_CONCURRENCY` (`256,1`), `COST_CONTENDER` (`peak-near`; e.g. `peak-near-cf`, a `cacheResult` hit
 * answered from the near cache). Prints a table for `bench/results/hot-path-profile.md`.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { OPERATION_CHANNEL, type OperationContext } from '../src/index.ts';

const MODE = process.env.COST_CHILD;
/** The contender whose traced cost is measured. */
const PEAK = process.env.COST_CONTENDER ?? 'peak-near';

interface ChildResult {
  readonly mode: 'untraced' | 'subscriber';
  /** Per concurrency: median calls per CPU second and per wall second of each contender. */
  readonly rows: Record<string, { peakCpu: number; mapCpu: number; peakWall: number; mapWall: number }>;
  /** Traced child only: ns per call of each synchronous step. */
  readonly micro?: Record<string, number>;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function child(mode: 'untraced' | 'subscriber'): Promise<ChildResult> {
  const { openHotContender } = await import('./near-cache.ts');
  const { startBenchServer } = await import('./server.ts');
  const { attachTracing } = await import('./tracing.ts');
  const { RunAccumulator, timedLoop } = await import('./workloads.ts');
  const rounds = Number(process.env.COST_ROUNDS ?? 5);
  const ms = Number(process.env.COST_MS ?? 300);
  const levels = (process.env.COST_CONCURRENCY ?? '256,1').split(',').map(Number);
  const server = await startBenchServer();
  try {
    if (mode === 'subscriber') await attachTracing('subscriber');
    const ids = ['map-hot', PEAK] as const;
    const gets = new Map<string, () => Promise<unknown>>();
    const closes: (() => Promise<void>)[] = [];
    for (const id of ids) {
      const contender = await openHotContender(id, server.url);
      const get = contender.get as (key: string) => Promise<unknown>;
      gets.set(id, () => get('hot'));
      closes.push(() => contender.close());
    }
    const rows: ChildResult['rows'] = {};
    for (const concurrency of levels) {
      const cpu = new Map<string, number[]>();
      const wall = new Map<string, number[]>();
      for (let round = 0; round < rounds + 1; round++) {
        const order = round % 2 === 0 ? ids : [...ids].reverse();
        for (const id of order) {
          const acc = new RunAccumulator(false);
          const before = process.cpuUsage();
          await timedLoop(gets.get(id) as () => Promise<unknown>, concurrency, ms, acc);
          const used = process.cpuUsage(before);
          if (round === 0) continue; // warm-up
          const cpuMs = (used.user + used.system) / 1000;
          cpu.set(id, [...(cpu.get(id) ?? []), (acc.calls / cpuMs) * 1000]);
          wall.set(id, [...(wall.get(id) ?? []), (acc.calls / acc.elapsedMs) * 1000]);
        }
      }
      rows[concurrency] = {
        peakCpu: median(cpu.get(PEAK) ?? []),
        mapCpu: median(cpu.get('map-hot') ?? []),
        peakWall: median(wall.get(PEAK) ?? []),
        mapWall: median(wall.get('map-hot') ?? []),
      };
    }
    for (const close of closes) await close();
    return mode === 'subscriber' ? { mode, rows, micro: await micro() } : { mode, rows };
  } finally {
    await server.stop();
  }
}

/** ns per call (CPU time) of each synchronous step of a traced hit, with the subscriber attached. */
async function micro(): Promise<Record<string, number>> {
  const { tracingChannel } = await import('node:diagnostics_channel');
  const { answeredSlot, traceAnswered } = await import('../src/diagnostics.ts');
  const slot = answeredSlot();
  const { start, end, asyncStart, asyncEnd } = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);
  const conn = { tenant: 'bench', server: { system: 'redis' as const, cluster: false } };
  let sink: OperationContext | undefined;
  const steps: Record<string, () => void> = {
    'traceAnswered (what a traced near hit runs)': () => traceAnswered('get', conn, 1, 1, 0, slot),
    'asyncEnd only on a fresh context (the floor of answers from memory)': () => {
      asyncEnd.publish({
        operation: 'get',
        tenant: conn.tenant,
        server: conn.server,
        keys: 1,
        hits: 1,
        misses: 0,
        memory: true,
      });
    },
    'four publishes on a fresh context (the previous contract)': () => {
      const ctx = { operation: 'get', tenant: conn.tenant, server: conn.server, keys: 1, hits: 1, misses: 0 };
      start.publish(ctx);
      end.publish(ctx);
      asyncStart.publish(ctx);
      asyncEnd.publish(ctx);
    },
    'two publishes (start, asyncEnd) on a fresh context': () => {
      const ctx = { operation: 'get', tenant: conn.tenant, server: conn.server, keys: 1, hits: 1, misses: 0 };
      start.publish(ctx);
      asyncEnd.publish(ctx);
    },
    'nothing (the loop and the call of the step)': () => {},
    'a fresh context alone': () => {
      sink = { operation: 'get', tenant: conn.tenant, server: conn.server, keys: 1, hits: 1, misses: 0 };
    },
  };
  const result: Record<string, number> = {};
  for (let pass = 0; pass < 2; pass++) {
    for (const [name, step] of Object.entries(steps)) {
      let best = Number.POSITIVE_INFINITY;
      for (let run = 0; run < 7; run++) {
        const n = 1_000_000;
        const before = process.cpuUsage();
        for (let i = 0; i < n; i++) step();
        const used = process.cpuUsage(before);
        best = Math.min(best, ((used.user + used.system) * 1000) / n);
      }
      if (pass === 1) result[name] = best; // the first pass warms up
    }
  }
  if (sink === undefined) throw new Error('unreachable');
  return result;
}

function parent(): void {
  const pairs = Number(process.env.COST_PAIRS ?? 4);
  const self = fileURLToPath(import.meta.url);
  const results: ChildResult[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    const modes =
      pair % 2 === 0 ? (['untraced', 'subscriber'] as const) : (['subscriber', 'untraced'] as const);
    for (const mode of modes) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', self], {
        env: { ...process.env, COST_CHILD: mode },
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      });
      const line = out.trim().split('\n').at(-1) as string;
      const result = JSON.parse(line) as ChildResult;
      results.push(result);
      const cells = Object.entries(result.rows).map(
        ([c, r]) =>
          `${c}: ${(r.peakCpu / r.mapCpu).toFixed(3)}x Map cpu (${(r.peakCpu / 1e6).toFixed(2)} M/cpu-s), ${(r.peakWall / r.mapWall).toFixed(3)}x Map wall`,
      );
      console.log(`pair ${pair + 1} ${mode.padEnd(10)} ${cells.join('  ')}`);
    }
  }
  const range = (xs: number[]) =>
    `${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)} (median ${median(xs).toFixed(3)})`;
  const pct = (xs: number[]) =>
    `${(100 * Math.min(...xs)).toFixed(0)}..${(100 * Math.max(...xs)).toFixed(0)} % (median ${(100 * median(xs)).toFixed(0)} %)`;
  console.log(
    '\n| in flight | untraced x Map (cpu) | subscribed x Map (cpu) | cost per pair (cpu) | cost per pair (wall) |',
  );
  console.log('| ---: | --- | --- | --- | --- |');
  for (const c of Object.keys(results[0]?.rows ?? {}).sort((a, b) => Number(b) - Number(a))) {
    const of = (mode: string, wall: boolean) =>
      results
        .filter((r) => r.mode === mode)
        .map((r) => {
          const row = r.rows[c] as ChildResult['rows'][string];
          return wall ? row.peakWall / row.mapWall : row.peakCpu / row.mapCpu;
        });
    const cost = (wall: boolean) => {
      const u = of('untraced', wall);
      const t = of('subscriber', wall);
      return u.map((x, i) => 1 - (t[i] as number) / x);
    };
    console.log(
      `| ${c} | ${range(of('untraced', false))} | ${range(of('subscriber', false))} | ${pct(cost(false))} | ${pct(cost(true))} |`,
    );
  }
  const micros = results.flatMap((r) => (r.micro ? [r.micro] : []));
  if (micros.length > 0) {
    console.log('\n| step, with the no-op subscriber | ns per call (CPU, range over children) |');
    console.log('| --- | --- |');
    for (const name of Object.keys(micros[0] as object)) {
      const xs = micros.map((m) => m[name] as number);
      console.log(`| ${name} | ${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)} |`);
    }
  }
}

if (MODE === 'untraced' || MODE === 'subscriber') {
  console.log(JSON.stringify(await child(MODE)));
} else {
  parent();
}
