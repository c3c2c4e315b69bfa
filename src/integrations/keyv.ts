/**
 * `peak-cache/keyv`: a [Keyv](https://keyv.org) storage adapter over a {@link CacheClient}, so Keyv,
 * cache-manager and the frameworks built on them (NestJS) keep peak-cache's tenant isolation.
 *
 * Keys: Keyv hands the adapter `<namespace>:<key>`; it is stored as
 * `<tenant>:[<additionalPrefix>:]<namespace>:<key>`, so every key stays inside the client's tenant
 * (and additional prefix). Values: Keyv serializes them itself; the adapter stores Keyv's strings as
 * they are (the client's codec is not applied). TTLs: Keyv's milliseconds become whole seconds,
 * rounded up (see {@link keyvTtlToSeconds}); Keyv's own `expires` stamp keeps reads exact to the
 * millisecond. See `docs/keyv.md`.
 *
 * `keyv` is an optional peer dependency of peak-cache: install it to use this module.
 *
 * @example
 * ```ts
 * import { Keyv } from 'keyv';
 * import { getClient } from 'peak-cache';
 * import { KeyvPeakCache } from 'peak-cache/keyv';
 *
 * const client = getClient({ additionalPrefix: 'web' });
 * const keyv = new Keyv({ store: new KeyvPeakCache(client), namespace: 'sessions' });
 * await keyv.set('abc', { user: 1 }, 60_000); // stored at <tenant>:web:sessions:abc, expires in 60 s
 * ```
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { Keyv, type KeyvOptions, type KeyvStoreAdapter, type StoredData } from 'keyv';
// Type-only imports of the core: at run time the adapter only calls the client it is given, so the
// CommonJS build of this entry carries no second copy of the client or of the error classes.
import type { CacheClient } from '../client.js';
import { escapeGlob } from '../engines/glob.js';

/** Keys read per SCAN page (and per MGET of their values) by {@link KeyvPeakCache.iterator}. */
export const KEYV_ITERATOR_BATCH_SIZE = 1000;

/** Options of {@link KeyvPeakCache}. */
export interface KeyvPeakCacheOptions {
  /**
   * Close the client on {@link KeyvPeakCache.disconnect} (`Keyv#disconnect()`, cache-manager's
   * `disconnect()`). Default `false`: the client is the caller's, and may serve other code.
   */
  closeClient?: boolean;
}

/**
 * Keyv's TTL (milliseconds) as the whole seconds the client stores, rounded up: `1` ms to `1000` ms
 * become 1 s, `1001` ms becomes 2 s. `undefined`, `null` and `0` mean no expiry (as in Keyv). Anything
 * else that is not a positive number is passed on for the client to reject with a
 * `CacheValidationError` (a negative TTL is refused, not stored as already expired).
 *
 * Reads through Keyv stay exact to the millisecond: Keyv stores an `expires` timestamp with every value
 * and treats the entry as missing once it has passed. Redis removes the key at most 999 ms later.
 * `has()`/`hasMany()` ask Redis (`EXISTS`), so they can report such a key for those last 999 ms.
 */
export function keyvTtlToSeconds(ttl: unknown): number | undefined {
  if (ttl === undefined || ttl === null || ttl === 0) return undefined;
  return typeof ttl === 'number' && ttl > 0 ? Math.ceil(ttl / 1000) : (ttl as number);
}

/**
 * A Keyv storage adapter over a {@link CacheClient}: every key inside the client's tenant (and
 * additional prefix), values stored byte-exact as Keyv serializes them.
 *
 * Native multi-key operations: `getMany` is one `MGET`, `deleteMany` one multi-key `UNLINK`, `has` an
 * `EXISTS`, `setMany` one `MSET` (one atomic script per distinct TTL), `iterator` a `SCAN` of the
 * namespace with one `MGET` per page, and `clear()` the client's `flushByPattern` (SCAN + UNLINK in
 * batches) of the namespace only, its name glob-escaped. Without a namespace (`namespace: undefined` or
 * `useKeyPrefix: false`), `clear()` and `iterator()` cover the client's whole namespace.
 *
 * Failures reject with the client's `CacheError`s (operation names `keyv.get`, `keyv.set`, ...); Keyv
 * turns them into its `error` event (or re-throws them with `throwOnErrors`). Works on every engine
 * (`redis://`, `rediss://`, cluster, `memory://`).
 *
 * @example
 * ```ts
 * const keyv = new Keyv({ store: new KeyvPeakCache(client), namespace: 'users' });
 * ```
 */
export class KeyvPeakCache extends EventEmitter implements KeyvStoreAdapter {
  /** The client every operation goes through. */
  readonly client: CacheClient;
  /**
   * What Keyv reads of the adapter: `dialect: 'redis'` enables `Keyv#iterator()`. Carries no URL and no
   * credentials.
   */
  readonly opts: {
    /** Redis semantics (on every engine, `memory://` included): Keyv enables its iterator for it. */
    readonly dialect: 'redis';
  };
  readonly #closeClient: boolean;
  #namespace: string | undefined;

  /**
   * @param client - the client whose tenant (and additional prefix) holds the keys; not closed by
   * {@link KeyvPeakCache.disconnect} unless `options.closeClient`.
   * @param options - see {@link KeyvPeakCacheOptions}.
   */
  constructor(client: CacheClient, options: KeyvPeakCacheOptions = {}) {
    super();
    if (client === null || typeof client !== 'object' || typeof client.rawOperation !== 'function') {
      throw new TypeError('KeyvPeakCache needs a peak-cache CacheClient');
    }
    this.client = client;
    this.opts = { dialect: 'redis' };
    this.#closeClient = options.closeClient === true;
  }

  /**
   * The Keyv namespace, set by Keyv from its own `namespace` option (default `'keyv'`); it scopes
   * {@link KeyvPeakCache.clear} and {@link KeyvPeakCache.iterator}. `undefined` or `''`: none.
   * @throws {TypeError} for a namespace containing `:`. Keyv joins namespace and key with `:` and
   * splits them at the first `:`, so namespace `a` would otherwise own the keys of namespace `a:b`.
   */
  get namespace(): string | undefined {
    return this.#namespace;
  }

  /** Set by Keyv (see the getter). @throws {TypeError} for a namespace containing `:`. */
  set namespace(namespace: string | undefined) {
    if (namespace !== undefined && (typeof namespace !== 'string' || namespace.includes(':'))) {
      throw new TypeError(`Invalid Keyv namespace ${JSON.stringify(namespace)}: it must not contain ':'`);
    }
    this.#namespace = namespace === '' ? undefined : namespace;
  }

  /**
   * The string Keyv stored at `key` (Keyv deserializes it), or `undefined`. Typed as Keyv's adapter
   * contract types it; the value is always Keyv's serialized string.
   */
  get<Value>(key: string): Promise<StoredData<Value>> {
    return this.client
      .rawOperation('keyv.get', { keys: [key], read: true }, (engine, ks) => engine.get(ks.key(key)))
      .then(orUndefined<Value>);
  }

  /** The strings at `keys` in order (`undefined` for misses), in one `MGET`. Typed as for `get`. */
  async getMany<Value>(keys: string[]): Promise<StoredData<Value>[]> {
    if (keys.length === 0) return [];
    const values = await this.client.rawOperation('keyv.getMany', { keys, read: true }, (engine, ks) =>
      engine.mget(ks.keys(keys)),
    );
    return values.map(orUndefined<Value>);
  }

  /**
   * Store Keyv's serialized `value` at `key`, expiring after `ttl` milliseconds (rounded up to whole
   * seconds, see {@link keyvTtlToSeconds}) when given.
   * @returns `true` once stored.
   */
  set(key: string, value: string, ttl?: number): Promise<boolean> {
    const seconds = keyvTtlToSeconds(ttl);
    return this.client.rawOperation(
      'keyv.set',
      { keys: [key], values: [value], ttls: [seconds] },
      (engine, ks) => engine.set(ks.key(key), value, seconds).then(() => true),
    );
  }

  /**
   * Store every entry: one `MSET` (one atomic `SET ... EX` script with a TTL) per distinct TTL in
   * seconds. A key given twice keeps its last value.
   * @returns one `true` per entry once stored (what `Keyv#setMany` returns; Keyv's adapter contract
   * types the method as `Promise<void>`).
   */
  async setMany(entries: { key: string; value: string; ttl?: number }[]): Promise<void> {
    if (entries.length === 0) return [] as boolean[] as unknown as undefined;
    const last = new Map<string, { value: string; ttl: number | undefined }>();
    for (const { key, value, ttl } of entries) last.set(key, { value, ttl: keyvTtlToSeconds(ttl) });
    const keys = [...last.keys()];
    const byTtl = new Map<number | undefined, [string, string][]>();
    for (const [key, { value, ttl }] of last) {
      const group = byTtl.get(ttl);
      if (group === undefined) byTtl.set(ttl, [[key, value]]);
      else group.push([key, value]);
    }
    await this.client.rawOperation(
      'keyv.setMany',
      { keys, values: [...last.values()].map((e) => e.value), ttls: [...byTtl.keys()] },
      (engine, ks) =>
        Promise.all(
          [...byTtl].map(([ttl, group]) =>
            engine.mset(
              group.map(([key, value]) => [ks.key(key), value] as const),
              ttl,
            ),
          ),
        ),
    );
    return entries.map(() => true) as unknown as undefined;
  }

  /** Delete `key` (`UNLINK`); `true` when it existed. */
  delete(key: string): Promise<boolean> {
    return this.client.rawOperation('keyv.delete', { keys: [key] }, (engine, ks) =>
      engine.unlink([ks.key(key)]).then((n) => n > 0),
    );
  }

  /** Delete `keys` in one multi-key `UNLINK`; `true` when at least one existed. */
  async deleteMany(keys: string[]): Promise<boolean> {
    if (keys.length === 0) return false;
    return this.client.rawOperation('keyv.deleteMany', { keys }, (engine, ks) =>
      engine.unlink(ks.keys(keys)).then((n) => n > 0),
    );
  }

  /** Whether `key` exists (`EXISTS`). See {@link keyvTtlToSeconds} for sub-second TTLs. */
  has(key: string): Promise<boolean> {
    return this.client.rawOperation('keyv.has', { keys: [key] }, (engine, ks) =>
      engine.exists([ks.key(key)]).then((n) => n === 1),
    );
  }

  /**
   * Whether each of `keys` exists: one `EXISTS` per key, all sent at once in one operation (a
   * multi-key `EXISTS` only returns a total).
   */
  async hasMany(keys: string[]): Promise<boolean[]> {
    if (keys.length === 0) return [];
    return this.client.rawOperation('keyv.hasMany', { keys }, (engine, ks) =>
      Promise.all(ks.keys(keys).map((stored) => engine.exists([stored]).then((n) => n === 1))),
    );
  }

  /**
   * Delete every key of the namespace (the client's `flushByPattern` of `<namespace>:*`, the namespace
   * glob-escaped): SCAN + UNLINK in batches, never another namespace, prefix or tenant. Without a
   * namespace: every key of the client's namespace (`<tenant>:[<additionalPrefix>:]`).
   */
  async clear(): Promise<void> {
    await this.client.flushByPattern(namespacePattern(this.#namespace));
  }

  /**
   * Every `[key, serialized value]` of `namespace` (Keyv passes its own): a `SCAN` of the namespace and
   * one `MGET` per page of {@link KEYV_ITERATOR_BATCH_SIZE} keys. Keys are Keyv's (`<namespace>:<key>`);
   * each is yielded once, even when SCAN repeats it (which costs a set of the keys seen); keys deleted
   * mid-scan are skipped. Each page is one `keyv.iterator` operation of the client.
   */
  async *iterator(namespace?: string): AsyncGenerator<[string, string], void> {
    const match = namespacePattern(namespace === '' ? undefined : namespace);
    let pages: AsyncIterator<string[]> | undefined;
    let strip = 0;
    const seen = new Set<string>();
    try {
      for (;;) {
        const page = await this.client.rawOperation('keyv.iterator', { keys: [] }, async (engine, ks) => {
          if (pages === undefined) {
            pages = engine.scan(ks.pattern(match), KEYV_ITERATOR_BATCH_SIZE)[Symbol.asyncIterator]();
            strip = ks.namespace.length;
          }
          const next = await pages.next();
          if (next.done === true) return undefined;
          const fresh = next.value.filter((stored) => !seen.has(stored));
          for (const stored of fresh) seen.add(stored);
          return fresh.length === 0 ? [] : zip(fresh, await engine.mget(fresh));
        });
        if (page === undefined) return;
        for (const [stored, value] of page) yield [stored.slice(strip), value];
      }
    } finally {
      await pages?.return?.();
    }
  }

  /**
   * Close the client when the adapter was created with `closeClient: true`; otherwise nothing (the
   * client is the caller's).
   */
  async disconnect(): Promise<void> {
    if (this.#closeClient) await this.client.close();
  }
}

/** Options of {@link createKeyv}: Keyv's own options (default namespace `'keyv'`), without `store`. */
export type CreateKeyvOptions = Omit<KeyvOptions, 'store'> & KeyvPeakCacheOptions;

/**
 * A Keyv on a {@link KeyvPeakCache} over `client`.
 * @param client - the client whose tenant (and additional prefix) holds the keys.
 * @param options - Keyv's options (`namespace`, `ttl` in milliseconds, `serialize`, ...) and
 * `closeClient` (see {@link KeyvPeakCacheOptions}).
 * @throws {TypeError} for a namespace containing `:` (see {@link KeyvPeakCache.namespace}).
 * @example
 * ```ts
 * const keyv = createKeyv(getClient(), { namespace: 'users', ttl: 60_000 });
 * ```
 */
export function createKeyv<Value = unknown>(
  client: CacheClient,
  options: CreateKeyvOptions = {},
): Keyv<Value> {
  const { closeClient, ...keyvOptions } = options;
  const store = new KeyvPeakCache(client, closeClient === undefined ? {} : { closeClient });
  return new Keyv<Value>({ ...keyvOptions, store });
}

/** The glob of a Keyv namespace's keys inside the client's namespace: `<escaped namespace>:*`. */
function namespacePattern(namespace: string | undefined): string {
  return namespace === undefined ? '*' : `${escapeGlob(`${namespace}:`)}*`;
}

/** A stored string as Keyv's adapter contract types it (`undefined` for a miss). */
function orUndefined<Value>(value: string | null): StoredData<Value> {
  return (value === null ? undefined : value) as StoredData<Value>;
}

/** `[key, value]` pairs of the keys whose value was still there. */
function zip(keys: readonly string[], values: readonly (string | null)[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < keys.length; i++) {
    const value = values[i];
    if (value !== null && value !== undefined) pairs.push([keys[i] as string, value]);
  }
  return pairs;
}
