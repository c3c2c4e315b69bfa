/**
 * `peak-cache/keyv`: Keyv's own adapter test suite (main suite and iterator tests) against
 * `KeyvPeakCache` on a real redis-server and on `memory://`, then the adapter's own guarantees: key
 * layout, namespace and tenant isolation of `clear()`, native multi-key commands, TTL rounding, errors.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import { Keyv } from 'keyv';
import * as vitest from 'vitest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type CacheClient,
  CacheConnectionError,
  CacheError,
  CacheValidationError,
  OPERATION_CHANNEL,
  type OperationContext,
} from '../src/index.js';
import {
  createKeyv,
  KEYV_ITERATOR_BATCH_SIZE,
  KeyvPeakCache,
  keyvTtlToSeconds,
} from '../src/integrations/keyv.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

let server: RedisServer;
const pool = new ClientPool();

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  await pool.closeAll();
  await server?.stop();
});

function redisClient(tenant: string, additionalPrefix: string | null = null, codec?: 'json'): CacheClient {
  return pool.open({
    connectionConfig: { url: server.url, tenant },
    additionalPrefix,
    ...(codec === undefined ? {} : { codec }),
  });
}

/** Calls per command since the server started (`INFO commandstats`). */
async function commandCalls(): Promise<Record<string, number>> {
  const info = await server.cli('INFO', 'commandstats');
  const calls: Record<string, number> = {};
  for (const match of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) {
    calls[match[1] as string] = Number(match[2]);
  }
  return calls;
}

/** The calls of each command `action` sent (only the commands that were called). */
async function commandsOf(action: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await commandCalls();
  await action();
  const after = await commandCalls();
  const diff: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after)) {
    const delta = calls - (before[name] ?? 0);
    if (delta > 0) diff[name] = delta;
  }
  // The two INFO calls of the measurement itself.
  if (diff.info !== undefined) diff.info -= 1;
  if (diff.info === 0) delete diff.info;
  return diff;
}

describe("Keyv's adapter test suite on redis-server", () => {
  let client: CacheClient;
  beforeAll(() => {
    client = redisClient('suite', 'kv');
  });
  keyvTestSuite(vitest, Keyv, () => new KeyvPeakCache(client));
  keyvIteratorTests(vitest, Keyv, () => new KeyvPeakCache(client));

  it('kept every key inside the tenant and prefix', async () => {
    await new Keyv({ store: new KeyvPeakCache(client) }).set('left', 'over');
    const keys = await server.scanKeys('*');
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key).toMatch(/^suite:kv:/);
  });
});

describe("Keyv's adapter test suite on memory://", () => {
  const client = pool.open({ connectionConfig: { url: 'memory://keyv-suite', tenant: 'suite' } });
  keyvTestSuite(vitest, Keyv, () => new KeyvPeakCache(client));
  keyvIteratorTests(vitest, Keyv, () => new KeyvPeakCache(client));
});

describe('KeyvPeakCache', () => {
  beforeEach(async () => {
    await server.cli('FLUSHALL');
  });

  it('stores Keyv keys as <tenant>:[<prefix>:]<namespace>:<key>, values byte-exact as Keyv serialized them', async () => {
    const keyv = new Keyv({ store: new KeyvPeakCache(redisClient('acme', 'web')), namespace: 'users' });
    await keyv.set('u:1', { name: 'Ada', tags: ['x'] });
    await keyv.set('plain', 'text');
    expect(await server.scanKeys('*')).toEqual(expect.arrayContaining(['acme:web:users:u:1']));
    expect(await server.rawGet('acme:web:users:u:1')).toBe('{"value":{"name":"Ada","tags":["x"]}}');
    expect(await server.rawGet('acme:web:users:plain')).toBe('{"value":"text"}');
    // The client's codec is not applied: the json codec would otherwise quote Keyv's string.
    const viaJson = new Keyv({
      store: new KeyvPeakCache(redisClient('acme', 'web', 'json')),
      namespace: 'users',
    });
    expect(await viaJson.get('u:1')).toEqual({ name: 'Ada', tags: ['x'] });
    await viaJson.set('j', 1);
    expect(await server.rawGet('acme:web:users:j')).toBe('{"value":1}');
  });

  it('clear() of one namespace of one tenant deletes only that namespace, whatever the others are called', async () => {
    const tenants = ['acme', 'acme2'];
    const prefixes = [null, 'web'];
    const namespaces = ['users', 'users2', 'u*', 'u?ers', '[u]sers', 'use\\rs'];
    const expected = new Set<string>();
    for (const tenant of tenants) {
      for (const prefix of prefixes) {
        const client = redisClient(tenant, prefix);
        await client.set('outside-keyv', 1);
        expected.add(`${tenant}:${prefix === null ? '' : `${prefix}:`}outside-keyv`);
        for (const namespace of namespaces) {
          const keyv = createKeyv(client, { namespace });
          await keyv.set('a', 1);
          await keyv.set('b*', 2);
          for (const k of ['a', 'b*'])
            expected.add(`${tenant}:${prefix === null ? '' : `${prefix}:`}${namespace}:${k}`);
        }
      }
    }
    expect(new Set(await server.scanKeys('*'))).toEqual(expected);

    for (const [tenant, prefix, namespace] of [
      ['acme', null, 'u*'],
      ['acme', 'web', 'users'],
      ['acme2', null, '[u]sers'],
      ['acme2', 'web', 'use\\rs'],
    ] as const) {
      const keyv = createKeyv(redisClient(tenant, prefix), { namespace });
      await keyv.clear();
      const gone = `${tenant}:${prefix === null ? '' : `${prefix}:`}${namespace}:`;
      for (const key of [...expected]) if (key.startsWith(gone)) expected.delete(key);
      expect(new Set(await server.scanKeys('*'))).toEqual(expected);
      expect(await keyv.get('a')).toBeUndefined();
    }
    // Another tenant's Keyv with the same namespace still reads its values.
    expect(await createKeyv(redisClient('acme2', 'web'), { namespace: 'users' }).get('a')).toBe(1);
  });

  it('two tenants and two namespaces through keyv never see each other', async () => {
    const keyvs = ['acme', 'acme2'].flatMap((tenant) =>
      ['users', 'orders'].map((namespace) => ({
        name: `${tenant}/${namespace}`,
        keyv: createKeyv(redisClient(tenant), { namespace }),
      })),
    );
    for (const { name, keyv } of keyvs) await keyv.set('same-key', name);
    for (const { name, keyv } of keyvs) {
      expect(await keyv.get('same-key')).toBe(name);
      const entries: [string, unknown][] = [];
      for await (const entry of keyv.iterator?.(undefined) ?? []) entries.push(entry as [string, unknown]);
      expect(entries).toEqual([['same-key', name]]);
    }
    const [first, ...others] = keyvs;
    await first?.keyv.clear();
    expect(await first?.keyv.get('same-key')).toBeUndefined();
    for (const { name, keyv } of others) expect(await keyv.get('same-key')).toBe(name);
  });

  it('uses native multi-key commands: one MGET, one multi-key UNLINK, EXISTS, one MSET', async () => {
    const keyv = createKeyv(redisClient('acme'), { namespace: 'n' });
    await keyv.set('a', 1);
    await keyv.set('b', 2);
    let values: unknown;
    expect(await commandsOf(async () => (values = await keyv.get(['a', 'x', 'b'])))).toEqual({ mget: 1 });
    expect(values).toEqual([1, undefined, 2]);
    expect(await commandsOf(() => keyv.has('a'))).toEqual({ exists: 1 });
    expect(
      await commandsOf(() =>
        keyv.setMany([
          { key: 'c', value: 3 },
          { key: 'd', value: 4 },
        ]),
      ),
    ).toEqual({ mset: 1 });
    let deleted: unknown;
    expect(await commandsOf(async () => (deleted = await keyv.delete(['a', 'b', 'zz'])))).toEqual({
      unlink: 1,
    });
    expect(deleted).toBe(true);
    expect(await keyv.get(['a', 'b', 'c', 'd'])).toEqual([undefined, undefined, 3, 4]);
    expect(await keyv.delete(['a', 'b'])).toBe(false);
    expect(await keyv.hasMany(['c', 'a', 'd'])).toEqual([true, false, true]);
  });

  it('setMany with TTLs: one atomic script per distinct TTL, every key with its expiry, the last of a repeated key wins', async () => {
    const keyv = createKeyv(redisClient('acme'), { namespace: 'n' });
    await keyv.setMany([{ key: 'warm-up', value: 'loads the script', ttl: 1000 }]);
    const start = Date.now();
    const commands = await commandsOf(() =>
      keyv.setMany([
        { key: 'a', value: 'a1', ttl: 5000 },
        { key: 'b', value: 'b', ttl: 4500 },
        { key: 'c', value: 'c', ttl: 60_000 },
        { key: 'a', value: 'a2', ttl: 5000 },
        { key: 'p', value: 'p' },
      ]),
    );
    // 5000 and 4500 ms both round up to 5 s: two scripts (5 s, 60 s; their SETs count as commands too)
    // and one MSET (no TTL).
    expect(commands).toEqual({ eval: 2, set: 3, mset: 1 });
    expect(await keyv.get(['a', 'b', 'c', 'p'])).toEqual(['a2', 'b', 'c', 'p']);
    const pttl = async (key: string) => Number(await server.cli('PTTL', `acme:n:${key}`));
    for (const key of ['a', 'b']) {
      // 4500 ms was rounded up to 5 s: more than 4500 ms left, counting the time since the write.
      expect((await pttl(key)) + (Date.now() - start)).toBeGreaterThan(4500);
      expect(await pttl(key)).toBeLessThanOrEqual(5000);
    }
    expect(await pttl('c')).toBeGreaterThan(55_000);
    expect(await pttl('p')).toBe(-1);
  });

  it('iterates a namespace larger than one SCAN page, each key once, with one MGET per page', async () => {
    const client = redisClient('acme', 'big');
    const keyv = createKeyv(client, { namespace: 'n' });
    const other = createKeyv(client, { namespace: 'n2' });
    const count = KEYV_ITERATOR_BATCH_SIZE * 2 + 500;
    await keyv.setMany(Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: i })));
    await other.set('k1', 'other namespace');
    const seen = new Map<string, unknown>();
    const commands = await commandsOf(async () => {
      for await (const [key, value] of keyv.iterator?.(undefined) ?? []) {
        expect(seen.has(key)).toBe(false);
        seen.set(key, value);
      }
    });
    expect(seen.size).toBe(count);
    expect(seen.get('k7')).toBe(7);
    expect(commands.scan).toBeGreaterThanOrEqual(3);
    expect(commands.mget).toBeLessThanOrEqual(commands.scan as number);
    expect(Object.keys(commands).sort()).toEqual(['mget', 'scan']);
  });

  it("turns Keyv's milliseconds into whole seconds, rounded up", async () => {
    expect([1, 999, 1000, 1001, 1500, 60_000].map(keyvTtlToSeconds)).toEqual([1, 1, 1, 2, 2, 60]);
    expect([undefined, null, 0].map(keyvTtlToSeconds)).toEqual([undefined, undefined, undefined]);
    const keyv = createKeyv(redisClient('acme'), { namespace: 'ttl' });
    await keyv.get('connects first');
    /** Store `key` with `ttl` ms; the expiry Redis got (ms left plus the time since the write) and ms left. */
    const write = async (key: string, ttl?: number) => {
      const start = Date.now();
      await keyv.set(key, 'x', ttl);
      const left = Number(await server.cli('PTTL', `acme:ttl:${key}`));
      return { expiry: left + (Date.now() - start), left };
    };
    const short = await write('short', 200); // 200 ms -> 1 s
    expect(short.expiry).toBeGreaterThan(950);
    expect(short.left).toBeLessThanOrEqual(1000);
    const long = await write('long', 1500); // 1500 ms -> 2 s
    expect(long.expiry).toBeGreaterThan(1950);
    expect(long.left).toBeLessThanOrEqual(2000);
    await write('forever');
    expect(Number(await server.cli('PTTL', 'acme:ttl:forever'))).toBe(-1);
    // Keyv's own expiry stamp keeps reads exact: 300 ms after a 200 ms TTL the value is gone for Keyv
    // (Redis may keep the key up to 1 s)...
    await keyv.set('precise', 'x', 200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await keyv.get('precise')).toBeUndefined();
    // ...and Redis removes the key at the next whole second at the latest.
    await keyv.set('short2', 'x', 10);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect(await server.rawGet('acme:ttl:short2')).toBeNull();
  });

  it('rejects invalid TTLs and non-string values with CacheValidationError, before any I/O', async () => {
    const store = new KeyvPeakCache(redisClient('acme'));
    const commands = await commandsOf(async () => {
      await expect(store.set('k', '{}', -5)).rejects.toBeInstanceOf(CacheValidationError);
      await expect(store.set('k', '{}', Number.NaN)).rejects.toBeInstanceOf(CacheValidationError);
      await expect(store.set('k', { value: 1 } as unknown as string)).rejects.toBeInstanceOf(
        CacheValidationError,
      );
      // A lone surrogate (a custom serializer's output) would reach Redis as U+FFFD.
      await expect(store.set('k', '{"value":"\ud800"}')).rejects.toThrow(/well-formed/);
      await expect(
        store.setMany([
          { key: 'k', value: 'ok' },
          { key: 'j', value: '\udc00' },
        ]),
      ).rejects.toBeInstanceOf(CacheValidationError);
    });
    expect(commands).toEqual({});
    const keyv = new Keyv({ store, throwOnErrors: true });
    await expect(keyv.set('k', 'v', -1)).rejects.toBeInstanceOf(CacheValidationError);
  });

  it('refuses a namespace with ":" (namespace "a" would own the keys of "a:b")', () => {
    const store = new KeyvPeakCache(redisClient('acme'));
    expect(() => new Keyv({ store, namespace: 'a:b' })).toThrow(TypeError);
    expect(() => createKeyv(redisClient('acme'), { namespace: 'x:' })).toThrow(/must not contain ':'/);
    expect(() => new KeyvPeakCache({} as CacheClient)).toThrow(TypeError);
  });

  it('without a namespace, clear() and iterator() cover the client namespace only', async () => {
    const mine = createKeyv(redisClient('acme', 'mine'));
    mine.namespace = undefined;
    const theirs = createKeyv(redisClient('acme', 'theirs'));
    theirs.namespace = undefined;
    await mine.set('a', 1);
    await theirs.set('a', 2);
    await createKeyv(redisClient('acme', 'mine'), { namespace: 'ns' }).set('b', 3);
    expect(await server.rawGet('acme:mine:a')).toBe('{"value":1}');
    await mine.clear();
    expect((await server.scanKeys('*')).sort()).toEqual(['acme:theirs:a']);
  });

  it("reports failures as the client's CacheErrors, through Keyv's error event or throwOnErrors", async () => {
    const client = redisClient('acme');
    await client.close();
    const keyv = createKeyv(client);
    const errors: unknown[] = [];
    keyv.on('error', (err: unknown) => errors.push(err));
    expect(await keyv.set('k', 'v')).toBe(false);
    expect(errors[0]).toBeInstanceOf(CacheConnectionError);
    expect((errors[0] as Error).message).toMatch(/^keyv\.set failed/);
    expect(await keyv.get('k')).toBeUndefined();
    const throwing = createKeyv(client, { throwOnErrors: true });
    await expect(throwing.get('k')).rejects.toBeInstanceOf(CacheError);
    await expect(throwing.clear()).rejects.toBeInstanceOf(CacheConnectionError);
    // Keyv passes has/getMany failures on even without throwOnErrors.
    await expect(keyv.has('k')).rejects.toThrow(/^keyv\.has failed/);
    await expect(keyv.get(['a', 'b'])).rejects.toBeInstanceOf(CacheConnectionError);
  });

  it('disconnect() leaves the client open unless closeClient is set', async () => {
    const client = redisClient('acme');
    await createKeyv(client).disconnect();
    expect(await client.ping()).toBe(true);
    await createKeyv(client, { closeClient: true }).disconnect();
    await expect(client.ping()).rejects.toBeInstanceOf(CacheConnectionError);
  });

  it('shows in stats(), debug lines (key names, never values) and tracing as keyv.* operations', async () => {
    const lines: string[] = [];
    const client = pool.open({
      connectionConfig: { url: server.url, tenant: 'acme' },
      logger: { debug: (line) => lines.push(line), warn: () => {} },
    });
    const keyv = createKeyv(client, { namespace: 'obs' });
    const traced: { operation: string; keys: number; hits?: number; misses?: number }[] = [];
    const subscriber = {
      start: () => {},
      end: () => {},
      asyncStart: () => {},
      asyncEnd: (ctx: OperationContext) => traced.push({ ...ctx }),
      error: () => {},
    };
    const operationChannel = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);
    operationChannel.subscribe(subscriber);
    try {
      await keyv.set('k', 'secret-value');
      await keyv.get('k');
      await keyv.get('missing');
      await keyv.get(['k', 'missing', 'k']);
    } finally {
      operationChannel.unsubscribe(subscriber);
    }
    const stats = client.stats().operations;
    expect(stats['keyv.set']).toMatchObject({ calls: 1, errors: 0 });
    expect(stats['keyv.get']).toMatchObject({ calls: 2, hits: 1, misses: 1 });
    expect(stats['keyv.getMany']).toMatchObject({ calls: 1, hits: 2, misses: 1 });
    expect(lines).toEqual([
      'keyv.set "acme:obs:k"',
      'keyv.get "acme:obs:k"',
      'keyv.get "acme:obs:missing"',
      'keyv.getMany "acme:obs:k", "acme:obs:missing", "acme:obs:k"',
    ]);
    expect(traced.map((t) => [t.operation, t.keys])).toEqual([
      ['keyv.set', 1],
      ['keyv.get', 1],
      ['keyv.get', 1],
      ['keyv.getMany', 3],
    ]);
    expect(JSON.stringify(traced)).not.toContain('secret-value');
  });

  it('createKeyv passes Keyv options through (namespace, default ttl)', async () => {
    const keyv = createKeyv<{ n: number }>(redisClient('acme'), { namespace: 'opts', ttl: 30_000 });
    await keyv.set('k', { n: 1 });
    expect(await keyv.get('k')).toEqual({ n: 1 });
    expect(Number(await server.cli('PTTL', 'acme:opts:k'))).toBeGreaterThan(20_000);
    expect(Number(await server.cli('PTTL', 'acme:opts:k'))).toBeLessThanOrEqual(30_000);
    expect(keyv.store).toBeInstanceOf(KeyvPeakCache);
  });
});
