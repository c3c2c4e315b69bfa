/**
 * `node --import tsx bench/codec.ts`: what Python's JSON dialect costs the peak codec, as ratios to
 * `JSON.parse` / `JSON.stringify` measured in the same run (interleaved rounds, medians of calls per
 * CPU second).
 *
 * Rows: the benchmark's ~200-byte value (the common path: plain JSON, safe numbers) decoded and
 * encoded by the peak codec, and by `safeJsonParse` alone (the decode path before the dialect); the same value with a big integer and with a `NaN` (the lossless path,
 * `lossless-json`); and `lossless-json` itself, as a parser, against `JSON.parse`. Also a 1000-item
 * array of such values (~200 KB). Environment: `BENCH_ROUNDS` (7), `BENCH_DURATION_MS` (300 per case
 * and round).
 *
 * @module
 */
import { parse as losslessParse } from 'lossless-json';
import { peakCodec, safeJsonParse } from '../src/codec.js';
import { VALUE } from './contenders.ts';
import { formatRate, formatRatio, median } from './stats.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 300);

interface Case {
  readonly name: string;
  readonly baseline: string;
  readonly run: () => unknown;
}

const small = peakCodec.encode(VALUE);
const withBigInt = peakCodec.encode({ ...VALUE, id: 2n ** 60n + 1n });
const withNaN = peakCodec.encode({ ...VALUE, score: Number.NaN });
const large = peakCodec.encode(Array.from({ length: 1000 }, (_, i) => ({ ...VALUE, id: i })));
const largeWithBigInt = peakCodec.encode(
  Array.from({ length: 1000 }, (_, i) => ({ ...VALUE, id: 2n ** 60n + BigInt(i) })),
);
const toNumber = (token: string) => Number(token);

const CASES: Case[] = [
  { name: 'JSON.parse, 200 B', baseline: '', run: () => JSON.parse(small) },
  {
    name: 'peak decode, 200 B (fast path)',
    baseline: 'JSON.parse, 200 B',
    run: () => peakCodec.decode(small),
  },
  // The decode path before Python's dialect: the poison check and JSON.parse.
  { name: 'safeJsonParse, 200 B', baseline: 'JSON.parse, 200 B', run: () => safeJsonParse(small) },
  {
    name: 'peak decode, 200 B + bigint (lossless)',
    baseline: 'JSON.parse, 200 B',
    run: () => peakCodec.decode(withBigInt),
  },
  {
    name: 'peak decode, 200 B + NaN (lossless)',
    baseline: 'JSON.parse, 200 B',
    run: () => peakCodec.decode(withNaN),
  },
  {
    name: 'lossless-json parse, 200 B',
    baseline: 'JSON.parse, 200 B',
    run: () => losslessParse(small, null, toNumber),
  },
  { name: 'JSON.stringify, 200 B', baseline: '', run: () => JSON.stringify(VALUE) },
  { name: 'peak encode, 200 B', baseline: 'JSON.stringify, 200 B', run: () => peakCodec.encode(VALUE) },
  { name: 'JSON.parse, 200 KB', baseline: '', run: () => JSON.parse(large) },
  {
    name: 'peak decode, 200 KB (fast path)',
    baseline: 'JSON.parse, 200 KB',
    run: () => peakCodec.decode(large),
  },
  {
    name: 'peak decode, 200 KB + bigints (lossless)',
    baseline: 'JSON.parse, 200 KB',
    run: () => peakCodec.decode(largeWithBigInt),
  },
  {
    name: 'lossless-json parse, 200 KB',
    baseline: 'JSON.parse, 200 KB',
    run: () => losslessParse(large, null, toNumber),
  },
];

/**
 * Calls per CPU second of `run` over about `ms` milliseconds of wall time. CPU time (this process's
 * user + system) rather than wall time: on a shared machine the process is often descheduled, which
 * wall time would count against whichever case was running.
 */
function rate(run: () => unknown, ms: number): number {
  const end = performance.now() + ms;
  const start = process.cpuUsage();
  let calls = 0;
  let sink: unknown;
  while (performance.now() < end) {
    for (let i = 0; i < 16; i++) sink = run();
    calls += 16;
  }
  const used = process.cpuUsage(start);
  if (sink === Symbol.for('never')) console.log(sink);
  return calls / ((used.user + used.system) / 1e6);
}

const rates = new Map<string, number[]>(CASES.map((c) => [c.name, []]));
for (const c of CASES) rate(c.run, 100); // warm-up
for (let round = 0; round < ROUNDS; round++) {
  // Rotate the order every round so no case always runs first.
  for (let i = 0; i < CASES.length; i++) {
    const c = CASES[(i + round) % CASES.length] as Case;
    rates.get(c.name)?.push(rate(c.run, DURATION_MS));
  }
}

console.log(`| case | calls per CPU second (median of ${ROUNDS}) | vs baseline |`);
console.log('| --- | ---: | ---: |');
for (const c of CASES) {
  const own = median(rates.get(c.name) ?? []);
  const base = c.baseline ? median(rates.get(c.baseline) ?? []) : own;
  console.log(
    `| ${c.name} | ${formatRate(own)} | ${c.baseline ? `${formatRatio(own / base)} of ${c.baseline}` : 'baseline'} |`,
  );
}
