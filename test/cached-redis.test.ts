/**
 * Cached functions on a real redis-server: the conformance suite (as the default user and as the
 * README's per-tenant ACL user, where scripting is refused), and what only real processes and a real
 * server show: several processes on one cold key, a SIGKILLed lock owner, a SIGSTOPped server, the
 * fallback, and Python-layout keys written and deleted with redis-cli.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheClient } from '../src/index.js';
import { registerCachedSuite } from './cached-conformance.js';
import { aclRecipe } from './helpers/acl.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

let server: RedisServer;
let aclServer: RedisServer;

registerCachedSuite(
  'redis-server',
  async () => {
    server = await startRedis();
    return { options: (tenant, extra = {}) => ({ connectionConfig: { url: server.url, tenant }, ...extra }) };
  },
  () => server.stop(),
);

// The README's ACL recipe: no @scripting, so compare-and-delete takes its GET + DEL path.
registerCachedSuite(
  'redis-server with a per-tenant ACL user',
  async () => {
    aclServer = await startRedis();
    return {
      options: (tenant, extra = {}) => ({
        connectionConfig: { url: `redis://${tenant}:pw@127.0.0.1:${aclServer.port}`, tenant },
        ...extra,
      }),
      prepareTenant: async (tenant) => {
        await aclServer.cli(...aclRecipe(tenant, 'pw'));
      },
    };
  },
  () => aclServer.stop(),
  // The timed tests (TTL and timeout waits) take the same paths as for the default user: run once.
  { timed: false },
);

const CHILD = join(import.meta.dirname, 'fixtures', 'cached-child.ts');
const RACE_CHILD = join(import.meta.dirname, 'fixtures', 'cached-race-child.ts');

interface ChildResult {
  runs: number;
  value?: { from: number };
  error?: string;
  ms: number;
}

interface Child {
  proc: ChildProcess;
  /** Resolves once the child is connected and waits for {@link Child.go}. */
  ready: Promise<void>;
  /** Resolves when its factory starts. */
  started: Promise<void>;
  /** Start its getOrSet call. */
  go(): void;
  done: Promise<ChildResult>;
}

/** A child process calling getOrSet once (see fixtures/cached-child.ts). */
function child(env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  const waiters: [string, () => void][] = [];
  const seen = (line: string) =>
    new Promise<void>((resolve) => {
      waiters.push([line, resolve]);
    });
  const ready = seen('READY');
  const started = seen('RUN');
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    for (const [line, resolve] of waiters) if (out.includes(`${line}\n`)) resolve();
  });
  const done = once(proc, 'exit').then(() => {
    const lines = out.trim().split('\n');
    const last = lines[lines.length - 1] ?? '{}';
    const parsed = last.startsWith('{') ? (JSON.parse(last) as Omit<ChildResult, 'runs'>) : { ms: -1 };
    return { ...parsed, runs: lines.filter((l) => l === 'RUN').length };
  });
  return { proc, ready, started, go: () => proc.stdin?.end('go\n'), done };
}

describe('cached functions across processes (redis-server)', () => {
  let redis: RedisServer;
  let n = 0;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis.stop());

  it('several processes call getOrSet on one cold key at once: the factory runs exactly once', async () => {
    const env = { URL: redis.url, TENANT: 'procs', KEY: `cold-${n++}`, FACTORY_MS: '300' };
    const children = Array.from({ length: 5 }, () => child(env));
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.go();
    const results = await Promise.all(children.map((c) => c.done));
    expect(results.reduce((sum, r) => sum + r.runs, 0)).toBe(1);
    const owner = results.find((r) => r.runs === 1)?.value?.from;
    for (const r of results) {
      expect(r.error).toBeUndefined();
      expect(r.value?.from).toBe(owner); // every process got the owner's result
    }
  }, 90_000);

  it('three clients (no shared in-process state) on 300 cold keys: no key runs its factory twice', async () => {
    // The race: a caller's read misses, the owner stores and releases, then the caller takes the free
    // lock. Without a second read after taking the lock, it ran the factory again (1-38 of 300 keys).
    const pool = new ClientPool();
    const clients = [0, 1, 2].map(() => pool.open({ connectionConfig: { url: redis.url, tenant: 'race' } }));
    await Promise.all(clients.map((c) => c.ping()));
    const KEYS = 300;
    const runs = new Array<number>(KEYS).fill(0);
    const one = async (i: number) => {
      await Promise.all(
        clients.map(async (c, j) => {
          await new Promise((r) => setTimeout(r, j * 2 * Math.random()));
          const v = await c.getOrSet(
            `race-${n}-${i}`,
            async () => {
              runs[i] = (runs[i] ?? 0) + 1;
              await new Promise((r) => setTimeout(r, 1));
              return i;
            },
            { ttl: 60 },
          );
          expect(v).toBe(i);
        }),
      );
    };
    for (let lane = 0; lane < KEYS; lane += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, k) => one(lane + k)));
    }
    n++;
    expect(runs.map((r, i) => `${i}x${r}`).filter((_, i) => runs[i] !== 1)).toEqual([]);
    await pool.closeAll();
  }, 60_000);

  it('three processes on 100 cold keys, each key at about the same moment: no key runs its factory twice', async () => {
    const tag = `k${n++}`;
    const procs = [0, 1, 2].map(() =>
      spawn(process.execPath, ['--import', 'tsx', RACE_CHILD], {
        env: { ...process.env, URL: redis.url, TENANT: 'race-procs', TAG: tag, KEYS: '100' },
        stdio: ['pipe', 'pipe', 'inherit'],
      }),
    );
    const outputs = procs.map((p) => {
      let out = '';
      p.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      return {
        ready: new Promise<void>((resolve) => {
          const check = () => (out.includes('READY\n') ? resolve() : setTimeout(check, 10));
          check();
        }),
        done: once(p, 'exit').then(() => JSON.parse(out.trim().split('\n').pop() ?? '[]') as number[]),
      };
    });
    await Promise.all(outputs.map((o) => o.ready));
    const t0 = Date.now() + 300;
    for (const p of procs) p.stdin?.end(`${t0}\n`);
    const ran = (await Promise.all(outputs.map((o) => o.done))).flat();
    const runs = new Map<number, number>();
    for (const i of ran) runs.set(i, (runs.get(i) ?? 0) + 1);
    expect(runs.size).toBe(100);
    expect([...runs].filter(([, r]) => r > 1).map(([i, r]) => `${i}x${r}`)).toEqual([]);
  }, 90_000);

  it('a SIGKILLed lock owner does not block waiters past lockTimeoutMs', async () => {
    const key = `killed-${n++}`;
    // The owner's lock lives 20 s: only the waiters' bound can free them.
    const owner = child({
      URL: redis.url,
      TENANT: 'procs',
      KEY: key,
      FACTORY_MS: '60000',
      LOCK_TIMEOUT_MS: '20000',
    });
    const env = { URL: redis.url, TENANT: 'procs', KEY: key, FACTORY_MS: '100', LOCK_TIMEOUT_MS: '1500' };
    const waiters = Array.from({ length: 4 }, () => child(env));
    await Promise.all([owner, ...waiters].map((c) => c.ready));
    owner.go();
    await owner.started;
    for (const w of waiters) w.go();
    await new Promise((r) => setTimeout(r, 300)); // the waiters poll the lock
    owner.proc.kill('SIGKILL');
    const results = await Promise.all(waiters.map((w) => w.done));
    for (const r of results) {
      expect(r.error).toBeUndefined();
      expect(r.value?.from).toBeTypeOf('number');
      expect(r.ms).toBeGreaterThan(1400); // they did wait for the owner...
      expect(r.ms).toBeLessThan(1500 + 100 + 1500); // ...but not past the bound (plus the factory)
    }
    expect((await owner.done).runs).toBe(1);
  }, 90_000);

  it('a factory 3x longer than lockTtlMs runs once across two processes (the owner extends its lease)', async () => {
    const env = {
      URL: redis.url,
      TENANT: 'procs',
      KEY: `lease-${n++}`,
      FACTORY_MS: '900',
      LOCK_TTL_MS: '300',
    };
    const children = [child(env), child(env)];
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.go();
    const results = await Promise.all(children.map((c) => c.done));
    expect(results.reduce((sum, r) => sum + r.runs, 0)).toBe(1);
    for (const r of results) expect(r.error).toBeUndefined();
  }, 60_000);

  it("a killed owner's lease expires within lockTtlMs: a waiter takes over long before its lockTimeoutMs", async () => {
    const key = `dead-lease-${n++}`;
    const base = { URL: redis.url, TENANT: 'procs', KEY: key, LOCK_TIMEOUT_MS: '20000', LOCK_TTL_MS: '300' };
    const owner = child({ ...base, FACTORY_MS: '60000' });
    const waiter = child({ ...base, FACTORY_MS: '50' });
    await Promise.all([owner.ready, waiter.ready]);
    owner.go();
    await owner.started;
    waiter.go();
    await new Promise((r) => setTimeout(r, 700)); // longer than lockTtlMs: the lease is being extended
    owner.proc.kill('SIGKILL');
    const result = await waiter.done;
    expect(result.error).toBeUndefined();
    expect(result.runs).toBe(1);
    expect(result.ms).toBeGreaterThan(600); // it did wait while the owner lived...
    expect(result.ms).toBeLessThan(10_000); // ...not for its 20 s lockTimeoutMs
  }, 60_000);

  it('an entry written by redis-cli in the Python layout is cleared by invalidate; a redis-cli pattern delete clears ours', async () => {
    const pool = new ClientPool();
    const cache = pool.open({ connectionConfig: { url: redis.url, tenant: 'py' }, deploymentId: 'dep-9' });
    const pyKey = `py:dep-9:orders:42:${Buffer.from('{"args": [42], "kwargs": {}}').toString('base64')}`;
    await redis.cli('SET', pyKey, '{"total": 3}', 'EX', '600');
    await redis.cli('SET', `py:dep-9:orders:420:abc`, '{"total": 4}', 'EX', '600');
    expect(await cache.invalidate({ entityId: 42, targetedPatterns: ['orders'] }, { wait: true })).toBe(1);
    expect(await redis.scanKeys('py:dep-9:orders:*')).toEqual(['py:dep-9:orders:420:abc']);
    // Ours, deleted the way Python's invalidate_cache does it (SCAN MATCH <dep>:<pattern>:<entity>*).
    let runs = 0;
    const find = cache.cacheResult(
      async (id: number) => {
        runs++;
        return { id };
      },
      { keyPrefix: 'orders', entityId: (id) => id },
    );
    await find(5);
    const ours = await redis.scanKeys('py:dep-9:orders:5*');
    expect(ours).toHaveLength(1);
    await redis.cli('DEL', ...ours);
    await find(5);
    expect(runs).toBe(2);
    await pool.closeAll();
  });
});

const PYTHON_DECORATORS = join(import.meta.dirname, 'fixtures', 'python_cache_decorators.py');

/** Run Python's decorator key logic (fixtures/python_cache_decorators.py, redis-py) against `port`. */
function python(port: number, tenant: string, dep: string, ...args: string[]): string {
  return execFileSync('/usr/bin/python3', [PYTHON_DECORATORS, String(port), tenant, dep, ...args], {
    encoding: 'utf8',
  }).trim();
}

describe('cached functions and Python (redis-py, the decorators key logic)', () => {
  let redis: RedisServer;
  const pool = new ClientPool();
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await pool.closeAll();
    await redis.stop();
  });

  it("invalidate clears Python's cache_result entries of entity 42 and keeps 420's", async () => {
    const cache = pool.open({ connectionConfig: { url: redis.url, tenant: 'pyt' }, deploymentId: 'dep-py' });
    const k42 = python(redis.port, 'pyt', 'dep-py', 'write', 'orders', '42', '[42]', '{"total": 1}');
    const k420 = python(redis.port, 'pyt', 'dep-py', 'write', 'orders', '420', '[420]', '{"total": 2}');
    expect(k42).toBe(
      `pyt:dep-py:orders:42:${Buffer.from('{"args": [42], "kwargs": {}}').toString('base64')}`,
    );
    expect(await cache.invalidate({ entityId: 42, targetedPatterns: ['orders'] }, { wait: true })).toBe(1);
    expect(await redis.scanKeys('pyt:dep-py:*')).toEqual([k420]);
    python(redis.port, 'pyt', 'dep-py', 'write', 'lists', '-', '[]', '[1, 2]');
    expect(await cache.invalidate({ broadPatterns: ['lists'] }, { wait: true })).toBe(1);
  });

  it("Python's invalidate_cache clears our entries (its targeted pattern also takes 50 with 5: Python's bug)", async () => {
    const cache = pool.open({ connectionConfig: { url: redis.url, tenant: 'pyt2' }, deploymentId: 'dep-py' });
    let runs = 0;
    const find = cache.cacheResult(
      async (id: number) => {
        runs++;
        return { id, at: new Date(0) };
      },
      { keyPrefix: 'orders', entityId: (id) => id },
    );
    const all = cache.cacheResult(async () => [1, 2, 3], { keyPrefix: 'order-lists' });
    await Promise.all([find(5), find(50), find(7), all()]);
    expect(python(redis.port, 'pyt2', 'dep-py', 'invalidate', '5', 'orders')).toBe('2'); // 5 and 50
    await Promise.all([find(5), find(7)]);
    expect(runs).toBe(4); // 5 ran again, 7 was kept
    expect(python(redis.port, 'pyt2', 'dep-py', 'broad', 'order-lists')).toBe('1');
    expect(python(redis.port, 'pyt2', 'dep-py', 'broad', 'orders')).toBe('2'); // 5 and 7; not order-lists
  });
});

describe('cached functions when the server freezes (SIGSTOP)', () => {
  let redis: RedisServer;
  const pool = new ClientPool();
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    redis.resume();
    await pool.closeAll();
    await redis.stop();
  });

  it('20 calls take about 20x the function time plus one timeout, not 20 timeouts; the fallback serves repeats', async () => {
    const TIMEOUT = 400;
    const FN_MS = 50;
    const cache = pool.open({
      connectionConfig: { url: redis.url, tenant: 'frozen', timeoutMs: TIMEOUT, connectTimeoutMs: TIMEOUT },
      logger: { debug: () => {}, warn: () => {} },
    });
    let runs = 0;
    const slow = cache.cacheResult(
      async (i: number) => {
        runs++;
        await new Promise((r) => setTimeout(r, FN_MS));
        return i * 2;
      },
      { breakerMs: 30_000, fallback: { maxEntries: 100 } },
    );
    expect(await slow(-1)).toBe(-2); // connected and warm
    redis.pause();
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) expect(await slow(i)).toBe(i * 2);
    const elapsed = performance.now() - t0;
    // 20 x 50 ms + one 400 ms timeout = 1400 ms; 20 timeouts would be 9000 ms.
    expect(elapsed).toBeGreaterThan(20 * FN_MS + TIMEOUT * 0.9);
    expect(elapsed).toBeLessThan(20 * FN_MS + TIMEOUT + 1500);
    const stats = cache.stats().cachedFunctions;
    expect(stats?.breakerTrips).toBe(1);
    expect(stats?.breakerSkips).toBe(19);
    // The fallback really engages: repeats are served from process memory, the function does not run.
    const before = runs;
    for (let i = 0; i < 20; i++) expect(await slow(i)).toBe(i * 2);
    expect(runs).toBe(before);
    expect(cache.stats().cachedFunctions.fallbackHits).toBe(20);
    redis.resume();
  }, 30_000);

  it('out of memory: the result is returned; the breaker stays closed (OOM is answered at once)', async () => {
    await redis.cli('CONFIG', 'SET', 'maxmemory', '1');
    await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    const cache = pool.open({
      connectionConfig: { url: redis.url, tenant: 'oom' },
      logger: { debug: () => {}, warn: () => {} },
    });
    let runs = 0;
    const f = async () => ++runs;
    expect(await cache.getOrSet('k', f, { breakerMs: 60_000 })).toBe(1);
    expect(await cache.getOrSet('k', f, { breakerMs: 60_000 })).toBe(2); // not stored: runs again
    const stats = cache.stats().cachedFunctions;
    expect(stats.breakerTrips).toBe(0); // only connection-level failures open it (SPEC section 7)
    expect(stats.breakerSkips).toBe(0);
    expect(stats.cacheErrors).toBeGreaterThanOrEqual(2);
    await redis.cli('CONFIG', 'SET', 'maxmemory', '0');
  });
});

describe('cached functions: per-key errors (redis-server)', () => {
  let redis: RedisServer;
  const pool = new ClientPool();
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await pool.closeAll();
    await redis.stop();
  });

  it('one key with the wrong type (WRONGTYPE) fails that call alone: the breaker stays closed, other keys stay cached', async () => {
    const warnings: string[] = [];
    const cache = pool.open({
      connectionConfig: { url: redis.url, tenant: 'wt' },
      logger: { debug: () => {}, warn: (m) => warnings.push(m) },
    });
    await redis.cli('HSET', 'wt:bad', 'field', 'value');
    let runs = 0;
    const f = async () => ++runs;
    for (let i = 0; i < 3; i++) expect(await cache.getOrSet('bad', f, { breakerMs: 60_000 })).toBe(i + 1);
    expect(await redis.cli('TYPE', 'wt:bad')).toBe('hash'); // not overwritten
    // Other keys still use the cache: the second call is a hit.
    expect(await cache.getOrSet('good', f, { breakerMs: 60_000 })).toBe(4);
    expect(await cache.getOrSet('good', f, { breakerMs: 60_000 })).toBe(4);
    const stats = cache.stats().cachedFunctions;
    expect(stats.breakerTrips).toBe(0);
    expect(stats.breakerSkips).toBe(0);
    expect(stats.cacheErrors).toBe(3);
    expect(warnings.some((w) => w.includes('"bad" skips the cache for this call'))).toBe(true);
  });
});

describe('cached functions: a client that is not connected yet', () => {
  it('getOrSet on an unreachable server returns the factory result', async () => {
    const cache = new CacheClient({
      connectionConfig: { url: 'redis://127.0.0.1:1', tenant: 't', connectTimeoutMs: 200 },
      logger: { debug: () => {}, warn: () => {} },
    });
    expect(await cache.getOrSet('k', async () => 'computed')).toBe('computed');
    await cache.close();
  });
});
