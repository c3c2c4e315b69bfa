import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../src/cached/call-options.js';
import {
  CacheClient,
  CacheConnectionError,
  type CacheLogger,
  CacheValidationError,
  TenantCaches,
} from '../src/index.js';
import { MAX_TIMER_MS, resolveSettings } from '../src/options.js';

const memory = { url: 'memory://options-test', tenant: 'acme' };

describe('configuration', () => {
  it('names every way to configure when nothing is configured', () => {
    const make = () => new CacheClient({ env: {} });
    expect(make).toThrow(CacheConnectionError);
    expect(make).toThrow(/connectionConfig.*PEAK_CACHE_URL and PEAK_CACHE_TENANT.*API_KEY/);
  });

  it('reads PEAK_CACHE_URL and PEAK_CACHE_TENANT', async () => {
    const cache = new CacheClient({
      env: { PEAK_CACHE_URL: 'memory://env-test', PEAK_CACHE_TENANT: 'envt' },
    });
    await cache.set('k', 'v');
    const direct = new CacheClient({ connectionConfig: { url: 'memory://env-test', tenant: 'envt' } });
    expect(await direct.get('k')).toBe('v');
    await Promise.all([cache.close(), direct.close()]);
  });

  it('requires a tenant with a URL', () => {
    expect(() => new CacheClient({ env: { PEAK_CACHE_URL: 'memory://' } })).toThrow(/tenant is required/);
  });

  it('rejects bad options with an error naming the option, without echoing a URL', () => {
    const cases: [object, RegExp][] = [
      [
        { connectionConfig: { ...memory, timeoutMs: 0 } },
        /`connectionConfig.timeoutMs` option must be a positive integer/,
      ],
      [{ connectionConfig: { ...memory, maxQueueLength: 1.5 } }, /connectionConfig.maxQueueLength/],
      [
        { connectionConfig: { ...memory, socket_timeout: 5 } },
        /Unknown connectionConfig option `socket_timeout`/,
      ],
      [{ connectionConfig: memory, debug_logs: true }, /Unknown option `debug_logs`/],
      [{ connectionConfig: memory, maxValueBytes: -1 }, /maxValueBytes/],
      [
        { connectionConfig: { url: 'http://user:hunter2@host', tenant: 'a' } },
        /use redis:\/\/, rediss:\/\/ or memory:\/\//,
      ],
      [{ connectionConfig: { url: 'not a url', tenant: 'a' } }, /not a valid URL/],
      // What the driver would refuse on the first call is refused up front, without echoing the URL.
      [
        { connectionConfig: { url: 'redis://127.0.0.1:1/abc', tenant: 'a' } },
        /connectionConfig\.url` cannot be used/,
      ],
      [
        { connectionConfig: { url: 'redis://:pa%zzss@127.0.0.1:1', tenant: 'a' } },
        /^(?!.*pa%zzss).*URL-encoded/,
      ],
      [{ connectionConfig: { ...memory, host: 'x' } }, /put host, port, TLS/],
      [{ connectionConfig: memory, additionalPrefix: 'a b' }, /Invalid additional prefix/],
    ];
    for (const [options, message] of cases) {
      expect(() => new CacheClient(options as never)).toThrow(CacheValidationError);
      expect(() => new CacheClient(options as never)).toThrow(message);
      try {
        new CacheClient(options as never);
      } catch (err) {
        expect(String(err)).not.toContain('hunter2');
      }
    }
  });

  it('rejects values over maxValueBytes before any I/O', async () => {
    const cache = new CacheClient({ connectionConfig: memory, maxValueBytes: 1024 });
    await expect(cache.set('big', 'é'.repeat(600))).rejects.toThrow(
      /larger than maxValueBytes \(1024 bytes\)/,
    );
    expect(await cache.set('ok', 'x'.repeat(1024))).toBe(true);
    await expect(cache.mset({ a: 'x', b: 'y'.repeat(2000) })).rejects.toBeInstanceOf(CacheValidationError);
    expect(await cache.exists('big', 'a', 'b')).toBe(0);
    await cache.close();
  });
});

describe('timeout defaults', () => {
  it('timeoutMs bounds the connection attempt unless connectTimeoutMs is set; credentials keep 5000', () => {
    const pick = ({ connectTimeoutMs, credentialsTimeoutMs }: ReturnType<typeof resolveSettings>) => ({
      connectTimeoutMs,
      credentialsTimeoutMs,
    });
    expect(pick(resolveSettings({}))).toEqual({ connectTimeoutMs: 5000, credentialsTimeoutMs: 5000 });
    expect(pick(resolveSettings({ timeoutMs: 400 }))).toEqual({
      connectTimeoutMs: 400,
      credentialsTimeoutMs: 5000,
    });
    expect(pick(resolveSettings({ timeoutMs: 60_000 }))).toEqual({
      connectTimeoutMs: 5000,
      credentialsTimeoutMs: 5000,
    });
    expect(pick(resolveSettings({ timeoutMs: 400, connectTimeoutMs: 3000 }))).toEqual({
      connectTimeoutMs: 3000,
      credentialsTimeoutMs: 3000,
    });
  });
});

describe('millisecond options that feed a timer (at most 2^31-1, Node timers overflow past it)', () => {
  const over = MAX_TIMER_MS + 1;

  it('rejects cached-function options above 2^31-1 ms, naming the option', async () => {
    for (const name of [
      'timeoutMs',
      'hardTimeoutMs',
      'graceBackoffMs',
      'lockTimeoutMs',
      'lockTtlMs',
      'breakerMs',
    ]) {
      expect(() => resolveOptions({ [name]: MAX_TIMER_MS }, 'getOrSet', new Map())).not.toThrow();
      for (const value of [over, 2 ** 40]) {
        expect(() => resolveOptions({ [name]: value }, 'getOrSet', new Map())).toThrow(CacheValidationError);
        expect(() => resolveOptions({ [name]: value }, 'getOrSet', new Map())).toThrow(
          new RegExp(`\`${name}\`.*up to 2147483647 \\(about 24.8 days`),
        );
      }
    }
    // Through the public call: rejected before the factory runs (it used to time out at once).
    const cache = new CacheClient({ connectionConfig: memory });
    let runs = 0;
    const call = cache.getOrSet('k', async () => ++runs, { hardTimeoutMs: 2 ** 40 });
    await expect(call).rejects.toThrow(/`hardTimeoutMs`/);
    expect(runs).toBe(0);
    await cache.close();
  });

  it('rejects connection timeouts and idleTimeoutMs above 2^31-1 ms', () => {
    for (const name of ['timeoutMs', 'connectTimeoutMs', 'keepAliveMs']) {
      expect(() => resolveSettings({ [name]: MAX_TIMER_MS })).not.toThrow();
      expect(() => resolveSettings({ [name]: over })).toThrow(
        new RegExp(`\`connectionConfig.${name}\`.*up to 2147483647`),
      );
    }
    const pooled = (idleTimeoutMs: number) =>
      new TenantCaches({ connectionFor: () => ({ url: 'memory://idle' }), idleTimeoutMs });
    void pooled(MAX_TIMER_MS).close();
    for (const value of [over, 2 ** 32]) {
      expect(() => pooled(value)).toThrow(CacheValidationError);
      expect(() => pooled(value)).toThrow(/`idleTimeoutMs`.*up to 2147483647/);
    }
  });
});

describe('logging', () => {
  it('emits one debug line per operation with key names, never values', async () => {
    const lines: string[] = [];
    const logger: CacheLogger = { debug: (m) => lines.push(m), warn: (m) => lines.push(`warn: ${m}`) };
    const cache = new CacheClient({ connectionConfig: memory, logger, additionalPrefix: 'p' });
    await cache.set('k', 'secret-value', 10);
    await cache.mget('k', 'x');
    await cache.delete('k');
    expect(lines).toEqual(['set "acme:p:k" ttl=10', 'mget "acme:p:k", "acme:p:x"', 'delete "acme:p:k"']);
    expect(lines.join('\n')).not.toContain('secret-value');
    await cache.close();
  });

  it('emits nothing with debugLogs: false', async () => {
    const lines: string[] = [];
    const cache = new CacheClient({
      connectionConfig: memory,
      debugLogs: false,
      logger: { debug: (m) => lines.push(m), warn: (m) => lines.push(m) },
    });
    await cache.set('k', 'v');
    expect(lines).toEqual([]);
    await cache.close();
  });

  it('the default logger shows each warning once: a result that cannot be cached warns once, not per call', async () => {
    const shown: string[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'PeakCacheWarning') shown.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      const cache = new CacheClient({ connectionConfig: memory });
      const uncacheable = cache.cacheResult(async (n: number) => () => n, { keyPrefix: 'fn' });
      for (let i = 0; i < 5; i++) await uncacheable(1);
      await uncacheable(2);
      await new Promise((r) => setImmediate(r)); // 'warning' events are emitted on the next tick
      expect(shown.filter((m) => /not cached/.test(m))).toHaveLength(2); // one per key
      await cache.close();
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('is silent by default and shown with NODE_DEBUG=peak-cache', async () => {
    const script = fileURLToPath(new URL('./fixtures/log-once.ts', import.meta.url));
    const run = (env: NodeJS.ProcessEnv) =>
      new Promise<string>((resolve, reject) =>
        execFile(
          process.execPath,
          ['--import', 'tsx', script],
          { env: { ...process.env, ...env }, timeout: 30_000 },
          (err, stdout, stderr) => (err ? reject(err) : resolve(stdout + stderr)),
        ),
      );
    const quiet = await run({ NODE_DEBUG: '' });
    expect(quiet).not.toMatch(/PEAK-CACHE/);
    const loud = await run({ NODE_DEBUG: 'peak-cache' });
    expect(loud).toMatch(/PEAK-CACHE \d+: set "acme:k"/);
    expect(loud).not.toContain('logged-value');
  });
});
