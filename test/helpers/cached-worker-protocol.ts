/**
 * What the randomized concurrency test of cached functions (test/cached-concurrency.test.ts, the
 * `soak:cached` script) shares between its parent and its worker processes (cached-worker.ts): the
 * worker's configuration, the commands the parent sends, and the event records of the history.
 *
 * The history is one Redis list outside every tenant's namespace. Each record is appended by
 * {@link LOG_SCRIPT}, which also increments a counter and reads the server's `TIME` in the same atomic
 * step, so every record carries a server-assigned sequence number `v` (a total order of all events of
 * all processes) and a server time `t` (one clock: no machine clocks are compared). A factory returns
 * the `v` of its `fstart` record as the version of its value.
 *
 * @module
 */

/** What a factory does: settle with a value or an error after `ms`, or never settle. */
export type FactorySpec =
  | { readonly kind: 'ok'; readonly ms: number }
  | { readonly kind: 'fail'; readonly ms: number }
  | { readonly kind: 'hang' };

/** A command of the parent to one worker. */
export type WorkerCommand =
  | { readonly op: 'getOrSet'; readonly c: string; readonly key: number; readonly factory: FactorySpec }
  | { readonly op: 'invalidate'; readonly c: string; readonly key: number }
  | { readonly op: 'delete'; readonly c: string; readonly key: number }
  /** Stop taking commands; reply `finished` once no call can still become overdue. */
  | { readonly op: 'finish' };

/** A message of a worker to the parent. */
export type WorkerMessage = { readonly type: 'ready' } | { readonly type: 'finished' };

/** The worker's configuration (env `CONC_CONFIG`, JSON). */
export interface WorkerConfig {
  /** `redis://127.0.0.1:<port>` of the test server. */
  readonly url: string;
  /** Tenant of the worker's `CacheClient` (the same for every worker of a run). */
  readonly tenant: string;
  /** Keys of the counter and of the history list (outside the tenant's namespace). */
  readonly clockKey: string;
  readonly logKey: string;
  /** Worker slot and generation (a respawned slot has the next generation). */
  readonly worker: number;
  readonly gen: number;
  /** `getOrSet` options, in milliseconds. */
  readonly lockTimeoutMs: number;
  readonly lockTtlMs: number;
  /** `hardTimeoutMs` of every call; 0 when the library has no such option (calls pass none). */
  readonly hardTimeoutMs: number;
  /**
   * More `getOrSet` options of every call (`ttl` in seconds, default 600; `grace`, `eagerRefresh`...),
   * e.g. to exercise background refreshes in the soak.
   */
  readonly extraOptions: Readonly<Record<string, number>>;
  /** Longest `ms` of a factory that settles. */
  readonly maxFactoryMs: number;
  /** Added to every wait bound before a call counts as overdue, in milliseconds. */
  readonly slackMs: number;
}

/**
 * The cached key of key number `n`: `item:<n>:v`, tagged {@link itemTag}, invalidated by
 * `invalidateTags([itemTag(n)], { behavior: 'remove' })` with `invalidate({ entityId: n, targetedPatterns:
 * ['item'] }, { wait: true })`.
 */
export function cachedKey(n: number): string {
  return `item:${n}:v`;
}

/** The tag of key number `n` (see {@link cachedKey}). */
export function itemTag(n: number): string {
  return `item:${n}`;
}

/** The value every factory returns: its `fstart` sequence number, its call and its key. */
export interface FactoryValue {
  readonly v: number;
  readonly c: string;
  readonly k: number;
}

/** The body of one history record (`v` and `t` are added by the server). */
export type EventBody =
  /** A `getOrSet` call is about to start. */
  | {
      readonly e: 'call';
      readonly c: string;
      readonly w: number;
      readonly k: number;
      readonly f: FactorySpec;
    }
  /** A call's factory started; its value has this record's `v`. */
  | { readonly e: 'fstart'; readonly c: string; readonly w: number; readonly k: number }
  /** A call's factory settled (ok: returned its value; else threw). */
  | { readonly e: 'fend'; readonly c: string; readonly k: number; readonly ok: boolean }
  /** A `getOrSet` call settled: its value, or the class and message of its error; `ms`: its duration. */
  | {
      readonly e: 'cend';
      readonly c: string;
      readonly k: number;
      readonly ms: number;
      readonly value?: FactoryValue;
      readonly err?: { readonly name: string; readonly message: string; readonly cacheError: boolean };
    }
  /** A call is still pending past its bound. */
  | {
      readonly e: 'overdue';
      readonly c: string;
      readonly w: number;
      readonly k: number;
      readonly boundMs: number;
    }
  /** An `invalidate` or `delete` of a key is about to start / has completed. */
  | { readonly e: 'istart'; readonly c: string; readonly k: number; readonly kind: 'invalidate' | 'delete' }
  | {
      readonly e: 'idone';
      readonly c: string;
      readonly k: number;
      readonly ok: boolean;
      readonly err?: string;
    }
  /** The worker's event loop was blocked `ms` (a starved process) until this record; `p`: `<worker>.<gen>`. */
  | { readonly e: 'stall'; readonly p: string; readonly ms: number }
  /** The parent SIGKILLed a worker (logged once it has exited: after every record it could write). */
  | { readonly e: 'kill'; readonly w: number; readonly gen: number };

/** A history record: the server's sequence number and time (ms, fractional) and the body. */
export type EventRecord = EventBody & { readonly v: number; readonly t: number };

/**
 * Lua: `INCR` the clock (KEYS[1]), read `TIME`, append `<v> <sec> <usec> <body>` to the log (KEYS[2]);
 * returns `v`. One atomic step, so the list's order is the sequence order.
 */
export const LOG_SCRIPT = `
local v = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
redis.call('RPUSH', KEYS[2], v .. ' ' .. t[1] .. ' ' .. t[2] .. ' ' .. ARGV[1])
return v`;

/** Parse the lines of the history list. */
export function parseHistory(lines: readonly string[]): EventRecord[] {
  return lines.map((line) => {
    const [v, sec, usec] = line.split(' ', 3) as [string, string, string];
    const body = line.slice(v.length + sec.length + usec.length + 3);
    return { ...(JSON.parse(body) as EventBody), v: Number(v), t: Number(sec) * 1000 + Number(usec) / 1000 };
  });
}
