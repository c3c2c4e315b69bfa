/**
 * The client in Peak platform mode, end to end: a local HTTP server answers like the credentials
 * endpoint and hands out an ACL user of a real redis-server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CacheAuthError,
  CacheClient,
  CacheConnectionError,
  type CacheLogger,
  Session,
} from '../src/index.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const TOKEN = 'tok-secret-123';

describe('platform mode', () => {
  let redis: RedisServer;
  let http: Server;
  let baseUrl: string;
  let password: string;
  let requests = 0;
  let reply: () => unknown;
  const lines: string[] = [];
  const logger: CacheLogger = {
    debug: (m) => lines.push(`debug ${m}`),
    warn: (m) => lines.push(`warn ${m}`),
  };
  const clients: CacheClient[] = [];
  const client = (extra: Partial<ConstructorParameters<typeof CacheClient>[0]> = {}) => {
    const c = new CacheClient({
      session: new Session({ authToken: TOKEN, baseUrl, env: {} }),
      logger,
      ...extra,
    });
    clients.push(c);
    return c;
  };

  /** A credentials reply in the host/port/userId/password form, for tenant acme on the test server. */
  const hostReply = (pw: string) => ({
    tenant: 'acme',
    engine: 'redis',
    host: '127.0.0.1',
    port: redis.port,
    userId: 'acme',
    password: pw,
  });

  async function setPassword(next: string): Promise<void> {
    password = next;
    await redis.cli(
      'ACL',
      'SETUSER',
      'acme',
      'reset',
      'on',
      `>${next}`,
      '~acme:*',
      '+@all',
      '-@dangerous',
      '+scan',
      '+info',
    );
  }

  beforeAll(async () => {
    redis = await startRedis();
    await setPassword('first-Pa$$word');
    http = createServer((req, res) => {
      requests++;
      if (req.headers.authorization !== TOKEN) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply()));
    });
    http.listen(0, '127.0.0.1');
    await new Promise((r) => http.once('listening', r));
    baseUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    http.close();
    await redis.stop();
  });
  beforeEach(() => {
    requests = 0;
    lines.length = 0;
    reply = () => hostReply(password);
  });

  it('fetches credentials once, lazily, and namespaces keys by the platform tenant', async () => {
    const cache = client();
    expect(requests).toBe(0);
    await Promise.all([cache.set('k', { a: 1 }), cache.get('k'), cache.ping()]);
    expect(await cache.get('k')).toEqual({ a: 1 });
    expect(requests).toBe(1);
    expect(await redis.cli('--user', 'default', 'GET', 'acme:k')).toBe('{"a": 1}');
  });

  it('getTenant names the platform tenant without a cache command', async () => {
    const cache = client();
    const before = Number(/total_commands_processed:(\d+)/.exec(await redis.cli('INFO', 'stats'))?.[1]);
    expect(await cache.getTenant()).toBe('acme');
    expect(await cache.getTenant()).toBe('acme');
    expect(requests).toBe(1);
    const after = Number(/total_commands_processed:(\d+)/.exec(await redis.cli('INFO', 'stats'))?.[1]);
    expect(after).toBe(before + 1);
  });

  it('accepts the url form of the reply', async () => {
    reply = () => ({
      tenant: 'acme',
      url: `redis://acme:${encodeURIComponent(password)}@127.0.0.1:${redis.port}`,
    });
    const cache = client();
    expect(await cache.set('u', 'v')).toBe(true);
    expect(await cache.get('u')).toBe('v');
  });

  it('fetches the credentials again once when the server rejects them, then works', async () => {
    const cache = client();
    await cache.set('rotate', 'v1');
    expect(requests).toBe(1);
    await setPassword('second-Pa$$word');
    await redis.cli('CLIENT', 'KILL', 'USER', 'acme');
    // The reconnect with the old password fails; calls fail fast until the client learns of it.
    let value: unknown;
    for (let i = 0; i < 50; i++) {
      try {
        value = await cache.get('rotate');
        break;
      } catch (err) {
        expect(err).toBeInstanceOf(CacheConnectionError);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    expect(value).toBe('v1');
    expect(requests).toBe(2);
    expect(lines.some((l) => l.startsWith('warn') && l.includes('fetching them again once'))).toBe(true);
  });

  it('fails with a clear CacheAuthError after one refresh when the new credentials are wrong too', async () => {
    reply = () => hostReply('wrong-pw');
    const cache = client();
    const err = await cache.get('k').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CacheAuthError);
    expect((err as Error).message).toMatch(/^get failed: .*rejected the credentials \(WRONGPASS\)/);
    expect(requests).toBe(2);
    expect(String(err)).not.toContain('wrong-pw');
    // No retry storm: further calls fail without asking the platform again (cool-down).
    for (let i = 0; i < 5; i++) await expect(cache.get('k')).rejects.toBeInstanceOf(CacheAuthError);
    expect(requests).toBe(2);
  });

  it('ignores location overrides with a warning, keeps tuning overrides', async () => {
    const cache = client({
      connectionConfig: {
        url: 'redis://evil.example:1',
        host: 'evil.example',
        password: 'x',
        timeoutMs: 2000,
      },
    });
    expect(lines.filter((l) => l.startsWith('warn'))).toHaveLength(1);
    expect(lines[0]).toMatch(/url, host, password ignored/);
    expect(await cache.set('safe', 1)).toBe(true);
  });

  it('reports platform failures as CacheConnectionError naming the problem', async () => {
    reply = () => ({ engine: 'redis', host: '127.0.0.1' });
    await expect(client().get('k')).rejects.toThrow(/get failed: .*no `tenant`/);
    const denied = new CacheClient({ session: new Session({ authToken: 'bad', baseUrl, env: {} }) });
    clients.push(denied);
    await expect(denied.get('k')).rejects.toBeInstanceOf(CacheAuthError);
  });

  it('never shows the token or password in inspect, JSON or debug lines', async () => {
    const cache = client();
    await cache.set('k', 'value-not-logged');
    await cache.get('k');
    const views = [inspect(cache, { depth: 10 }), JSON.stringify(cache), ...lines];
    for (const view of views) {
      expect(view).not.toContain(TOKEN);
      expect(view).not.toContain(password);
      expect(view).not.toContain('value-not-logged');
    }
    expect(lines).toContain('debug set "acme:k"');
    expect(lines).toContain('debug get "acme:k"');
  });
});
