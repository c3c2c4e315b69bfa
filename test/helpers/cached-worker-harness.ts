/**
 * The parent side of the randomized concurrency test of cached functions: a random schedule (fast-check)
 * of `getOrSet` calls with scripted factories (settling, failing, hanging), `invalidate`, `delete` and
 * SIGKILLs, played against several worker processes (cached-worker.ts) that each hold their own
 * `CacheClient` on one real `redis-server`. The result is the history the workers wrote (see
 * cached-worker-protocol.ts) plus what only the parent sees (exits it did not cause), for
 * cached-worker-check.ts to judge.
 *
 * Used by test/cached-concurrency.test.ts (fixed seed, short) and soak/cached-concurrency.ts (longer).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@redis/client';
import fc from 'fast-check';
import { CacheClient, CacheValidationError } from '../../src/index.js';
import { checkHistory, type HistoryStats, type Violation } from './cached-worker-check.js';
import {
  type EventBody,
  type EventRecord,
  type FactorySpec,
  LOG_SCRIPT,
  parseHistory,
  type WorkerCommand,
  type WorkerConfig,
  type WorkerMessage,
} from './cached-worker-protocol.js';

const WORKER = join(import.meta.dirname, 'cached-worker.ts');

/** One step of a schedule: wait `gapMs`, then send `command` (a kill is done by the parent). */
export interface Step {
  readonly gapMs: number;
  readonly command:
    | {
        readonly op: 'getOrSet';
        readonly worker: number;
        readonly key: number;
        readonly factory: FactorySpec;
      }
    | { readonly op: 'invalidate' | 'delete'; readonly worker: number; readonly key: number }
    | { readonly op: 'kill'; readonly worker: number }
    /** Wait (at most 20 s) until the history holds `count` records of kind `event` (hand-written schedules). */
    | { readonly op: 'waitFor'; readonly event: EventBody['e']; readonly count: number };
}

/** Shape of the random schedules. */
export interface ScheduleShape {
  readonly workers: number;
  readonly keys: number;
  /** Steps per schedule. */
  readonly steps: number;
  /** Largest gap between steps, in ms (gaps are uniform from 0). */
  readonly maxGapMs: number;
  /** Longest factory that settles, in ms. */
  readonly maxFactoryMs: number;
  /** Relative weights of the step kinds, and of the factory kinds among `getOrSet`s. */
  readonly weights: {
    readonly getOrSet: number;
    readonly invalidate: number;
    readonly delete: number;
    readonly kill: number;
    readonly fail: number;
    readonly hang: number;
  };
}

/** Random schedules of a shape. */
export function scheduleArbitrary(shape: ScheduleShape): fc.Arbitrary<Step[]> {
  const worker = fc.nat(shape.workers - 1);
  const key = fc.nat(shape.keys - 1);
  const ms = fc.nat(shape.maxFactoryMs);
  const w = shape.weights;
  const factory: fc.Arbitrary<FactorySpec> = fc.oneof(
    { weight: 10, arbitrary: ms.map((m): FactorySpec => ({ kind: 'ok', ms: m })) },
    { weight: w.fail, arbitrary: ms.map((m): FactorySpec => ({ kind: 'fail', ms: m })) },
    { weight: w.hang, arbitrary: fc.constant<FactorySpec>({ kind: 'hang' }) },
  );
  const command: fc.Arbitrary<Step['command']> = fc.oneof(
    {
      weight: w.getOrSet,
      arbitrary: fc.record({ op: fc.constant('getOrSet' as const), worker, key, factory }),
    },
    { weight: w.invalidate, arbitrary: fc.record({ op: fc.constant('invalidate' as const), worker, key }) },
    { weight: w.delete, arbitrary: fc.record({ op: fc.constant('delete' as const), worker, key }) },
    { weight: w.kill, arbitrary: fc.record({ op: fc.constant('kill' as const), worker }) },
  );
  return fc.array(fc.record({ gapMs: fc.nat(shape.maxGapMs), command }), {
    minLength: shape.steps,
    maxLength: shape.steps,
  });
}

/** Options of one run. */
export interface RunOptions {
  /** `redis://127.0.0.1:<port>` of the server (every worker and the parent use it). */
  readonly url: string;
  /** A fresh name per run: the tenant of the clients and the prefix of the history keys. */
  readonly run: string;
  readonly workers: number;
  readonly lockTimeoutMs: number;
  readonly lockTtlMs: number;
  /** `hardTimeoutMs` of every call, or 0 for none (see {@link probeHardTimeout}). */
  readonly hardTimeoutMs: number;
  readonly maxFactoryMs: number;
  readonly slackMs: number;
  /** Judge the lock as a lease (see {@link CheckOptions.lease}). */
  readonly lease: boolean;
  /** More `getOrSet` options of every call (see {@link WorkerConfig.extraOptions}). */
  readonly extraOptions?: Readonly<Record<string, number>>;
}

/** A worker exit the parent did not cause (a host crash), with the end of its stderr. */
export interface Crash {
  readonly worker: number;
  readonly gen: number;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** What a run produced. */
export interface RunResult {
  readonly history: EventRecord[];
  readonly crashes: Crash[];
  /** Commands not sent because their worker was being respawned after a kill. */
  readonly dropped: number;
  readonly kills: number;
  readonly elapsedMs: number;
}

/**
 * Whether the library accepts `getOrSet`'s `hardTimeoutMs` (issue 21); `false` while an unknown option
 * is a validation error.
 */
export async function probeHardTimeout(url: string, tenant: string): Promise<boolean> {
  const cache = new CacheClient({ connectionConfig: { url, tenant }, deploymentId: null });
  try {
    await cache.getOrSet('probe', () => 1, { ttl: 1, hardTimeoutMs: 1000 } as object);
    return true;
  } catch (err) {
    if (err instanceof CacheValidationError && err.message.includes('hardTimeoutMs')) return false;
    throw err;
  } finally {
    await cache.close();
  }
}

/** Longest wait for a worker to connect, in ms (tsx compiles the library first; the machine is shared). */
const SPAWN_TIMEOUT_MS = 30_000;

/** One worker slot: its current process and generation. */
class Slot {
  proc: ChildProcess | undefined;
  ready = false;
  gen = -1;
  /** Processes this slot SIGKILLed on purpose, or let exit after `finish`. */
  readonly expected = new WeakSet<ChildProcess>();

  constructor(
    readonly index: number,
    private readonly options: RunOptions,
    private readonly crashes: Crash[],
  ) {}

  /** Start the next generation; resolves once it is connected. */
  async spawn(): Promise<void> {
    this.gen++;
    const config: WorkerConfig = {
      url: this.options.url,
      tenant: this.options.run,
      clockKey: `${CLOCK_PREFIX}${this.options.run}:clock`,
      logKey: `${CLOCK_PREFIX}${this.options.run}:log`,
      worker: this.index,
      gen: this.gen,
      lockTimeoutMs: this.options.lockTimeoutMs,
      lockTtlMs: this.options.lockTtlMs,
      hardTimeoutMs: this.options.hardTimeoutMs,
      extraOptions: this.options.extraOptions ?? {},
      maxFactoryMs: this.options.maxFactoryMs,
      slackMs: this.options.slackMs,
    };
    const proc = fork(WORKER, [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, CONC_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.proc = proc;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const gen = this.gen;
    proc.once('exit', (code, signal) => {
      if (this.proc === proc) this.ready = false;
      if (!this.expected.has(proc)) this.crashes.push({ worker: this.index, gen, code, signal, stderr });
    });
    const [message] = (await Promise.race([
      once(proc, 'message'),
      once(proc, 'exit').then(() => [{ type: 'exited' }]),
      sleep(SPAWN_TIMEOUT_MS).then(() => [{ type: 'timed out' }]),
    ])) as [WorkerMessage | { type: 'exited' | 'timed out' }];
    if (message.type !== 'ready')
      throw new Error(`worker ${this.index} did not start (${message.type}):\n${stderr}`);
    this.ready = true;
  }

  send(command: WorkerCommand): boolean {
    if (!this.ready || this.proc === undefined) return false;
    this.proc.send(command);
    return true;
  }

  /** SIGKILL the current process and wait for its exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!this.ready || proc === undefined) return;
    this.ready = false;
    this.expected.add(proc);
    const exited = once(proc, 'exit');
    proc.kill('SIGKILL');
    await exited;
  }

  /** `finish`, wait for `finished`, then disconnect and wait for a clean exit. */
  async finish(timeoutMs: number): Promise<void> {
    const proc = this.proc;
    if (!this.ready || proc === undefined) return;
    const finished = new Promise<void>((resolve) => {
      proc.on('message', (m: WorkerMessage) => {
        if (m.type === 'finished') resolve();
      });
    });
    proc.send({ op: 'finish' } satisfies WorkerCommand);
    const timedOut = await Promise.race([finished.then(() => false), sleep(timeoutMs).then(() => true)]);
    if (timedOut) throw new Error(`worker ${this.index} did not finish within ${timeoutMs} ms`);
    this.expected.add(proc);
    const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    proc.disconnect();
    const [code, signal] = await exited;
    if (code !== 0) {
      this.crashes.push({ worker: this.index, gen: this.gen, code, signal, stderr: 'exit after finish' });
    }
  }
}

/** Prefix of the history keys (outside every tenant's namespace: tenants are the run names). */
const CLOCK_PREFIX = '__conc__:';

/** Play `schedule` against fresh workers and return the history. */
export async function runSchedule(schedule: readonly Step[], options: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const crashes: Crash[] = [];
  const slots = Array.from({ length: options.workers }, (_, i) => new Slot(i, options, crashes));
  const history = createClient({ url: options.url });
  history.on('error', () => {}); // a failure surfaces as the rejection of the command that met it
  await history.connect();
  const clockKey = `${CLOCK_PREFIX}${options.run}:clock`;
  const logKey = `${CLOCK_PREFIX}${options.run}:log`;
  const log = (body: EventBody) =>
    history.sendCommand(['EVAL', LOG_SCRIPT, '2', clockKey, logKey, JSON.stringify(body)]);
  const readHistory = async () =>
    parseHistory((await history.sendCommand(['LRANGE', logKey, '0', '-1'])) as string[]);
  const waitFor = async (event: EventBody['e'], count: number) => {
    for (let waited = 0; waited < 20_000; waited += 20) {
      if ((await readHistory()).filter((r) => r.e === event).length >= count) return;
      await sleep(20);
    }
    throw new Error(`no ${count} ${event} record(s) within 20 s`);
  };
  let dropped = 0;
  let kills = 0;
  const respawns: Promise<void>[] = [];
  try {
    await Promise.all(slots.map((s) => s.spawn()));
    let seq = 0;
    for (const step of schedule) {
      if (step.gapMs > 0) await sleep(step.gapMs);
      const { command } = step;
      if (command.op === 'waitFor') {
        await waitFor(command.event, command.count);
        continue;
      }
      const slot = slots[command.worker] as Slot;
      if (command.op === 'kill') {
        if (!slot.ready) continue;
        kills++;
        const gen = slot.gen;
        await slot.kill();
        await log({ e: 'kill', w: slot.index, gen });
        const respawn = slot.spawn();
        respawn.catch(() => {}); // owned: awaited with the others below
        respawns.push(respawn);
        continue;
      }
      const c = `${seq++}@${slot.index}.${slot.gen}`;
      const sent =
        command.op === 'getOrSet'
          ? slot.send({ op: 'getOrSet', c, key: command.key, factory: command.factory })
          : slot.send({ op: command.op, c, key: command.key });
      if (!sent) dropped++;
    }
    await Promise.all(respawns);
    const bound = (options.hardTimeoutMs || options.lockTimeoutMs + options.maxFactoryMs) + options.slackMs;
    await Promise.all(slots.map((s) => s.finish(bound + 10_000)));
    return { history: await readHistory(), crashes, dropped, kills, elapsedMs: performance.now() - started };
  } finally {
    for (const s of slots) {
      if (s.proc !== undefined && s.proc.exitCode === null && s.proc.signalCode === null) {
        s.expected.add(s.proc);
        s.proc.kill('SIGKILL');
      }
    }
    await history.close();
  }
}

/**
 * Timings of the CI run and the soak's default (milliseconds). The lock is a lease: `lockTtlMs` is
 * shorter than the slowest factories, which must still run once across processes.
 */
export const DEFAULT_TIMING = {
  lockTimeoutMs: 1500,
  lockTtlMs: 400,
  /** Used when the library has `hardTimeoutMs` (see {@link probeHardTimeout}). */
  hardTimeoutMs: 2500,
  maxFactoryMs: 1000,
  /** Generous: the machine is shared and noisy; bounds are not timing assertions. */
  slackMs: 2000,
  lease: true,
} as const;

/**
 * Timings for a library whose lock is not a lease (`soak:cached -- --no-lease`): the lock outlives
 * every factory that settles.
 */
export const NO_LEASE_TIMING = {
  ...DEFAULT_TIMING,
  lockTtlMs: 1500,
  maxFactoryMs: 300,
  lease: false,
} as const;

/** The CI run's schedule shape: 4 processes on 3 keys, about 4 s of steps. */
export const DEFAULT_SHAPE: ScheduleShape = {
  workers: 4,
  keys: 3,
  steps: 160,
  maxGapMs: 50,
  maxFactoryMs: DEFAULT_TIMING.maxFactoryMs,
  weights: { getOrSet: 40, invalidate: 8, delete: 4, kill: 1, fail: 3, hang: 1 },
};

/** Play `schedule` and judge its history. */
export async function runAndCheck(
  schedule: readonly Step[],
  options: RunOptions,
): Promise<{ result: RunResult; violations: Violation[]; stats: HistoryStats }> {
  const result = await runSchedule(schedule, options);
  const { violations, stats } = checkHistory(result.history, result.crashes, options);
  return { result, violations, stats };
}
