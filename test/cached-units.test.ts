/**
 * The small units of cached functions, without a server: Cache-Control parsing, argument digests, key
 * and pattern layout, the lock's failure marks, the breaker and the typed result codec.
 */

import { ErrorReply } from '@redis/client';
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, opensBreaker } from '../src/cached/breaker.js';
import { cacheControlDecision, parseCacheControl } from '../src/cached/cache-control.js';
import { freshness } from '../src/cached/freshness.js';
import {
  canonical,
  entityText,
  functionIdentity,
  invalidationPatterns,
  resolveDeploymentId,
  resultKey,
} from '../src/cached/keys.js';
import { FAILURE_MARK, failureMark, lockState, MAX_POLL_MS, nextPoll } from '../src/cached/lock.js';
import {
  decodeEntry,
  decodeResult,
  ENTRY_MARKER,
  encodeResult,
  RESULT_MARKER,
} from '../src/cached/result-codec.js';
import { CacheConnectionError, CacheError, CacheTimeoutError, CacheValidationError } from '../src/index.js';

describe('Cache-Control', () => {
  it.each([
    ['no-store', { kind: 'bypass' }],
    ['NO-CACHE', { kind: 'bypass' }],
    ['private, must-revalidate', { kind: 'bypass' }],
    ['max-age=0', { kind: 'bypass' }],
    ['s-maxage=0, max-age=60', { kind: 'bypass' }],
    ['max-age=120', { kind: 'cache', ttl: 120 }],
    ['public, max-age="90"', { kind: 'cache', ttl: 90 }],
    ['max-age=10, s-maxage=300', { kind: 'cache', ttl: 300 }],
    ['private', { kind: 'bypass' }],
    ['Private="set-cookie", max-age=60', { kind: 'bypass' }],
    ['public, max-age=60, private', { kind: 'bypass' }],
    // Malformed freshness is stale (RFC 9111 4.2.1): bypass, no guessed TTL.
    ['max-age=abc', { kind: 'bypass' }],
    ['max-age=-5', { kind: 'bypass' }],
    ['max-age=1.5', { kind: 'bypass' }],
    ['max-age', { kind: 'bypass' }],
    ['s-maxage=x, max-age=60', { kind: 'bypass' }],
    // Too large: clamped to the largest TTL (RFC 9111 1.2.2), not the default.
    ['max-age=99999999999', { kind: 'cache', ttl: 2 ** 32 }],
    ['s-maxage=99999999999999999999999', { kind: 'cache', ttl: 2 ** 32 }],
    ['public', { kind: 'cache', ttl: 3600 }],
    ['', { kind: 'cache', ttl: 3600 }],
  ])('%j -> %j', (header, decision) => {
    expect(cacheControlDecision(header, 3600, 2 ** 32)).toEqual(decision);
  });

  it('no header keeps the configured TTL; the first of a repeated directive wins', () => {
    expect(cacheControlDecision(null, 60)).toEqual({ kind: 'cache', ttl: 60 });
    expect(cacheControlDecision(undefined, 60)).toEqual({ kind: 'cache', ttl: 60 });
    expect(parseCacheControl('max-age=5, max-age=9').get('max-age')).toBe('5');
  });
});

describe('argument digests', () => {
  it('ignore object key order and keep types apart', () => {
    expect(canonical([{ a: 1, b: { c: 2, d: 3 } }])).toBe(canonical([{ b: { d: 3, c: 2 }, a: 1 }]));
    const distinct = [
      '123',
      123,
      123n,
      true,
      'true',
      null,
      undefined,
      Number.NaN,
      -0,
      0,
      [],
      {},
      [1, 2],
      [2, 1],
      new Date(0),
      '1970-01-01T00:00:00.000Z',
      new Map([[1, 2]]),
      new Set([1]),
      new Uint8Array([1]),
    ];
    expect(new Set(distinct.map((v) => canonical([v]))).size).toBe(distinct.length);
    expect(canonical([new Set([1, 2])])).toBe(canonical([new Set([2, 1])]));
  });

  it('reject what cannot be digested', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => canonical([circular])).toThrow(CacheValidationError);
    expect(() => canonical([() => 1])).toThrow(/key/);
    expect(() => canonical([Symbol('s')])).toThrow(CacheValidationError);
    // A shared (non-circular) reference is fine.
    const shared = { x: 1 };
    expect(() => canonical([shared, shared])).not.toThrow();
  });

  it('digest the whole state of URL, URLSearchParams, ArrayBuffer, typed arrays, Buffer and null-prototype objects', () => {
    const distinct = [
      new URL('http://a/'),
      new URL('http://b/'),
      'http://a/',
      new URLSearchParams('q=1'),
      new URLSearchParams('q=2'),
      new Uint8Array([1, 2]).buffer,
      new Uint8Array([1, 3]).buffer,
      new Uint8Array([1, 2]),
      new Uint16Array([1, 2]),
      new Float64Array([1.5]),
      new Float64Array([2.5]),
      new DataView(new Uint8Array([9]).buffer),
      Buffer.from([1, 2]),
      Object.assign(Object.create(null), { a: 1 }),
      Object.assign(Object.create(null), { a: 2 }),
    ];
    expect(new Set(distinct.map((v) => canonical([v]))).size).toBe(distinct.length);
    expect(canonical([new URL('http://a/x?b=1')])).toBe(canonical([new URL('http://a/x?b=1')]));
    expect(canonical([Object.assign(Object.create(null), { a: 1 })])).toBe(canonical([{ a: 1 }]));
  });

  it('reject objects whose state is not in their own enumerable properties (pass `key`), instead of colliding', () => {
    class WithPrivate {
      #secret: number;
      constructor(secret: number) {
        this.#secret = secret;
      }
      get secret() {
        return this.#secret;
      }
    }
    class Point {
      constructor(
        public x: number,
        public y: number,
      ) {}
    }
    class MyMap extends Map<string, number> {}
    const rejected: [string, unknown][] = [
      ['Request', new Request('http://a/')],
      ['Headers', new Headers({ a: '1' })],
      ['Error', new Error('x')],
      ['TypeError', new TypeError('x')],
      ['Promise', Promise.resolve(1)],
      ['WeakMap', new WeakMap()],
      ['WeakSet', new WeakSet()],
      ['WithPrivate', new WithPrivate(1)],
      ['Point', new Point(1, 2)],
      ['MyMap', new MyMap()],
      ['Number', Object(1)],
      ['symbol-keyed', { [Symbol('k')]: 1 }],
    ];
    for (const [name, value] of rejected) {
      expect(() => canonical([value]), name).toThrow(CacheValidationError);
      expect(() => canonical([{ nested: [value] }]), name).toThrow(/pass the `key` option/);
    }
    expect(() => canonical([new Point(1, 2)])).toThrow(/Point/);
  });

  it('two different functions with one name get different identities; one function is stable', () => {
    const a = (x: number) => x + 1;
    const b = (x: number) => x + 2;
    expect(functionIdentity(a, 'f')).not.toBe(functionIdentity(b, 'f'));
    expect(functionIdentity(a)).toBe(functionIdentity(a));
    expect(resultKey('d', 'p', null, 'id', [1])).toMatch(/^d:p:[A-Za-z0-9_-]{43}$/);
    expect(resultKey(null, 'p', '42', 'id', [1])).toMatch(/^p:42:[A-Za-z0-9_-]{43}$/);
  });
});

describe('invalidation patterns', () => {
  it('targeted patterns end in :<entity>:* (42 is not 420), ids are glob-escaped, broad ones end in *', () => {
    expect(
      invalidationPatterns('dep', {
        entityId: 42,
        targetedPatterns: ['users', 'orders'],
        broadPatterns: ['lists'],
      }),
    ).toEqual(['dep:users:42:*', 'dep:orders:42:*', 'dep:lists*']);
    expect(invalidationPatterns('d*p', { entityId: 'a?b', targetedPatterns: ['u'] })).toEqual([
      'd\\*p:u:a\\?b:*',
    ]);
    expect(invalidationPatterns(null, { broadPatterns: ['x'] })).toEqual(['x*']);
    expect(() => invalidationPatterns('d', { entityId: 'org:1', targetedPatterns: ['u'] })).toThrow(
      CacheValidationError,
    );
    expect(() => resultKey('d', 'p', entityText('a:b'), 'id', [])).toThrow(/must not contain ':'/);
    expect(resultKey('d', 'p', entityText(42n), 'id', [])).toMatch(/^d:p:42:/);
    expect(() => invalidationPatterns('d', { targetedPatterns: ['u'] })).toThrow(CacheValidationError);
    expect(() => invalidationPatterns('d', { broadPatterns: [''] })).toThrow(CacheValidationError);
  });

  it('the deployment id comes from the option, else PRESS_DEPLOYMENT_ID, and is validated', () => {
    expect(resolveDeploymentId(undefined, { PRESS_DEPLOYMENT_ID: 'env-1' })).toBe('env-1');
    expect(resolveDeploymentId('opt', { PRESS_DEPLOYMENT_ID: 'env-1' })).toBe('opt');
    expect(resolveDeploymentId(null, { PRESS_DEPLOYMENT_ID: 'env-1' })).toBeNull();
    expect(resolveDeploymentId(undefined, {})).toBeNull();
    expect(() => resolveDeploymentId('a:b', {})).toThrow(CacheValidationError);
    expect(() => resolveDeploymentId('a*', {})).toThrow(CacheValidationError);
  });
});

describe('fill lock', () => {
  it('a failure mark fails only the callers that waited for that owner (its token), never by comparing clocks', () => {
    expect(lockState(null, undefined)).toBe('free');
    expect(lockState('token-a', undefined)).toBe('held');
    expect(lockState(failureMark('token-a'), 'token-a')).toBe('failed');
    // A caller that waited for another owner, or saw no owner before the mark: not its failure.
    expect(lockState(failureMark('token-a'), 'token-b')).toBe('foreign-mark');
    expect(lockState(failureMark('token-a'), undefined)).toBe('foreign-mark');
    expect(lockState(`${FAILURE_MARK}${Date.now() + 60_000}`, 'token-a')).toBe('foreign-mark');
  });

  it('polls back off to at most MAX_POLL_MS (with jitter)', () => {
    let delay = 5;
    for (let i = 0; i < 20; i++) delay = nextPoll(delay);
    expect(delay).toBeLessThanOrEqual(MAX_POLL_MS * 1.25);
    expect(delay).toBeGreaterThanOrEqual(MAX_POLL_MS * 0.75);
  });
});

describe('entry freshness (from PTTL, never a clock)', () => {
  it('is fresh, then due for an eager refresh, then stale within grace', () => {
    // ttl 10 s, grace 5 s: stored for 15 s.
    expect(freshness(undefined, 10, 5, 0.8)).toBe('fresh');
    expect(freshness(-1, 10, 5, 0.8)).toBe('fresh'); // no expiry
    expect(freshness(14_000, 10, 5, 0.8)).toBe('fresh'); // 1 s old
    expect(freshness(6_500, 10, 5, 0.8)).toBe('refresh'); // 8.5 s old: past 80 %
    expect(freshness(6_500, 10, 5, 0)).toBe('fresh'); // eager refresh off
    expect(freshness(4_000, 10, 5, 0.8)).toBe('stale');
    expect(freshness(0, 10, 0, 0)).toBe('fresh'); // no grace: never stale
  });
});

describe('circuit breaker', () => {
  it('opens only on failures of the cache as a whole, not on a per-key error', () => {
    expect(opensBreaker(new CacheConnectionError('reset'))).toBe(true);
    expect(opensBreaker(new CacheTimeoutError('timed out'))).toBe(true);
    const wrongType = new CacheError('getOrSet failed: replied with an error: WRONGTYPE', {
      cause: new ErrorReply('WRONGTYPE Operation against a key holding the wrong kind of value'),
    });
    expect(opensBreaker(wrongType)).toBe(false);
    const oom = new CacheError('out of memory', { cause: new ErrorReply('OOM command not allowed') });
    expect(opensBreaker(oom)).toBe(false); // answered at once: no timeout to save
    expect(opensBreaker(new CacheValidationError('too large'))).toBe(false);
  });

  it('opens for breakerMs after a failure and counts one trip per opening', () => {
    const breaker = new CircuitBreaker();
    expect(breaker.isOpen(0)).toBe(false);
    expect(breaker.trip(100, 0)).toBe(true);
    expect(breaker.isOpen(50)).toBe(true);
    expect(breaker.trip(100, 60)).toBe(false); // already open: extended, not another trip
    expect(breaker.isOpen(150)).toBe(true);
    expect(breaker.isOpen(161)).toBe(false);
    expect(breaker.trip(100, 200)).toBe(true);
    expect(breaker.trips).toBe(2);
  });
});

describe('typed result codec', () => {
  it('round-trips types and reads foreign entries through the fallback codec', () => {
    const value = { d: new Date(5), b: 2n ** 80n, u: undefined, n: Number.NaN, m: new Map([['k', [1]]]) };
    const raw = encodeResult(value);
    expect(raw.startsWith(RESULT_MARKER)).toBe(true);
    expect(decodeResult(raw, () => 'unused')).toEqual(value);
    expect(decodeResult('{"a": 1}', (text) => JSON.parse(text))).toEqual({ a: 1 });
  });

  it("keeps the factory context's ttl, grace and tags with the value (v2), and still reads v1 entries", () => {
    const raw = encodeResult({ d: new Date(1) }, { ttl: 5, grace: 7, tags: ['a', 'b'] });
    expect(raw.startsWith(ENTRY_MARKER)).toBe(true);
    expect(decodeEntry(raw, () => null)).toEqual({
      value: { d: new Date(1) },
      meta: { ttl: 5, grace: 7, tags: ['a', 'b'] },
    });
    expect(decodeEntry(encodeResult(3), () => null)).toEqual({ value: 3 });
    expect(() => decodeEntry(`${ENTRY_MARKER}[1]`, () => null)).toThrow(CacheValidationError);
  });

  it('rejects corrupt entries, prototype poisoning and unstorable results', () => {
    expect(() => decodeResult(`${RESULT_MARKER}[{`, () => null)).toThrow(CacheValidationError);
    expect(() => decodeResult(`${RESULT_MARKER}[{"__proto__":1},2]`, () => null)).toThrow(
      CacheValidationError,
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => encodeResult({ f: () => 1 })).toThrow(CacheValidationError);
  });
});
