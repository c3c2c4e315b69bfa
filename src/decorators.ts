/**
 * Method decorators for cached functions: `@cacheResult` and `@invalidateCache`, the TypeScript
 * counterparts of Python's `cache_result` and `invalidate_cache` decorators. They work under both
 * decorator flavours, told apart when the decorator is applied: standard (TC39) decorators (TypeScript
 * 5+ without `experimentalDecorators`, or a runtime with native decorators), called as
 * `(method, context)`, and TypeScript's `experimentalDecorators` (NestJS's default), called as
 * `(prototype, propertyKey, descriptor)`.
 *
 * @example
 * ```ts
 * class Users {
 *   @cacheResult({ client: () => cache, ttl: 600, keyPrefix: 'users', entityId: (id) => id })
 *   async find(id: string): Promise<User> { ... }
 *
 *   @invalidateCache({ client: () => cache, entityId: (id) => id, targetedPatterns: ['users'] })
 *   async rename(id: string, name: string): Promise<void> { ... }
 * }
 * ```
 *
 * @module
 */
import type { InvalidateOptions } from './cached/keys.js';
import { CACHE_RESULT_DECORATOR_OPTIONS, INVALIDATE_DECORATOR_OPTIONS } from './cached/option-names.js';
import type { CacheResultOptions } from './cached/read-through.js';
import type { CacheClient } from './client.js';
import { CacheValidationError } from './errors.js';
import { defaultLogger } from './logger.js';
import { checkOptionNames } from './options.js';

/** Where a decorated method finds its client: the client, or a function of the instance returning it. */
export type ClientSource<This> = CacheClient | ((instance: This) => CacheClient);

/** Options of {@link cacheResult}: those of `CacheClient#cacheResult` plus the client. */
export interface CacheResultDecoratorOptions<This, A extends unknown[]> extends CacheResultOptions<A> {
  /**
   * The client, or a function returning it (called at each call with the instance, so the client may be
   * created after the class is defined).
   */
  client: ClientSource<This>;
}

/** Options of {@link invalidateCache}. */
export interface InvalidateCacheDecoratorOptions<This, A extends unknown[]> {
  /** See {@link CacheResultDecoratorOptions.client}. */
  client: ClientSource<This>;
  /** The entity of a call, from its arguments (needed by `targetedPatterns`). */
  entityId?: (...args: A) => string | number | bigint | null | undefined;
  /** Key prefixes whose entries of the call's entity are cleared (see `CacheClient#invalidate`). */
  targetedPatterns?: readonly string[];
  /** Key prefixes cleared entirely. */
  broadPatterns?: readonly string[];
  /**
   * Also await the background SCAN that deletes matching keys (`invalidate(options, { wait: true })`)
   * before the method's result is returned. Needed for entries stored in the client's codec
   * (`keyStyle: 'python'`, `codec: 'client'`, Python's own): they carry no stamps, so only that SCAN
   * removes them; without `wait`, the next call may still read them until it ends.
   * @default false
   */
  wait?: boolean;
  /**
   * Called when the invalidation fails (the method's result is still returned, as in Python).
   * @default a warning through `process.emitWarning`
   */
  onError?: (error: unknown) => void;
}

type AsyncMethod<This, A extends unknown[], V> = (this: This, ...args: A) => Promise<V>;

/**
 * A method decorator returned by {@link cacheResult} and {@link invalidateCache}: callable as a standard
 * (TC39) decorator and as a TypeScript `experimentalDecorators` one. `A` are the leading parameters the
 * options' functions take; the method may take more.
 */
export interface AsyncMethodDecorator<This, A extends unknown[]> {
  /** Standard (TC39) form: the method and its context; returns the replacement method. */
  <Args extends [...A, ...unknown[]], V>(
    target: AsyncMethod<This, Args, V>,
    context: ClassMethodDecoratorContext<This, AsyncMethod<This, Args, V>>,
  ): AsyncMethod<This, Args, V>;
  /**
   * `experimentalDecorators` form: the prototype (or the class, for a static method), the method's name
   * and its descriptor; returns the descriptor with the replacement method.
   */
  <Args extends [...A, ...unknown[]], V>(
    target: object,
    propertyKey: string | symbol,
    descriptor: TypedPropertyDescriptor<AsyncMethod<This, Args, V>>,
  ): TypedPropertyDescriptor<AsyncMethod<This, Args, V>>;
}

/**
 * Apply `wrap(method, isStatic, name)` in the flavour the decorator was called in: standard
 * `(method, context)` or legacy `(target, propertyKey, descriptor)` (`experimentalDecorators`).
 */
function decorate<This, A extends unknown[]>(
  what: string,
  wrap: <Args extends [...A, ...unknown[]], V>(
    method: AsyncMethod<This, Args, V>,
    isStatic: boolean,
    name: string | symbol,
  ) => AsyncMethod<This, Args, V>,
): AsyncMethodDecorator<This, A> {
  return ((target: unknown, contextOrKey: unknown, descriptor?: PropertyDescriptor) => {
    if (contextOrKey !== null && typeof contextOrKey === 'object') {
      const context = contextOrKey as ClassMethodDecoratorContext;
      if (context.kind !== 'method' || typeof target !== 'function') {
        throw new CacheValidationError(`${what} decorates methods only, not a ${String(context.kind)}`);
      }
      return wrap(target as AsyncMethod<This, [...A], unknown>, context.static, context.name);
    }
    if (descriptor === undefined || typeof descriptor.value !== 'function') {
      throw new CacheValidationError(`${what} decorates methods only`);
    }
    descriptor.value = wrap(
      descriptor.value as AsyncMethod<This, [...A], unknown>,
      typeof target === 'function',
      contextOrKey as string | symbol,
    );
    return descriptor;
  }) as AsyncMethodDecorator<This, A>;
}

function clientOf<This>(source: ClientSource<This>, instance: This): CacheClient {
  const client = typeof source === 'function' ? source(instance) : source;
  if (client === null || typeof client !== 'object' || typeof client.cacheResult !== 'function') {
    throw new CacheValidationError('The `client` option must be a CacheClient or return one');
  }
  return client;
}

/** Options of a decorator: an object with known names only (checked when the class is defined). */
function checkOptions(options: unknown, known: ReadonlySet<string>, what: string): void {
  if (options === null || typeof options !== 'object') {
    throw new CacheValidationError(`${what} needs an options object`);
  }
  checkOptionNames(options, known, what);
}

/** `Class.method` (or `method` when the class has no name), for the function's identity. */
function methodName(instance: unknown, isStatic: boolean, name: string | symbol): string {
  const owner = isStatic
    ? (instance as { name?: unknown } | null)?.name
    : (instance as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof owner === 'string' && owner !== '' ? `${owner}.${String(name)}` : String(name);
}

/**
 * Cache an async method's results (Python: `cache_result`): the decorated method behaves as
 * `client.cacheResult(method, options)`. The function's identity is `Class.method` plus its source;
 * the instance (`this`) is not part of the key (use `key` or `entityId` to include what matters).
 * The method keeps its declared type: with `codec: 'client'` or `keyStyle: 'python'` its results are the
 * client codec's round trip (see `CacheClient.cacheResult`), so declare that type on the method.
 * @throws {CacheValidationError} (rejected by the call) when `client` is not a CacheClient.
 * @throws {CacheValidationError} when the class is defined, for an unknown option (named in the message).
 */
export function cacheResult<This, A extends unknown[] = unknown[]>(
  options: CacheResultDecoratorOptions<This, A>,
): AsyncMethodDecorator<This, A> {
  checkOptions(options, CACHE_RESULT_DECORATOR_OPTIONS, '@cacheResult');
  const { client, ...rest } = options;
  // The option functions may take a prefix of the method's parameters.
  return decorate<This, A>(
    '@cacheResult',
    <Args extends [...A, ...unknown[]], V>(
      target: AsyncMethod<This, Args, V>,
      isStatic: boolean,
      methodKey: string | symbol,
    ): AsyncMethod<This, Args, V> => {
      // One wrapped function per client and class (subclasses share the method's entries only by name).
      const wrapped = new WeakMap<CacheClient, Map<string, AsyncMethod<This, Args, V>>>();
      return function (this: This, ...args: Args): Promise<V> {
        let fn: AsyncMethod<This, Args, V> | undefined;
        try {
          const c = clientOf(client, this);
          const name = rest.name ?? methodName(this, isStatic, methodKey);
          let byName = wrapped.get(c);
          if (byName === undefined) {
            byName = new Map();
            wrapped.set(c, byName);
          }
          fn = byName.get(name);
          if (fn === undefined) {
            fn = c.cacheResult(target, {
              ...rest,
              name,
            } as unknown as CacheResultOptions<Args>) as AsyncMethod<This, Args, V>;
            byName.set(name, fn);
          }
        } catch (err) {
          return Promise.reject(err);
        }
        return fn.apply(this, args);
      };
    },
  );
}

/**
 * Invalidate cached results after an async method succeeds (Python: `invalidate_cache`): once the method
 * resolves, `client.invalidate({ entityId, targetedPatterns, broadPatterns })` runs and is awaited (its
 * logical step: our typed entries are misses in every process; the SCAN that deletes Python's entries
 * and those in the client's codec runs in the background unless `wait`, see `CacheClient#invalidate`),
 * then the method's result is returned. A failing method invalidates nothing. A failing invalidation is
 * reported through `onError` and does not fail the call.
 * @throws {CacheValidationError} when the class is defined, for an unknown option (named in the message).
 */
export function invalidateCache<This, A extends unknown[] = unknown[]>(
  options: InvalidateCacheDecoratorOptions<This, A>,
): AsyncMethodDecorator<This, A> {
  checkOptions(options, INVALIDATE_DECORATOR_OPTIONS, '@invalidateCache');
  const { client, entityId, targetedPatterns, broadPatterns, onError, wait = false } = options;
  if (typeof wait !== 'boolean') throw new CacheValidationError('@invalidateCache: `wait` must be a boolean');
  const report =
    onError ??
    ((err: unknown) =>
      defaultLogger.warn(
        `peak-cache: invalidateCache failed: ${err instanceof Error ? err.message : 'unknown error'}`,
      ));
  return decorate<This, A>(
    '@invalidateCache',
    <Args extends [...A, ...unknown[]], V>(target: AsyncMethod<This, Args, V>): AsyncMethod<This, Args, V> =>
      async function (this: This, ...args: Args): Promise<V> {
        const result = await target.apply(this, args);
        try {
          const entity = entityId?.(...(args as unknown as A)) ?? null;
          // As in Python: without an entity, targeted patterns are skipped.
          const request: InvalidateOptions = {
            entityId: entity,
            ...(targetedPatterns === undefined || entity === null ? {} : { targetedPatterns }),
            ...(broadPatterns === undefined ? {} : { broadPatterns }),
          };
          await clientOf(client, this).invalidate(request, { wait });
        } catch (err) {
          report(err);
        }
        return result;
      },
  );
}
