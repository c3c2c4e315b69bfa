import { describe, expect, it } from 'vitest';
import { jsonCodec, peakCodec, resolveCodec, safeJsonParse, toJson } from '../src/codec.js';
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
      [10n, /BigInt/],
      [circular, /circular/i],
      [() => 1, /functions/],
      [Symbol('s'), /symbols/],
      [undefined, /undefined/],
      [Number.NaN, /NaN is not a finite number/],
      [{ deep: [Number.POSITIVE_INFINITY] }, /Infinity/],
      [{ f: () => 1 }, /functions/],
      [new Map([['a', 1]]), /a Map would be stored as \{\}/],
      [{ s: new Set([1]) }, /a Set/],
    ];
    for (const [value, message] of cases) {
      for (const codec of [peakCodec, jsonCodec]) {
        expect(() => codec.encode(value)).toThrow(CacheValidationError);
        expect(() => codec.encode(value)).toThrow(message);
      }
    }
  });

  it('resolves codec options', () => {
    expect(resolveCodec(undefined)).toBe(peakCodec);
    expect(resolveCodec('json')).toBe(jsonCodec);
    expect(() => resolveCodec('yaml' as never)).toThrow(/`codec` option/);
  });
});
