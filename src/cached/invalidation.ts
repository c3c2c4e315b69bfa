/**
 * Invalidation of cached functions that costs what it removes.
 *
 * - `invalidateTags(tags)`: one `INCRBY` per tag stamp (see `tags.ts`), sent together. Nothing is scanned.
 * - `invalidate({ entityId, targetedPatterns, broadPatterns })` (Python's `invalidate_cache`), in two steps:
 *   1. **Logical, before the call resolves, O(number of patterns):** a `'remove'` raise of the implicit
 *      stamps every entry of `cacheResult` carries: `(deploymentId, keyPrefix, entityId)` for each
 *      targeted pattern and `(deploymentId, keyPrefix)` for each broad pattern (patterns without glob
 *      characters only). Our entries under exactly those key prefixes are misses from then on, in every
 *      process.
 *   2. **Physical, after the call resolves:** the old SCAN + UNLINK of every key matching the patterns
 *      (Python's layout), which deletes the entries Peak's Python SDK wrote, the entries our logical step
 *      does not cover (a broad pattern `user` also matches the key prefix `users`; glob patterns; custom
 *      `key`s; the `'client'` codec), and frees the memory of ours. Scans are **coalesced**: one pass at a
 *      time per client; every invalidation that arrives while a pass runs joins the next pass, which
 *      walks the namespace once for all of their patterns (one `SCAN ... MATCH <namespace><deployment>:*`,
 *      keys tested against every pattern here). A burst of any size therefore starts at most two passes.
 *      `invalidate(options, { wait: true })` resolves when this call's keys are deleted.
 *
 * @module
 */

import type { Engine } from '../engines/engine.js';
import { escapeGlob, globMatcher } from '../engines/glob.js';
import { CacheValidationError } from '../errors.js';
import type { KeySpace } from '../keys.js';
import { validatePattern } from '../keys.js';
import type { CacheLogger } from '../logger.js';
import { checkOptionNames } from '../options.js';
import { entityText, type InvalidateOptions, invalidationPatterns } from './keys.js';
import { INVALIDATE_OPTIONS } from './option-names.js';
import {
  IMPLICIT_STAMP_TTL,
  type InvalidateTagsOptions,
  implicitStampBase,
  implicitStampKey,
  REMOVE_STEP,
  stampStep,
  storedStampKey,
  tagStampKey,
  validateTags,
} from './tags.js';

/** Keys per SCAN step and per UNLINK of the physical deletion. */
export const SCAN_BATCH = 1000;

/** Options of one `invalidate` call (how long it waits). */
export interface InvalidateCallOptions {
  /**
   * Wait for the physical deletion (the SCAN of the patterns, which removes entries written by Python,
   * by a plain `set`, or under patterns the logical step does not cover) and resolve with the number of
   * keys it deleted. Without it, `invalidate` resolves as soon as our entries are invisible and the
   * deletion runs in the background.
   * @default false
   */
  wait?: boolean;
}

/** Counters of invalidation, part of `stats().cachedFunctions`. */
export interface InvalidationCounters {
  /** Tag stamps raised by `invalidateTags` (one per tag per call). */
  tagInvalidations: number;
  /** Implicit entity / key-prefix stamps raised by `invalidate`. */
  implicitInvalidations: number;
  /** Patterns handed to the physical deletion. */
  scanPatterns: number;
  /** Physical deletion passes started (each walks the namespace once for every pattern queued). */
  scanPasses: number;
  /** Keys deleted by physical deletion passes. */
  scanDeleted: number;
  /** Passes that failed (their keys stay until the next invalidation of the pattern or their TTL). */
  scanErrors: number;
}

interface Job {
  /** `SCAN MATCH` of the pass that serves this job (the namespace and deployment, escaped). */
  readonly match: string;
  /** This call's patterns, compiled (full stored keys). */
  readonly tests: readonly ((key: string) => boolean)[];
  deleted: number;
  resolve(deleted: number): void;
  reject(err: unknown): void;
}

const IS_GLOB = /[*?[\]\\]/;

/** What invalidation needs from its client (a part of the cached functions' host). @internal */
export interface InvalidationHost {
  /** Run engine I/O as the client operation `operation` (connection, namespace, error mapping). */
  io<V>(operation: string, body: (engine: Engine, ks: KeySpace) => Promise<V>): Promise<V>;
  /**
   * Run one public call (valid input): counted once in `stats().operations[operation]`, one span on the
   * tracing channel naming `keys` keys (see `CachedHost.call`).
   */
  call<R>(operation: string, keys: number, body: () => Promise<R>): Promise<R>;
  /** Whether the client was closed. */
  closed(): boolean;
  readonly logger: CacheLogger;
  /** The deployment id: the value once known, a promise while it is resolved (see `deployment.ts`). */
  deploymentId(): string | null | Promise<string | null>;
}

/** Invalidation of one client's cached functions (see the module doc). @internal */
export class Invalidation {
  readonly #host: InvalidationHost;
  readonly #counters: InvalidationCounters;
  readonly #raised: () => void;
  #queue: Job[] = [];
  #running: Promise<void> | undefined;

  /**
   * @param host - the client's side.
   * @param counters - where the counters are kept (the cached functions' counters).
   * @param raised - called once an invalidation's stamps are raised: the fills running in this process
   *   (in the client's namespace) no longer store their results nor are joined by later callers.
   */
  constructor(host: InvalidationHost, counters: InvalidationCounters, raised: () => void) {
    this.#host = host;
    this.#counters = counters;
    this.#raised = raised;
  }

  /** Resolves once no physical deletion is running or queued (never rejects). */
  async settled(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  /** See {@link CacheClient.invalidateTags}. */
  async invalidateTags(tags: readonly string[], options: InvalidateTagsOptions = {}): Promise<void> {
    if (options === null || typeof options !== 'object') {
      throw new CacheValidationError('invalidateTags: the options must be an object');
    }
    checkOptionNames(options, BEHAVIOR_OPTIONS, 'invalidateTags');
    const step = stampStep(options.behavior);
    const unique = validateTags(tags, 'invalidateTags');
    // One call (counted, traced), keys: the tags.
    return this.#host.call('invalidateTags', unique.length, async () => {
      if (unique.length === 0) return;
      await this.#host.io('invalidateTags', (engine, ks) =>
        Promise.all(unique.map((tag) => engine.incrBy(storedStampKey(ks, tagStampKey(tag)), step))),
      );
      this.#counters.tagInvalidations += unique.length;
      this.#raised();
    });
  }

  /** See {@link CacheClient.invalidate}. */
  async invalidate(options: InvalidateOptions, call: InvalidateCallOptions = {}): Promise<number> {
    if (options === null || typeof options !== 'object') {
      throw new CacheValidationError('invalidate needs an options object');
    }
    checkOptionNames(options, INVALIDATE_OPTIONS, 'invalidate');
    if (call === null || typeof call !== 'object')
      throw new CacheValidationError('invalidate: the second argument must be an object');
    checkOptionNames(call, WAIT_OPTIONS, 'invalidate');
    // Checked before the deployment id is awaited, so a bad input fails before any I/O and the
    // validation error names the operation (src/operation.ts).
    const known = this.#host.deploymentId();
    if (known instanceof Promise) invalidationPatterns(null, options);
    const deployment = known instanceof Promise ? await known : known;
    const patterns = invalidationPatterns(deployment, options);
    for (const pattern of patterns) validatePattern(pattern);
    const stamps = implicitStamps(deployment, options);
    // One call (counted, traced; with `wait`, until the deletion is done), keys: the patterns.
    return this.#host.call('invalidate', patterns.length, async () => {
      // Wrapped: a promise returned by `io`'s body would be awaited with it.
      const { job } = await this.#host.io('invalidate', async (engine, ks) => {
        await Promise.all(stamps.map((key) => engine.incrBy(ks.key(key), REMOVE_STEP, IMPLICIT_STAMP_TTL)));
        return { job: this.#schedule(ks, deployment, patterns) };
      });
      this.#counters.implicitInvalidations += stamps.length;
      this.#raised();
      if (call.wait === true) return job;
      job.catch(() => undefined); // reported by the pass (counters, logger)
      return 0;
    });
  }

  /** Queue the physical deletion of `patterns` (below `ks`'s namespace); start a pass if none runs. */
  #schedule(ks: KeySpace, deployment: string | null, patterns: readonly string[]): Promise<number> {
    if (patterns.length === 0) return Promise.resolve(0);
    const match = ks.pattern(deployment === null ? '*' : `${escapeGlob(deployment)}:*`);
    const promise = new Promise<number>((resolve, reject) => {
      this.#queue.push({
        match,
        tests: patterns.map((p) => globMatcher(ks.pattern(p))),
        deleted: 0,
        resolve,
        reject,
      });
    });
    this.#counters.scanPatterns += patterns.length;
    this.#running ??= this.#drain();
    return promise;
  }

  /** Run passes until the queue is empty: each pass takes every job queued so far. */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const jobs = this.#queue;
        this.#queue = [];
        await this.#pass(jobs);
      }
    } finally {
      this.#running = undefined;
    }
  }

  /** One walk per distinct `match` for every job; each job settles with the keys deleted for it. */
  async #pass(jobs: readonly Job[]): Promise<void> {
    this.#counters.scanPasses++;
    const byMatch = new Map<string, Job[]>();
    for (const job of jobs) {
      const group = byMatch.get(job.match);
      if (group === undefined) byMatch.set(job.match, [job]);
      else group.push(job);
    }
    for (const [match, group] of byMatch) {
      try {
        await this.#host.io('invalidate', async (engine) => {
          for await (const batch of engine.scan(match, SCAN_BATCH)) {
            const doomed = new Set<string>();
            for (const key of batch) {
              for (const job of group) {
                if (job.tests.some((test) => test(key))) {
                  job.deleted++;
                  doomed.add(key);
                }
              }
            }
            if (doomed.size > 0) this.#counters.scanDeleted += await engine.unlink([...doomed]);
          }
        });
        for (const job of group) job.resolve(job.deleted);
      } catch (err) {
        for (const job of group) job.reject(err);
        if (this.#host.closed()) continue; // closed meanwhile: nothing to report
        this.#counters.scanErrors++;
        this.#host.logger.warn(
          `peak-cache: deleting invalidated keys failed (they stay until invalidated again or expired): ${err instanceof Error ? err.message : 'unknown error'}`,
        );
      }
    }
  }
}

const BEHAVIOR_OPTIONS: ReadonlySet<string> = new Set(['behavior']);
const WAIT_OPTIONS: ReadonlySet<string> = new Set(['wait']);

/** The implicit stamps an invalidation raises: one per pattern without glob characters. */
function implicitStamps(deploymentId: string | null, options: InvalidateOptions): string[] {
  const entity = entityText(options.entityId);
  const keys: string[] = [];
  for (const pattern of options.targetedPatterns ?? []) {
    if (entity !== null && !IS_GLOB.test(pattern)) keys.push(implicitStampKey(deploymentId, pattern, entity));
  }
  for (const pattern of options.broadPatterns ?? []) {
    if (!IS_GLOB.test(pattern)) keys.push(implicitStampKey(deploymentId, pattern));
  }
  return keys;
}

/** Most (deployment, key prefix) pairs whose implicit stamp keys are kept built (emptied when full). */
const MAX_PREFIXES = 1024;
const prefixes = new Map<string, { readonly alone: readonly string[]; readonly entity: string }>();

/**
 * The implicit stamp keys an entry of `cacheResult` carries (key prefix, and entity when it has one).
 * Built once per (deployment, key prefix): this runs on every call of a cached function.
 */
export function implicitStampKeys(
  deploymentId: string | null,
  keyPrefix: string,
  entity: string | null,
): readonly string[] {
  const id = `${deploymentId ?? ''}\u0000${deploymentId === null ? 'n' : 's'}${keyPrefix}`;
  let built = prefixes.get(id);
  if (built === undefined) {
    if (prefixes.size >= MAX_PREFIXES) prefixes.clear();
    const base = implicitStampBase(deploymentId, keyPrefix);
    built = { alone: [base.prefix], entity: base.entityBase };
    prefixes.set(id, built);
  }
  return entity === null ? built.alone : [built.alone[0] as string, built.entity + JSON.stringify(entity)];
}
