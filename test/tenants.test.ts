/**
 * Issue 18, shared mode: many tenants' views on one connection of a real redis-server. One connection
 * for 2,000 views, no I/O to create a view, isolation between views, one near cache invalidated by
 * foreign writes, closing semantics, tracing per tenant, and a server killed and restarted under load.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheClient,
  CacheConnectionError,
  CacheError,
  CacheValidationError,
  OPERATION_CHANNEL,
  type OperationContext,
  TenantCaches,
} from '../src/index.js';
import { createKeyv } from '../src/integrations/keyv.js';
import { MAX_IDLE_TENANTS } from '../src/tenants.js';
import { commandCalls } from './helpers/command-stats.js';
import { gatedFactories } from './helpers/gate.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let server: RedisServer;
const opened: TenantCaches[] = [];
function caches(extra: Partial<ConstructorParameters<typeof TenantCaches<'peak'>>[0]> = {}): TenantCaches {
  const c = new TenantCaches({ connectionConfig: { url: server.url }, ...extra });
  opened.push(c);
  return c;
}

/** Connections of normal clients, the redis-cli asking excluded. */
async function connections(): Promise<string[]> {
  const list = await server.cli('CLIENT', 'LIST', 'TYPE', 'normal');
  return list.split('\n').filter((line) => line !== '' && !line.includes('cmd=client|list'));
}

beforeAll(async () => {
  server = await startRedis();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await server.stop();
});

describe('TenantCaches shared mode', () => {
  it('2,000 views of 2,000 tenants use one connection; creating a view sends nothing', async () => {
    const shared = caches();
    const before = commandCalls(await server.cli('INFO', 'commandstats'));
    const views = Array.from({ length: 2000 }, (_, i) => shared.tenant(`many${i}`));
    expect(commandCalls(await server.cli('INFO', 'commandstats'))).toBe(before);
    expect(shared.stats().connections).toBe(0);
    await Promise.all(views.map((v, i) => v.set('k', { i })));
    const values = await Promise.all(views.map((v) => v.get('k')));
    expect(values).toEqual(views.map((_, i) => ({ i })));
    expect(await connections()).toHaveLength(1);
    expect(await server.rawGet('many1999:k')).toBe('{"i": 1999}');
    const stats = shared.stats();
    expect(stats.connections).toBe(1);
    expect(Object.keys(stats.tenants)).toHaveLength(2000);
    expect(views).toHaveLength(2000); // open (referenced) views: their tenants are never dropped
    expect(stats.totals.calls).toBe(4000);
    expect(stats.tenants.many7?.operations.get).toMatchObject({ calls: 1, hits: 1 });
    await shared.close();
    expect(await connections()).toHaveLength(0);
  });

  it('views never touch another tenant: writes, flushes, patterns, prefixes', async () => {
    const shared = caches();
    const a = shared.tenant('iso-a');
    const aPricing = shared.tenant('iso-a', { additionalPrefix: 'pricing' });
    const b = shared.tenant('iso-b');
    await Promise.all([a.set('k', 'a'), aPricing.set('k', 'ap'), b.set('k', 'b'), b.set('x:1', [1])]);
    expect(await a.get('k')).toBe('a');
    expect(await aPricing.get('k')).toBe('ap');
    expect(await b.get('k')).toBe('b');
    expect(await a.get('x:1')).toBeNull();
    expect(await a.flushByPattern('*')).toBe(2); // iso-a:k and iso-a:pricing:k
    expect(await b.exists('k', 'x:1')).toBe(2);
    await a.set('k', 'a');
    expect(await aPricing.flushByPattern('*')).toBe(0);
    expect(await a.flushTenant()).toBe(1);
    expect(await b.mget('k', 'x:1')).toEqual(['b', [1]]);
    expect(await b.delete('k')).toBe(1);
    expect(await server.scanKeys('iso-*')).toEqual(['iso-b:x:1']);
  });

  it('cached functions: concurrent calls of two tenants never share a promise; invalidation stays inside its tenant', async () => {
    const shared = caches({ deploymentId: 'dep' });
    const a = shared.tenant('cf-a');
    const b = shared.tenant('cf-b');
    let runs = 0;
    const load = (tenant: string) => async (id: number) => {
      runs++;
      await sleep(20);
      return `${tenant}:${id}`;
    };
    const fa = a.cacheResult(load('a'), { keyPrefix: 'user', entityId: (id) => id });
    const fb = b.cacheResult(load('b'), { keyPrefix: 'user', entityId: (id) => id });
    // Same key below the tenant, same moment: each tenant runs its own factory once.
    const results = await Promise.all([fa(1), fb(1), fa(1), fb(1)]);
    expect(results).toEqual(['a:1', 'b:1', 'a:1', 'b:1']);
    expect(runs).toBe(2);
    expect(await a.getOrSet('g', () => 'ga')).toBe('ga');
    expect(await b.getOrSet('g', () => 'gb')).toBe('gb');
    expect(await a.invalidate({ entityId: 1, targetedPatterns: ['user'] }, { wait: true })).toBe(1);
    expect(await fb(1)).toBe('b:1');
    expect(runs).toBe(2);
    expect(await fa(1)).toBe('a:1');
    expect(runs).toBe(3);
    expect(await b.invalidate({ broadPatterns: ['user'] }, { wait: true })).toBe(1);
    expect(await server.scanKeys('cf-a:dep:user*')).toHaveLength(1);
  });

  it("tags through views: a tenant's invalidateTags reaches its views and never another tenant's entries or running fills", async () => {
    const shared = caches({ deploymentId: 'dep' });
    const a = shared.tenant('tg-a');
    const a2 = shared.tenant('tg-a');
    const b = shared.tenant('tg-b');
    let runs = 0;
    const load = (view: typeof a, value: string) =>
      view.getOrSet('k', () => `${value}${++runs}`, { tags: ['t'] });
    expect([await load(a, 'a'), await load(b, 'b')]).toEqual(['a1', 'b2']);
    expect(await load(a2, 'x')).toBe('a1'); // another view of the tenant: a hit
    // A fill of b is running while a invalidates the same tag: b's fill still stores its result.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const slow = b.getOrSet(
      'slow',
      async () => {
        started();
        await gate;
        return 'b-slow';
      },
      { tags: ['t'] },
    );
    await running;
    await a.invalidateTags(['t'], { behavior: 'remove' });
    release();
    expect(await slow).toBe('b-slow');
    expect(await b.getOrSet('slow', () => 'again', { tags: ['t'] })).toBe('b-slow'); // stored
    expect(await load(b, 'b')).toBe('b2'); // b's entry is untouched
    expect(await load(a2, 'a')).toBe('a3'); // a's entry is removed for every view of a
    expect(await load(a, 'a')).toBe('a3');
    await shared.close();
  });

  it('one near cache for every view, one connection, invalidated by a foreign write', async () => {
    const shared = caches({ nearCache: { maxEntries: 100 } });
    const a = shared.tenant('near-a');
    const b = shared.tenant('near-b');
    await a.set('k', { v: 1 });
    await b.set('k', { v: 2 });
    expect(await a.get('k')).toEqual({ v: 1 });
    expect(await b.get('k')).toEqual({ v: 2 });
    const calls = commandCalls(await server.cli('INFO', 'commandstats'));
    expect(await a.get('k')).toEqual({ v: 1 }); // served from memory
    expect(await b.get('k')).toEqual({ v: 2 });
    expect(shared.stats().nearCache).toMatchObject({ size: 2, hits: 2 });
    expect(commandCalls(await server.cli('INFO', 'commandstats'))).toBe(calls);
    expect(await connections()).toHaveLength(1);
    await server.cli('SET', 'near-b:k', '{"v": 3}');
    for (let i = 0; i < 100 && (await b.get<{ v: number }>('k'))?.v !== 3; i++) await sleep(10);
    expect(await b.get('k')).toEqual({ v: 3 });
    expect(await a.get('k')).toEqual({ v: 1 });
    await a.flushTenant();
    expect(await a.get('k')).toBeNull();
    expect(await b.get('k')).toEqual({ v: 3 });
  });

  it("a view's close releases nothing shared; the caches' close rejects every view's calls", async () => {
    const shared = caches();
    const plain = new CacheClient({ connectionConfig: { url: server.url, tenant: 'plain' } });
    const a = shared.tenant('close-a');
    const b = shared.tenant('close-b');
    await Promise.all([a.set('k', [1]), b.set('k', [2]), plain.set('k', [3])]);
    await a.close();
    await a.close();
    await expect(a.get('k')).rejects.toThrow(CacheConnectionError);
    expect(await b.get('k')).toEqual([2]);
    expect(await shared.tenant('close-a').get('k')).toEqual([1]);
    expect(shared.stats().connections).toBe(1);
    await shared.close();
    await expect(b.get('k')).rejects.toThrow(CacheConnectionError);
    await expect(b.get('k')).rejects.toThrow('get failed: the TenantCaches is closed');
    await expect(b.getOrSet('x', () => 1)).rejects.toThrow(CacheConnectionError);
    expect(() => shared.tenant('close-c')).toThrow(CacheConnectionError);
    expect(shared.stats().connections).toBe(0);
    expect(await plain.get('k')).toEqual([3]); // a plain client beside it is untouched
    await plain.close();
  });

  it('closing the view that owns a fill another view joined: the fill finishes (one factory run across clients, result stored)', async () => {
    const shared = caches({ deploymentId: null });
    const other = new CacheClient({
      connectionConfig: { url: server.url, tenant: 'fill-close' },
      deploymentId: null,
    });
    const owner = shared.tenant('fill-close');
    const joiner = shared.tenant('fill-close');
    let runs = 0;
    const slow = (tag: string) => async () => {
      runs++;
      await sleep(300);
      return tag;
    };
    const owned = owner.getOrSet('k', slow('owner'));
    while ((await server.cli('KEYS', 'fill-close:__peak_lock__*')) === '') await sleep(5);
    const joined = joiner.getOrSet('k', slow('joiner'));
    await owner.close();
    // The lock is still held: another client waits for the fill instead of running its factory.
    expect(await server.cli('KEYS', 'fill-close:__peak_lock__*')).not.toBe('');
    const elsewhere = other.getOrSet('k', slow('other'));
    expect(await joined).toBe('owner');
    expect(await owned).toBe('owner');
    expect(await elsewhere).toBe('owner');
    expect(runs).toBe(1);
    expect(await joiner.getOrSet('k', slow('again'))).toBe('owner'); // stored
    expect(runs).toBe(1);
    expect(await server.cli('KEYS', 'fill-close:__peak_lock__*')).toBe(''); // released
    await other.close();
  });

  it("the caches' close abandons every view's running fills as a client close does: locks gone at once, nothing stored, no warnings", async () => {
    const warnings: string[] = [];
    const logger = { debug: () => {}, warn: (m: string) => warnings.push(m) };
    const shared = caches({ deploymentId: null, logger });
    const other = new CacheClient({
      connectionConfig: { url: server.url, tenant: 'life-a' },
      deploymentId: null,
    });
    const owner = shared.tenant('life-a');
    const joiner = shared.tenant('life-a');
    const b = shared.tenant('life-b');
    const { open, started, slow } = gatedFactories();
    // A long lock: a lock left behind would hold the other client for 30 s.
    const o = { lockTimeoutMs: 30_000 };
    const owned = owner.getOrSet('k', slow('owner'), o);
    const ownB = b.getOrSet('k', slow('b'), o);
    while (started() < 2) await sleep(5);
    const joined = joiner.getOrSet('k', slow('joiner'), o);
    await owner.close(); // keeps the fill the joiner joined (see the test above)
    expect((await server.scanKeys('life-*')).sort()).toEqual([
      'life-a:__peak_lock__:k',
      'life-b:__peak_lock__:k',
    ]);
    await shared.close();
    expect(await server.scanKeys('life-*')).toEqual([]); // released by the caches' close, not expired
    // Another process does not wait for the abandoned lock: its factory runs while the fills still hang.
    expect(await other.getOrSet('k', async () => 'other', o)).toBe('other');
    expect(other.stats().cachedFunctions).toMatchObject({ lockWaits: 0, factoryRuns: 1 });
    open();
    // The waiting callers still get their results (as after a client's close); nothing is stored.
    expect(await Promise.all([owned, joined, ownB])).toEqual(['owner', 'owner', 'b']);
    await sleep(50);
    expect(await server.scanKeys('life-*')).toEqual(['life-a:k']);
    expect(await other.getOrSet('k', async () => 'again')).toBe('other'); // other's result stays
    expect(warnings).toEqual([]);
    await other.close();
  });

  it("cached-function counters are the tenant's, like operation counters, with totals in caches.stats()", async () => {
    const shared = caches({ deploymentId: null });
    const v1 = shared.tenant('cf-a');
    await v1.getOrSet('x', async () => [1]);
    await v1.getOrSet('x', async () => [1]);
    const v2 = shared.tenant('cf-a');
    await shared.tenant('cf-b').getOrSet('x', async () => [2]);
    const expected = { hits: 1, misses: 1, factoryRuns: 1 };
    expect(v1.stats().cachedFunctions).toMatchObject(expected);
    expect(v2.stats().cachedFunctions).toMatchObject(expected);
    await v1.close();
    expect(v2.stats().cachedFunctions).toMatchObject(expected);
    const stats = shared.stats();
    expect(stats.tenants['cf-a']?.cachedFunctions).toMatchObject(expected);
    expect(stats.tenants['cf-b']?.cachedFunctions).toMatchObject({ hits: 0, misses: 1, factoryRuns: 1 });
    expect(stats.cachedFunctions).toMatchObject({ hits: 1, misses: 2, factoryRuns: 2, breakerTrips: 0 });
  });

  it('idle tenants keep their counters up to MAX_IDLE_TENANTS (least recently used dropped, counted in the totals); open views never reset', async () => {
    const shared = caches();
    const live = shared.tenant('idle-live');
    await live.set('k', 1);
    const idle = MAX_IDLE_TENANTS + 500;
    const views = Array.from({ length: idle }, (_, i) => shared.tenant(`idle${i}`));
    await Promise.all(views.map((v) => v.get('k')));
    await Promise.all(views.map((v) => v.close()));
    const touched = shared.tenant('idle1'); // idle1 is used again: now the most recently used
    await touched.close();
    const stats = shared.stats();
    expect(Object.keys(stats.tenants)).toHaveLength(1 + MAX_IDLE_TENANTS);
    expect(stats.tenants['idle-live']?.operations.set).toMatchObject({ calls: 1 }); // open: never dropped
    expect(stats.tenants.idle0).toBeUndefined(); // least recently used idle tenant
    expect(stats.tenants.idle1?.operations.get).toMatchObject({ calls: 1, misses: 1 });
    expect(stats.tenants.idle2).toBeUndefined();
    expect(stats.tenants[`idle${idle - 1}`]?.operations.get).toMatchObject({ calls: 1 });
    expect(stats.totals).toMatchObject({ calls: 1 + idle, misses: idle }); // dropped tenants' counts stay
    expect(live.stats().operations.set).toMatchObject({ calls: 1 });
    expect(shared.tenant('idle0').stats().totals.calls).toBe(0); // a dropped tenant starts afresh
    // (A view never closed leaves its tenant idle once garbage-collected, through a FinalizationRegistry;
    // not asserted here: when V8 collects it is not the test's to decide, and CI must not depend on it.)
    for (let i = 0; i < MAX_IDLE_TENANTS; i++) await shared.tenant(`idle-more${i}`).close();
    expect(shared.stats().tenants.idle1).toBeUndefined();
    expect(shared.stats().tenants['idle-live']).toBeDefined();
  });

  it('Keyv: one adapter per view, each inside its tenant, all on the shared connection', async () => {
    const shared = caches();
    const acme = createKeyv(shared.tenant('kv-acme'), { namespace: 'products' });
    const globex = createKeyv(shared.tenant('kv-globex'), { namespace: 'products' });
    await acme.set('p1', { name: 'anvil' }, 60_000);
    await globex.set('p1', { name: 'rocket' });
    expect(await acme.get('p1')).toEqual({ name: 'anvil' });
    expect(await globex.get('p1')).toEqual({ name: 'rocket' });
    await acme.clear();
    expect(await acme.get('p1')).toBeUndefined();
    expect(await globex.get('p1')).toEqual({ name: 'rocket' });
    expect(await server.scanKeys('kv-*')).toEqual(['kv-globex:products:p1']);
    expect(await connections()).toHaveLength(1);
  });

  it('validates tenants as a client does, and its own options', () => {
    const shared = caches();
    expect(() => shared.tenant('bad tenant')).toThrow(CacheValidationError);
    expect(() => shared.tenant('')).toThrow(CacheValidationError);
    expect(() => shared.tenant('a:b')).toThrow(CacheValidationError);
    expect(() => shared.tenant('ok', { additionalPrefix: 'a b' })).toThrow(CacheValidationError);
    expect(() => shared.tenant('ok', { prefix: 'x' } as never)).toThrow(CacheValidationError);
    expect(() => new TenantCaches({ connectionConfig: { url: server.url, tenant: 'acme' } })).toThrow(
      CacheValidationError,
    );
    expect(() => new TenantCaches({ connectionConfig: { url: server.url }, maxConnections: 2 })).toThrow(
      CacheValidationError,
    );
    expect(() => new TenantCaches({ env: {} })).toThrow(CacheConnectionError);
    // Its own message: its two modes, not a client's `{ url, tenant }` / PEAK_CACHE_TENANT advice.
    for (const env of [{}, { API_KEY: 'k' }]) {
      expect(() => new TenantCaches({ env })).toThrow(/^TenantCaches has no connection.*connectionFor/);
      expect(() => new TenantCaches({ env })).not.toThrow(/PEAK_CACHE_TENANT|tenant \}/);
    }
    expect(
      () => new TenantCaches({ connectionFor: () => ({ url: server.url }), nearCache: { maxEntries: 10 } }),
    ).toThrow(CacheValidationError);
    expect(() => new TenantCaches({ env: { PEAK_CACHE_URL: server.url } }).tenant('from-env')).not.toThrow();
  });

  it('tracing names the tenant of every view; invalidate and invalidateTags are counted and traced like any operation', async () => {
    const shared = caches({ deploymentId: 'dep' });
    const seen: string[] = [];
    const handlers = {
      start() {},
      end() {},
      asyncStart() {},
      asyncEnd(ctx: OperationContext) {
        seen.push(`${ctx.operation}:${ctx.tenant}`);
      },
      error() {},
    };
    const channel = tracingChannel<unknown, OperationContext>(OPERATION_CHANNEL);
    channel.subscribe(handlers as never);
    try {
      await shared.tenant('trace-a').set('k', 1);
      await shared.tenant('trace-b').get('k');
      const view = shared.tenant('trace-c');
      expect(await view.invalidate({ broadPatterns: ['users'] }, { wait: true })).toBe(0);
      await view.invalidate({ entityId: 1, targetedPatterns: ['users'] });
      await view.invalidateTags(['t1', 't2']);
      await expect(view.invalidateTags([''])).rejects.toThrow(CacheValidationError); // bad input: no call
    } finally {
      channel.unsubscribe(handlers as never);
    }
    expect(seen).toEqual([
      'set:trace-a',
      'get:trace-b',
      'invalidate:trace-c',
      'invalidate:trace-c',
      'invalidateTags:trace-c',
    ]);
    const operations = shared.stats().tenants['trace-c']?.operations;
    expect(operations?.invalidate).toMatchObject({ calls: 2, errors: 0 });
    expect(operations?.invalidateTags).toMatchObject({ calls: 1, errors: 0 });
    expect(shared.stats().totals.calls).toBe(5);
  });

  it('a server killed and restarted under load with 100 tenants: every call a right value or a typed error', async () => {
    const shared = caches({ connectionConfig: { url: server.url, timeoutMs: 500, connectTimeoutMs: 500 } });
    const views = Array.from({ length: 100 }, (_, i) => shared.tenant(`load${i}`));
    await Promise.all(views.map((v, i) => v.set('k', [i])));
    let stop = false;
    let ok = 0;
    let failed = 0;
    const wrong: unknown[] = [];
    const worker = async (i: number) => {
      const view = views[i] as CacheClient;
      while (!stop) {
        try {
          const value = await view.get('k');
          // After the restart the data is gone (no persistence): a miss, or the value written again.
          if (value !== null && (value as number[])[0] !== i) wrong.push(value);
          else ok++;
          if (value === null) await view.set('k', [i]);
        } catch (err) {
          if (!(err instanceof CacheError)) wrong.push(err);
          failed++;
          await sleep(5);
        }
      }
    };
    const workers = views.map((_, i) => worker(i));
    await sleep(200);
    await server.stop(true);
    await sleep(300);
    await server.restart();
    await sleep(1000);
    const okBefore = ok;
    await sleep(300);
    stop = true;
    await Promise.all(workers);
    expect(wrong).toEqual([]);
    expect(failed).toBeGreaterThan(0);
    expect(ok).toBeGreaterThan(okBefore); // recovered
    expect(await connections()).toHaveLength(1);
  });
});
