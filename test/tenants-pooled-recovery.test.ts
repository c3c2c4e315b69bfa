/**
 * Pooled `TenantCaches` under trouble (new-user trial of issue 18): a `connectionFor` that never settles,
 * a burst over more tenants than connections, and a rotated password.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../src/engines/client-factory.js';
import {
  CacheAuthError,
  CacheConnectionError,
  CacheTimeoutError,
  TenantCaches,
  type TenantCachesOptions,
  type TenantConnection,
} from '../src/index.js';
import { aclRecipe } from './helpers/acl.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const TENANTS = ['r0', 'r1', 'r2', 'r3', 'r4'];
const passwords = new Map(TENANTS.map((t) => [t, `pw-${t}`]));
const quiet = { debug() {}, warn() {} };

let server: RedisServer;
const opened: TenantCaches[] = [];
const urlFor = (tenant: string) => `redis://${tenant}:${passwords.get(tenant)}@127.0.0.1:${server.port}`;
function pooled(extra: Partial<TenantCachesOptions<'peak'>> = {}): TenantCaches {
  const c = new TenantCaches({
    connectionFor: (tenant) => ({ url: urlFor(tenant) }),
    logger: quiet,
    ...extra,
  });
  opened.push(c);
  return c;
}

beforeAll(async () => {
  server = await startRedis();
  for (const tenant of TENANTS) await server.cli(...aclRecipe(tenant, passwords.get(tenant) as string));
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await server.stop();
});

describe('TenantCaches pooled mode: opening, thrash and rotated credentials', () => {
  it('a connectionFor that never settles fails its calls with CacheTimeoutError and frees its place', async () => {
    const caches = pooled({
      connectionFor: (tenant): TenantConnection | Promise<TenantConnection> =>
        tenant === 'r0' ? new Promise(() => {}) : { url: urlFor(tenant) },
      maxConnections: 1,
      connectionConfig: { connectTimeoutMs: 200 },
    });
    const stuck = caches.tenant('r0');
    const calls = [stuck.get('k'), stuck.set('k', 1)];
    for (const call of calls) await expect(call).rejects.toBeInstanceOf(CacheTimeoutError);
    await expect(stuck.get('k')).rejects.toThrow(/connectionFor\("r0"\) did not settle within 200 ms/);
    // The one place in the pool is free again: another tenant's call runs.
    await caches.tenant('r1').set('k', 'ok');
    expect(await caches.tenant('r1').get('k')).toBe('ok');
  });

  it("a connectionFor result without a url names connectionFor, not a client's configuration", async () => {
    for (const result of [{}, 'redis://x', null]) {
      const caches = pooled({ connectionFor: () => result as TenantConnection });
      const call = caches.tenant('r0').get('k');
      await expect(call).rejects.toThrow(/connectionFor\("r0"\) must return a ConnectionConfig with a url/);
    }
  });

  it('close() resolves while a connectionFor is pending, and its calls reject as closed', async () => {
    const caches = pooled({
      connectionFor: () => new Promise<TenantConnection>(() => {}),
      connectionConfig: { connectTimeoutMs: 60_000 },
    });
    const call = caches.tenant('r0').get('k');
    await new Promise((r) => setTimeout(r, 20));
    await caches.close();
    await expect(call).rejects.toBeInstanceOf(CacheConnectionError);
    expect(caches.stats().connections).toBe(0);
  });

  it('5 tenants, maxConnections 2, 200 concurrent gets: all succeed, each tenant connection opened about once', async () => {
    let opens = 0;
    const caches = pooled({
      connectionFor: (tenant) => {
        opens++;
        return { url: urlFor(tenant) };
      },
      maxConnections: 2,
      connectionConfig: { timeoutMs: 1000 },
    });
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => caches.tenant(TENANTS[i % 5] as string).get(`k${i}`)),
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    // Batches per tenant: 5 opens in the best case (before: one per waiter served, 67-88 in the trial).
    expect(opens).toBeLessThanOrEqual(10);
    expect(caches.stats().connections).toBeLessThanOrEqual(2);
  });

  it('more tenants under continuous load than connections: opens bounded by the hold, every tenant progresses, nothing fails', async () => {
    // Before the hold: each call of a tenant without a connection evicted an idle one at once, so 5 tenants
    // looping on 2 connections reconnected (connectionFor + AUTH) about once per call.
    let opens = 0;
    const minHoldMs = 40;
    const caches = pooled({
      connectionFor: (tenant) => {
        opens++;
        return { url: urlFor(tenant) };
      },
      maxConnections: 2,
      minHoldMs,
      connectionConfig: { timeoutMs: 10_000 },
    });
    const accepted = async () =>
      Number(/total_connections_received:(\d+)/.exec(await server.cli('INFO', 'stats'))?.[1]);
    const acceptedBefore = await accepted();
    const GETS = 300; // at least, per tenant, by 2 callers each
    const done = new Map(TENANTS.map((t) => [t, 0]));
    // Every caller runs until every tenant did GETS: no connection goes idle (and is taken at once) early.
    const finished = () => [...done.values()].every((n) => n >= GETS);
    /** `connectionFor` calls and ms elapsed when every tenant had done GETS (calls still waiting then end after). */
    let atFinish: { opens: number; elapsed: number } | undefined;
    let most = 0;
    const started = performance.now();
    const caller = async (tenant: string) => {
      const view = caches.tenant(tenant);
      while (!finished()) {
        await view.get('k');
        done.set(tenant, (done.get(tenant) as number) + 1);
        if (atFinish === undefined && finished()) atFinish = { opens, elapsed: performance.now() - started };
        most = Math.max(most, caches.stats().connections);
      }
    };
    // Rejections fail the test (no call may fail); every caller finishes (no call hangs).
    await Promise.all(TENANTS.flatMap((t) => [caller(t), caller(t)]));
    for (const tenant of TENANTS) expect(done.get(tenant)).toBeGreaterThanOrEqual(GETS);
    const calls = [...done.values()].reduce((a, b) => a + b, 0);
    // While every tenant loops, a connection goes to another tenant only after serving its own for the
    // hold: at most 2 switches per hold window (plus the 2 first opens), a count bound derived from the
    // run's own duration. Then the calls still waiting open their tenant's connection once each (the
    // others, idle, are given away at once).
    const { opens: opensAtFinish, elapsed } = atFinish as { opens: number; elapsed: number };
    expect(opensAtFinish).toBeLessThanOrEqual(2 * (Math.ceil(elapsed / minHoldMs) + 1));
    expect(opens - opensAtFinish).toBeLessThanOrEqual(TENANTS.length);
    expect(opens).toBeLessThan(calls / 4);
    expect(opens).toBeGreaterThanOrEqual(TENANTS.length);
    // The server saw as many connections as connectionFor was called (and 2 of redis-cli's INFO).
    expect((await accepted()) - acceptedBefore).toBeLessThanOrEqual(opens + 2);
    expect(most).toBeLessThanOrEqual(2);
    const stats = caches.stats();
    expect(stats.totals.errors).toBe(0);
    expect(stats.waiting).toBe(0);
  });

  it('minHoldMs is validated: a non-negative integer, pooled mode only', () => {
    for (const bad of [-1, 1.5, '100', Number.NaN, 2 ** 31]) {
      expect(() => pooled({ minHoldMs: bad as number })).toThrow(
        /`minHoldMs` option must be a non-negative integer/,
      );
    }
    expect(() => pooled({ minHoldMs: 0 })).not.toThrow();
    expect(() => new TenantCaches({ connectionConfig: { url: 'memory://' }, minHoldMs: 100 })).toThrow(
      /minHoldMs applies with connectionFor only/,
    );
  });

  it('clients of different URLs share one node-redis command class (no rebuild per tenant connection)', () => {
    const a = createRedisClient({ url: 'redis://a:pw-a@127.0.0.1:1' });
    const b = createRedisClient({ url: 'redis://b:pw-b@127.0.0.1:2' });
    const c = createRedisClient({ url: 'redis://c:pw-c@127.0.0.1:3', RESP: 3 });
    expect(Object.getPrototypeOf(a).constructor).toBe(Object.getPrototypeOf(b).constructor);
    expect(Object.getPrototypeOf(c).constructor).not.toBe(Object.getPrototypeOf(a).constructor);
    expect(createRedisClient({ url: 'redis://127.0.0.1:4', RESP: 3 }).constructor).toBe(
      Object.getPrototypeOf(c).constructor,
    );
  });

  it('a rotated password: connectionFor is called again once, then calls succeed; again within the cool-down fails', async () => {
    let calls = 0;
    const caches = pooled({
      connectionFor: (tenant) => {
        calls++;
        return { url: urlFor(tenant) };
      },
    });
    const view = caches.tenant('r2');
    try {
      await view.set('r', 'v');
      const rotate = async (pw: string) => {
        passwords.set('r2', pw);
        await server.cli('ACL', 'SETUSER', 'r2', 'resetpass', `>${pw}`);
        await server.cli('CLIENT', 'KILL', 'USER', 'r2');
      };
      /** The first outcome of `get` that is not a connection still going down (the killed socket). */
      const settled = async (): Promise<unknown> => {
        for (let i = 0; ; i++) {
          try {
            return await view.get('r');
          } catch (err) {
            expect(err).toBeInstanceOf(CacheConnectionError);
            if (err instanceof CacheAuthError || i >= 40) return err;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      };
      await rotate('rotated-1');
      expect(await settled()).toBe('v');
      expect(await view.get('r')).toBe('v');
      expect(calls).toBe(2);
      // Rotated again at once: within the cool-down, the rejection is the caller's (no storm of calls).
      await rotate('rotated-2');
      expect(await settled()).toBeInstanceOf(CacheAuthError);
      expect(calls).toBe(2);
    } finally {
      passwords.set('r2', 'pw-r2');
      await server.cli(...aclRecipe('r2', 'pw-r2'));
    }
  });
});
