/**
 * Interoperability with Peak's Python client: keys and values written by Python's logic (python3's own
 * `json` module on redis-py, as test/fixtures/python_peak_cache.py does it) are read back by this
 * client as Python reads them, and the reverse, byte for byte where both sides write the same value.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { peakCodec } from '../src/codec.js';
import { CacheValidationError } from '../src/errors.js';
import { ClientPool } from './helpers/clients.js';
import { floatBits, type Tagged, tag, untag } from './helpers/python-values.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/python_peak_cache.py', import.meta.url));
/** Debian's python3 has redis-py (python3-redis); the python3 first on PATH may not. */
const PYTHON = '/usr/bin/python3';

type Mode = 'write' | 'write-tagged' | 'read' | 'dumps';

/** Run the fixture; `stdin` is sent as it is, stdout is parsed as standard JSON. */
function runPython(port: number, tenant: string, prefix: string | null, mode: Mode, stdin: string) {
  return new Promise<unknown>((resolve, reject) => {
    const child = execFile(
      PYTHON,
      [SCRIPT, String(port), tenant, prefix ?? '-', mode],
      { timeout: 20_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
    );
    child.stdin?.end(stdin);
  });
}

/** Values covering Python's json.dumps formatting: separators, ensure_ascii, nesting, unicode, escapes. */
const VALUES: [string, unknown][] = [
  ['obj', { name: 'Ada', age: 36, tags: ['math', 'code'] }],
  ['nested', { a: { b: { c: [1, { d: null }] } }, e: true, f: false }],
  ['unicode', { city: 'Zürich', jp: '日本語', emoji: '😀', mixed: 'a\u00e9b' }],
  ['escapes', { s: 'quote " backslash \\ newline \n tab \t ctrl \u0001 del \u007f', slash: 'a/b' }],
  ['list', [1, 'two', 3.5, null, [], {}]],
  ['numbers', { int: 42, neg: -7, float: 0.1, big: 1e21, small: 1.5e-7, e5: 1e-5 }],
  ['plain', 'just a string'],
  ['json-looking-string', '{"already": "json"}'],
  ['broken-json-string', '{not json'],
  ['empty', ''],
  ['spaces', { 'key with spaces': 'v', 'k:colon': 'w' }],
];

/** Python's constants in objects and arrays, at any depth, as Python's json.dumps writes them. */
const CONSTANTS_PY = `[
  ["nan-obj", {"x": NaN, "y": Infinity, "z": -Infinity, "ok": 1}],
  ["nan-arr", [NaN, 1.5]],
  ["nan-deep", {"a": [{"b": [NaN, [Infinity, {"c": -Infinity}]]}], "s": "NaN Infinity"}],
  ["nan-mixed", [-Infinity, "-Infinity", {"k": [[NaN]]}, 9007199254740993, 0.5]]
]`;
const CONSTANTS_JS: [string, unknown][] = [
  ['nan-obj', { x: Number.NaN, y: Number.POSITIVE_INFINITY, z: Number.NEGATIVE_INFINITY, ok: 1 }],
  ['nan-arr', [Number.NaN, 1.5]],
  [
    'nan-deep',
    {
      a: [{ b: [Number.NaN, [Number.POSITIVE_INFINITY, { c: Number.NEGATIVE_INFINITY }]] }],
      s: 'NaN Infinity',
    },
  ],
  ['nan-mixed', [Number.NEGATIVE_INFINITY, '-Infinity', { k: [[Number.NaN]] }, 9007199254740993n, 0.5]],
];

const TWO_53 = 2n ** 53n;
const TWO_64 = 2n ** 64n;
/** Python ints around the edges of JavaScript's safe range and of 64 bits. */
const INTS: bigint[] = [
  0n,
  1n,
  -1n,
  10n ** 15n,
  ...[TWO_53, TWO_64].flatMap((edge) => [-2n, -1n, 0n, 1n, 2n].flatMap((d) => [edge + d, -(edge + d)])),
  1234567890123456789n,
  10n ** 30n,
  -(10n ** 40n) - 7n,
];

/** mulberry32: reproducible random doubles (a failure names its value). */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Floats across the whole range Python writes: every power of ten from 1e-320 (subnormal) to 1e308
 * and its neighbours, the boundaries where Python's repr() switches notation (1e-4, 1e16) and where
 * JavaScript's does (1e-6, 1e21), integral floats beyond 2^53, and random doubles (random bit
 * patterns over every exponent, and random decimals of every magnitude). Leaves out integral floats
 * below 2^53, which JavaScript writes as ints (`1` for Python's `1.0`; tested apart).
 */
function floatSamples(): number[] {
  const next = random(0x9e3779b9);
  const bits = Buffer.alloc(8);
  const values: number[] = [
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    2.225073858507201e-308,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    0.1,
    0.2,
    0.30000000000000004,
    1 / 3,
    -2 / 3,
    Math.PI,
    1e-5,
    5e-5,
    1.5e-7,
    123456789012345.6,
    999999999999999.9,
    2 ** 53,
    2 ** 53 + 2,
    -(2 ** 53),
    2 ** 63,
    2 ** 64,
    1e16,
    1e16 + 2,
    9999999999999998,
    1e21,
    1e22,
    1.2345e20,
    -0,
  ];
  // The doubles right next to where Python's repr() (1e-4, 1e16) and JavaScript (1e-6, 1e21) switch
  // notation, and to 2^53.
  for (const edge of [1e-4, 1e-6, 1e16, 1e21, 2 ** 53]) {
    bits.writeDoubleBE(edge);
    const at = bits.readBigUInt64BE();
    for (const step of [-2n, -1n, 0n, 1n, 2n]) {
      bits.writeBigUInt64BE(at + step);
      values.push(bits.readDoubleBE(), -bits.readDoubleBE());
    }
  }
  for (let k = -320; k <= 308; k++) {
    const power = Number(`1e${k}`);
    values.push(power, -power, power * 1.5, power * (1 + Number.EPSILON), power * (1 - Number.EPSILON / 2));
  }
  for (let i = 0; i < 3000; i++) {
    bits.writeUInt32BE(Math.floor(next() * 2 ** 32), 0);
    bits.writeUInt32BE(Math.floor(next() * 2 ** 32), 4);
    values.push(bits.readDoubleBE(0));
    values.push((next() - 0.5) * 10 ** Math.floor(next() * 40 - 20));
  }
  return values.filter((n) => (Number.isFinite(n) && !Number.isSafeInteger(n)) || Object.is(n, -0));
}

describe('interoperability with the Python client (redis-py, python3 json)', () => {
  let server: RedisServer;
  const pool = new ClientPool();
  const client = (tenant: string, additionalPrefix: string | null = null) =>
    pool.open({ connectionConfig: { url: server.url, tenant }, additionalPrefix });
  const py = {
    /** Python stores `[key, value]` pairs given in Python's JSON dialect (NaN, big ints literal). */
    write: (tenant: string, prefix: string | null, pairsInPythonJson: string) =>
      runPython(server.port, tenant, prefix, 'write', pairsInPythonJson),
    /** Python stores values with exact Python types (bigint -> int, number -> float). */
    writeTyped: (tenant: string, prefix: string | null, pairs: [string, unknown][]) =>
      runPython(
        server.port,
        tenant,
        prefix,
        'write-tagged',
        JSON.stringify(pairs.map(([k, v]) => [k, tag(v)])),
      ),
    /** What Python's client returns for each key, with Python's types. */
    readTagged: async (tenant: string, prefix: string | null, keys: string[]) =>
      (await runPython(server.port, tenant, prefix, 'read', JSON.stringify(keys))) as Tagged[],
    /** What Python's client returns for each key, mapped to JavaScript by the spec's rules. */
    read: async (tenant: string, prefix: string | null, keys: string[]) =>
      (await py.readTagged(tenant, prefix, keys)).map(untag),
    /** Python's json.dumps of each value (Python types as for writeTyped). */
    dumps: async (values: unknown[]) =>
      (await runPython(server.port, '-', null, 'dumps', JSON.stringify(values.map(tag)))) as string[],
  };

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
      await py.write(tenant, prefix, JSON.stringify(VALUES));
      const keys = VALUES.map(([k]) => k);
      const pythonReads = await py.read(tenant, prefix, keys);
      const cache = client(tenant, prefix);
      expect(await cache.mget(...keys)).toEqual(pythonReads);
      for (const [i, key] of keys.entries()) expect(await cache.get(key)).toEqual(pythonReads[i]);
    });

    it(`Python reads what this client wrote (prefix ${prefix})`, async () => {
      const tenant = 'ts2py';
      const cache = client(tenant, prefix);
      for (const [key, value] of VALUES) await cache.set(key, value);
      const keys = VALUES.map(([k]) => k);
      const pythonReads = await py.read(tenant, prefix, keys);
      expect(pythonReads).toEqual(await cache.mget(...keys));
      // Objects and arrays come back equal to what was written; strings come back raw.
      expect(pythonReads[0]).toEqual(VALUES[0]?.[1]);
      expect(pythonReads[2]).toEqual(VALUES[2]?.[1]);
    });
  }

  it('stores byte-identical keys and values to Python (json.dumps format)', async () => {
    await py.write('pyraw', 'p', JSON.stringify(VALUES));
    const cache = client('tsraw', 'p');
    await cache.mset(Object.fromEntries(VALUES));
    for (const [key, value] of VALUES) {
      const fromPython = await server.rawGet(`pyraw:p:${key}`);
      const fromUs = await server.rawGet(`tsraw:p:${key}`);
      expect(fromUs, key).toBe(fromPython);
      expect(peakCodec.encode(value)).toBe(fromPython ?? '');
    }
    // Python writes 1e-05 where JavaScript's own spelling is 0.00001.
    expect(await server.rawGet('tsraw:p:numbers')).toContain('"small": 1.5e-07, "e5": 1e-05}');
  });

  it('reads scalars back as strings, as Python does (set n 42 -> "42")', async () => {
    const cache = client('scalars');
    await cache.set('n', 42);
    await cache.set('f', 2.5);
    await cache.set('t', true);
    expect(await py.read('scalars', null, ['n', 'f', 't'])).toEqual(['42', '2.5', 'true']);
    expect(await cache.mget('n', 'f', 't')).toEqual(['42', '2.5', 'true']);
  });

  describe('NaN, Infinity and -Infinity', () => {
    const keys = CONSTANTS_JS.map(([k]) => k);

    it('reads them from Python in objects and arrays, at any depth', async () => {
      await py.write('py-nan', null, CONSTANTS_PY);
      const cache = client('py-nan');
      expect(await cache.mget(...keys)).toEqual(CONSTANTS_JS.map(([, v]) => v));
      for (const [key, value] of CONSTANTS_JS) expect(await cache.get(key), key).toEqual(value);
      expect(await py.read('py-nan', null, keys)).toEqual(CONSTANTS_JS.map(([, v]) => v));
      expect(await server.rawGet('py-nan:nan-obj')).toBe(
        '{"x": NaN, "y": Infinity, "z": -Infinity, "ok": 1}',
      );
    });

    it('writes them as Python does: same bytes, and Python reads floats', async () => {
      const cache = client('ts-nan');
      for (const [key, value] of CONSTANTS_JS) await cache.set(key, value);
      await py.write('py-nan2', null, CONSTANTS_PY);
      for (const key of keys) {
        expect(await server.rawGet(`ts-nan:${key}`), key).toBe(await server.rawGet(`py-nan2:${key}`));
      }
      const tagged = await py.readTagged('ts-nan', null, keys);
      expect(tagged.map(untag)).toEqual(CONSTANTS_JS.map(([, v]) => v));
      // Python's types, not only values: NaN and the infinities are floats, 1 is an int.
      expect(tagged[0]).toEqual({
        dict: [
          ['x', { float: floatBits(Number.NaN) }],
          ['y', { float: '7ff0000000000000' }],
          ['z', { float: 'fff0000000000000' }],
          ['ok', { int: '1' }],
        ],
      });
    });
  });

  describe('integers beyond 2^53', () => {
    const expected = INTS.map((n) =>
      n >= -BigInt(Number.MAX_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n,
    );

    it('reads every digit of what Python wrote, in objects and arrays (bigint past the safe range)', async () => {
      await py.writeTyped('py-int', null, [
        ['list', INTS],
        ['obj', { id: TWO_53 + 1n, ids: [1234567890123456789n] }],
        ...INTS.map((n, i): [string, unknown] => [`one-${i}`, [n]]),
      ]);
      const cache = client('py-int');
      expect(await cache.get('list')).toEqual(expected);
      expect(await cache.get('obj')).toEqual({ id: 9007199254740993n, ids: [1234567890123456789n] });
      for (const [i, value] of expected.entries()) expect(await cache.get(`one-${i}`)).toEqual([value]);
      expect(await py.read('py-int', null, ['list'])).toEqual([expected]);
    });

    it('writes bigint as a plain integer, byte-identical to Python, and Python reads ints', async () => {
      const cache = client('ts-int');
      await cache.set('list', INTS);
      await cache.set('obj', { n: 10n, id: TWO_53 + 1n });
      await py.writeTyped('py-int2', null, [
        ['list', INTS],
        ['obj', { n: 10n, id: TWO_53 + 1n }],
      ]);
      for (const key of ['list', 'obj']) {
        expect(await server.rawGet(`ts-int:${key}`)).toBe(await server.rawGet(`py-int2:${key}`));
      }
      expect(await server.rawGet('ts-int:obj')).toBe('{"n": 10, "id": 9007199254740993}');
      const [list, obj] = await py.readTagged('ts-int', null, ['list', 'obj']);
      expect(list).toEqual(INTS.map((n) => ({ int: n.toString() })));
      expect(obj).toEqual({
        dict: [
          ['n', { int: '10' }],
          ['id', { int: '9007199254740993' }],
        ],
      });
      // Safe integers come back as numbers, the rest as bigint with every digit.
      expect(await cache.get('list')).toEqual(expected);
    });
  });

  describe('floats across 1e-320..1e308', () => {
    const floats = floatSamples();

    it(`spells ${floats.length} floats exactly as Python's json.dumps does`, async () => {
      const python = await py.dumps(floats);
      const ours = floats.map((n) => peakCodec.encode([n]).slice(1, -1));
      const mismatches = floats
        .map((n, i) => ({ n, python: python[i], ours: ours[i] }))
        .filter(({ python, ours }) => python !== ours);
      expect(mismatches.slice(0, 20)).toEqual([]);
      // Python's integral floats below 2^53 are the one exception (JavaScript has no 1.0): same value.
      const integral = [1, -1, 2, 1e15, 123456789, 2 ** 53 - 1];
      expect(await py.dumps(integral)).toEqual(integral.map((n) => `${n}.0`));
      expect(peakCodec.encode(integral)).toBe(`[${integral.join(', ')}]`);
    });

    it('stores byte-identical values to Python, and each side reads the same doubles', async () => {
      await py.writeTyped('py-float', null, [['floats', floats]]);
      const cache = client('ts-float');
      await cache.set('floats', floats);
      expect(await server.rawGet('ts-float:floats')).toBe(await server.rawGet('py-float:floats'));
      const readHere = (await client('py-float').get('floats')) as number[];
      expect(readHere.map(floatBits)).toEqual(floats.map(floatBits));
      const [readByPython] = await py.readTagged('ts-float', null, ['floats']);
      expect(readByPython).toEqual(floats.map((n) => ({ float: floatBits(n) })));
    });
  });

  it('shares keys with unicode characters (both directions)', async () => {
    const entries: [string, unknown][] = [
      ['Zürich', { city: 'Zürich' }],
      ['日本語', ['日本', 1]],
      ['😀 emoji', 'raw 😀'],
      ['ключ:вложенный', { k: 'значение' }],
    ];
    await py.write('py-uni', 'p', JSON.stringify(entries));
    const keys = entries.map(([k]) => k);
    const fromPython = client('py-uni', 'p');
    expect(await fromPython.mget(...keys)).toEqual(entries.map(([, v]) => v));
    const ours = client('ts-uni', 'p');
    await ours.mset(Object.fromEntries(entries));
    expect(await py.read('ts-uni', 'p', keys)).toEqual(entries.map(([, v]) => v));
    expect((await server.scanKeys('ts-uni:*')).sort()).toEqual(keys.map((k) => `ts-uni:p:${k}`).sort());
    for (const key of keys)
      expect(await server.rawGet(`ts-uni:p:${key}`)).toBe(await server.rawGet(`py-uni:p:${key}`));
  });

  describe('lone surrogates', () => {
    const VALUE = { s: '\ud800', t: 'a\udc00b', pair: '😀', list: ['\udbff', 'x\ud800\ud800'] };

    it('inside JSON values: escaped as Python escapes them, round-trip both ways', async () => {
      await py.writeTyped('py-sur', null, [['v', VALUE]]);
      const cache = client('ts-sur');
      await cache.set('v', VALUE);
      const stored = await server.rawGet('ts-sur:v');
      expect(stored).toBe(await server.rawGet('py-sur:v'));
      expect(stored).toContain('"s": "\\ud800"');
      expect(await client('py-sur').get('v')).toEqual(VALUE);
      expect(await py.read('ts-sur', null, ['v'])).toEqual([VALUE]);
    });

    it('a raw string value holding one is a CacheValidationError before any I/O', async () => {
      const cache = client('ts-sur-raw');
      for (const value of ['x\ud800', '\udc00', 'a\ud83d']) {
        await expect(cache.set('k', value)).rejects.toThrow(CacheValidationError);
        await expect(cache.mset({ ok: 'fine', k: value })).rejects.toThrow(/lone surrogate/);
      }
      expect(await server.scanKeys('ts-sur-raw:*')).toEqual([]);
      // A well-formed pair is fine and reads back as it was.
      await cache.set('k', 'pair 😀');
      expect(await py.read('ts-sur-raw', null, ['k'])).toEqual(['pair 😀']);
    });
  });
});
