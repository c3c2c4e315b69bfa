import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  CacheAuthError,
  CacheConnectionError,
  CacheTimeoutError,
  CacheValidationError,
} from '../src/errors.js';
import { buildConnectionUrl, CREDENTIALS_PATH, fetchCredentials } from '../src/platform.js';
import { Session } from '../src/session.js';
import { freePort } from './helpers/redis-server.js';

const TOKEN = 'tok-SECRET-4f9a2c';
const PASSWORD = 'pw-SECRET-p@ss:w/rd#%?&=+ ü';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let baseUrl: string;
let handler: Handler;
let requests: { method: string | undefined; url: string | undefined; authorization: string | undefined }[];

function json(status: number, body: unknown): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

function session(): Session {
  return new Session({ authToken: TOKEN, baseUrl, env: {} });
}

/** The error a promise rejects with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

/** Runs `fetchCredentials` expecting a rejection; checks no secret leaks into the error. */
async function failure(timeoutMs = 5_000): Promise<Error> {
  const error = await rejection(fetchCredentials(session(), { timeoutMs }));
  expect(error).toBeInstanceOf(CacheConnectionError);
  for (const text of [error.message, inspect(error, { depth: 10 }), String(error.stack)]) {
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(encodeURIComponent(PASSWORD));
  }
  return error;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, authorization: req.headers.authorization });
    handler(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
});

beforeEach(() => {
  requests = [];
  handler = json(500, { message: 'no handler set' });
});

describe('fetchCredentials: successful replies', () => {
  it('uses the url of the reply and sends the token as the Authorization header', async () => {
    const url = `rediss://acme:${encodeURIComponent(PASSWORD)}@cache.example:6379`;
    handler = json(200, { tenant: 'acme', engine: 'valkey', url });
    await expect(fetchCredentials(session(), { timeoutMs: 5_000 })).resolves.toEqual({
      url,
      tenant: 'acme',
      engine: 'valkey',
    });
    expect(requests).toEqual([{ method: 'GET', url: CREDENTIALS_PATH, authorization: TOKEN }]);
  });

  it('builds rediss:// with the userId for port 6380', async () => {
    handler = json(200, {
      tenant: 'acme',
      engine: 'redis',
      host: 'cache.example',
      port: 6380,
      userId: 'u-1',
      password: 'pw',
    });
    await expect(fetchCredentials(session(), { timeoutMs: 5_000 })).resolves.toEqual({
      url: 'rediss://u-1:pw@cache.example:6380',
      tenant: 'acme',
      engine: 'redis',
    });
  });

  it('builds rediss:// with the tenant as username for engine valkey (the default)', async () => {
    handler = json(200, { tenant: 'acme', host: 'cache.example', userId: 'u-1', password: 'pw' });
    await expect(fetchCredentials(session(), { timeoutMs: 5_000 })).resolves.toEqual({
      url: 'rediss://acme:pw@cache.example:6379',
      tenant: 'acme',
      engine: 'valkey',
    });
  });

  it('builds redis:// with the userId for engine redis on port 6379', async () => {
    handler = json(200, {
      tenant: 'acme',
      engine: 'redis',
      host: 'cache.example',
      port: 6379,
      userId: 'u-1',
      password: 'pw',
    });
    const creds = await fetchCredentials(session(), { timeoutMs: 5_000 });
    expect(creds.url).toBe('redis://u-1:pw@cache.example:6379');
  });

  it('URL-encodes special characters of user and password', async () => {
    handler = json(200, { tenant: 'acme', engine: 'redis', host: 'h', userId: 'a b@c', password: PASSWORD });
    const { url } = await fetchCredentials(session(), { timeoutMs: 5_000 });
    expect(url).toBe(`redis://a%20b%40c:${encodeURIComponent(PASSWORD)}@h:6379`);
    const parsed = new URL(url);
    expect(decodeURIComponent(parsed.username)).toBe('a b@c');
    expect(decodeURIComponent(parsed.password)).toBe(PASSWORD);
    expect(parsed.hostname).toBe('h');
    expect(parsed.port).toBe('6379');
  });
});

describe('fetchCredentials: failures', () => {
  it('missing tenant', async () => {
    handler = json(200, { engine: 'valkey', host: 'h', password: PASSWORD });
    const err = await failure();
    expect(err.message).toContain('credentials reply has no `tenant`');
  });

  it('missing password', async () => {
    handler = json(200, { tenant: 'acme', host: 'h', userId: 'u' });
    const err = await failure();
    expect(err.message).toContain('missing `password`');
    expect(err.message).not.toContain('`host`');
  });

  it('names every missing field', async () => {
    handler = json(200, { tenant: 'acme', engine: 'redis', password: PASSWORD });
    const err = await failure();
    expect(err.message).toContain('missing `host`, `userId`');
    expect(err.message).not.toContain('`password`');
  });

  it('invalid port', async () => {
    handler = json(200, { tenant: 'acme', host: 'h', password: PASSWORD, port: 70000 });
    const err = await failure();
    expect(err.message).toContain('invalid `port`');
  });

  it('an invalid url is rejected without echoing it', async () => {
    handler = json(200, { tenant: 'acme', url: `http://acme:${PASSWORD}@h` });
    const err = await failure();
    expect(err.message).toContain('invalid `url`');
  });

  it.each([401, 403])('HTTP %i is a CacheAuthError', async (status) => {
    handler = json(status, { message: `bad token ${TOKEN}` });
    const err = await failure();
    expect(err).toBeInstanceOf(CacheAuthError);
    expect(err.message).toContain(`Peak platform rejected the API token (HTTP ${status})`);
    expect(requests[0]?.authorization).toBe(TOKEN);
  });

  it('HTTP 500 names the status', async () => {
    handler = json(500, { error: 'boom' });
    const err = await failure();
    expect(err).not.toBeInstanceOf(CacheAuthError);
    expect(err.message).toContain('HTTP 500');
    expect(err.message).toContain(baseUrl);
  });

  it('malformed JSON, without quoting the reply', async () => {
    handler = json(200, `{"tenant": "acme", "password": "${PASSWORD}", oops`);
    const err = await failure();
    expect(err.message).toContain('not valid JSON');
    expect(err.cause).toBeInstanceOf(SyntaxError);
  });

  it.each([
    `password=${PASSWORD}`,
    `password=${PASSWORD}&tenant=acme&engine=valkey&host=cache.example.com`,
    `{"tenant": "acme", "password": "${PASSWORD}"}}`,
  ])('a non-JSON reply is not quoted in the error: %#', async (body) => {
    handler = json(200, body);
    const err = await failure();
    expect(err.message).toContain('not valid JSON');
    expect(err.cause).toBeInstanceOf(SyntaxError);
    expect(inspect(err.cause)).not.toContain('password=');
  });

  it('a JSON reply that is not an object', async () => {
    handler = json(200, [{ tenant: 'acme' }]);
    const err = await failure();
    expect(err.message).toContain('not a JSON object (got an array)');
  });

  it('timeout: the server never answers', async () => {
    handler = () => {
      // never answer; closeAllConnections() in afterAll ends the socket
    };
    const started = Date.now();
    const err = await failure(200);
    expect(err).toBeInstanceOf(CacheTimeoutError);
    expect(err.message).toBe(`the Peak platform at ${baseUrl} did not answer within 200 ms`);
    expect(err.cause).toBeDefined();
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('timeout while the body is still arriving', async () => {
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"tenant": ');
    };
    const err = await failure(200);
    expect(err).toBeInstanceOf(CacheTimeoutError);
  });

  it('connection refused', async () => {
    const port = await freePort();
    const closed = new Session({ authToken: TOKEN, baseUrl: `http://127.0.0.1:${port}`, env: {} });
    const err = await rejection(fetchCredentials(closed, { timeoutMs: 5_000 }));
    expect(err).toBeInstanceOf(CacheConnectionError);
    expect(err).not.toBeInstanceOf(CacheTimeoutError);
    expect(err.message).toMatch(
      new RegExp(`^could not reach the Peak platform at http://127\\.0\\.0\\.1:${port}: .+`),
    );
    expect(err.message).toContain('ECONNREFUSED');
    expect(err.cause).toBeDefined();
    expect(inspect(err, { depth: 10 })).not.toContain(TOKEN);
  });

  it('no token: fails before any request', async () => {
    const anonymous = new Session({ baseUrl, env: {} });
    const err = await rejection(fetchCredentials(anonymous, { timeoutMs: 5_000 }));
    expect(err).toBeInstanceOf(CacheConnectionError);
    expect(err.message).toBe('No Peak API token: pass `new Session({ authToken })` or set API_KEY');
    expect(requests).toHaveLength(0);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects timeoutMs %s', async (timeoutMs) => {
    await expect(fetchCredentials(session(), { timeoutMs })).rejects.toBeInstanceOf(CacheValidationError);
    expect(requests).toHaveLength(0);
  });
});

describe('buildConnectionUrl', () => {
  it('returns a given url as is', () => {
    expect(buildConnectionUrl({ tenant: 't', url: 'redis://u:p@h:1' })).toBe('redis://u:p@h:1');
  });

  it('follows the scheme rules', () => {
    const base = { tenant: 't', host: 'h', userId: 'u', password: 'p' };
    expect(buildConnectionUrl(base)).toBe('rediss://t:p@h:6379');
    expect(buildConnectionUrl({ ...base, engine: 'VALKEY', port: 6380 })).toBe('rediss://t:p@h:6380');
    expect(buildConnectionUrl({ ...base, engine: 'redis' })).toBe('redis://u:p@h:6379');
    expect(buildConnectionUrl({ ...base, engine: 'redis', port: 6380 })).toBe('rediss://u:p@h:6380');
    expect(buildConnectionUrl({ ...base, engine: 'redis', port: '7000' })).toBe('redis://u:p@h:7000');
    expect(buildConnectionUrl({ ...base, engine: 'redis', port: null })).toBe('redis://u:p@h:6379');
  });

  it('encodes the tenant used as valkey username and brackets IPv6 hosts', () => {
    expect(buildConnectionUrl({ tenant: 'a/b', host: '::1', password: 'p' })).toBe(
      'rediss://a%2Fb:p@[::1]:6379',
    );
  });

  it.each([
    [{ host: 'h', password: 'p' }, 'no `tenant`'],
    [{ tenant: '', host: 'h', password: 'p' }, 'no `tenant`'],
    [{ tenant: 't', engine: 42, host: 'h', password: 'p' }, 'invalid `engine`'],
    [{ tenant: 't', host: 'h', password: '' }, 'missing `password`'],
    [{ tenant: 't', host: 'h', password: 5 }, 'missing `password`'],
    [{ tenant: 't', password: 'p' }, 'missing `host`'],
    [{ tenant: 't', host: 'a/b', password: 'p' }, 'invalid `host`'],
    [{ tenant: 't', host: 'h', password: 'p', port: 0 }, 'invalid `port`'],
    [{ tenant: 't', host: 'h', password: 'p', port: 'abc' }, 'invalid `port`'],
    [{ tenant: 't', host: 'h', password: 'p', port: 6379.5 }, 'invalid `port`'],
    [{ tenant: 't', url: 42 }, 'invalid `url`'],
  ])('rejects %j', (reply, expected) => {
    expect(() => buildConnectionUrl(reply)).toThrow(CacheConnectionError);
    expect(() => buildConnectionUrl(reply)).toThrow(expected);
  });
});
