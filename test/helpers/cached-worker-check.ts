/**
 * The invariants of cached functions under concurrency, judged on a history written by the workers of
 * the randomized concurrency test (cached-worker-protocol.ts). Pure: a history in, violations out, so
 * test/cached-concurrency.test.ts also feeds it hand-made histories to show each check can fail.
 *
 * Orders are the server's sequence numbers `v`; durations that matter (a lock's lifetime, a lock wait)
 * use the server's `TIME` of two records, never two machines' clocks. The checks:
 *
 * - `crash`: a worker exited without being killed (an unhandled rejection exits with code 1).
 * - `unexpected-error`: a call rejected with anything but its factory's error (or, shared in-process,
 *   the error of the factory it joined), `CacheFactoryError`, or with `hardTimeoutMs` a
 *   `CacheTimeoutError`; or an `invalidate`/`delete` failed.
 * - `wrong-error`: a factory error that is not from a failed factory of the same key and process.
 * - `foreign-failure` (issue 21, item 4): a `CacheFactoryError` with no failed factory of the key that
 *   failed while the call was pending (or at most {@link FAILURE_TOLERANCE_MS} before it started, the
 *   owner still marking its failure).
 * - `overdue`: a call pending past its bound; `overdue-behind-hung-factory` (issue 21, item 2) when a
 *   factory of the key hangs in that process (later calls join the hung call).
 * - `missing-outcome`: a call that neither settled nor was reported overdue, in a process that was not
 *   killed, without a hung factory of its own.
 * - `double-fill`: two factory runs of one key overlap while both hold the fill lock: each started less
 *   than `lockTimeoutMs - LOCK_WAIT_MARGIN_MS` after its call (so it did not run unprotected after the
 *   lock wait), and the second started before the first ended (settled, its call settled after it
 *   started, or its process was killed), and, with `hardTimeoutMs`, less than that after the first
 *   started (a fill is abandoned then). With `lease: false` (a lock that is not extended while its
 *   factory runs), also before the first one's lock expired (`lockTtlMs` after its start, minus a
 *   margin).
 * - `double-fill-after-stall`: a `double-fill` where the first run's process was starved (its event
 *   loop blocked, or its factory settled late) for at least half of `lockTtlMs` meanwhile, so the lease
 *   may have lapsed without a fault of the lock: reported, not a failure.
 * - `wrong-value`: a value that no recorded factory run of that key produced.
 * - `stale-after-invalidation`: a call that started after an invalidation (or delete) of its key had
 *   completed returned a value whose factory started before that invalidation, and whose fill had
 *   completed (stored) before the invalidation began: the invalidation did not remove it.
 * - `invalidation-race` (issue 19): the same, but the fill was still running when the invalidation began
 *   and stored its older value after it. Not yet guaranteed (the tags issue makes an invalidation during a
 *   fill win), so reported separately.
 *
 * @module
 */
import type { EventRecord } from './cached-worker-protocol.js';

/** The kinds of violation, see the module doc. */
export type ViolationKind =
  | 'crash'
  | 'unexpected-error'
  | 'wrong-error'
  | 'foreign-failure'
  | 'overdue'
  | 'overdue-behind-hung-factory'
  | 'missing-outcome'
  | 'double-fill'
  | 'double-fill-after-stall'
  | 'wrong-value'
  | 'stale-after-invalidation'
  | 'invalidation-race';

/** One violation: its kind and what shows it. */
export interface Violation {
  readonly kind: ViolationKind;
  readonly detail: string;
}

/** The options the run used (milliseconds). */
export interface CheckOptions {
  readonly lockTimeoutMs: number;
  readonly lockTtlMs: number;
  readonly hardTimeoutMs: number;
  /**
   * Whether the fill lock is a lease (extended while its factory runs, issue 21): a factory's lock then
   * holds until the factory ends, however long past `lockTtlMs`.
   */
  readonly lease: boolean;
}

/** A worker exit the parent did not cause. */
export interface ExitRecord {
  readonly worker: number;
  readonly gen: number;
  readonly code: number | null;
  readonly signal: string | null;
  readonly stderr: string;
}

/** A factory that failed this long (server time) before a call started may still reach it. */
export const FAILURE_TOLERANCE_MS = 250;
/** A factory that started this much sooner than `lockTimeoutMs` after its call held the lock. */
export const LOCK_WAIT_MARGIN_MS = 300;
/** Taken off `lockTtlMs` (the lock was taken a little before its factory started). */
export const LOCK_TTL_MARGIN_MS = 200;

type Rec<E extends EventRecord['e']> = Extract<EventRecord, { e: E }>;

/** Everything recorded about one `getOrSet` call. */
interface CallInfo {
  readonly c: string;
  readonly proc: string;
  call?: Rec<'call'>;
  fstart?: Rec<'fstart'>;
  fend?: Rec<'fend'>;
  cend?: Rec<'cend'>;
  overdue?: Rec<'overdue'>;
}

interface Clearing {
  start: Rec<'istart'>;
  done?: Rec<'idone'>;
}

/** The process (`<worker>.<gen>`) of call id `<seq>@<worker>.<gen>`. */
function processOf(c: string): string {
  return c.slice(c.indexOf('@') + 1);
}

/** Counters of no history (the soak's totals start here). */
export function emptyStats(): HistoryStats {
  return {
    calls: 0,
    factoryRuns: 0,
    failedFactories: 0,
    hungFactories: 0,
    sharedValues: 0,
    errors: {},
    clearings: 0,
    kills: 0,
  };
}

/** Counts of what a history holds (for reports and to see that a run exercised something). */
export interface HistoryStats {
  calls: number;
  factoryRuns: number;
  failedFactories: number;
  hungFactories: number;
  sharedValues: number;
  errors: Record<string, number>;
  clearings: number;
  kills: number;
}

/** Judge a history. */
export function checkHistory(
  history: readonly EventRecord[],
  exits: readonly ExitRecord[],
  options: CheckOptions,
): { violations: Violation[]; stats: HistoryStats } {
  const violations: Violation[] = [];
  const add = (kind: ViolationKind, detail: string) => violations.push({ kind, detail });
  const calls = new Map<string, CallInfo>();
  const info = (c: string): CallInfo => {
    let i = calls.get(c);
    if (i === undefined) {
      i = { c, proc: processOf(c) };
      calls.set(c, i);
    }
    return i;
  };
  const clearings = new Map<number, Clearing[]>();
  const clearingById = new Map<string, Clearing>();
  const killed = new Map<string, Rec<'kill'>>();
  const stalls: Rec<'stall'>[] = [];
  for (const r of history) {
    switch (r.e) {
      case 'call':
        info(r.c).call = r;
        break;
      case 'fstart':
        info(r.c).fstart = r;
        break;
      case 'fend':
        info(r.c).fend = r;
        break;
      case 'cend':
        info(r.c).cend = r;
        break;
      case 'overdue':
        info(r.c).overdue = r;
        break;
      case 'istart': {
        const clearing = { start: r };
        clearingById.set(r.c, clearing);
        clearings.set(r.k, [...(clearings.get(r.k) ?? []), clearing]);
        break;
      }
      case 'idone': {
        const clearing = clearingById.get(r.c);
        if (clearing !== undefined) clearing.done = r;
        if (!r.ok) add('unexpected-error', `${r.c}: clearing key ${r.k} failed: ${r.err}`);
        break;
      }
      case 'kill':
        killed.set(`${r.w}.${r.gen}`, r);
        break;
      case 'stall':
        stalls.push(r);
        break;
    }
  }
  const stats: HistoryStats = { ...emptyStats(), clearings: clearingById.size, kills: killed.size };

  for (const e of exits) {
    add(
      'crash',
      `worker ${e.worker} (generation ${e.gen}) exited: code ${e.code}, signal ${e.signal}\n${e.stderr}`,
    );
  }

  const runs = [...calls.values()].filter((i) => i.fstart !== undefined && i.call !== undefined);
  const hungIn = (proc: string, k: number, before: number) =>
    runs.some(
      (r) => r.proc === proc && r.call?.k === k && r.call.f.kind === 'hang' && (r.fstart?.v ?? 0) < before,
    );
  const failedRuns = runs.filter((r) => r.fend?.ok === false);

  for (const i of calls.values()) {
    const call = i.call;
    if (call === undefined) continue;
    stats.calls++;
    if (i.fstart !== undefined) {
      stats.factoryRuns++;
      if (call.f.kind === 'fail') stats.failedFactories++;
      if (call.f.kind === 'hang') stats.hungFactories++;
    }
    if (i.overdue !== undefined) {
      const kind = hungIn(i.proc, call.k, i.overdue.v) ? 'overdue-behind-hung-factory' : 'overdue';
      add(
        kind,
        `${i.c} (key ${call.k}, factory ${call.f.kind}) pending past its bound of ${i.overdue.boundMs} ms`,
      );
    }
    const end = i.cend;
    if (end === undefined) {
      const ownHang = call.f.kind === 'hang' && i.fstart !== undefined && options.hardTimeoutMs === 0;
      if (i.overdue === undefined && !killed.has(i.proc) && !ownHang) {
        add('missing-outcome', `${i.c} (key ${call.k}) never settled and was not reported overdue`);
      }
      continue;
    }
    if (end.err !== undefined) {
      const { name, message } = end.err;
      stats.errors[name] = (stats.errors[name] ?? 0) + 1;
      const own = /^factory failure of (\S+)$/.exec(message);
      if (own !== null) {
        const owner = calls.get(own[1] as string);
        if (owner?.proc !== i.proc || owner.call?.k !== call.k || owner.fend?.ok !== false) {
          add('wrong-error', `${i.c} (key ${call.k}) rejected with the failure of ${own[1]}`);
        }
      } else if (name === 'CacheFactoryError') {
        const explained = failedRuns.some(
          (f) =>
            f.call?.k === call.k &&
            (f.fend?.v ?? 0) < end.v &&
            ((f.fend?.v ?? 0) > call.v ||
              (f.cend?.v ?? Number.POSITIVE_INFINITY) > call.v ||
              call.t - (f.fend?.t ?? 0) < FAILURE_TOLERANCE_MS),
        );
        if (!explained) {
          add(
            'foreign-failure',
            `${i.c} (key ${call.k}) got a CacheFactoryError with no factory failing while it waited`,
          );
        }
      } else if (!(name === 'CacheTimeoutError' && options.hardTimeoutMs > 0)) {
        add('unexpected-error', `${i.c} (key ${call.k}) rejected with ${name}: ${message}`);
      }
      continue;
    }
    const value = end.value;
    const producer = value === undefined ? undefined : calls.get(value.c);
    if (value === undefined || producer?.fstart?.v !== value.v || value.k !== call.k) {
      add(
        'wrong-value',
        `${i.c} (key ${call.k}) returned ${JSON.stringify(value)}, no factory run of the key`,
      );
      continue;
    }
    if (producer.c !== i.c) stats.sharedValues++;
    // Invalidations of the key completed before this call started, the latest start first.
    const before = (clearings.get(call.k) ?? [])
      .filter((cl) => cl.done?.ok === true && (cl.done?.v ?? 0) < call.v)
      .sort((a, b) => b.start.v - a.start.v);
    const latest = before[0];
    if (latest === undefined || value.v > latest.start.v) continue;
    const stored = producer.cend?.value?.v === value.v ? producer.cend.v : Number.POSITIVE_INFINITY;
    const which = `${latest.start.kind} ${latest.start.c}`;
    if (stored < latest.start.v) {
      add(
        'stale-after-invalidation',
        `${i.c} (key ${call.k}) got version ${value.v}, stored before ${which} (started ${latest.start.v}) completed`,
      );
    } else {
      add(
        'invalidation-race',
        `${i.c} (key ${call.k}) got version ${value.v} of a fill that overlapped ${which} (started ${latest.start.v})`,
      );
    }
  }

  // At most one protected factory run per key at a time.
  const protectedRuns = runs
    .filter((r) => (r.fstart?.t ?? 0) - (r.call?.t ?? 0) < options.lockTimeoutMs - LOCK_WAIT_MARGIN_MS)
    .sort((a, b) => (a.fstart?.v ?? 0) - (b.fstart?.v ?? 0));
  // A call that settled before its factory started (a stale value served, the refresh running in the
  // background) does not end that factory's run.
  const endOf = (r: CallInfo) =>
    Math.min(
      r.fend?.v ?? Infinity,
      r.cend !== undefined && r.cend.v > (r.fstart?.v ?? 0) ? r.cend.v : Infinity,
      killed.get(r.proc)?.v ?? Infinity,
    );
  /** Whether `a`'s process may have been starved for half a lease between `a`'s start and `until`. */
  const starved = (a: CallInfo, until: number): boolean => {
    const start = a.fstart as Rec<'fstart'>;
    const limit = options.lockTtlMs / 2;
    if (stalls.some((s) => s.p === a.proc && s.ms >= limit && s.t >= start.t && s.t - s.ms <= until))
      return true;
    const spec = a.call?.f;
    if (spec === undefined || spec.kind === 'hang') return false;
    // Its factory settled late, or its process was killed while the factory should have settled.
    const settledAt = a.fend?.t ?? killed.get(a.proc)?.t;
    return settledAt !== undefined && settledAt - start.t - spec.ms >= limit;
  };
  for (const [n, a] of protectedRuns.entries()) {
    const aStart = a.fstart as Rec<'fstart'>;
    const aEnd = endOf(a);
    const lockExpiry = Math.min(
      options.lease ? Infinity : aStart.t + options.lockTtlMs - LOCK_TTL_MARGIN_MS,
      options.hardTimeoutMs > 0 ? aStart.t + options.hardTimeoutMs - LOCK_TTL_MARGIN_MS : Infinity,
    );
    for (const b of protectedRuns.slice(n + 1)) {
      const bStart = b.fstart as Rec<'fstart'>;
      if (bStart.v > aEnd || bStart.t >= lockExpiry) continue;
      if (b.call?.k !== a.call?.k) continue;
      add(
        options.lease && starved(a, bStart.t) ? 'double-fill-after-stall' : 'double-fill',
        `key ${a.call?.k}: factory of ${b.c} started (v ${bStart.v}) while ${a.c}'s ran (v ${aStart.v}, ${a.call?.f.kind})`,
      );
    }
  }
  return { violations, stats };
}

/** Violations grouped by kind, for reports. */
export function byKind(violations: readonly Violation[]): Partial<Record<ViolationKind, string[]>> {
  const out: Partial<Record<ViolationKind, string[]>> = {};
  for (const v of violations) out[v.kind] = [...(out[v.kind] ?? []), v.detail];
  return out;
}
