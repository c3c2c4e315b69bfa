/**
 * `npm run soak:cached`: the randomized concurrency test of cached functions (issue 21) for longer than
 * CI runs it. Starts its own `redis-server` on a free loopback port, then plays random schedules
 * (fast-check, seeded) of `getOrSet` / `invalidate` / `delete` / failing and hanging factories / worker
 * SIGKILLs against several worker processes until the time is up, and checks every history
 * (test/helpers/cached-worker-check.ts lists the invariants).
 *
 * Options (flag or environment variable): `--seconds` (`SOAK_SECONDS`, default 60), `--seed`
 * (`SOAK_SEED`, default random, printed), `--workers` (`SOAK_WORKERS`, default 4), `--keys`
 * (`SOAK_KEYS`, default 3), `--steps` (steps per schedule, `SOAK_STEPS`, default 160), `--strict`
 * (`SOAK_STRICT=1`: the invariants still open (cached-worker-known.ts) fail the run too), `--no-lease`
 * (`SOAK_NO_LEASE=1`: judge a fill lock that is not extended while its factory runs, with factories
 * shorter than the lock, e.g. to run this soak on code from before issue 21), `--ttl` / `--grace` (seconds)
 * and `--eager` (a fraction) for every call (`SOAK_TTL`, `SOAK_GRACE`, `SOAK_EAGER`; default: a 600 s
 * TTL, no grace, no eager refresh), to mix background refreshes in.
 *
 * Exit code: 0 when no enforced invariant was violated, 1 otherwise (the failing schedule's history is
 * written to `<tmpdir>/peak-cache-soak-cached-<seed>.json`), 2 for bad arguments. The last line of stdout
 * is a JSON summary.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import {
  byKind,
  emptyStats,
  type HistoryStats,
  type Violation,
} from '../test/helpers/cached-worker-check.js';
import {
  DEFAULT_SHAPE,
  DEFAULT_TIMING,
  NO_LEASE_TIMING,
  probeHardTimeout,
  runAndCheck,
  type Step,
  scheduleArbitrary,
} from '../test/helpers/cached-worker-harness.js';
import { KNOWN_OPEN } from '../test/helpers/cached-worker-known.js';
import { startRedis } from '../test/helpers/redis-server.js';

function numberOption(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

async function main(): Promise<number> {
  const env = process.env;
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        seconds: { type: 'string' },
        seed: { type: 'string' },
        workers: { type: 'string' },
        keys: { type: 'string' },
        steps: { type: 'string' },
        strict: { type: 'boolean' },
        'no-lease': { type: 'boolean' },
        ttl: { type: 'string' },
        grace: { type: 'string' },
        eager: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(String(err));
    return 2;
  }
  let seconds: number;
  let seed: number;
  let shape: typeof DEFAULT_SHAPE;
  try {
    seconds = numberOption((values.seconds as string) ?? env.SOAK_SECONDS, 60, 'seconds');
    seed = numberOption((values.seed as string) ?? env.SOAK_SEED, randomBytes(4).readUInt32BE() || 1, 'seed');
    shape = {
      ...DEFAULT_SHAPE,
      workers: numberOption((values.workers as string) ?? env.SOAK_WORKERS, DEFAULT_SHAPE.workers, 'workers'),
      keys: numberOption((values.keys as string) ?? env.SOAK_KEYS, DEFAULT_SHAPE.keys, 'keys'),
      steps: numberOption((values.steps as string) ?? env.SOAK_STEPS, DEFAULT_SHAPE.steps, 'steps'),
    };
  } catch (err) {
    console.error(String(err));
    return 2;
  }
  // Background refreshes: a short TTL, grace, eager refresh (off by default).
  const extraOptions: Record<string, number> = {};
  for (const [flag, name] of [
    ['ttl', 'ttl'],
    ['grace', 'grace'],
    ['eager', 'eagerRefresh'],
  ] as const) {
    const raw = (values[flag] as string | undefined) ?? env[`SOAK_${flag.toUpperCase()}`];
    if (raw !== undefined && raw !== '') extraOptions[name] = Number(raw);
  }
  const strict = values.strict === true || env.SOAK_STRICT === '1';
  const base = values['no-lease'] === true || env.SOAK_NO_LEASE === '1' ? NO_LEASE_TIMING : DEFAULT_TIMING;
  shape = { ...shape, maxFactoryMs: base.maxFactoryMs };

  const server = await startRedis();
  const totals = emptyStats();
  const seen: Violation[] = [];
  let runs = 0;
  try {
    const hard = await probeHardTimeout(server.url, 'probe');
    const timing = { ...base, hardTimeoutMs: hard ? base.hardTimeoutMs : 0 };
    console.log(
      `cached concurrency soak: ${seconds} s, seed ${seed}, ${shape.workers} workers, ${shape.keys} keys, ` +
        `${shape.steps} steps a schedule, hardTimeoutMs ${timing.hardTimeoutMs || 'unsupported'}, ` +
        `lockTtlMs ${timing.lockTtlMs} (lease: ${timing.lease}), factories up to ${timing.maxFactoryMs} ms, ` +
        `options ${JSON.stringify(extraOptions)}, strict ${strict}`,
    );
    const until = performance.now() + seconds * 1000;
    const schedules = scheduleArbitrary(shape);
    let failed = false;
    // One schedule per seed (seed, seed + 1, ...): a failing schedule replays with its own seed.
    while (!failed && performance.now() < until) {
      const runSeed = seed + runs;
      const [schedule] = fc.sample(schedules, { seed: runSeed, numRuns: 1 });
      const run = `soak${runs++}`;
      const { result, violations, stats } = await runAndCheck(schedule as Step[], {
        url: server.url,
        run,
        workers: shape.workers,
        ...timing,
        extraOptions,
      });
      for (const key of Object.keys(totals) as (keyof HistoryStats)[]) {
        if (key === 'errors') {
          for (const [name, n] of Object.entries(stats.errors))
            totals.errors[name] = (totals.errors[name] ?? 0) + n;
        } else totals[key] += stats[key];
      }
      seen.push(...violations);
      const enforced = violations.filter((v) => strict || !KNOWN_OPEN.has(v.kind));
      failed = enforced.length > 0;
      if (failed) {
        const file = join(tmpdir(), `peak-cache-soak-cached-${runSeed}.json`);
        writeFileSync(
          file,
          JSON.stringify({ seed: runSeed, shape, timing, extraOptions, ...result }, null, 1),
        );
        console.log(`history of the failing schedule: ${file}`);
      }
      console.log(
        `${run} (seed ${runSeed}): ${Math.round(result.elapsedMs)} ms, ${stats.calls} calls, ` +
          `${stats.factoryRuns} factory runs, ${result.kills} kills, ${violations.length} violations ` +
          `(${enforced.length} enforced)`,
      );
    }
    return report(seen, totals, runs, seed, strict);
  } finally {
    await server.stop();
  }
}

function report(
  seen: Violation[],
  totals: HistoryStats,
  runs: number,
  seed: number,
  strict: boolean,
): number {
  const groups = byKind(seen);
  for (const [kind, details] of Object.entries(groups)) {
    const known = KNOWN_OPEN.get(kind as Violation['kind']);
    console.log(`\n${kind}: ${details.length}${known === undefined ? '' : ` (known, ${known})`}`);
    for (const d of details.slice(0, 5)) console.log(`  ${d}`);
  }
  const enforced = seen.filter((v) => strict || !KNOWN_OPEN.has(v.kind)).length;
  console.log(`\n${enforced === 0 ? 'PASS' : 'FAIL'}: ${runs} schedules`);
  const counts = Object.fromEntries(Object.entries(groups).map(([k, d]) => [k, d.length]));
  console.log(JSON.stringify({ pass: enforced === 0, seed, runs, strict, ...totals, violations: counts }));
  return enforced === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
