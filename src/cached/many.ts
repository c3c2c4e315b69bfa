/**
 * `getOrSetMany`: read-through for a batch of keys. One read for every key (`MGET`, with their `PTTL`s
 * in the same round trip when grace or eager refresh needs them), then one factory call with only the
 * missing keys, whose result (a `Map` or a record) is stored in one `MSET`. Each missing key keeps the
 * protections of `getOrSet`: calls of this process on a key share its fill (a `getOrSet` of a key
 * being filled by a batch joins it, and a batch joins a key another call is filling), and across
 * processes each key has its fill lock (a lease): keys whose lock another process holds are waited for
 * (at most `lockTimeoutMs`, then filled here without the lock), the others are produced together.
 *
 * Keys the factory's result leaves out read as `undefined` and are not stored. A failure of the factory
 * (or of another process's factory this call waited for) rejects the whole call. With `hardTimeoutMs`
 * the whole call is bounded; the fills of its keys are then abandoned (a late result is not stored).
 * A stale value (grace) or one due for an eager refresh is served at once while one background refresh
 * of that key runs (through the factory, with that key alone); `timeoutMs` is not awaited. The
 * in-process fallback is not used: while the cache fails, the factory runs for every key.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import {
  CacheConnectionError,
  CacheError,
  CacheFactoryError,
  CacheTimeoutError,
  CacheValidationError,
} from '../errors.js';
import { validateKey } from '../keys.js';
import { cacheControlDecision } from './cache-control.js';
import type { GetOrSetOptions, Resolved } from './call-options.js';
import { readWithStamps } from './entry-meta.js';
import { type FactoryContext, FillContext, MAX_TTL } from './factory-context.js';
import { FAILURE_MARK_MS } from './lock.js';
import type { CachedFunctions, Entry, Factory, Fill, ReadRecorder } from './read-through.js';

/** What a batch factory returns: the values of (some of) the missing keys. */
export type ManyResult<T> = ReadonlyMap<string, T> | Readonly<Record<string, T>>;

/**
 * A batch factory: the missing keys (each once, in the order of their first appearance) and the
 * context (its `key` is `''`; `ttl`, `grace`, `tags` and `skip()` apply to every key it stores).
 */
export type ManyFactory<T> = (
  missing: string[],
  ctx: FactoryContext,
) => ManyResult<T> | Promise<ManyResult<T>>;

const OP = 'getOrSetMany';

/** The factory's result, checked to be a `Map` or a plain record. */
function checked<T>(result: unknown): ManyResult<T> {
  if (result instanceof Map) return result as ReadonlyMap<string, T>;
  if (result !== null && typeof result === 'object' && !Array.isArray(result)) {
    return result as Readonly<Record<string, T>>;
  }
  throw new CacheValidationError(
    "getOrSetMany failed: the factory must return a Map or a record of the missing keys' values",
  );
}

/** The value of `key` in a factory's result (`undefined` when left out). */
function pick<T>(result: ManyResult<T>, key: string): T | undefined {
  if (result instanceof Map) return result.get(key);
  return Object.hasOwn(result, key) ? (result as Readonly<Record<string, T>>)[key] : undefined;
}

function isCacheFailure(err: unknown): boolean {
  return err instanceof CacheError && !(err instanceof CacheValidationError);
}

/** See {@link CacheClient.getOrSetMany}. */
export function getOrSetMany<T>(
  core: CachedFunctions,
  keys: readonly string[],
  factory: ManyFactory<T>,
  options: GetOrSetOptions = {},
): Promise<(Awaited<T> | undefined)[]> {
  let o: Resolved;
  let ttl: number | undefined;
  try {
    if (!Array.isArray(keys)) throw new CacheValidationError('getOrSetMany needs an array of keys');
    for (const key of keys) validateKey(key);
    if (typeof factory !== 'function')
      throw new CacheValidationError('getOrSetMany needs a factory function');
    o = core.resolve(options, OP);
    const decision = cacheControlDecision(options.cacheControl, o.ttl, MAX_TTL);
    ttl = decision.kind === 'cache' ? decision.ttl : undefined;
  } catch (err) {
    return Promise.reject(err);
  }
  const unique = [...new Set(keys)];
  return core.host.call(OP, unique.length, async (reads) => {
    if (unique.length === 0) return [];
    let values: Map<string, unknown>;
    if (ttl === undefined) {
      core.counters.bypasses++;
      core.counters.factoryRuns++;
      const result = checked<T>(await factory([...unique], new FillContext('', o.ttl, o.grace)));
      values = new Map(unique.map((key) => [key, pick(result, key)]));
    } else {
      values = await new BatchFill<T>(core, { ...o, ttl }, factory).run(unique, reads);
    }
    return keys.map((key) => values.get(key) as Awaited<T> | undefined);
  });
}

/** One `getOrSetMany` call's fills. */
class BatchFill<T> {
  readonly #core: CachedFunctions;
  readonly #o: Resolved;
  readonly #factory: ManyFactory<T>;
  readonly #values = new Map<string, unknown>();
  /** Keys answered by the cache (the rest are misses). */
  readonly #hits = new Set<string>();
  readonly #fills = new Map<string, Fill>();
  #abandoned = false;

  constructor(core: CachedFunctions, o: Resolved, factory: ManyFactory<T>) {
    this.#core = core;
    this.#o = o;
    this.#factory = factory;
  }

  async run(keys: string[], reads: ReadRecorder): Promise<Map<string, unknown>> {
    const core = this.#core;
    if (core.host.closed()) throw new CacheConnectionError(`${OP} failed: the client is closed`);
    const joined: Promise<void>[] = [];
    const own: string[] = [];
    for (const key of keys) {
      const shared = core.shared(key);
      if (shared === undefined) own.push(key);
      else joined.push(this.#join(key, shared));
    }
    await this.#bounded(own.length === 0 ? Promise.resolve() : this.#own(own, joined));
    await Promise.all(joined); // the fills this call joined, also those it joined after its read
    reads(this.#hits.size, keys.length - this.#hits.size);
    return this.#values;
  }

  /** Join this process's fill of `key`. */
  #join(key: string, shared: Promise<{ value: unknown; hit: boolean }>): Promise<void> {
    this.#core.counters.coalesced++;
    const joined = shared.then((outcome) => {
      this.#values.set(key, outcome.value);
      if (outcome.hit) this.#hits.add(key);
    });
    joined.catch(() => {}); // owned: awaited by run() once this call's own fills are done
    return joined;
  }

  /**
   * Fill `keys` for this call (and share each fill with the other calls of this process until it
   * settles); a key another call of this process started filling meanwhile is joined (into `joined`).
   */
  async #fillShared(keys: string[], joined: Promise<void>[]): Promise<void> {
    const core = this.#core;
    const mine: string[] = [];
    const settle: ((error: unknown) => void)[] = [];
    for (const key of keys) {
      const shared = core.shared(key);
      if (shared !== undefined) {
        joined.push(this.#join(key, shared));
        continue;
      }
      mine.push(key);
      const fill = core.newFill(OP, key, this.#o);
      this.#fills.set(key, fill);
      core.share(
        fill,
        new Promise<{ value: unknown; hit: boolean }>((resolve, reject) => {
          settle.push((error) =>
            error === undefined ? resolve({ value: this.#values.get(key), hit: false }) : reject(error),
          );
        }),
      );
    }
    try {
      if (mine.length > 0) await this.#fillMissing(mine);
    } catch (err) {
      for (const done of settle) done(err);
      throw err;
    }
    for (const done of settle) done(undefined);
  }

  /** `work`, or with `hardTimeoutMs` a {@link CacheTimeoutError} at that deadline (the fills abandoned). */
  #bounded(work: Promise<void>): Promise<void> {
    const ms = this.#o.hardTimeoutMs;
    if (ms === 0) return work;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#abandoned = true;
        for (const fill of this.#fills.values()) this.#core.abandon(fill);
        reject(new CacheTimeoutError(`${OP} failed: no result for the keys within hardTimeoutMs (${ms} ms)`));
      }, ms);
    });
    const bounded = Promise.race([work, deadline]);
    const clear = () => clearTimeout(timer);
    bounded.then(clear, clear);
    return bounded;
  }

  /** Read this call's keys; fill the missing ones (joining the fills of this process started meanwhile). */
  async #own(keys: string[], joined: Promise<void>[]): Promise<void> {
    const core = this.#core;
    if (core.breakerOpen()) {
      core.counters.breakerSkips++;
      return this.#withoutCache(keys);
    }
    let entries: (Entry | null)[];
    try {
      entries = await this.#read(keys);
    } catch (err) {
      return this.#cacheFailed(err, keys);
    }
    const missing: string[] = [];
    keys.forEach((key, i) => {
      const entry = entries[i] ?? null;
      if (entry === null) {
        core.counters.misses++;
        missing.push(key);
        return;
      }
      core.counters.hits++;
      this.#hits.add(key);
      this.#values.set(key, entry.value);
      if (entry.state === 'fresh') return;
      if (entry.state === 'stale') core.counters.staleServed++;
      else core.counters.eagerRefreshes++;
      core.refresh(core.newFill(OP, key, this.#o), this.#single(key));
    });
    if (missing.length > 0) await this.#fillShared(missing, joined);
  }

  /** The fill of `key` (a key this call did not fill: a fill for naming it in a warning). */
  #fill(key: string): Fill {
    return this.#fills.get(key) ?? this.#core.newFill(OP, key, this.#o);
  }

  /** The batch factory for one key (background refreshes are per key). */
  #single(key: string): Factory<T | undefined> {
    return async (ctx) => pick(checked<T>(await this.#factory([key], ctx)), key);
  }

  /**
   * One read of `keys` with the stamps of the call's tags (one `MGET`), and their `PTTL`s in the same
   * round trip when freshness needs them.
   */
  #read(keys: string[]): Promise<(Entry | null)[]> {
    const o = this.#o;
    return this.#core.host.io(OP, async (engine, ks) => {
      const stored = keys.map((key) => ks.key(key));
      const needsPttl = o.grace > 0 || o.eagerRefresh > 0;
      const [raws, pttls] = await Promise.all([
        readWithStamps(engine, ks, stored, o.tagKeys),
        needsPttl ? Promise.all(stored.map((key) => engine.pttl(key))) : undefined,
      ]);
      return Promise.all(
        stored.map((key, i) =>
          this.#core.entry(raws[i] ?? null, pttls?.[i], o, {
            engine,
            ks,
            stored: key,
            stamps: raws,
            from: stored.length,
          }),
        ),
      );
    });
  }

  /** The cache failed: note it (the breaker opens for a failure of the cache as a whole), fill without it. */
  #cacheFailed(err: unknown, keys: string[]): Promise<void> {
    if (!isCacheFailure(err) || this.#core.host.closed() || this.#abandoned) throw err;
    this.#core.noteCacheError(err, this.#fill(keys[0] as string));
    return this.#withoutCache(keys);
  }

  /** Take each key's lock: produce the keys locked here together; wait for the others' owners. */
  async #fillMissing(keys: string[]): Promise<void> {
    const core = this.#core;
    const deadline = performance.now() + this.#o.lockTimeoutMs;
    let pending = keys;
    while (pending.length > 0) {
      if (this.#abandoned) return;
      const tokens = new Map(pending.map((key) => [key, randomUUID()]));
      const taken = await Promise.allSettled(
        pending.map((key) => core.acquire(this.#fill(key), tokens.get(key) as string)),
      );
      const failed = taken.find((t): t is PromiseRejectedResult => t.status === 'rejected');
      if (failed !== undefined) {
        taken.forEach((t, i) => {
          const key = pending[i] as string;
          if (t.status === 'fulfilled' && t.value) core.release(this.#fill(key), tokens.get(key) as string);
        });
        return this.#cacheFailed(failed.reason, pending);
      }
      const mine = pending.filter((_, i) => (taken[i] as PromiseFulfilledResult<boolean>).value);
      const next: string[] = [];
      const unlocked: string[] = [];
      const work: Promise<unknown>[] = [];
      if (mine.length > 0) work.push(this.#produceLocked(mine, tokens));
      for (const key of pending.filter((_, i) => !(taken[i] as PromiseFulfilledResult<boolean>).value)) {
        work.push(
          core.waitForOwner(this.#fill(key), deadline).then(
            (waited) => {
              if (waited === 'free') next.push(key);
              else if (waited === 'timeout') {
                core.counters.lockTimeouts++;
                unlocked.push(key);
              } else this.#values.set(key, waited.value);
            },
            (err: unknown) => {
              if (err instanceof CacheFactoryError || !isCacheFailure(err) || this.#abandoned) throw err;
              core.noteCacheError(err, this.#fill(key));
              unlocked.push(key);
            },
          ),
        );
      }
      await Promise.all(work);
      if (unlocked.length > 0) await this.#produce(unlocked, null);
      pending = next;
    }
  }

  /** Keys whose locks are ours: read them again (another caller may have just stored them), produce the rest. */
  async #produceLocked(keys: string[], tokens: Map<string, string>): Promise<void> {
    const core = this.#core;
    let current: (Entry | null)[];
    try {
      current = await this.#read(keys);
    } catch {
      current = []; // the production meets the failing cache
    }
    const run: string[] = [];
    keys.forEach((key, i) => {
      const entry = current[i] ?? null;
      if (entry !== null && entry.state === 'fresh') {
        core.counters.rechecks++;
        this.#values.set(key, entry.value);
        core.release(this.#fill(key), tokens.get(key) as string);
      } else {
        core.hold(this.#fill(key), tokens.get(key) as string);
        run.push(key);
      }
    });
    if (run.length > 0) await this.#produce(run, tokens);
  }

  /**
   * Run the factory once for `keys`, store what it returned (one `MSET`), release their locks
   * (`tokens`; `null` when running without locks).
   */
  async #produce(keys: string[], tokens: Map<string, string> | null): Promise<void> {
    const core = this.#core;
    const o = this.#o;
    core.counters.factoryRuns++;
    const ctx = new FillContext('', o.ttl, o.grace);
    const fills = keys.map((key) => this.#fill(key));
    const started = await core.startRun(fills, o);
    try {
      await this.#run(keys, tokens, ctx, started);
    } finally {
      core.endRun(fills);
    }
  }

  /** {@link #produce} once the run started (`started`: the stamps of the call's tags, see `startRun`). */
  async #run(
    keys: string[],
    tokens: Map<string, string> | null,
    ctx: FillContext,
    started: number[] | null,
  ): Promise<void> {
    const core = this.#core;
    const o = this.#o;
    let result: ManyResult<T>;
    try {
      result = checked<T>(await this.#factory([...keys], ctx));
    } catch (err) {
      const marks: Promise<void>[] = [];
      for (const key of keys) {
        const fill = this.#fill(key);
        fill.lease?.stop();
        const token = tokens?.get(key);
        if (token !== undefined && !fill.abandoned && !core.host.closed()) {
          marks.push(core.markFailed(fill, token, FAILURE_MARK_MS));
        }
      }
      await Promise.all(marks); // written before the failure reaches anyone (see read-through.ts)
      throw err;
    }
    const fills = keys.map((key) => this.#fill(key));
    for (const fill of fills) fill.lease?.stop();
    const stamps = ctx.skipped ? null : await core.entryStamps(fills, ctx, started);
    const entries: [string, string][] = [];
    for (const key of keys) {
      const value = pick(result, key);
      const encoded =
        value === undefined || ctx.skipped ? undefined : core.encodeFor(key, value, o, ctx, stamps ?? []);
      // Not stored: its tags' stamps unknown, or deleted / invalidated in this process meanwhile.
      if (encoded !== undefined && stamps !== null && !this.#fill(key).voided) entries.push([key, encoded]);
      this.#values.set(key, core.asRead(value, encoded, o));
    }
    // Closed meanwhile (close() released the locks) or abandoned: nothing is stored.
    if (core.host.closed() || this.#abandoned) return;
    if (entries.length > 0) {
      const ttl = Math.min(ctx.ttl + ctx.grace, MAX_TTL);
      try {
        await core.host.io(OP, (engine, ks) =>
          engine.mset(
            entries.map(([key, encoded]) => [ks.key(key), encoded] as const),
            ttl,
          ),
        );
      } catch (err) {
        if (!isCacheFailure(err) || core.host.closed()) throw err;
        core.noteCacheError(err, this.#fill(keys[0] as string));
      }
    }
    if (tokens !== null) for (const key of keys) core.release(this.#fill(key), tokens.get(key) as string);
  }

  /** The cache is failing: one factory run for every key, nothing stored. */
  async #withoutCache(keys: string[]): Promise<void> {
    const core = this.#core;
    core.counters.factoryRuns++;
    const ctx = new FillContext('', this.#o.ttl, this.#o.grace);
    const result = checked<T>(await this.#factory([...keys], ctx));
    for (const key of keys) {
      const value = pick(result, key);
      const encoded =
        value === undefined || this.#o.typed ? undefined : core.encodeFor(key, value, this.#o, ctx, []);
      this.#values.set(key, core.asRead(value, encoded, this.#o));
    }
  }
}
