/**
 * Interoperability with Peak's Python client: keys and values written by Python's logic (python3's own
 * `json` module) are read back by this client as Python reads them, and the reverse.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peakCodec } from '../src/codec.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/python_peak_cache.py', import.meta.url));

function python(port: number, tenant: string, prefix: string | null, mode: 'write' | 'read', input: unknown) {
  return new Promise<unknown>((resolve, reject) => {
    const child = execFile(
      'python3',
      [SCRIPT, String(port), tenant, prefix ?? '-', mode],
      { timeout: 20_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
    );
    child.stdin?.end(JSON.stringify(input));
  });
}

/** Values covering Python's json.dumps formatting: separators, ensure_ascii, nesting, unicode, escapes. */
const VALUES: [string, unknown][] = [
  ['obj', { name: 'Ada', age: 36, tags: ['math', 'code'] }],
  ['nested', { a: { b: { c: [1, { d: null }] } }, e: true, f: false }],
  ['unicode', { city: 'Zürich', jp: '日本語', emoji: '😀', mixed: 'a\u00e9b' }],
  ['escapes', { s: 'quote " backslash \\ newline \n tab \t ctrl \u0001 del \u007f', slash: 'a/b' }],
  ['list', [1, 'two', 3.5, null, [], {}]],
  ['numbers', { int: 42, neg: -7, float: 0.1, big: 1e21, small: 1.5e-7 }],
  ['plain', 'just a string'],
  ['json-looking-string', '{"already": "json"}'],
  ['broken-json-string', '{not json'],
  ['empty', ''],
  ['spaces', { 'key with spaces': 'v', 'k:colon': 'w' }],
];

describe('interoperability with the Python client', () => {
  let server: RedisServer;
  const pool = new ClientPool();
  const client = (tenant: string, additionalPrefix: string | null = null) =>
    pool.open({ connectionConfig: { url: server.url, tenant }, additionalPrefix });

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await pool.closeAll();
    await server.stop();
  });

  for (const prefix of [null, 'pricing', 'a:b']) {
    it(`reads what Python wrote, as Python reads it (prefix ${prefix})`, async () => {
      const tenant = 'py2ts';
      await python(server.port, tenant, prefix, 'write', VALUES);
      const keys = VALUES.map(([k]) => k);
      const pythonReads = (await python(server.port, tenant, prefix, 'read', keys)) as unknown[];
      const cache = client(tenant, prefix);
      expect(await cache.mget(...keys)).toEqual(pythonReads);
      for (const [i, key] of keys.entries()) expect(await cache.get(key)).toEqual(pythonReads[i]);
    });

    it(`Python reads what this client wrote (prefix ${prefix})`, async () => {
      const tenant = 'ts2py';
      const cache = client(tenant, prefix);
      for (const [key, value] of VALUES) await cache.set(key, value);
      const keys = VALUES.map(([k]) => k);
      const pythonReads = (await python(server.port, tenant, prefix, 'read', keys)) as unknown[];
      expect(pythonReads).toEqual(await cache.mget(...keys));
      // Objects and arrays come back equal to what was written; strings come back raw.
      expect(pythonReads[0]).toEqual(VALUES[0]?.[1]);
      expect(pythonReads[2]).toEqual(VALUES[2]?.[1]);
    });
  }

  it('stores byte-identical keys and values to Python (json.dumps format)', async () => {
    await python(server.port, 'pyraw', 'p', 'write', VALUES);
    const cache = client('tsraw', 'p');
    await cache.mset(Object.fromEntries(VALUES));
    for (const [key, value] of VALUES) {
      const fromPython = await server.cli('--raw', 'GET', `pyraw:p:${key}`);
      const fromUs = await server.cli('--raw', 'GET', `tsraw:p:${key}`);
      expect(fromUs, key).toBe(fromPython);
      expect(peakCodec.encode(value)).toBe(fromPython);
    }
  });

  it('reads scalars back as strings, as Python does (set n 42 -> "42")', async () => {
    const cache = client('scalars');
    await cache.set('n', 42);
    await cache.set('f', 2.5);
    await cache.set('t', true);
    const pythonReads = await python(server.port, 'scalars', null, 'read', ['n', 'f', 't']);
    expect(pythonReads).toEqual(['42', '2.5', 'true']);
    expect(await cache.mget('n', 'f', 't')).toEqual(['42', '2.5', 'true']);
  });
});
