/**
 * Cached results shared with Peak's Python `cache_result` (`keyStyle: 'python'`), and the deployment id
 * resolved as Python resolves it (Press, parent id). The Python side is test/fixtures/python_cache_result.py
 * (the SDK's key, value and deployment-id logic on python3's `json`, `base64`, `urllib` and redis-py),
 * against a real redis-server and a local fake Press / platform HTTP server.
 */
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePythonArgs, pythonCall, pythonEntity } from '../src/cached/python-key.js';
import {
  type CacheClient,
  type CacheClientOptions,
  CacheConnectionError,
  type CacheLogger,
  CacheValidationError,
  cacheResult,
  invalidateCache,
} from '../src/index.js';
import { deploymentIdFromReply } from '../src/press.js';
import { ClientPool } from './helpers/clients.js';
import { type Tagged, tagWithInts as tag, untag } from './helpers/python-values.js';
import { freePort, type RedisServer, startRedis } from './helpers/redis-server.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/python_cache_result.py', import.meta.url));
const PYTHON = '/usr/bin/python3';
const TOKEN = 'tok-press-SECRET-5f1';

interface PyCall {
  op: 'call';
  key_prefix?: string;
  entity_id_param?: string | null;
  args: Tagged[];
  kwargs?: Record<string, Tagged>;
  result: Tagged;
}
interface PyInvalidate {
  op: 'invalidate';
  entity_id_param?: string;
  kwargs?: Record<string, Tagged>;
  targeted_patterns?: string[];
  broad_patterns?: string[];
}
interface PyEncode {
  op: 'encode';
  args: Tagged[];
  kwargs: Record<string, Tagged>;
}
interface PyDeployment {
  id: string | null;
  press: string | null;
  token?: string;
}

function runPython(
  port: number,
  tenant: string,
  deployment: PyDeployment,
  ops: (PyCall | PyInvalidate | PyEncode)[],
) {
  return new Promise<
    { key?: string; hit?: boolean; value?: Tagged; patterns?: string[]; deleted?: number; encoded?: string }[]
  >((resolve, reject) => {
    const child = execFile(
      PYTHON,
      [SCRIPT, String(port), tenant],
      { timeout: 20_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
    );
    child.stdin?.end(JSON.stringify({ deployment, ops }));
  });
}

/** A call of a function `(...args) => result` on both sides. */
interface Shape {
  name: string;
  args: unknown[];
  /** Python's keyword arguments (TypeScript: the last argument, with `kwargs: 'last'`). */
  kwargs?: Record<string, unknown>;
  entityParam?: string;
  result: unknown;
}

const SHAPES: Shape[] = [
  { name: 'a string', args: ['user-1'], result: { name: 'Ada', tags: ['x', 'y'] } },
  { name: 'ints and floats', args: [42, 1.5, 1e-5, 1e16, -0.25], result: [1, 2.5, 'three'] },
  { name: 'a big int', args: [2n ** 70n, -(2n ** 64n)], result: 'big' },
  {
    name: 'nested objects with unsorted keys',
    args: [{ zeta: 1, alpha: { nu: [3, { b: 2, a: 1 }], mu: null }, Beta: true }],
    result: { ok: true },
  },
  { name: 'unicode', args: ['ünïcödé', '日本語', 'emoji 😀', 'tab\t"quote"\\'], result: 'ünï 😀' },
  {
    name: 'astral and BMP keys (sorted by code point)',
    args: [{ '\u{10000}': 1, '\uffff': 2, é: 3, z: 4 }],
    result: 7,
  },
  { name: 'kwargs', args: ['acme'], kwargs: { page: 2, sort: 'name', filters: { b: 1, a: [] } }, result: [] },
  { name: 'entity: first positional', args: ['u-7', 'extra'], entityParam: 'user_id', result: { id: 'u-7' } },
  {
    name: 'entity: keyword argument',
    args: [],
    kwargs: { user_id: 'u-9', verbose: false },
    entityParam: 'user_id',
    result: { id: 'u-9' },
  },
  { name: 'entity: int, falsy 0 left out', args: [0, 5], entityParam: 'n', result: 'zero' },
  { name: 'entity: a number', args: [31, 'x'], entityParam: 'n', result: 'n31' },
  { name: 'no arguments', args: [], result: 'nothing' },
];

function pyCall(shape: Shape, keyPrefix: string, result: unknown): PyCall {
  return {
    op: 'call',
    key_prefix: keyPrefix,
    entity_id_param: shape.entityParam ?? null,
    args: shape.args.map(tag),
    kwargs: Object.fromEntries(Object.entries(shape.kwargs ?? {}).map(([k, v]) => [k, tag(v)])),
    result: tag(result),
  };
}

/** The TypeScript call of a shape: positional arguments, then the kwargs object when there is one. */
function tsArgs(shape: Shape): unknown[] {
  return shape.kwargs === undefined ? shape.args : [...shape.args, shape.kwargs];
}

/** What the client codec reads back of a value Python stored: JSON data as is, top-level scalars as text. */
function asRead(value: unknown): unknown {
  if (typeof value === 'string' || (value !== null && typeof value === 'object')) return value;
  return String(value);
}

describe("cacheResult keyStyle 'python' with Peak's Python cache_result", () => {
  let redis: RedisServer;
  let http: Server;
  let baseUrl: string;
  const pool = new ClientPool();
  /** Press requests: path and Authorization header. */
  const pressRequests: { path: string; authorization: string | undefined }[] = [];
  /** Press replies by deployment id (`undefined`: 500). */
  const deployments = new Map<string, unknown>([
    ['child-1', { id: 'child-1', name: 'web', parent: { id: 'parent-1', name: 'app' } }],
    ['solo-1', { id: 'solo-1', name: 'web', parent: null }],
    ['solo-2', { id: 'solo-2' }],
    ['child-2', { id: 'child-2', parent: { id: 'parent-2' } }],
    ['child-3', { id: 'child-3', parent: { id: 'parent-3' } }],
  ]);
  const lines: string[] = [];
  const logger: CacheLogger = { debug: () => {}, warn: (m) => lines.push(m) };

  beforeAll(async () => {
    redis = await startRedis();
    http = createServer((req, res) => {
      const path = req.url ?? '';
      if (path === '/connections/api/v1/connections/valkey-credentials') {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ tenant: 'plat', engine: 'redis', url: redis.url }));
        return;
      }
      pressRequests.push({ path, authorization: req.headers.authorization });
      const id = decodeURIComponent(path.replace('/v1/blocks/deployments/', ''));
      const body = deployments.get(id);
      if (req.headers.authorization !== TOKEN) res.writeHead(401).end();
      else if (id === 'hang')
        return; // never answers (closed with the server)
      else if (id === 'not-json') res.writeHead(200).end('<html>oops</html>');
      else if (body === undefined) res.writeHead(500).end('{"message":"boom"}');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await pool.closeAll();
    http?.closeAllConnections();
    await new Promise((resolve) => http?.close(resolve));
    await redis?.stop();
  });

  const direct = (tenant: string, extra: Partial<CacheClientOptions> = {}) =>
    pool.open({ connectionConfig: { url: redis.url, tenant }, logger, ...extra });

  /** A platform-mode client (token, platform and Press from `env`, as on Peak). */
  const platform = (deploymentEnv: string, extra: Partial<CacheClientOptions> = {}) =>
    pool.open({
      env: {
        API_KEY: TOKEN,
        PEAK_PLATFORM_URL: baseUrl,
        PEAK_PRESS_URL: baseUrl,
        PRESS_DEPLOYMENT_ID: deploymentEnv,
      },
      logger,
      ...extra,
    });

  function cachedOf(
    cache: CacheClient,
    shape: Shape,
    keyPrefix: string,
    runs: { n: number },
    result: unknown,
  ) {
    const fn = (..._args: unknown[]) => {
      runs.n++;
      return result;
    };
    return cache.cacheResult(fn, {
      keyStyle: 'python',
      keyPrefix,
      ...(shape.kwargs === undefined ? {} : { kwargs: 'last' as const }),
      ...(shape.entityParam === undefined ? {} : { entityParam: shape.entityParam }),
    });
  }

  it('a result Python stored is a hit here (the function does not run), for every argument shape', async () => {
    const cache = direct('py1', { deploymentId: 'dep-py' });
    const written = await runPython(
      redis.port,
      'py1',
      { id: 'dep-py', press: null },
      SHAPES.map((s) => pyCall(s, 'reports', s.result)),
    );
    expect(written.every((w) => w.hit === false)).toBe(true);
    for (const [i, shape] of SHAPES.entries()) {
      const runs = { n: 0 };
      const value = await cachedOf(cache, shape, 'reports', runs, 'from TypeScript')(...tsArgs(shape));
      expect({ shape: shape.name, value, runs: runs.n }).toEqual({
        shape: shape.name,
        value: asRead(shape.result),
        runs: 0,
      });
      expect(written[i]?.key).toMatch(/^py1:dep-py:reports:/);
    }
    // The entity segment, where Python puts one.
    expect(written[7]?.key).toMatch(/^py1:dep-py:reports:u-7:[A-Za-z0-9+/]+=*$/);
    expect(written[8]?.key).toMatch(/^py1:dep-py:reports:u-9:/);
    expect(written[9]?.key).toMatch(/^py1:dep-py:reports:[A-Za-z0-9+/]+=*$/);
    expect(written[10]?.key).toMatch(/^py1:dep-py:reports:31:/);
  });

  it('a result stored here is a hit for Python, with the same value', async () => {
    const cache = direct('py2', { deploymentId: 'dep-ts' });
    const keys: string[] = [];
    for (const shape of SHAPES) {
      const runs = { n: 0 };
      await cachedOf(cache, shape, 'reports', runs, shape.result)(...tsArgs(shape));
      expect(runs.n).toBe(1);
    }
    const read = await runPython(
      redis.port,
      'py2',
      { id: 'dep-ts', press: null },
      SHAPES.map((s) => pyCall(s, 'reports', 'from Python')),
    );
    for (const [i, shape] of SHAPES.entries()) {
      expect({ shape: shape.name, hit: read[i]?.hit, value: untag(read[i]?.value ?? null) }).toEqual({
        shape: shape.name,
        hit: true,
        value: shape.result,
      });
      keys.push(read[i]?.key ?? '');
    }
    expect((await redis.scanKeys('py2:*')).sort()).toEqual([...keys].sort());
  });

  it('a decorated method stores under the same key as Python', async () => {
    const cache = direct('py5', { deploymentId: 'dep-dec' });
    class Users {
      runs = 0;
      @cacheResult({ client: () => cache, keyStyle: 'python', keyPrefix: 'users', entityParam: 'user_id' })
      async find(id: string, _opts?: { verbose: boolean }): Promise<{ id: string }> {
        this.runs++;
        return { id };
      }
    }
    const users = new Users();
    await users.find('u-1');
    const [read] = await runPython(redis.port, 'py5', { id: 'dep-dec', press: null }, [
      {
        op: 'call',
        key_prefix: 'users',
        entity_id_param: 'user_id',
        args: ['u-1'],
        kwargs: {},
        result: 'py',
      },
    ]);
    expect(read).toMatchObject({ hit: true, value: { dict: [['id', 'u-1']] } });
    expect(read?.key).toMatch(/^py5:dep-dec:users:u-1:/);
    expect(users.runs).toBe(1);
  });

  it('@invalidateCache with wait: Python-style results (no stamps, deleted by the SCAN) are gone when the method resolves', async () => {
    const cache = direct('py5w', { deploymentId: 'dep-dec' });
    let name = 'old';
    class Users {
      @cacheResult({ client: () => cache, keyStyle: 'python', keyPrefix: 'users', entityParam: 'user_id' })
      async find(id: string): Promise<string> {
        return `${id}:${name}`;
      }
      @invalidateCache({
        client: () => cache,
        entityId: (id: string) => id,
        targetedPatterns: ['users'],
        wait: true,
      })
      async rename(_id: string, to: string): Promise<void> {
        name = to;
      }
    }
    const users = new Users();
    expect(await users.find('u-1')).toBe('u-1:old');
    await users.rename('u-1', 'new');
    expect(await users.find('u-1')).toBe('u-1:new');
    expect(() => invalidateCache({ client: cache, wait: 'yes' } as never)).toThrow(
      /`wait` must be a boolean/,
    );
  });

  it('without a deployment id the segment is left out on both sides', async () => {
    const cache = direct('py3', { deploymentId: null });
    const shape = SHAPES[0] as Shape;
    const [written] = await runPython(redis.port, 'py3', { id: null, press: null }, [
      pyCall(shape, 'cached', 'v'),
    ]);
    expect(written?.key).toMatch(/^py3:cached:[A-Za-z0-9+/]+=*$/);
    const runs = { n: 0 };
    expect(await cachedOf(cache, shape, 'cached', runs, 'other')(...tsArgs(shape))).toBe('v');
    expect(runs.n).toBe(0);
  });

  it('rejects arguments JSON cannot represent, naming cacheResult, and options the layout cannot honour', async () => {
    const cache = direct('py4', { deploymentId: 'd' });
    const cached = cache.cacheResult((m: unknown) => m, { keyStyle: 'python' });
    await expect(cached(new Map([[1, 2]]))).rejects.toThrow(CacheValidationError);
    await expect(cached(new Map([[1, 2]]))).rejects.toThrow(/cacheResult \(keyStyle 'python'\)/);
    await expect(cached(() => 1)).rejects.toThrow(/cacheResult/);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(cached(circular)).rejects.toThrow(CacheValidationError);
    expect(() => cache.cacheResult((x: string) => x, { keyStyle: 'python', entityId: (x) => x })).toThrow(
      /entityId.*keyStyle 'python'/,
    );
    expect(() => cache.cacheResult((x: string) => x, { keyStyle: 'python', codec: 'typed' })).toThrow(
      CacheValidationError,
    );
    expect(() => cache.cacheResult((x: string) => x, { kwargs: 'last' })).toThrow(/keyStyle: 'python'/);
    expect(() => cache.cacheResult((x: string) => x, { keyStyle: 'py' as 'python' })).toThrow(/keyStyle/);
  });

  it("encodes arguments as Python's encode_data does, byte for byte", async () => {
    const cases: [unknown[], Record<string, unknown>][] = [
      [[Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 0], {}],
      [[5e-324, Number.MAX_VALUE, 0.1 + 0.2, 123456789012345680000, 2 ** 53, 1e-4, 0.0001234], {}],
      [[-(2n ** 100n), 2n ** 63n - 1n, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER], {}],
      [['\u0000\u001f\u007f\u0080', '\ud800 lone', 'a/b', '</script>', ''], {}],
      [[true, false, null, [], {}, [[[]]], [{ b: [{ d: 1, c: 2 }], a: null }]], {}],
      [[], { ü: 1, u: 2, U: 3, '': 4, '\u{1f600}': 5, '\ufb01': 6, '10': 7, '9': 8 }],
      [['x'], { nested: { z: { y: { x: [3, 2, 1] } }, a: 'é' } }],
    ];
    const answers = await runPython(
      redis.port,
      'enc',
      { id: null, press: null },
      cases.map(([args, kwargs]) => ({
        op: 'encode',
        args: args.map(tag),
        kwargs: Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [k, tag(v)])),
      })),
    );
    expect(cases.map(([args, kwargs]) => encodePythonArgs(args, kwargs))).toEqual(
      answers.map((a) => a.encoded),
    );
  });

  it('maps a call to args, kwargs and entity by the documented rules', () => {
    expect(pythonCall([1, { a: 1 }], 'none')).toEqual({ args: [1, { a: 1 }], kwargs: {} });
    expect(pythonCall([1, { a: 1 }], 'last')).toEqual({ args: [1], kwargs: { a: 1 } });
    expect(pythonCall([1, { a: 1 }, undefined], 'last')).toEqual({ args: [1], kwargs: { a: 1 } });
    expect(pythonCall([1, [2]], 'last')).toEqual({ args: [1, [2]], kwargs: {} });
    expect(pythonCall([1, undefined, 2, undefined, undefined], 'none')).toEqual({
      args: [1, undefined, 2],
      kwargs: {},
    });
    const entity = (args: unknown[], kwargs: Record<string, unknown> = {}) =>
      pythonEntity(args, kwargs, 'id');
    expect(entity(['a', 'b'])).toBe('a');
    expect(entity(['a'], { id: 'k' })).toBe('k');
    expect(entity(['a'], { id: '' })).toBe('a'); // a falsy keyword argument falls back to the first positional
    for (const falsy of [0, -0, '', false, null, undefined, [], {}, 0n]) expect(entity([falsy])).toBeNull();
    expect(entity([true])).toBe('True');
    expect(entity([1.5])).toBe('1.5');
    expect(entity([1e-5])).toBe('1e-05');
    expect(entity([Number.NaN])).toBe('nan');
    expect(entity([12n])).toBe('12');
    expect(pythonEntity(['a'], {}, undefined)).toBeNull();
    expect(() => entity([[1]])).toThrow(/cacheResult \(keyStyle 'python'\): the entity id/);
    expect(() => entity(['org:1'])).toThrow(CacheValidationError);
  });

  describe('deployment id through Press (platform mode)', () => {
    const requestsFor = (id: string) =>
      pressRequests.filter((r) => r.path === `/v1/blocks/deployments/${id}`);

    it("a parented deployment: both sides write and invalidate under the parent's id", async () => {
      const cache = platform('child-1');
      const shape = SHAPES[7] as Shape; // entity u-7
      const runs = { n: 0 };
      await cachedOf(cache, shape, 'users', runs, { from: 'ts' })(...tsArgs(shape));
      expect(await redis.scanKeys('plat:*child*')).toEqual([]);
      const [ours] = await redis.scanKeys('plat:parent-1:users:*');
      expect(ours).toMatch(/^plat:parent-1:users:u-7:/);
      // Python resolves the parent id itself, through the same Press: a hit on our entry.
      const deployment = { id: 'child-1', press: baseUrl, token: TOKEN };
      const [read] = await runPython(redis.port, 'plat', deployment, [pyCall(shape, 'users', 'py')]);
      expect(read).toMatchObject({ key: ours, hit: true });
      expect(untag(read?.value ?? null)).toEqual({ from: 'ts' });
      // Python's invalidate_cache clears our entry...
      const [cleared] = await runPython(redis.port, 'plat', deployment, [
        {
          op: 'invalidate',
          entity_id_param: 'user_id',
          kwargs: { user_id: 'u-7' },
          targeted_patterns: ['users'],
        },
      ]);
      expect(cleared).toEqual({ patterns: ['parent-1:users:u-7'], deleted: 1 });
      // ... and ours clears Python's.
      await runPython(redis.port, 'plat', deployment, [pyCall(shape, 'users', 'py-again')]);
      expect(await cache.invalidate({ entityId: 'u-7', targetedPatterns: ['users'] }, { wait: true })).toBe(
        1,
      );
      expect(await redis.scanKeys('plat:parent-1:*')).toEqual([]);
      expect(requestsFor('child-1').every((r) => r.authorization === TOKEN)).toBe(true);
    });

    it('a deployment without a parent keeps its own id', async () => {
      const cache = platform('solo-1');
      await cache.cacheResult(() => 1, { keyStyle: 'python', keyPrefix: 'solo' })();
      expect(await redis.scanKeys('plat:solo-1:solo:*')).toHaveLength(1);
    });

    it('one Press request for many calls of many functions and invalidations, even concurrent ones', async () => {
      const cache = platform('child-2');
      const a = cache.cacheResult((n: number) => n, { keyStyle: 'python', keyPrefix: 'a' });
      const b = cache.cacheResult((n: number) => n * 2, { keyPrefix: 'b' });
      await Promise.all([
        ...Array.from({ length: 20 }, (_, i) => a(i)),
        ...Array.from({ length: 20 }, (_, i) => b(i)),
        cache.invalidate({ broadPatterns: ['none'] }),
      ]);
      await a(1);
      // A second client of the process (same Press, same deployment) asks no more.
      await platform('child-2').cacheResult((n: number) => n, { keyStyle: 'python', keyPrefix: 'a' })(2);
      expect(requestsFor('child-2')).toHaveLength(1);
      expect(await redis.scanKeys('plat:parent-2:a:*')).toHaveLength(20);
      expect(await redis.scanKeys('plat:parent-2:b:*')).toHaveLength(20);
    });

    it('a Press failure is a typed error naming the operation, never the token; it is not remembered', async () => {
      const cache = platform('child-9');
      const err = await cache.invalidate({ broadPatterns: ['x'] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CacheConnectionError);
      expect((err as Error).message).toMatch(/Resolving the deployment id of cached functions failed/);
      expect((err as Error).message).toContain('HTTP 500');
      expect((err as Error).message).not.toContain(TOKEN);
      // A cached call runs the function uncached (as Python does), with a warning.
      const runs = { n: 0 };
      const f = cache.cacheResult(
        () => {
          runs.n++;
          return 'fresh';
        },
        { keyStyle: 'python', keyPrefix: 'nine' },
      );
      expect(await f()).toBe('fresh');
      expect(runs.n).toBe(1);
      expect(lines.some((l) => l.includes('uncached') && l.includes('deployment id'))).toBe(true);
      expect(lines.join('\n')).not.toContain(TOKEN);
      // Press recovers: the next call asks again and caches under the parent.
      deployments.set('child-9', { id: 'child-9', parent: { id: 'parent-9' } });
      expect(await f()).toBe('fresh');
      expect(await redis.scanKeys('plat:parent-9:nine:*')).toHaveLength(1);
      expect(requestsFor('child-9').length).toBeGreaterThanOrEqual(3);
    });

    it('Press unreachable, silent or answering garbage: typed errors naming the operation', async () => {
      const failure = async (env: Record<string, string>, extra: Partial<CacheClientOptions> = {}) => {
        const cache = pool.open({
          env: { API_KEY: TOKEN, PEAK_PLATFORM_URL: baseUrl, ...env },
          logger,
          ...extra,
        });
        const err = await cache.invalidate({ broadPatterns: ['x'] }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CacheConnectionError);
        expect((err as Error).message).toMatch(/^Resolving the deployment id of cached functions failed: /);
        expect((err as Error).message).not.toContain(TOKEN);
        return err as CacheConnectionError;
      };
      const closed = `http://127.0.0.1:${await freePort()}`; // nothing listens: connection refused
      const refused = await failure({ PEAK_PRESS_URL: closed, PRESS_DEPLOYMENT_ID: 'x-1' });
      expect(refused.message).toContain(`could not reach Press at ${closed}`);
      const silent = await failure(
        { PEAK_PRESS_URL: baseUrl, PRESS_DEPLOYMENT_ID: 'hang' },
        { connectionConfig: { connectTimeoutMs: 200 } },
      );
      expect(silent.code).toBe('ERR_CACHE_TIMEOUT');
      expect(silent.message).toMatch(/did not answer within 200 ms/);
      const garbage = await failure({ PEAK_PRESS_URL: baseUrl, PRESS_DEPLOYMENT_ID: 'not-json' });
      expect(garbage.message).toMatch(/not valid JSON/);
    });

    it('a parent id that cannot be part of a key is refused', () => {
      expect(deploymentIdFromReply({ parent: { id: 'p-1' } }, 'own')).toBe('p-1');
      expect(deploymentIdFromReply({ parent: {} }, 'own')).toBe('own');
      expect(deploymentIdFromReply({ parent: { id: '' } }, 'own')).toBe('own');
      expect(deploymentIdFromReply({}, 'own')).toBe('own');
      expect(() => deploymentIdFromReply({ parent: { id: 'a:b*' } }, 'own')).toThrow(CacheConnectionError);
      expect(() => deploymentIdFromReply({ parent: { id: 7 } }, 'own')).toThrow(/parent id/);
      expect(() => deploymentIdFromReply([], 'own')).toThrow(/not a JSON object/);
    });

    it('a rejected token is a CacheAuthError (a CacheConnectionError)', async () => {
      const cache = pool.open({
        env: {
          API_KEY: 'wrong',
          PEAK_PLATFORM_URL: baseUrl,
          PEAK_PRESS_URL: baseUrl,
          PRESS_DEPLOYMENT_ID: 'solo-2',
        },
        logger,
      });
      const err = await cache.invalidate({ broadPatterns: ['x'] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CacheConnectionError);
      expect((err as CacheConnectionError).code).toBe('ERR_CACHE_AUTH');
    });

    it('no Press request with the deploymentId option, nor in direct mode (PRESS_DEPLOYMENT_ID as it is)', async () => {
      const before = pressRequests.length;
      const explicit = platform('child-3', { deploymentId: 'given' });
      await explicit.cacheResult(() => 1, { keyStyle: 'python', keyPrefix: 'g' })();
      expect(await redis.scanKeys('plat:given:g:*')).toHaveLength(1);
      const directMode = pool.open({
        connectionConfig: { url: redis.url, tenant: 'dir' },
        env: { PRESS_DEPLOYMENT_ID: 'child-3', PEAK_PRESS_URL: baseUrl, API_KEY: TOKEN },
      });
      await directMode.cacheResult(() => 1, { keyStyle: 'python', keyPrefix: 'g' })();
      expect(await redis.scanKeys('dir:child-3:g:*')).toHaveLength(1);
      expect(pressRequests.length).toBe(before);
    });
  });
});
