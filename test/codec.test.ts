import { describe, expect, it } from 'vitest';
import { parseJsonOrString, parseMapping } from '../src/cli/args.js';
import {
  jsonCodec,
  peakCodec,
  resolveCodec,
  safeJsonParse,
  toCompactPythonJson,
  toJson,
} from '../src/codec.js';
import { CacheValidationError } from '../src/errors.js';

describe('peak codec', () => {
  it('stores strings raw and everything else as Python json.dumps would', () => {
    expect(peakCodec.encode('plain')).toBe('plain');
    expect(peakCodec.encode({ a: 1, b: [1, 2] })).toBe('{"a": 1, "b": [1, 2]}');
    expect(peakCodec.encode({ s: 'é,:"x' })).toBe('{"s": "\\u00e9,:\\"x"}');
    expect(peakCodec.encode(42)).toBe('42');
    expect(peakCodec.encode(null)).toBe('null');
    expect(peakCodec.encode([1e-7, 1e21])).toBe('[1e-07, 1e+21]');
  });

  it('decodes only values that start with { or [, falling back to the raw string', () => {
    expect(peakCodec.decode('{"a": 1}')).toEqual({ a: 1 });
    expect(peakCodec.decode('[1]')).toEqual([1]);
    expect(peakCodec.decode('42')).toBe('42');
    expect(peakCodec.decode('"quoted"')).toBe('"quoted"');
    expect(peakCodec.decode('{broken')).toBe('{broken');
    expect(peakCodec.decode('')).toBe('');
  });

  it('keeps separators and escapes inside strings intact', () => {
    expect(peakCodec.encode({ 'a,b': 'c:d', e: '"x"' })).toBe('{"a,b": "c:d", "e": "\\"x\\""}');
    expect(peakCodec.encode(['e-1', '1e-5', 1e-7])).toBe('["e-1", "1e-5", 1e-07]');
  });

  it('writes exactly what JSON.stringify writes for what JSON can represent', () => {
    const samples: unknown[] = [
      { a: [1, 'x', null, true, { b: [] }], d: new Date(0), u: undefined, nested: { deep: [[[{}]]] } },
      ['a\nb', 'tab\t', '\u2028', 'é😀', -0, 0.1, 1e21, 5e-324, [undefined]],
      { 'quote"key': 'back\\slash', '': '' },
      [new String('boxed'), new Number(3), new Boolean(false)],
    ];
    for (const sample of samples) expect(toJson(sample)).toBe(JSON.stringify(sample));
  });
});

describe('prototype poisoning', () => {
  const payloads = [
    '{"__proto__": {"polluted": true}}',
    '{"a": {"__proto__": {"polluted": true}}}',
    '{"constructor": {"prototype": {"polluted": true}}}',
    '[{"__proto__": {"polluted": true}}]',
    // Escaped names are the same names once parsed.
    String.raw`{"\u005f_proto__": {"polluted": true}}`,
    String.raw`{"constructo\u0072": {"\u0070rototype": {"polluted": true}}}`,
    String.raw`[{"\u005F_proto__": {"polluted": true}}]`,
  ];
  for (const payload of payloads) {
    it(`drops the poison in ${payload}`, () => {
      for (const codec of [peakCodec, jsonCodec]) {
        const value = codec.decode(payload) as Record<string, unknown>;
        const merged = Object.assign({}, value, ...(Array.isArray(value) ? value : [value]));
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        expect(merged.polluted).toBeUndefined();
        expect(JSON.stringify(value)).not.toContain('polluted');
      }
    });
  }

  it('keeps ordinary "constructor" fields', () => {
    expect(safeJsonParse('{"constructor": "Ada"}')).toEqual({ constructor: 'Ada' });
  });
});

describe('json codec and validation', () => {
  it('round-trips types', () => {
    for (const v of [42, '42', true, null, { a: [1, 'x'] }])
      expect(jsonCodec.decode(jsonCodec.encode(v))).toEqual(v);
  });

  it('rejects what JSON cannot represent with a clear CacheValidationError', () => {
    const circular: { self?: unknown } = {};
    circular.self = circular;
    const cases: [unknown, RegExp][] = [
      [circular, /circular/i],
      [() => 1, /functions/],
      [Symbol('s'), /symbols/],
      [undefined, /undefined/],
      [{ f: () => 1 }, /functions/],
      [new Map([['a', 1]]), /a Map would be stored as \{\}/],
      [{ s: new Set([1]) }, /a Set/],
      // Built-ins JSON.stringify silently turns into {} or an object of indices.
      [/x/g, /a RegExp would be stored as \{\}/],
      [{ e: new Error('boom') }, /an Error would be stored as \{\}/],
      [new Uint8Array([1, 2]), /binary data/],
      [{ b: new ArrayBuffer(4) }, /binary data/],
      // A Buffer's own toJSON would store {"type": "Buffer", "data": [...]}.
      [Buffer.from('hi'), /binary data \(a Buffer/],
      [{ file: Buffer.from('hi') }, /binary data/],
      [[new Float64Array(2)], /binary data/],
      [new DataView(new ArrayBuffer(2)), /binary data/],
      [Promise.resolve(1), /a Promise/],
      [new WeakMap(), /a WeakMap has no readable contents/],
    ];
    for (const [value, message] of cases) {
      for (const codec of [peakCodec, jsonCodec]) {
        expect(() => codec.encode(value)).toThrow(CacheValidationError);
        expect(() => codec.encode(value)).toThrow(message);
      }
    }
  });

  it('peak codec: a top-level Date is stored as its ISO text, raw, and reads back without quotes', () => {
    const date = new Date(0);
    expect(peakCodec.encode(date)).toBe('1970-01-01T00:00:00.000Z');
    expect(peakCodec.decode(peakCodec.encode(date))).toBe('1970-01-01T00:00:00.000Z');
    // Inside JSON, as JSON.stringify and Python's isoformat-by-hand write it: a string.
    expect(peakCodec.encode({ at: date })).toBe('{"at": "1970-01-01T00:00:00.000Z"}');
  });

  it('json codec: standard JSON only, so bigint, NaN and Infinity are rejected rather than changed', () => {
    const cases: [unknown, RegExp][] = [
      [10n, /BigInt is not supported by the json codec/],
      [{ id: 2n ** 64n }, /BigInt/],
      [Number.NaN, /NaN is not a finite number/],
      [{ deep: [Number.POSITIVE_INFINITY] }, /Infinity is not a finite number/],
      [[Number.NEGATIVE_INFINITY], /-Infinity/],
    ];
    for (const [value, message] of cases) {
      expect(() => jsonCodec.encode(value)).toThrow(CacheValidationError);
      expect(() => jsonCodec.encode(value)).toThrow(message);
      expect(() => peakCodec.encode(value)).not.toThrow();
    }
    // It reads with JSON.parse: Python's constants are not JSON, so the text comes back as stored.
    expect(jsonCodec.decode('[NaN]')).toBe('[NaN]');
    // Lone surrogates are escaped and round-trip, in strings and in JSON values.
    for (const value of ['\ud800', { k: 'a\udc00' }])
      expect(jsonCodec.decode(jsonCodec.encode(value))).toEqual(value);
    expect(jsonCodec.encode('\ud800')).toBe('"\\ud800"');
  });

  it('resolves codec options', () => {
    expect(resolveCodec(undefined)).toBe(peakCodec);
    expect(resolveCodec('json')).toBe(jsonCodec);
    expect(() => resolveCodec('yaml' as never)).toThrow(/`codec` option/);
  });
});

describe("peak codec: Python's json dialect", () => {
  const NaN_ = Number.NaN;
  const INF = Number.POSITIVE_INFINITY;

  it('writes NaN, Infinity and -Infinity as Python does, and reads them back at any depth', () => {
    const value = { x: NaN_, y: INF, z: -INF, ok: 1, deep: [[{ n: [NaN_, -INF] }]] };
    const text = '{"x": NaN, "y": Infinity, "z": -Infinity, "ok": 1, "deep": [[{"n": [NaN, -Infinity]}]]}';
    expect(peakCodec.encode(value)).toBe(text);
    expect(peakCodec.decode(text)).toEqual(value);
    expect(peakCodec.decode('[NaN, 1.5]')).toEqual([NaN_, 1.5]);
    expect(peakCodec.decode('[ -Infinity ,Infinity\n,NaN\t]')).toEqual([-INF, INF, NaN_]);
  });

  it('leaves the words alone inside strings and keys', () => {
    const value = { NaN: 'NaN', 'a"Infinity': ['-Infinity', 'x\\"NaN', NaN_], Infinity: INF };
    expect(peakCodec.decode(peakCodec.encode(value))).toEqual(value);
  });

  it('returns the raw string where Python would reject the text, as Python does', () => {
    for (const text of [
      '[-NaN]',
      '[NaN1]',
      '[Infinity1]',
      '{NaN: 1}',
      '[1, 2-Infinity]',
      '[NaN NaN]',
      '[- Infinity]',
      '[nan]',
      '[Inf]',
      '[NaN,]',
    ]) {
      expect(peakCodec.decode(text), text).toBe(text);
    }
  });

  it('reads integers beyond 2^53 - 1 as bigint with every digit; safe ones stay numbers', () => {
    expect(peakCodec.decode('{"id": 9007199254740993}')).toEqual({ id: 9007199254740993n });
    expect(peakCodec.decode('[1234567890123456789]')).toEqual([1234567890123456789n]);
    expect(
      peakCodec.decode('[9007199254740991, -9007199254740991, 9007199254740992, -9007199254740992]'),
    ).toEqual([9007199254740991, -9007199254740991, 9007199254740992n, -9007199254740992n]);
    expect(peakCodec.decode('[18446744073709551616, -18446744073709551617, 1000000000000000]')).toEqual([
      18446744073709551616n,
      -18446744073709551617n,
      1000000000000000,
    ]);
    // Long fractions and exponents are floats, exactly as JSON.parse reads them.
    const floats = '[0.30000000000000004, 1.2345678901234567e+300, 12345678901234567.5, 1e400, 1e+22]';
    expect(peakCodec.decode(floats)).toEqual(JSON.parse(floats));
    // Together with NaN, and with digit runs inside strings.
    expect(peakCodec.decode('[NaN, 9007199254740993, "12345678901234567890"]')).toEqual([
      NaN_,
      9007199254740993n,
      '12345678901234567890',
    ]);
  });

  it('finds a long integer wherever it sits (the check probes every 16th character)', () => {
    for (let pad = 0; pad < 40; pad++) {
      const text = `[${' '.repeat(pad)}9007199254740993, "${'x'.repeat(pad)}", 12345678901234567890]`;
      expect(peakCodec.decode(text), `pad ${pad}`).toEqual([
        9007199254740993n,
        'x'.repeat(pad),
        12345678901234567890n,
      ]);
      // A long fraction first (not an integer: skipped), then a long integer the next probes must find.
      const fraction = `0.${'1'.repeat(pad + 16)}`;
      const integer = '9'.repeat(16 + (pad % 5));
      expect(peakCodec.decode(`[${fraction}, ${integer}]`), fraction).toEqual([
        Number(fraction),
        BigInt(integer),
      ]);
    }
  });

  it('writes bigint as a plain integer, and reads it back as the same value', () => {
    expect(peakCodec.encode({ n: 10n, big: 2n ** 64n, neg: -(2n ** 70n) })).toBe(
      '{"n": 10, "big": 18446744073709551616, "neg": -1180591620717411303424}',
    );
    expect(peakCodec.decode(peakCodec.encode([2n ** 64n, -(2n ** 53n) - 1n]))).toEqual([
      2n ** 64n,
      -(2n ** 53n) - 1n,
    ]);
    // A bigint within the safe range reads back as a number, as the same int from Python does.
    expect(peakCodec.decode(peakCodec.encode([10n]))).toEqual([10]);
  });

  it("spells numbers as Python's repr(float), ints as ints", () => {
    const cases: [number, string][] = [
      [1e-5, '1e-05'],
      [5e-5, '5e-05'],
      [1.5e-7, '1.5e-07'],
      [0.0001, '0.0001'],
      [0.00012, '0.00012'],
      [9.999999999999999e-5, '9.999999999999999e-05'],
      [1e-320, '1e-320'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
      [1e16, '1e+16'],
      [1.5e16, '1.5e+16'],
      [9999999999999998, '9999999999999998.0'],
      [2 ** 53, '9007199254740992.0'],
      [1e21, '1e+21'],
      [1e22, '1e+22'],
      [123456789012345.6, '123456789012345.6'],
      [0.1, '0.1'],
      [-0.30000000000000004, '-0.30000000000000004'],
      [-0, '-0.0'],
      [0, '0'],
      [42, '42'],
      [2 ** 53 - 1, '9007199254740991'],
      [-(2 ** 53 - 1), '-9007199254740991'],
    ];
    for (const [n, text] of cases) {
      expect(peakCodec.encode([n]), String(n)).toBe(`[${text}]`);
      expect(Object.is((peakCodec.decode(`[${text}]`) as number[])[0], n), text).toBe(true);
    }
  });

  it('round-trips random values: every number stays a number, every bigint past 2^53 a bigint', () => {
    let seed = 7;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const bits = Buffer.alloc(8);
    for (let i = 0; i < 2000; i++) {
      bits.writeUInt32BE(Math.floor(next() * 2 ** 32), 0);
      bits.writeUInt32BE(Math.floor(next() * 2 ** 32), 4);
      const double = bits.readDoubleBE(0);
      const big = BigInt(Math.floor(next() * 2 ** 31)) ** 3n * (next() < 0.5 ? -1n : 1n) + 2n ** 60n;
      const value = { double, big, list: [double, big, 'NaN', Number.isNaN(double) ? 0 : -double] };
      expect(peakCodec.decode(peakCodec.encode(value))).toEqual(value);
    }
  });

  it('keeps prototype poisoning out on the lossless path too', () => {
    const payloads = [
      '{"__proto__": {"polluted": true}, "n": NaN}',
      '{"a": [{"__proto__": {"polluted": true}}], "id": 9007199254740993}',
      '{"constructor": {"prototype": {"polluted": true}}, "x": Infinity}',
      String.raw`{"\u005f_proto__": {"polluted": true}, "id": 9007199254740993}`,
    ];
    for (const payload of payloads) {
      const value = peakCodec.decode(payload) as Record<string, unknown>;
      expect(typeof value).toBe('object');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      expect(JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.toContain(
        'polluted',
      );
    }
    // Duplicate keys: the last one wins, as with JSON.parse and Python's json.loads.
    expect(peakCodec.decode('{"a": NaN, "a": 1, "b": 9007199254740993, "b": 2}')).toEqual({ a: 1, b: 2 });
  });

  it('rejects a raw string holding a lone surrogate; inside JSON values they are escaped and round-trip', () => {
    for (const raw of ['x\ud800', '\udc00', 'a\ud83d', '\udfff\ud800']) {
      expect(() => peakCodec.encode(raw)).toThrow(CacheValidationError);
      expect(() => peakCodec.encode(raw)).toThrow(/lone surrogate/);
    }
    expect(() => peakCodec.encode('x\ud800')).toThrow(
      'A string value must be well-formed Unicode, but has a lone surrogate U+D800 at index 1',
    );
    expect(peakCodec.encode('pair 😀')).toBe('pair 😀');
    const value = { s: '\ud800', t: ['a\udc00b'], '\udbff': 1 };
    expect(peakCodec.encode(value)).toBe('{"s": "\\ud800", "t": ["a\\udc00b"], "\\udbff": 1}');
    expect(peakCodec.decode(peakCodec.encode(value))).toEqual(value);
  });
});

describe('the command line speaks the dialect too', () => {
  it('prints every decoded value (bigint, NaN) as compact JSON with Python numbers', () => {
    const value = peakCodec.decode('{"id": 9007199254740993, "x": NaN, "é": [1e-05, -Infinity, "\\ud800"]}');
    expect(toCompactPythonJson(value)).toBe(
      '{"id":9007199254740993,"x":NaN,"é":[1e-05,-Infinity,"\\ud800"]}',
    );
    for (const plain of [{ name: 'Ada' }, null, true, 42, 'text', ['a', 1.5]]) {
      expect(toCompactPythonJson(plain)).toBe(JSON.stringify(plain));
    }
  });

  it('reads --value and --mapping as Python reads JSON: big integers and constants are kept', () => {
    expect(parseJsonOrString('{"id": 9007199254740993}')).toEqual({ id: 9007199254740993n });
    expect(parseJsonOrString('[NaN, Infinity]')).toEqual([Number.NaN, Number.POSITIVE_INFINITY]);
    expect(parseJsonOrString('hello')).toBe('hello');
    expect(parseMapping('{"a": 12345678901234567890, "b": -Infinity}')).toEqual({
      a: 12345678901234567890n,
      b: Number.NEGATIVE_INFINITY,
    });
    expect(parseJsonOrString('{"__proto__": {"polluted": true}}')).toEqual({});
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
