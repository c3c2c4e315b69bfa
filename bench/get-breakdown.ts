/**
 * Where a network `get` loses against the raw driver (issue 20's `get-256` row): `node --import tsx
 * bench/get-breakdown.ts`. On its own redis-server, 256 calls in flight, interleaved rounds, each row
 * against the raw driver reading its own key and `JSON.stringify` value:
 *
 * - the raw driver reading peak-cache's stored key and value (the tenant prefix, Python's wire format):
 *   what the wire format costs the server and the socket;
 * - the same with `peakCodec.decode` instead of `JSON.parse` (Python's dialect: long integers, NaN,
 *   poisoning checks): what the decoding costs;
 * - the same with one more promise step: what the engine's extra `.then` costs;
 * - `CacheClient.get`, whose engine coalesces the `get`s of a tick into one `MGET` (src/engines/get-batch.ts):
 *   the raw rows send one `GET` per call.
 *
 * Environment: `BREAKDOWN_ROUNDS` (6), `BREAKDOWN_MS` (500 per row and round).
 *
 * @module
 */
import { createClient } from '@redis/client';
import { peakCodec } from '../src/codec.ts';
import { CacheClient } from '../src/index.ts';
import { startRedis } from '../test/helpers/redis-server.ts';
import { VALUE } from './contenders.ts';
import { RunAccumulator, timedLoop } from './workloads.ts';

const ROUNDS = Number(process.env.BREAKDOWN_ROUNDS ?? 6);
const MS = Number(process.env.BREAKDOWN_MS ?? 500);
const KEYS = 10_000;

const server = await startRedis();
const raw = createClient({ url: server.url, commandOptions: { timeout: 0 } });
await raw.connect();
const peak = new CacheClient({ connectionConfig: { url: server.url, tenant: 'bench-peak' }, env: {} });
for (let i = 0; i < KEYS; i++) {
  await raw.sendCommand(['SET', `k:${i}`, JSON.stringify(VALUE)]);
  await peak.set(`k:${i}`, VALUE);
}
const get = (key: string) => raw.sendCommand(['GET', key]) as Promise<string>;
const stored = (i: number) => `bench-peak:k:${i % KEYS}`;
const rows: Record<string, (i: number) => Promise<unknown>> = {
  'raw, own key and value, JSON.parse (baseline)': (i) => get(`k:${i % KEYS}`).then((s) => JSON.parse(s)),
  "raw, peak-cache's key and value, JSON.parse": (i) => get(stored(i)).then((s) => JSON.parse(s)),
  "raw, peak-cache's key and value, peakCodec.decode": (i) => get(stored(i)).then((s) => peakCodec.decode(s)),
  '... and one more promise step': (i) =>
    get(stored(i))
      .then((s) => s)
      .then((s) => peakCodec.decode(s)),
  'CacheClient.get': (i) => peak.get(`k:${i % KEYS}`),
};
const rates: Record<string, number[]> = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, call] of Object.entries(rows)) {
    const acc = new RunAccumulator(false);
    await timedLoop(call, 256, MS, acc);
    const list = rates[name] ?? [];
    list.push((acc.calls / acc.elapsedMs) * 1000);
    rates[name] = list;
  }
}
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] as number;
const base = median(rates[Object.keys(rows)[0] as string] as number[]);
console.log('| row | calls/s (median) | vs baseline |\n| --- | ---: | ---: |');
for (const [name, xs] of Object.entries(rates)) {
  console.log(
    `| ${name} | ${Math.round(median(xs)).toLocaleString('en')} | ${(median(xs) / base).toFixed(3)}x |`,
  );
}
await peak.close();
await raw.quit();
await server.stop();
