/**
 * The factory context: what a cached function's factory may decide about the entry it produces, from
 * its result (as bentocache's `setOptions`/`setTags`/`skip` and FusionCache's adaptive caching do).
 *
 * `getOrSet(key, (ctx) => ..., options)` and `getOrSetMany` pass it to the factory; `cacheResult(fn,
 * { context: true })` passes it to `fn` as an extra last argument (the wrapper's signature is unchanged).
 *
 * @module
 */
import { CacheValidationError } from '../errors.js';
import { validateTags } from './tags.js';

/** Largest TTL (plus grace) accepted, in seconds (as for `set`). */
export const MAX_TTL = 2 ** 32;

/** What a factory may set on the entry it produces. Setters validate at once (they throw in the factory). */
export interface FactoryContext {
  /** The key being filled (below the namespace; for `cacheResult`, the full result key). */
  readonly key: string;
  /**
   * Seconds the produced value stays fresh. Starts at the call's `ttl`.
   * @throws {CacheValidationError} when set to anything but an integer from 1 to 2^32.
   */
  ttl: number;
  /**
   * Seconds the value may be served stale past its TTL (see `grace`). Starts at the call's `grace`.
   * @throws {CacheValidationError} when set to anything but an integer from 0 to 2^32.
   */
  grace: number;
  /**
   * More tags of the entry (besides the call's `tags` option), real tags: `invalidateTags` of any of them
   * makes the entry stale or removed (typed codec; with the `'client'` codec an entry with tags is not
   * stored). Their stamps are read when the factory returns, so an invalidation of such a tag in another
   * process while the factory runs may be missed (name the tag in the call's `tags` option to cover
   * that). Starts empty; repeats are dropped.
   * @throws {CacheValidationError} when set to anything but an array of at most 64 non-empty strings.
   */
  tags: readonly string[];
  /** Return the value to the caller(s) but store nothing (a partial or error-shaped result). */
  skip(): void;
  /** Whether {@link FactoryContext.skip} was called. */
  readonly skipped: boolean;
}

function check(value: unknown, name: string, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_TTL) {
    throw new CacheValidationError(
      `The factory context's \`${name}\` must be an integer from ${min} to ${MAX_TTL}`,
    );
  }
  return value;
}

/** A {@link FactoryContext} with the call's options as its starting values. @internal */
export class FillContext implements FactoryContext {
  readonly key: string;
  #ttl: number;
  #grace: number;
  #tags: readonly string[] = [];
  #skipped = false;
  /** Whether the factory changed the TTL, grace or tags (the entry then carries them, typed codec). */
  changed = false;

  /**
   * @param key - the key filled.
   * @param ttl - the call's TTL in seconds.
   * @param grace - the call's grace in seconds.
   */
  constructor(key: string, ttl: number, grace: number) {
    this.key = key;
    this.#ttl = ttl;
    this.#grace = grace;
  }

  get ttl(): number {
    return this.#ttl;
  }

  set ttl(value: number) {
    this.#ttl = check(value, 'ttl', 1);
    this.changed = true;
  }

  get grace(): number {
    return this.#grace;
  }

  set grace(value: number) {
    this.#grace = check(value, 'grace', 0);
    this.changed = true;
  }

  get tags(): readonly string[] {
    return this.#tags;
  }

  set tags(value: readonly string[]) {
    this.#tags = Object.freeze([...validateTags(value, "The factory context's `tags`")]);
    this.changed = true;
  }

  get skipped(): boolean {
    return this.#skipped;
  }

  skip(): void {
    this.#skipped = true;
  }
}
