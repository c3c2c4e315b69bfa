/**
 * Reliability under faults, against real redis-server processes (and a loopback proxy of our own only
 * where a fault needs one). Every error seen is also checked for the server's password.
 */
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheAuthError,
  CacheClient,
  CacheConnectionError,
  CacheError,
  type CacheLogger,
  CacheTimeoutError,
} from '../src/index.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { untilAnswering } from './helpers/recovery.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const PASSWORD = 'S3cret-pw!';
const TIMEOUT_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every error and log line of these tests, to grep for the password at the end. */
const seen: string[] = [];
const logger: CacheLogger = { debug: (m) => seen.push(m), warn: (m) => seen.push(m) };

async function settle<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    seen.push(String(error), inspect(error, { depth: 5 }));
    return { ok: false, error };
  }
}

async function commandCalls(server: RedisServer, command: string): Promise<number> {
  const stats = await server.cli('INFO', 'commandstats');
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
}

describe('faults', () => {
  let server: RedisServer;
  const clients: CacheClient[] = [];
  const client = (url: string, extra: object = {}) => {
    const c = new CacheClient({
      connectionConfig: {
        url,
        tenant: 'faults',
        timeoutMs: TIMEOUT_MS,
        connectTimeoutMs: TIMEOUT_MS,
        ...extra,
      },
      logger,
    });
    clients.push(c);
    seen.push(inspect(c), JSON.stringify(c));
    return c;
  };
  const passwordUrl = (port: number, password = PASSWORD) =>
    `redis://default:${encodeURIComponent(password)}@127.0.0.1:${port}`;

  beforeAll(async () => {
    server = await startRedis({ password: PASSWORD });
  });
  afterEach(() => server.resume());
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
    for (const line of seen) {
      expect(line).not.toContain(PASSWORD);
      expect(line).not.toContain(encodeURIComponent(PASSWORD));
    }
  });

  it('bounds the queue: beyond maxQueueLength calls reject at once', async () => {
    const cache = client(passwordUrl(server.port), { maxQueueLength: 50 });
    await cache.ping();
    server.pause();
    const start = performance.now();
    const calls = Array.from({ length: 80 }, (_, i) =>
      settle(cache.get(`k${i}`)).then((r) => ({ r, ms: performance.now() - start })),
    );
    const results = await Promise.all(calls);
    server.resume();
    const full = results.filter(({ r }) => !r.ok && /queue is full/.test(String(r.error)));
    expect(full.length).toBe(30);
    for (const { r } of full) expect(r.ok ? null : r.error).toBeInstanceOf(CacheConnectionError);
    const timedOut = results.filter(({ r }) => !r.ok && r.error instanceof CacheTimeoutError);
    expect(timedOut.length).toBe(50);
    // "At once": every refused call settled before the first queued call could time out. Ordering, not a
    // wall-clock bound, so a loaded machine cannot fail it.
    const lastRefused = Math.max(...full.map(({ ms }) => ms));
    const firstTimeout = Math.min(...timedOut.map(({ ms }) => ms));
    expect(lastRefused).toBeLessThan(firstTimeout);
    await untilAnswering(cache);
  });

  it('connection killed mid-workload: every call succeeds or rejects, none is lost, the client reconnects', async () => {
    const cache = client(passwordUrl(server.port));
    const callers = 32;
    const acked = new Array<number>(callers).fill(-1);
    const attempted = new Array<number>(callers).fill(-1);
    const errors: unknown[] = [];
    let wrong = 0;
    let stop = false;
    const run = async (id: number) => {
      for (let seq = 0; !stop; seq++) {
        attempted[id] = seq;
        const write = await settle(cache.set(`caller:${id}`, { id, seq }));
        if (write.ok) acked[id] = seq;
        else {
          errors.push(write.error);
          // Fail-fast rejections settle in microtasks: let timers run between retries.
          await sleep(1);
        }
        const read = await settle(cache.get<{ id: number; seq: number }>(`caller:${id}`));
        if (!read.ok) errors.push(read.error);
        else if (
          read.value !== null &&
          (read.value.seq < (acked[id] ?? -1) || read.value.seq > (attempted[id] ?? -1))
        ) {
          wrong++;
        }
      }
    };
    const workers = Array.from({ length: callers }, (_, id) => run(id));
    for (let i = 0; i < 5; i++) {
      await sleep(150);
      await server.cli('CLIENT', 'KILL', 'TYPE', 'normal');
    }
    await sleep(300);
    stop = true;
    await Promise.all(workers);
    expect(wrong).toBe(0);
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors) expect(error).toBeInstanceOf(CacheConnectionError);
    expect(acked.every((seq) => seq > 0)).toBe(true);
    expect(await cache.set('after', 1)).toBe(true);
  });

  it('a reply lost after the command ran: the write is not executed twice behind the caller', async () => {
    const proxy = await startFaultProxy(server.port);
    try {
      const cache = client(passwordUrl(proxy.port));
      // Warm up: the mset script is loaded, so the faulty call runs it at once.
      await cache.mset({ warm: 1 }, 60);
      await server.cli('CONFIG', 'RESETSTAT');
      proxy.mode = 'drop-reply-then-close';
      const lost = await settle(cache.mset({ a: 1, b: 2 }, 60));
      expect(lost.ok).toBe(false);
      expect(lost.ok ? null : lost.error).toBeInstanceOf(CacheConnectionError);
      proxy.mode = 'forward';
      // The client reconnects by itself; nothing is replayed.
      let ok = false;
      for (let i = 0; i < 40 && !ok; i++) {
        ok = (await settle(cache.ping())).ok;
        if (!ok) await sleep(50);
      }
      expect(ok).toBe(true);
      await sleep(200);
      // mset with a ttl is one script run (or one MULTI/EXEC where scripting is refused).
      expect((await commandCalls(server, 'eval')) + (await commandCalls(server, 'exec'))).toBe(1);
      expect(await server.cli('GET', 'faults:a')).toBe('1');
      expect(Number(await server.cli('TTL', 'faults:b'))).toBeGreaterThan(50);

      await server.cli('CONFIG', 'RESETSTAT');
      proxy.mode = 'drop-replies';
      const silent = await settle(cache.set('c', 3));
      expect(silent.ok ? null : silent.error).toBeInstanceOf(CacheTimeoutError);
      proxy.mode = 'forward';
      await untilAnswering(cache);
      expect(await cache.get('c')).toBe('3');
      expect(await commandCalls(server, 'set')).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it('wrong password: a clear CacheAuthError, one attempt per call, no background retries', async () => {
    const cache = client(passwordUrl(server.port, 'not-the-password'));
    const before = Number(/total_connections_received:(\d+)/.exec(await server.cli('INFO', 'stats'))?.[1]);
    for (let i = 0; i < 3; i++) {
      const r = await settle(cache.get('k'));
      expect(r.ok ? null : r.error).toBeInstanceOf(CacheAuthError);
      expect(String(r.ok ? '' : r.error)).toMatch(
        /get failed: 127\.0\.0\.1:\d+ rejected the credentials \(WRONGPASS\)/,
      );
    }
    await sleep(1000);
    const after = Number(/total_connections_received:(\d+)/.exec(await server.cli('INFO', 'stats'))?.[1]);
    // One connection per call, plus the INFO connections of this test itself.
    expect(after - before).toBeLessThanOrEqual(3 + 1);
  });
});

describe('out of memory', () => {
  let server: RedisServer;
  let cache: CacheClient;

  beforeAll(async () => {
    server = await startRedis({ args: ['--maxmemory', '3mb', '--maxmemory-policy', 'noeviction'] });
    cache = new CacheClient({ connectionConfig: { url: server.url, tenant: 'oom' } });
  });
  afterAll(async () => {
    await cache.close();
    await server.stop();
  });

  it('writes reject with a CacheError that says so; reads still work', async () => {
    await cache.set('kept', { small: true });
    const big = 'x'.repeat(100_000);
    let error: unknown;
    for (let i = 0; i < 100 && error === undefined; i++) {
      const write = await settle(cache.set(`big:${i}`, big));
      if (!write.ok) error = write.error;
    }
    expect(error).toBeInstanceOf(CacheError);
    expect(error).not.toBeInstanceOf(CacheConnectionError);
    expect(String(error)).toMatch(/set failed: .* is out of memory and refuses writes \(OOM/);
    await expect(cache.mset({ a: big })).rejects.toThrow(/out of memory/);
    expect(await cache.get('kept')).toEqual({ small: true });
    expect(await cache.exists('kept')).toBe(1);
    expect(await cache.delete('big:0')).toBe(1);
  });
});
