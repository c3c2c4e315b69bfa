/**
 * The soak workload: concurrent callers doing a mixed workload on a few tenants' clients, each call
 * checked for hangs and each result checked against a model of what the caller wrote, while the server is
 * killed and restarted (and frozen) underneath.
 *
 * ## The model, and why its checks are exact
 *
 * Every caller owns its keys (`u<slot>:k<j>` in its tenant; callers of different tenants use the same key
 * names, so a tenant leak reads another caller's value) and does one call at a time. Values carry the
 * caller, the key and a per-key sequence number (even: a string, odd: an object), with a padding derived
 * from the sequence number, so a value read back is either exactly one this caller wrote to this key or
 * wrong.
 *
 * The server keeps nothing across a restart (no RDB, no AOF). The **epoch** is bumped in the same
 * synchronous step that sends each SIGKILL (no call can start in between); a call records the epoch when it starts and when it settles. A call with equal epochs
 * (*stable*) ran entirely on one server instance; every other call may have run on either side. For a
 * stable read in epoch `E`, the possible states of a key are computed from the caller's own log:
 * start from "missing" (each epoch begins with an empty server), apply every acknowledged stable mutation
 * of epoch `E` (it certainly happened, in order: the caller is sequential), and for every failed or
 * non-stable mutation that may have run in `E` add its outcome as a possibility (a timed-out write may
 * or may not have been executed). A read outside that set is a wrong value: stale (older than the last
 * acknowledged write), lost, or resurrected after a restart. Counts (`delete`, `exists`,
 * `flushByPattern`), `expire` results and TTLs are checked the same way. Reads that are not stable are
 * only checked for ownership. TTLs are far longer than the run, so nothing expires on its own.
 *
 * ## On a Redis Cluster (`--cluster`)
 *
 * A killed primary's data survives on the replica that replaces it, so an epoch does not begin empty: a
 * key's state carries over. But replication is asynchronous, so a write the primary acknowledged just
 * before it died may be lost. Before each SIGKILL the soak therefore runs a **replication barrier** on the
 * victim (a write of its own, then `WAIT 1`): every write acknowledged before the barrier started has
 * reached a replica and must survive. Writes acknowledged between the barrier and the kill count as "may
 * or may not have survived", like failed writes. Nothing else is relaxed. This relies on the epoch
 * changing together with the SIGKILL: every call the victim acknowledged then ends in the epoch of the
 * barrier. (The epoch once changed right after the barrier, tens to hundreds of milliseconds before the
 * kill under load: a write that started in that gap counted as certain though the victim could die before
 * replicating it, and the promoted replica then served the caller's previous value.)
 *
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { createClient } from '@redis/client';
import { keySlot } from '../src/engines/slot.js';
import { CacheClient, CacheError, CacheValidationError } from '../src/index.js';
import type { RedisCluster } from '../test/helpers/redis-cluster.js';
import type { RedisServer } from '../test/helpers/redis-server.js';
import { type Disruption, type SoakStats, startMemorySampler } from './report.js';

/** What the workload does. */
export interface WorkloadConfig {
  /** Duration of the workload, in seconds. */
  readonly seconds: number;
  /** Concurrent callers (async loops doing one call at a time). */
  readonly callers: number;
  /** Tenants, one client each; callers are spread over them. */
  readonly tenants: number;
  /** Keys owned by each caller. */
  readonly keysPerCaller: number;
  /** `connectionConfig.timeoutMs` of every client. */
  readonly timeoutMs: number;
  /** `connectionConfig.connectTimeoutMs` of every client. */
  readonly connectTimeoutMs: number;
  /** SIGKILL + restart the server every this many seconds; 0: never. */
  readonly restartEverySec: number;
  /** How long the server stays down at each restart, in milliseconds. */
  readonly downMs: number;
  /** SIGSTOP the server every this many seconds (first at half the restart period); 0: never. */
  readonly freezeEverySec: number;
  /** How long each freeze lasts, in milliseconds. */
  readonly freezeMs: number;
  /** Try a wrong password every this many seconds (expects `CacheAuthError`); 0: never. */
  readonly authProbeEverySec: number;
  /** Seed of the callers' random choices. */
  readonly seed: number;
  /** Print a progress line every this many seconds; 0: never. */
  readonly progressEverySec: number;
  /** Cluster mode: CLIENT KILL every client connection of one primary every this many seconds; 0: never. */
  readonly connKillEverySec: number;
}

/** What the workload runs against and reports to. */
export interface WorkloadContext {
  /**
   * The server (started with `password`); restarted and frozen by the workload. With `cluster`, only its
   * `url` and `port` are used: those of a seed node.
   */
  readonly server: RedisServer | { readonly url: string; readonly port: number };
  /** A Redis Cluster (every node with `password`): its primaries are killed, frozen, their clients killed. */
  readonly cluster?: RedisCluster;
  /** The server's password: it must appear in no error message. */
  readonly password: string;
  readonly config: WorkloadConfig;
  readonly stats: SoakStats;
  /** Aborting it ends the workload early (callers stop, clients close). */
  readonly signal: AbortSignal;
  /** Where progress lines go. */
  readonly log: (line: string) => void;
  /** Told whether the server process is running, so the entry point can kill it on a sudden exit. */
  readonly onServerRunning?: (running: boolean) => void;
}

/** Longest a call may take before it counts as hung: reply timeout + connect timeout + 1 s. */
export function hangLimitMs(config: Pick<WorkloadConfig, 'timeoutMs' | 'connectTimeoutMs'>): number {
  return config.timeoutMs + config.connectTimeoutMs + 1000;
}

/** Primaries of the soak's cluster: a cluster flush (SCAN on each, in turn) may take this many hang limits. */
const CLUSTER_PRIMARIES = 3;
/** How long after a hang the soak waits to see whether the call settles at all (for the report). */
const ABANDON_AFTER_MS = 10_000;
/** How long a client may take to complete a call after the server is back before it counts as stuck. */
const RECOVERY_LIMIT_MS = 15_000;
/** Calls starting this long after every client recovered are "calm": an error then is suspicious. */
const CALM_MARGIN_MS = 1000;
/** No disruption is scheduled closer than this to another or to the end of the run. */
const EVENT_GAP_MS = 3000;

// --- shared state ------------------------------------------------------------------------------------

interface Tenant {
  readonly name: string;
  readonly client: CacheClient;
  /** While measuring recovery: `performance.now()` the server came back, and the first success after it. */
  mark: number | undefined;
  firstOk: number | undefined;
}

class World {
  /** Bumped just before each SIGKILL: calls with the same epoch at start and end ran on one server. */
  epoch = 0;
  /** Cluster mode: a key's data survives an epoch change (a failover), see the module doc. */
  persistent = false;
  /** Cluster mode: epoch -> start of the replication barrier run before the kill that ended it. */
  readonly lossFrom = new Map<number, number>();
  /** Cluster mode: the start of a replication barrier whose kill has not happened yet. */
  barrierAt: number | undefined;
  /** Cluster mode, while measuring recovery: the killed primary's slots (other calls do not count). */
  recoverySlots: ReadonlySet<number> | undefined;
  /** The disruption in progress (from its start until every client recovered). */
  disruption: Disruption | undefined;
  /** `performance.now()` after which a call is "calm" (no disruption since long enough). */
  calmAfter = 0;
  stopping = false;
  readonly #stop = new AbortController();
  /** Aborted when the run stops: wakes sleeping loops (disruptions, probe). */
  readonly signal = this.#stop.signal;

  /** Stop the run: callers finish their current call, the other loops wake up and return. */
  halt(): void {
    this.stopping = true;
    this.#stop.abort();
  }
}

// --- values ------------------------------------------------------------------------------------------

const PAD_UNIT = 'aé€😀z'; // whole code points only: ASCII, Latin-1, BMP and an astral character

function padFor(caller: number, seq: number): string {
  return PAD_UNIT.repeat(seq % 101 === 0 ? 2000 : (seq * 7 + caller) % 40);
}

function tokenOf(caller: number, key: string, seq: number): string {
  return `c${caller}|${key}|${seq}`;
}

/** The value written as the `seq`-th write of `key` by `caller`: a string when even, an object when odd. */
function valueFor(caller: number, key: string, seq: number): unknown {
  const token = tokenOf(caller, key, seq);
  return seq % 2 === 0 ? `${token}#${padFor(caller, seq)}` : { t: token, n: seq, p: padFor(caller, seq) };
}

const STRING_VALUE = /^c(\d+)\|(.+)\|(\d+)#/s;

/**
 * The sequence number of a value read back for `caller`'s `key`, or a description of why it is not a
 * value that caller wrote there (another caller's, another key's, corrupted, never written).
 */
function seqOf(got: unknown, caller: number, key: KeyModel): number | string {
  let seq: number;
  if (typeof got === 'string') {
    const m = STRING_VALUE.exec(got);
    if (!m) return `not a soak value: ${describe(got)}`;
    seq = Number(m[3]);
    if (Number(m[1]) !== caller || m[2] !== key.name)
      return `written by c${m[1]} to ${m[2]}, not c${caller} to ${key.name}`;
  } else if (got !== null && typeof got === 'object' && !Array.isArray(got)) {
    const o = got as Record<string, unknown>;
    if (typeof o.n !== 'number' || typeof o.t !== 'string') return `not a soak value: ${describe(got)}`;
    seq = o.n;
    if (o.t !== tokenOf(caller, key.name, seq)) return `written as ${o.t}, not by c${caller} to ${key.name}`;
  } else {
    return `not a soak value: ${describe(got)}`;
  }
  if (!Number.isSafeInteger(seq) || seq < 1 || seq > key.seq)
    return `sequence ${seq} was never written (last ${key.seq})`;
  const expected = valueFor(caller, key.name, seq);
  const same = typeof got === 'string' ? got === expected : JSON.stringify(got) === JSON.stringify(expected);
  return same ? seq : `value of write ${seq} is corrupted (${describe(got)})`;
}

function describe(value: unknown): string {
  const text =
    typeof value === 'string' ? JSON.stringify(value) : inspect(value, { depth: 2, breakLength: Infinity });
  return text.length > 120 ? `${text.slice(0, 120)}...` : text;
}

// --- the model of one key ----------------------------------------------------------------------------

/** A possible state of a key: `seq` of the value there (0: missing) and its TTL (-1: none). */
interface State {
  readonly seq: number;
  readonly ttl: number;
}

const MISSING: State = { seq: 0, ttl: -1 };

type Mutation =
  | { readonly kind: 'write'; readonly seq: number; readonly ttl: number }
  | { readonly kind: 'delete' }
  | { readonly kind: 'expire'; readonly ttl: number; readonly result: boolean | undefined };

interface LoggedMutation {
  readonly m: Mutation;
  /** Epochs at the start and the end of the call. */
  readonly start: number;
  readonly end: number;
  /** Acknowledged (else: failed, outcome unknown). */
  readonly ok: boolean;
  /** `performance.now()` when it was logged (just after it settled). */
  readonly t1: number;
}

function apply(states: readonly State[], m: Mutation): State[] {
  switch (m.kind) {
    case 'write':
      return [{ seq: m.seq, ttl: m.ttl }];
    case 'delete':
      return [MISSING];
    case 'expire': {
      const kept = m.result === undefined ? states : states.filter((s) => (s.seq !== 0) === m.result);
      return kept.map((s) => (s.seq === 0 ? s : { seq: s.seq, ttl: m.ttl }));
    }
  }
}

function union(a: readonly State[], b: readonly State[]): State[] {
  const out = [...a];
  for (const s of b) if (!out.some((o) => o.seq === s.seq && o.ttl === s.ttl)) out.push(s);
  return out;
}

function describeStates(states: readonly State[]): string {
  const shown = states
    .slice(0, 6)
    .map((s) => (s.seq === 0 ? 'missing' : `#${s.seq}${s.ttl < 0 ? '' : ` ttl ${s.ttl}`}`));
  return `{${shown.join(', ')}${states.length > 6 ? ', ...' : ''}}`;
}

/** One key of one caller: its write counter and the mutations that can still matter. */
class KeyModel {
  /** Writes attempted so far (the sequence number of the latest). */
  seq = 0;
  #log: LoggedMutation[] = [];

  /**
   * @param name - the key, as the caller names it.
   * @param slot - its hash slot in the tenant's layout (`<tenant>:<name>`), for cluster recovery.
   */
  constructor(
    readonly name: string,
    readonly slot: number,
    readonly world: World,
  ) {}

  /**
   * Whether `e` certainly happened and survives: acknowledged, within one epoch, and (on a cluster) not
   * acknowledged after the replication barrier of the kill that ended its epoch (or of a kill to come).
   */
  #certain(e: LoggedMutation): boolean {
    if (!e.ok || e.start !== e.end) return false;
    if (!this.world.persistent) return true;
    const lossFrom = this.world.lossFrom.get(e.end);
    if (lossFrom !== undefined && e.t1 >= lossFrom) return false;
    const barrier = this.world.barrierAt;
    return !(barrier !== undefined && e.end === this.world.epoch && e.t1 >= barrier);
  }

  /** Log a settled mutation and forget what can no longer matter to a read starting in `epoch` or later. */
  record(m: Mutation, out: Settled, epoch: number): void {
    this.#log.push({ m, start: out.start, end: out.end, ok: out.ok, t1: performance.now() });
    // Mutations that settled in an earlier epoch were wiped by the restart (not on a cluster).
    let log = this.world.persistent ? this.#log : this.#log.filter((e) => e.end >= epoch);
    // An acknowledged stable write or delete decides the state: older entries are moot. (A certain entry
    // stays certain: a later barrier starts after it was acknowledged.)
    for (let i = log.length - 1; i > 0; i--) {
      const e = log[i] as LoggedMutation;
      const current = this.world.persistent || (e.start === epoch && e.end === epoch);
      if (current && this.#certain(e) && e.m.kind !== 'expire') {
        log = log.slice(i);
        break;
      }
    }
    this.#log = log;
  }

  /** Every state the key may be in for a call that started and ended in `epoch`. */
  states(epoch: number): State[] {
    let states: State[] = [MISSING];
    for (const e of this.#log) {
      if (e.start > epoch || (!this.world.persistent && e.end < epoch)) continue;
      if (this.#certain(e) && (this.world.persistent || e.start === epoch)) states = apply(states, e.m);
      else states = union(states, apply(states, e.m)); // may or may not have run (or survived)
    }
    return states;
  }
}

// --- calls with a hang detector ----------------------------------------------------------------------

/** A call that settled in time, with the epochs at its start and end. */
type Settled = { readonly start: number; readonly end: number; readonly ms: number } & (
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: unknown }
);

/**
 * Run `fn` with a hang detector: settles with its outcome, or with `undefined` when it took longer than
 * `limitMs` (then `onHang` learns whether it settled later, within {@link ABANDON_AFTER_MS}).
 */
async function guarded(
  world: World,
  limitMs: number,
  fn: () => Promise<unknown>,
  onHang: (detail: string) => void,
): Promise<Settled | undefined> {
  const start = world.epoch;
  const t0 = performance.now();
  let promise: Promise<unknown>;
  try {
    promise = fn();
  } catch (error) {
    promise = Promise.reject(error);
  }
  const settled = promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, limitMs, undefined);
  });
  const first = await Promise.race([settled, guard]);
  clearTimeout(timer);
  const ms = performance.now() - t0;
  if (first === undefined || ms > limitMs) {
    const late = first ?? (await Promise.race([settled, sleep(ABANDON_AFTER_MS, undefined, { ref: false })]));
    const total = performance.now() - t0;
    onHang(
      late === undefined
        ? `no result after ${total.toFixed(0)} ms (limit ${limitMs} ms): still pending`
        : `settled after ${total.toFixed(0)} ms (limit ${limitMs} ms): ${late.ok ? 'ok' : describeError(late.error)}`,
    );
    return undefined;
  }
  return { ...first, start, end: world.epoch, ms };
}

function describeError(err: unknown): string {
  if (err instanceof CacheError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return describe(err);
}

// --- error handling shared by callers and the probe ---------------------------------------------------

class Checker {
  readonly #secrets: string[];

  constructor(
    readonly stats: SoakStats,
    secrets: readonly string[],
  ) {
    this.#secrets = [...new Set(secrets.flatMap((s) => [s, encodeURIComponent(s)]))];
  }

  /**
   * Report the first of `texts` (an error's message, its inspected form with causes, or a warning)
   * that holds a secret, as one incident.
   */
  leak(texts: readonly (readonly [what: string, text: string])[], op: string, caller: number): void {
    for (const [what, text] of texts) {
      const secret = this.#secrets.find((s) => text.includes(s));
      if (secret !== undefined) {
        this.stats.incident(
          'secretLeak',
          op,
          caller,
          `${what}: ${text.split(secret).join('<password>').slice(0, 300)}`,
        );
        return;
      }
    }
  }

  /** Check an error for secrets and classify it: its `code`, or `non-CacheError`. */
  classify(err: unknown, op: string, caller: number): { code: string; message: string } {
    const message = err instanceof Error ? err.message : String(err);
    this.leak(
      [
        ['error message', message],
        ['inspected error (with causes)', inspect(err, { depth: 8, breakLength: Infinity })],
      ],
      op,
      caller,
    );
    if (!(err instanceof CacheError)) {
      this.stats.incident('nonCacheError', op, caller, describeError(err));
      return { code: 'non-CacheError', message };
    }
    return { code: err.code, message };
  }
}

// --- callers -----------------------------------------------------------------------------------------

/** Mulberry32: a small seeded PRNG (reproducible choices; timing still varies). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const OPS = [
  ['get', 22],
  ['set', 18],
  ['mget', 10],
  ['mset', 10],
  ['exists', 8],
  ['expire', 8],
  ['ttl', 8],
  ['delete', 6],
  ['flushByPattern', 1],
] as const;
type Op = (typeof OPS)[number][0];
const OP_WEIGHT = OPS.reduce((sum, [, w]) => sum + w, 0);

class Caller {
  readonly #keys: KeyModel[];
  readonly #rng: () => number;
  readonly #ttlBase: number;
  retired = false;

  /** Longer than this, a call counts as hung. */
  readonly limitMs: number;
  /** A failure taking longer than this (1.2 x the longer timeout) is reported as slow (informational). */
  readonly slowFailureMs: number;

  constructor(
    readonly id: number,
    readonly slot: number,
    readonly tenant: Tenant,
    readonly world: World,
    readonly checker: Checker,
    config: WorkloadConfig,
  ) {
    this.#keys = Array.from({ length: config.keysPerCaller }, (_, j) => {
      const name = `u${slot}:k${j}`;
      return new KeyModel(name, keySlot(`${tenant.name}:${name}`), world);
    });
    this.#rng = prng(config.seed * 1_000_003 + id);
    // Far longer than the run: nothing expires by itself, so a miss is never explained by a TTL.
    this.#ttlBase = Math.ceil(config.seconds) + 3600;
    this.limitMs = hangLimitMs(config);
    this.slowFailureMs = 1.2 * Math.max(config.timeoutMs, config.connectTimeoutMs);
  }

  get #stats(): SoakStats {
    return this.checker.stats;
  }

  /** Do calls until `deadline` (a `performance.now()` value), the world stops, or a call hangs. */
  async run(deadline: number): Promise<void> {
    while (!this.world.stopping && !this.retired && performance.now() < deadline) {
      const ok = await this.#step();
      // A failing call returns at once (fail fast): back off a little so a down server is not spun on.
      if (!ok && !this.retired) await sleep(10 + Math.floor(this.#rng() * 20));
    }
  }

  #pick(): Op {
    let r = this.#rng() * OP_WEIGHT;
    for (const [op, w] of OPS) {
      r -= w;
      if (r < 0) return op;
    }
    return 'get';
  }

  #key(): KeyModel {
    return this.#keys[Math.floor(this.#rng() * this.#keys.length)] as KeyModel;
  }

  /** `n` distinct keys (at most all of them). */
  #distinctKeys(n: number): KeyModel[] {
    const pool = [...this.#keys];
    const out: KeyModel[] = [];
    while (out.length < n && pool.length > 0)
      out.push(...pool.splice(Math.floor(this.#rng() * pool.length), 1));
    return out;
  }

  #ttl(): number {
    return this.#ttlBase + Math.floor(this.#rng() * 600);
  }

  /** Run one call of `op` on `keys` (for recovery on a cluster: only calls on the victim's slots count). */
  async #call(op: Op, keys: readonly KeyModel[], fn: () => Promise<unknown>): Promise<Settled | undefined> {
    const calmAtStart = this.world.disruption === undefined && performance.now() > this.world.calmAfter;
    // On a cluster a flush walks the primaries one after the other, each step bounded on its own.
    const limitMs =
      op === 'flushByPattern' && this.world.persistent ? this.limitMs * CLUSTER_PRIMARIES : this.limitMs;
    const out = await guarded(this.world, limitMs, fn, (detail) => {
      this.#stats.incident('hang', op, this.id, detail);
      this.#stats.failure(op, 'HUNG', `no result within ${limitMs} ms`, limitMs);
      this.retired = true; // its keys' state is unknown from now on
    });
    if (!out) return undefined;
    if (out.ok) {
      this.#stats.success(op, out.ms);
      const t = this.tenant;
      const slots = this.world.recoverySlots;
      if (
        t.mark !== undefined &&
        t.firstOk === undefined &&
        (slots === undefined || keys.some((k) => slots.has(k.slot)))
      ) {
        t.firstOk = performance.now();
      }
      return out;
    }
    const { code, message } = this.checker.classify(out.error, op, this.id);
    if (out.error instanceof CacheValidationError) {
      this.#stats.incident('unexpectedValidationError', op, this.id, message);
    }
    this.#stats.failure(op, code, message, out.ms);
    if (out.ms > this.slowFailureMs) {
      this.#stats.incident('slowFailure', op, this.id, `${code} after ${out.ms.toFixed(0)} ms: ${message}`);
    }
    const disruption = this.world.disruption;
    if (disruption) disruption.errors++;
    else if (calmAtStart) this.#stats.incident('calmError', op, this.id, `${code}: ${message}`);
    return out;
  }

  #wrong(op: Op, detail: string): void {
    this.#stats.incident('wrongValue', op, this.id, detail);
  }

  /** Check a value read from `key`: always that it is this caller's, and against the model when stable. */
  #checkRead(op: Op, key: KeyModel, got: unknown, out: Settled): void {
    let seq = 0;
    if (got !== null) {
      const parsed = seqOf(got, this.id, key);
      if (typeof parsed === 'string') {
        this.#wrong(op, `${key.name}: ${parsed}`);
        return;
      }
      seq = parsed;
    }
    if (out.start !== out.end) {
      this.#stats.checks.skipped++;
      return;
    }
    this.#stats.checks.exact++;
    const states = key.states(out.start);
    if (!states.some((s) => s.seq === seq)) {
      this.#wrong(
        op,
        `${this.tenant.name}:${key.name}: read ${seq === 0 ? 'missing' : `#${seq}`}, possible ${describeStates(states)} (epoch ${out.start}, last write #${key.seq})`,
      );
    }
  }

  /** Check a count of existing keys (`delete`, `exists`, `flushByPattern`) against the model when stable. */
  #checkCount(op: Op, keys: readonly KeyModel[], got: unknown, out: Settled): void {
    if (typeof got !== 'number' || !Number.isInteger(got)) {
      this.#wrong(op, `returned ${describe(got)}, not a count`);
      return;
    }
    if (out.start !== out.end) {
      this.#stats.checks.skipped++;
      return;
    }
    this.#stats.checks.exact++;
    let min = 0;
    let max = 0;
    for (const key of keys) {
      const states = key.states(out.start);
      if (states.every((s) => s.seq !== 0)) min++;
      if (states.some((s) => s.seq !== 0)) max++;
    }
    if (got < min || got > max) {
      this.#wrong(
        op,
        `${keys.map((k) => k.name).join(',')}: count ${got}, possible ${min}..${max} (epoch ${out.start})`,
      );
    }
  }

  /** One random call and its checks; `false` when it failed. */
  async #step(): Promise<boolean> {
    const client = this.tenant.client;
    const epoch = () => this.world.epoch;
    const op = this.#pick();
    switch (op) {
      case 'get': {
        const key = this.#key();
        const out = await this.#call(op, [key], () => client.get(key.name));
        if (out?.ok) this.#checkRead(op, key, out.value, out);
        return out?.ok ?? false;
      }
      case 'mget': {
        const keys = this.#distinctKeys(2 + Math.floor(this.#rng() * 3));
        const out = await this.#call(op, keys, () => client.mget(...keys.map((k) => k.name)));
        if (out?.ok) {
          const values = out.value;
          if (!Array.isArray(values) || values.length !== keys.length)
            this.#wrong(op, `returned ${describe(values)}`);
          else for (const [i, key] of keys.entries()) this.#checkRead(op, key, values[i], out);
        }
        return out?.ok ?? false;
      }
      case 'set': {
        const key = this.#key();
        const seq = ++key.seq;
        const ttl = this.#rng() < 0.5 ? -1 : this.#ttl();
        const value = valueFor(this.id, key.name, seq);
        const out = await this.#call(op, [key], () => client.set(key.name, value, ttl < 0 ? undefined : ttl));
        if (!out) return false;
        if (out.ok && out.value !== true) this.#wrong(op, `returned ${describe(out.value)}, not true`);
        key.record({ kind: 'write', seq, ttl }, out, epoch());
        return out.ok;
      }
      case 'mset': {
        const keys = this.#distinctKeys(2 + Math.floor(this.#rng() * 3));
        const ttl = this.#ttl();
        const writes = keys.map((key) => ({ key, seq: ++key.seq }));
        const mapping = Object.fromEntries(
          writes.map(({ key, seq }) => [key.name, valueFor(this.id, key.name, seq)]),
        );
        const out = await this.#call(op, keys, () => client.mset(mapping, ttl));
        if (!out) return false;
        if (out.ok && out.value !== true) this.#wrong(op, `returned ${describe(out.value)}, not true`);
        for (const { key, seq } of writes) key.record({ kind: 'write', seq, ttl }, out, epoch());
        return out.ok;
      }
      case 'delete': {
        const keys = this.#distinctKeys(1 + Math.floor(this.#rng() * 3));
        const out = await this.#call(op, keys, () => client.delete(...keys.map((k) => k.name)));
        if (!out) return false;
        if (out.ok) this.#checkCount(op, keys, out.value, out);
        for (const key of keys) key.record({ kind: 'delete' }, out, epoch());
        return out.ok;
      }
      case 'flushByPattern': {
        const out = await this.#call(op, this.#keys, () => client.flushByPattern(`u${this.slot}:*`));
        if (!out) return false;
        if (out.ok) this.#checkCount(op, this.#keys, out.value, out);
        for (const key of this.#keys) key.record({ kind: 'delete' }, out, epoch());
        return out.ok;
      }
      case 'exists': {
        const keys = this.#distinctKeys(1 + Math.floor(this.#rng() * 3));
        const out = await this.#call(op, keys, () => client.exists(...keys.map((k) => k.name)));
        if (out?.ok) this.#checkCount(op, keys, out.value, out);
        return out?.ok ?? false;
      }
      case 'expire': {
        const key = this.#key();
        const ttl = this.#ttl();
        const out = await this.#call(op, [key], () => client.expire(key.name, ttl));
        if (!out) return false;
        let result: boolean | undefined;
        if (out.ok) {
          if (typeof out.value !== 'boolean')
            this.#wrong(op, `returned ${describe(out.value)}, not a boolean`);
          else {
            result = out.value;
            if (out.start === out.end) {
              this.#stats.checks.exact++;
              const states = key.states(out.start);
              if (!states.some((s) => (s.seq !== 0) === result)) {
                this.#wrong(
                  op,
                  `${this.tenant.name}:${key.name}: expire returned ${result}, possible ${describeStates(states)} (epoch ${out.start})`,
                );
              }
            } else this.#stats.checks.skipped++;
          }
        }
        key.record({ kind: 'expire', ttl, result }, out, epoch());
        return out.ok;
      }
      case 'ttl': {
        const key = this.#key();
        const out = await this.#call(op, [key], () => client.ttl(key.name));
        if (!out?.ok) return false;
        const got = out.value;
        if (typeof got !== 'number' || !Number.isInteger(got) || got < -2 || got === 0) {
          this.#wrong(op, `returned ${describe(got)}`);
        } else if (out.start === out.end) {
          this.#stats.checks.exact++;
          const states = key.states(out.start);
          const fits = (s: State) =>
            s.seq === 0 ? got === -2 : s.ttl < 0 ? got === -1 : got >= 1 && got <= s.ttl;
          if (!states.some(fits)) {
            this.#wrong(
              op,
              `${this.tenant.name}:${key.name}: ttl ${got}, possible ${describeStates(states)} (epoch ${out.start})`,
            );
          }
        } else this.#stats.checks.skipped++;
        return true;
      }
    }
  }
}

// --- disruptions -------------------------------------------------------------------------------------

/** A planned disruption: a SIGKILL and restart (a failover on a cluster), a freeze, or killed connections. */
export interface PlannedEvent {
  readonly at: number;
  readonly kind: 'restart' | 'freeze' | 'conn-kill';
}

/**
 * When restarts and freezes happen, in ms from the start: restarts every `restartEverySec`, freezes every
 * `freezeEverySec` starting half a restart period in, and (on a cluster) connection kills every
 * `connKillEverySec` starting a quarter period in. An event that would start within
 * {@link EVENT_GAP_MS} of another one (restarts win, then freezes) or leave less than that before the end
 * is dropped. The events run one after the other: one that is due while another runs waits for it.
 */
export function schedule(config: WorkloadConfig, cluster = false): PlannedEvent[] {
  const end = config.seconds * 1000;
  const restart = config.restartEverySec * 1000;
  const freeze = config.freezeEverySec * 1000;
  const connKill = cluster ? config.connKillEverySec * 1000 : 0;
  const candidates: PlannedEvent[] = [];
  if (restart > 0) for (let at = restart; at < end; at += restart) candidates.push({ at, kind: 'restart' });
  const offset = restart > 0 ? restart / 2 : freeze / 2;
  if (freeze > 0) for (let at = offset; at < end; at += freeze) candidates.push({ at, kind: 'freeze' });
  if (connKill > 0) {
    for (let at = connKill / 4; at < end; at += connKill) candidates.push({ at, kind: 'conn-kill' });
  }
  // Each event occupies [at, at + outage + gap): events whose spans overlap conflict.
  const outage = { restart: config.downMs, freeze: config.freezeMs, 'conn-kill': 0 };
  const until = (e: PlannedEvent) => e.at + outage[e.kind] + EVENT_GAP_MS;
  const kept: typeof candidates = [];
  for (const e of candidates) {
    if (until(e) > end) continue;
    if (kept.some((k) => k.at < until(e) && e.at < until(k))) continue;
    kept.push(e);
  }
  return kept.sort((a, b) => a.at - b.at);
}

async function measureRecovery(
  world: World,
  tenants: readonly Tenant[],
  up: number,
): Promise<number | null | undefined> {
  for (const t of tenants) {
    t.mark = up;
    t.firstOk = undefined;
  }
  try {
    for (;;) {
      if (tenants.every((t) => t.firstOk !== undefined)) {
        return Math.max(...tenants.map((t) => (t.firstOk ?? up) - up));
      }
      if (world.stopping) return undefined; // the run ended first: not measured
      if (performance.now() - up > RECOVERY_LIMIT_MS) return null;
      await sleep(10, undefined, { ref: false });
    }
  } finally {
    for (const t of tenants) t.mark = undefined;
  }
}

/**
 * Run `WAIT 1` after a write of the primary at `port` (a key of `slots`) on a connection of its own:
 * `true` when a replica acknowledged it, i.e. every write the primary acknowledged before has reached a
 * replica.
 */
async function replicationBarrier(
  port: number,
  password: string,
  slots: ReadonlySet<number>,
): Promise<boolean> {
  let key = 'soak-barrier:0';
  for (let i = 0; !slots.has(keySlot(key)); i++) key = `soak-barrier:${i}`;
  const raw = createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false }, password });
  raw.on('error', () => {});
  try {
    await raw.connect();
    await raw.set(key, String(Date.now()));
    return Number(await raw.sendCommand(['WAIT', '1', '1000'])) >= 1;
  } catch {
    return false;
  } finally {
    raw.destroy();
  }
}

/** A raw connection to one node, to watch the cluster without spawning `redis-cli` (which stalls the soak). */
async function rawNode(port: number, password: string) {
  const raw = createClient({ socket: { host: '127.0.0.1', port, reconnectStrategy: false }, password });
  raw.on('error', () => {});
  return raw.connect();
}

/** Poll `check` every 50 ms until it holds; throws after `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  for (const end = performance.now() + ms; ; await sleep(50)) {
    if (await check().catch(() => false)) return;
    if (performance.now() > end) throw new Error(`${what} did not happen within ${ms} ms`);
  }
}

/** Whether `CLUSTER NODES` text lists the node on `port` as a healthy primary serving slots. */
function servesSlots(nodes: string, port: number): boolean {
  return nodes.split('\n').some((line) => {
    const fields = line.trim().split(' ');
    const flags = fields[2]?.split(',') ?? [];
    return (
      fields[1]?.startsWith(`127.0.0.1:${port}@`) === true &&
      flags.includes('master') &&
      !flags.includes('fail') &&
      fields.length > 8
    );
  });
}

/**
 * One disruption of a cluster, on a random primary: kill it and wait for its replica to take over (then
 * start it again as a replica, in the background of the recovery measurement), freeze it, or kill every
 * client connection it has. Resolves when the cluster serves every slot again, with the victim's slots.
 */
async function disruptCluster(
  ctx: WorkloadContext,
  cluster: RedisCluster,
  world: World,
  kind: PlannedEvent['kind'],
): Promise<{ slots: Set<number>; after?: () => Promise<void> }> {
  const primaries = await cluster.primaries();
  const victim = primaries[Math.floor(Math.random() * primaries.length)] as number;
  const owner = await cluster.slotOwners();
  const slots = new Set<number>();
  for (let slot = 0; slot < 16384; slot++) if (owner(slot) === victim) slots.add(slot);
  if (kind === 'restart') {
    const survivor = primaries.find((p) => p !== victim) as number;
    const watch = await rawNode(survivor, ctx.password);
    try {
      world.barrierAt = performance.now();
      const replicated = await replicationBarrier(victim, ctx.password, slots);
      world.lossFrom.set(world.epoch, replicated ? world.barrierAt : Number.NEGATIVE_INFINITY);
      // The epoch changes in the same synchronous step as the SIGKILL (`kill()` sends the signal before
      // it first awaits): every call the victim acknowledged ends in this epoch, so a write it
      // acknowledged after the barrier started is covered by `lossFrom`, however long the barrier and the
      // kill are apart. Nothing may be awaited between the two lines.
      world.epoch++;
      world.barrierAt = undefined;
      await cluster.kill(victim, 'SIGKILL');
      // The failover: the victim's replica is promoted once the others agree the victim failed.
      await until(`a failover of ${victim}`, 30_000, async () => {
        const nodes = String(await watch.sendCommand(['CLUSTER', 'NODES']));
        const info = String(await watch.sendCommand(['CLUSTER', 'INFO']));
        return !servesSlots(nodes, victim) && info.includes('cluster_state:ok');
      });
    } finally {
      watch.destroy();
    }
    return {
      slots,
      // Start it again: it rejoins as a replica of its replacement; wait for it to be in sync, so that
      // its primary can be failed over later.
      after: async () => {
        await cluster.restart(victim);
        const node = await rawNode(victim, ctx.password);
        try {
          await until(`${victim} syncing as a replica`, 30_000, async () =>
            String(await node.sendCommand(['INFO', 'replication'])).includes('master_link_status:up'),
          );
        } finally {
          node.destroy();
        }
      },
    };
  }
  if (kind === 'freeze') {
    await cluster.kill(victim, 'SIGSTOP');
    try {
      await sleep(ctx.config.freezeMs);
    } finally {
      await cluster.kill(victim, 'SIGCONT');
    }
    return { slots };
  }
  await cluster.cli(victim, 'CLIENT', 'KILL', 'TYPE', 'normal');
  return { slots };
}

async function disrupt(
  ctx: WorkloadContext,
  world: World,
  tenants: readonly Tenant[],
  startedAt: number,
): Promise<void> {
  const { server, cluster, config, stats } = ctx;
  const signal = world.signal;
  for (const event of schedule(config, cluster !== undefined)) {
    const wait = startedAt + event.at - performance.now();
    if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => undefined);
    if (world.stopping) return;
    const d: Disruption = {
      kind: cluster !== undefined && event.kind === 'restart' ? 'failover' : event.kind,
      at: Number(stats.elapsed().toFixed(2)),
      outageMs: 0,
      recoveryMs: undefined,
      errors: 0,
    };
    stats.disruptions.push(d);
    world.disruption = d;
    const t0 = performance.now();
    const at = `[${stats.elapsed().toFixed(1).padStart(5)} s]`;
    const action = {
      restart: cluster ? 'SIGKILL of a primary' : 'SIGKILL',
      freeze: `SIGSTOP${cluster ? ' of a primary' : ''} for ${config.freezeMs} ms`,
      'conn-kill': 'CLIENT KILL of every client connection of a primary',
    };
    ctx.log(`${at} ${action[event.kind]}`);
    let after: (() => Promise<void>) | undefined;
    if (cluster) {
      const hit = await disruptCluster(ctx, cluster, world, event.kind);
      world.recoverySlots = hit.slots;
      after = hit.after;
    } else if (event.kind === 'restart' && 'stop' in server) {
      world.epoch++; // before the SIGKILL: a call that sees the same epoch at start and end ran on one server
      ctx.onServerRunning?.(false);
      await server.stop(true);
      await sleep(config.downMs);
      await server.restart();
      ctx.onServerRunning?.(true);
    } else if ('stop' in server) {
      server.pause();
      try {
        await sleep(config.freezeMs);
      } finally {
        server.resume();
      }
    }
    const up = performance.now();
    d.outageMs = up - t0;
    // A failed-over primary restarts (as a replica) while the clients' recovery is measured.
    const restarted = after?.();
    d.recoveryMs = await measureRecovery(world, tenants, up);
    world.recoverySlots = undefined;
    await restarted;
    const recovered =
      d.recoveryMs === null
        ? 'NEVER'
        : d.recoveryMs === undefined
          ? '(run ended first)'
          : `${d.recoveryMs.toFixed(0)} ms later`;
    ctx.log(
      `${at} ${d.kind}: ${cluster ? 'cluster serving every slot' : 'server back'} after ${d.outageMs.toFixed(0)} ms, every client recovered ${recovered} (epoch ${world.epoch})`,
    );
    world.disruption = undefined;
    world.calmAfter = performance.now() + CALM_MARGIN_MS;
  }
}

// --- wrong-password probe ----------------------------------------------------------------------------

async function probeAuth(
  ctx: WorkloadContext,
  world: World,
  checker: Checker,
  wrongPassword: string,
  deadline: number,
): Promise<void> {
  const { config, server, stats } = ctx;
  const signal = world.signal;
  const at = (port: number) => `redis://:${encodeURIComponent(wrongPassword)}@127.0.0.1:${port}`;
  const where = ctx.cluster ? { nodes: ctx.cluster.ports.map(at) } : { url: at(server.port) };
  const limit = hangLimitMs(config);
  while (!world.stopping && performance.now() < deadline) {
    await sleep(config.authProbeEverySec * 1000, undefined, { signal }).catch(() => undefined);
    if (world.stopping || performance.now() >= deadline) return;
    const probe = new CacheClient({
      connectionConfig: {
        ...where,
        tenant: 'probe',
        timeoutMs: config.timeoutMs,
        connectTimeoutMs: config.connectTimeoutMs,
      },
      debugLogs: false,
      logger: {
        debug: () => {},
        warn: (message) => checker.leak([['library warning', message]], 'warning', -1),
      },
    });
    const onHang = (detail: string) => stats.incident('hang', 'authProbe', -1, detail);
    const out = await guarded(world, limit, () => probe.get('k'), onHang);
    if (out?.ok) {
      stats.incident('authProbeAccepted', 'get', -1, `read ${describe(out.value)} with a wrong password`);
      stats.authProbe.set('accepted', (stats.authProbe.get('accepted') ?? 0) + 1);
    } else if (out) {
      const { code } = checker.classify(out.error, 'authProbe', -1);
      stats.authProbe.set(code, (stats.authProbe.get(code) ?? 0) + 1);
    }
    await guarded(world, limit, () => probe.close(), onHang);
  }
}

// --- the run -----------------------------------------------------------------------------------------

/**
 * Run the workload against `ctx.server` for `config.seconds` (or until `ctx.signal` aborts): the callers,
 * the disruptions (restarts, freezes), the wrong-password probe, progress lines and memory samples, all
 * recorded in `ctx.stats`. Resolves once every caller has stopped and every client is closed; the server
 * is left running (the caller stops it).
 */
export async function runWorkload(ctx: WorkloadContext): Promise<void> {
  const { config, stats, server, password, signal, cluster } = ctx;
  const world = new World();
  world.persistent = cluster !== undefined;
  const withPassword = (port: number) => `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  const where = cluster ? { nodes: cluster.ports.map(withPassword) } : { url: server.url };
  const wrongPassword = `soak-wrong-${password.slice(-12)}x`;
  const checker = new Checker(stats, [password, wrongPassword]);
  const limit = hangLimitMs(config);
  const logger = {
    debug: () => {},
    warn: (message: string) => {
      stats.warnings++;
      checker.leak([['library warning', message]], 'warning', -1);
    },
  };
  const tenants: Tenant[] = Array.from({ length: config.tenants }, (_, i) => {
    const name = `soak${i}`;
    const client = new CacheClient({
      connectionConfig: {
        ...where,
        tenant: name,
        timeoutMs: config.timeoutMs,
        connectTimeoutMs: config.connectTimeoutMs,
      },
      debugLogs: false,
      logger,
    });
    return { name, client, mark: undefined, firstOk: undefined };
  });
  const callers = Array.from({ length: config.callers }, (_, id) => {
    const tenant = tenants[id % tenants.length] as Tenant;
    return new Caller(id, Math.floor(id / tenants.length), tenant, world, checker, config);
  });

  // Warm-up, before the clock starts: each client connects (on a cluster: discovers the topology) and
  // the modules a first call loads are loaded, so the first calls are not judged on start-up work.
  await Promise.all(tenants.map((t) => t.client.ping().catch(() => false)));
  const sampleEvery = Math.min(1000, Math.max(250, Math.floor((config.seconds * 1000) / 80)));
  stats.startedAt = performance.now();
  const deadline = stats.startedAt + config.seconds * 1000;
  const stopSampling = startMemorySampler(stats, sampleEvery);
  // Only the workload's own duration is sampled (not a tail of hung calls being waited for).
  const samplingEnd = setTimeout(stopSampling, config.seconds * 1000);
  const progress =
    config.progressEverySec > 0
      ? setInterval(() => {
          const totals = stats.totals();
          const heap = stats.memory.at(-1)?.heapUsed ?? process.memoryUsage().heapUsed;
          const n = totals.ok + totals.failed;
          ctx.log(
            `[${stats.elapsed().toFixed(1).padStart(5)} s] ops ${n} (${(n / stats.elapsed()).toFixed(0)}/s) failed ${totals.failed} wrong ${stats.count('wrongValue')} hung ${stats.count('hang')} epoch ${world.epoch} heap ${(heap / 1048576).toFixed(1)} MB`,
          );
        }, config.progressEverySec * 1000)
      : undefined;
  const onAbort = () => world.halt();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const chaos = disrupt(ctx, world, tenants, stats.startedAt).catch((err: unknown) => {
      stats.fatal = `a restart or freeze failed: ${describeError(err)}`;
      world.halt();
    });
    const probe =
      config.authProbeEverySec > 0
        ? probeAuth(ctx, world, checker, wrongPassword, deadline).catch((err: unknown) => {
            stats.fatal = `the wrong-password probe failed: ${describeError(err)}`;
          })
        : Promise.resolve();
    const running = callers.map((c) => c.run(deadline));
    await Promise.all(running);
    world.halt();
    stats.endedAt = performance.now();
    await Promise.all([chaos, probe]);
  } finally {
    world.halt();
    stats.endedAt ??= performance.now();
    signal.removeEventListener('abort', onAbort);
    clearInterval(progress);
    clearTimeout(samplingEnd);
    stopSampling();
    // Leave the server answering, then close every client (bounded: close() waits for pending calls).
    if ('resume' in server) server.resume();
    if (cluster)
      for (const port of cluster.ports) if (cluster.running(port)) await cluster.kill(port, 'SIGCONT');
    await Promise.all(
      tenants.map((t) =>
        guarded(
          world,
          limit,
          () => t.client.close(),
          (detail) => stats.incident('hang', 'close', -1, `${t.name}: ${detail}`),
        ),
      ),
    );
  }
}
