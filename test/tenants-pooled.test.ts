/**
 * Issue 18, pooled mode: one connection per tenant with its own credentials (the README's per-tenant ACL
 * user), at most `maxConnections` open, idle ones closed, calls past the bound waiting (never hanging),
 * credentials that name another tenant refused, and closing semantics.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheClient,
  CacheConnectionError,
  CacheError,
  CacheTimeoutError,
  Session,
  TenantCaches,
  type TenantCachesOptions,
} from '../src/index.js';
import { MAX_IDLE_TENANTS } from '../src/tenants.js';
import { aclRecipe } from './helpers/acl.js';
import { gatedFactories } from './helpers/gate.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TENANTS = ['p0', 'p1', 'p2', 'p3', 'p4'];
const password = (tenant: string) => `pw-${tenant}`;

let server: RedisServer;
const opened: TenantCaches[] = [];
const urlFor = (tenant: string) => `redis://${tenant}:${password(tenant)}@127.0.0.1:${server.port}`;
function pooled(extra: Partial<TenantCachesOptions<'peak'>> = {}): TenantCaches {
  const c = new TenantCaches({ connectionFor: (tenant) => ({ url: urlFor(tenant) }), ...extra });
  opened.push(c);
  return c;
}

/** `user=` of every normal connection of a tenant user. */
async function connectedUsers(): Promise<string[]> {
  const list = await server.cli('CLIENT', 'LIST', 'TYPE', 'normal');
  // The asking redis-cli is the only connection of the default user.
  return list
    .split('\n')
    .filter((line) => line !== '' && !line.includes('user=default'))
    .map((line) => /\buser=(\S+)/.exec(line)?.[1] ?? '?');
}

beforeAll(async () => {
  server = await startRedis();
  for (const tenant of TENANTS) await server.cli(...aclRecipe(tenant, password(tenant)));
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await server.stop();
});

describe('TenantCaches pooled mode (per-tenant ACL users)', () => {
  it('5 tenants, maxConnections 2: never more than 2 connections, every call succeeds as its own user', async () => {
    const openedFor = new Set<string>();
    const caches = pooled({
      maxConnections: 2,
      connectionFor: (tenant) => {
        openedFor.add(tenant);
        return { url: urlFor(tenant) };
      },
    });
    const views = TENANTS.map((t) => caches.tenant(t));
    let stop = false;
    let most = 0;
    const users = new Set<string>();
    const watcher = (async () => {
      while (!stop) {
        const now = await connectedUsers();
        most = Math.max(most, now.length);
        for (const user of now) users.add(user);
        await sleep(50);
      }
    })();
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        views.flatMap((view, i) => [
          view.set(`k${round}`, { i, round }),
          view.get(`k${round}`),
          view.mget('a', 'b'),
        ]),
      );
      for (const [i, view] of views.entries()) {
        expect(await view.get(`k${round}`)).toEqual({ i, round });
      }
      most = Math.max(most, caches.stats().connections);
    }
    expect(await views[0]?.flushTenant()).toBe(4);
    stop = true;
    await watcher;
    expect(most).toBeLessThanOrEqual(2);
    expect(most).toBeGreaterThan(0);
    expect([...users].filter((u) => !TENANTS.includes(u))).toEqual([]);
    // Every tenant had its own connection in turn. The watcher may miss all of them (calls are served in
    // batches per tenant, so connections can live less than its 50 ms poll); what it did see were tenants'.
    expect([...openedFor].sort()).toEqual(TENANTS);
    // Nothing was refused: a call on another tenant's connection would have been (keys ~<tenant>:*).
    expect(await server.cli('ACL', 'LOG')).toBe('');
    expect(await server.scanKeys('p1:*')).toHaveLength(4);
    const stats = caches.stats();
    expect(stats.mode).toBe('pooled');
    expect(stats.totals.errors).toBe(0);
    expect(stats.tenants.p3?.operations.set.calls).toBe(4);
  });

  it('closes idle connections after idleTimeoutMs and reopens them transparently', async () => {
    const caches = pooled({ idleTimeoutMs: 100 });
    const view = caches.tenant('p0');
    await view.set('idle', [1]);
    expect(caches.stats().connections).toBe(1);
    expect(await connectedUsers()).toEqual(['p0']);
    await sleep(400);
    expect(caches.stats().connections).toBe(0);
    expect(await connectedUsers()).toEqual([]);
    expect(await view.get('idle')).toEqual([1]);
    expect(caches.stats().connections).toBe(1);
  });

  it('calls past the bound wait at most timeoutMs, then fail with CacheTimeoutError (never hang)', async () => {
    // p0's commands wait 5 s for a reply; a call waits at most 300 ms for a connection.
    const caches = pooled({
      maxConnections: 1,
      connectionConfig: { timeoutMs: 300 },
      connectionFor: (tenant) => ({ url: urlFor(tenant), ...(tenant === 'p0' ? { timeoutMs: 5000 } : {}) }),
    });
    const a = caches.tenant('p0');
    const b = caches.tenant('p1');
    await a.set('k', [0]);
    server.pause();
    let held: Promise<unknown>;
    try {
      held = a.get('k'); // holds p0's connection, the only one, while the server is frozen
      const waited = await b.get('k').catch((err: unknown) => err);
      expect(waited).toBeInstanceOf(CacheTimeoutError);
      expect(String(waited)).toContain('get failed: no connection became free within 300 ms');
      expect(caches.stats().waiting).toBe(0);
    } finally {
      server.resume();
    }
    expect(await held).toEqual([0]);
    expect(await b.get('k')).toBeNull();
    expect(caches.stats().connections).toBe(1);
  });

  it('credentials for another tenant are refused: a config naming it, or a Session the platform maps to it', async () => {
    let requests = 0;
    const http: Server = createServer((_req, res) => {
      requests++;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ tenant: 'p1', url: urlFor('p1') }));
    });
    http.listen(0, '127.0.0.1');
    await new Promise((r) => http.once('listening', r));
    const baseUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      const caches = pooled({
        connectionFor: (tenant) =>
          tenant === 'p2'
            ? { url: urlFor('p1'), tenant: 'p1' }
            : new Session({ authToken: `token-${tenant}`, baseUrl, env: {} }),
      });
      await expect(caches.tenant('p0').get('k')).rejects.toThrow(CacheConnectionError);
      await expect(caches.tenant('p0').get('k')).rejects.toThrow('name another tenant');
      await expect(caches.tenant('p2').set('k', 1)).rejects.toThrow(CacheConnectionError);
      // The platform's own tenant works.
      expect(await caches.tenant('p1').set('from-session', [1])).toBe(true);
      expect(requests).toBeGreaterThanOrEqual(3);
      expect(caches.stats().connections).toBe(1);
    } finally {
      http.close();
    }
  });

  it('platform credentials are fetched again once per tenant when the server rejects them', async () => {
    const passwords = new Map([
      ['p2', password('p2')],
      ['p3', password('p3')],
    ]);
    const requests = new Map<string, number>();
    const http: Server = createServer((req, res) => {
      const tenant = String(req.headers.authorization).replace('token-', '');
      requests.set(tenant, (requests.get(tenant) ?? 0) + 1);
      const reply = {
        tenant,
        engine: 'redis',
        host: '127.0.0.1',
        port: server.port,
        userId: tenant,
        password: passwords.get(tenant),
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
    });
    http.listen(0, '127.0.0.1');
    await new Promise((r) => http.once('listening', r));
    const baseUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    try {
      const caches = pooled({
        connectionFor: (tenant) => new Session({ authToken: `token-${tenant}`, baseUrl, env: {} }),
        logger: { debug() {}, warn() {} },
      });
      const p2 = caches.tenant('p2');
      const p3 = caches.tenant('p3');
      await p2.set('rotate', [2]);
      await p3.set('rotate', [3]);
      passwords.set('p3', 'rotated-pw');
      await server.cli('ACL', 'SETUSER', 'p3', 'resetpass', '>rotated-pw');
      await server.cli('CLIENT', 'KILL', 'USER', 'p3');
      let value: unknown;
      for (let i = 0; i < 50 && value === undefined; i++) {
        try {
          value = await p3.get('rotate');
        } catch (err) {
          expect(err).toBeInstanceOf(CacheConnectionError);
          await sleep(50);
        }
      }
      expect(value).toEqual([3]);
      expect(requests.get('p3')).toBe(2);
      expect(await p2.get('rotate')).toEqual([2]);
      expect(requests.get('p2')).toBe(1);
    } finally {
      http.close();
      await server.cli(...aclRecipe('p3', password('p3')));
    }
  });

  it('a server killed and restarted under load with 100 tenants and 10 connections: typed errors, then recovery', async () => {
    const caches = pooled({
      connectionFor: () => ({ url: server.url }),
      maxConnections: 10,
      connectionConfig: { timeoutMs: 500, connectTimeoutMs: 500 },
    });
    const views = Array.from({ length: 100 }, (_, i) => caches.tenant(`load${i}`));
    // Ten at a time: 100 at once would queue 90 calls, some longer than the 500 ms bound on a busy machine.
    for (let i = 0; i < 100; i += 10) {
      await Promise.all(views.slice(i, i + 10).map((v, j) => v.set('k', [i + j])));
    }
    let stop = false;
    let ok = 0;
    let failed = 0;
    let most = 0;
    const wrong: unknown[] = [];
    const worker = async (i: number) => {
      const view = views[i] as (typeof views)[number];
      while (!stop) {
        try {
          const value = await view.get('k');
          if (value !== null && (value as number[])[0] !== i) wrong.push(value);
          else ok++;
          if (value === null) await view.set('k', [i]);
        } catch (err) {
          if (!(err instanceof CacheError)) wrong.push(err);
          failed++;
          await sleep(5);
        }
        most = Math.max(most, caches.stats().connections);
      }
    };
    const workers = views.map((_, i) => worker(i));
    await sleep(200);
    await server.stop(true);
    await sleep(300);
    await server.restart();
    for (const tenant of TENANTS) await server.cli(...aclRecipe(tenant, password(tenant)));
    await sleep(1000);
    const okBefore = ok;
    await sleep(300);
    stop = true;
    await Promise.all(workers);
    expect(wrong).toEqual([]);
    expect(failed).toBeGreaterThan(0);
    expect(ok).toBeGreaterThan(okBefore);
    expect(most).toBeLessThanOrEqual(10);
    expect(caches.stats().waiting).toBe(0);
    // Our connections (default user here) and the asking redis-cli.
    const open = (await server.cli('CLIENT', 'LIST', 'TYPE', 'normal')).split('\n').filter(Boolean);
    expect(open.length - 1).toBeLessThanOrEqual(10);
  });

  it("the caches' close abandons every tenant's running fills as a client close does: locks gone at once, nothing stored", async () => {
    const warnings: string[] = [];
    const caches = pooled({ deploymentId: null, logger: { debug: () => {}, warn: (m) => warnings.push(m) } });
    const other = new CacheClient({
      connectionConfig: { url: urlFor('p0'), tenant: 'p0' },
      deploymentId: null,
    });
    const { open, started, slow } = gatedFactories();
    const o = { lockTimeoutMs: 30_000 }; // a lock left behind would hold the other client for 30 s
    const fills = [
      caches.tenant('p0').getOrSet('k', slow('p0'), o),
      caches.tenant('p1').getOrSet('k', slow('p1'), o),
    ];
    while (started() < 2) await sleep(5);
    expect((await server.scanKeys('p*:__peak_lock__:*')).sort()).toEqual([
      'p0:__peak_lock__:k',
      'p1:__peak_lock__:k',
    ]);
    await caches.close();
    expect(await server.scanKeys('p*:__peak_lock__:*')).toEqual([]); // released by close, not expired
    expect(await other.getOrSet('k', async () => 'other', o)).toBe('other');
    expect(other.stats().cachedFunctions).toMatchObject({ lockWaits: 0, factoryRuns: 1 });
    open();
    expect(await Promise.all(fills)).toEqual(['p0', 'p1']); // the callers get their results; nothing stored
    await sleep(50);
    expect(await server.scanKeys('p1:*')).toEqual([]);
    expect(await other.getOrSet('k', async () => 'again')).toBe('other'); // other's result stays
    expect(warnings).toEqual([]);
    await other.close();
  });

  it("the caches' close releases the lock of a tenant whose connection was closed to make room while its factory ran", async () => {
    const opened: string[] = [];
    const caches = pooled({
      deploymentId: null,
      maxConnections: 1,
      connectionFor: (tenant) => {
        opened.push(tenant);
        return { url: urlFor(tenant) };
      },
    });
    const { open, started, slow } = gatedFactories();
    const fill = caches.tenant('p2').getOrSet('k', slow('p2'), { lockTimeoutMs: 30_000 });
    while (started() === 0) await sleep(5);
    await caches.tenant('p3').set('k', 1); // p2's connection (idle while its factory runs) closes for p3's
    expect(await server.scanKeys('p2:*')).toEqual(['p2:__peak_lock__:k']);
    expect(caches.stats().connections).toBe(1);
    await caches.close();
    expect(await server.scanKeys('p2:*')).toEqual([]); // released on a short connection of p2's own
    expect(opened).toEqual(['p2', 'p3', 'p2']);
    open();
    expect(await fill).toBe('p2'); // the caller gets its result; nothing stored
    expect(await server.scanKeys('p2:*')).toEqual([]);
    expect(await connectedUsers()).toEqual([]);
  });

  it('a tenant without open views keeps its counters while its connection is open (idle ones beyond MAX_IDLE_TENANTS dropped)', async () => {
    const caches = pooled();
    const p0 = caches.tenant('p0');
    await p0.set('k', 1);
    await p0.close();
    for (let i = 0; i < MAX_IDLE_TENANTS + 10; i++) await caches.tenant(`q${i}`).close(); // no I/O
    const stats = caches.stats();
    expect(stats.connections).toBe(1);
    expect(stats.tenants.p0?.operations.set).toMatchObject({ calls: 1 }); // least recently used, not idle
    expect(Object.keys(stats.tenants)).toHaveLength(1 + MAX_IDLE_TENANTS);
    expect(stats.tenants.q9).toBeUndefined();
    expect(stats.tenants.q10).toBeDefined();
  });

  it('a connectionFor that throws is a CacheConnectionError; closing rejects every view', async () => {
    const caches = pooled({
      connectionFor: async (tenant) => {
        if (tenant === 'p4') throw new Error('vault down');
        return { url: urlFor(tenant) };
      },
    });
    await expect(caches.tenant('p4').get('k')).rejects.toThrow(CacheConnectionError);
    const a = caches.tenant('p0');
    const b = caches.tenant('p1');
    await a.set('k', [1]);
    await b.set('k', [2]);
    await a.close();
    await expect(a.get('k')).rejects.toThrow(CacheConnectionError);
    expect(await b.get('k')).toEqual([2]);
    await caches.close();
    await expect(b.get('k')).rejects.toThrow('get failed: the TenantCaches is closed');
    expect(caches.stats().connections).toBe(0);
    expect(await connectedUsers()).toEqual([]);
  });
});
