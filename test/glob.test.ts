/**
 * Differential test of the glob port: a real redis-server decides `SCAN … MATCH` over a fixed corpus of
 * tricky keys, and `matchesGlob` (and the memory engine's scan) must pick exactly the same keys.
 */
import { createClient } from '@redis/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeGlob, globMatcher, matchesGlob } from '../src/engines/glob.js';
import { MemoryEngine } from '../src/engines/memory.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const KEYS: readonly string[] = [
  '',
  ' ',
  'a',
  'b',
  'z',
  'A',
  'Z',
  '0',
  '9',
  'ab',
  'abc',
  'abd',
  'aXc',
  'a-c',
  'a^c',
  'a]c',
  'a[c',
  'a\\c',
  'a*c',
  'a?c',
  'a{c}',
  'a b',
  'a\tb',
  'a:b:c',
  'user:1',
  'user:42',
  'user:abc',
  'user::',
  'tenant:{x}:k',
  '*',
  '?',
  '[',
  ']',
  '\\',
  '^',
  '-',
  '{',
  '}',
  ':',
  '**',
  '[]',
  '[a]',
  '\\*',
  'x\\',
  '\\\\',
  '-a',
  'a-',
  ']a',
  '^a',
  '`',
  '~',
  'é',
  'café',
  'naïve',
  'e\u0301',
  '\u00ff',
  'ß',
  '日本',
  '😀',
  'hello',
  'hallo',
  'hxllo',
  'hllo',
  'heeeello',
  'aaaa',
  'a'.repeat(1200),
  'ab'.repeat(300),
  `${'x'.repeat(1000)}y`,
];

const PATTERNS: readonly string[] = [
  // stars and question marks
  '*',
  '**',
  '***',
  '?',
  '??',
  '???',
  '????',
  '*?',
  '?*',
  '*?*',
  'a*',
  '*a',
  '*a*',
  'a*c',
  'a**c',
  'a?c',
  'a??',
  '*:*:*',
  'user:*',
  'user:??',
  'tenant:{*}:*',
  '{*}',
  '*}',
  'h?llo',
  'h*llo',
  '*y',
  '*b*',
  '',
  ' ',
  // classes, ranges, negation
  '[abc]',
  '[a-c]',
  '[c-a]',
  '[z-a]*',
  '[^a]',
  '[^a-z]',
  '[^a-z]*',
  '[0-9]',
  'user:[0-9]*',
  'user:[^0-9]*',
  'h[ae]llo',
  'h[^e]llo',
  'h[a-b]llo',
  '[ -~]',
  '[!-/]',
  '[a-c-e]',
  'a[-]c',
  '[-a]',
  'a[]-]c',
  '[]]',
  '[^]]',
  '[*]',
  '[?]',
  'a[*?]c',
  '*[ ]*',
  // unterminated and degenerate classes
  '[',
  '[a',
  '[^',
  '[^a',
  '[a-',
  '[a-]',
  '[]',
  '[^]',
  '*[',
  'a[',
  // escapes outside brackets
  '\\*',
  '\\?',
  '\\[',
  '\\]',
  '\\\\',
  '\\',
  'x\\',
  'a\\',
  '*\\',
  '*\\\\',
  'a\\*c',
  'a\\?c',
  'a\\[c',
  '\\a',
  '\\a*',
  // escapes inside brackets
  '[\\]]',
  '[\\]',
  '[\\',
  '[\\\\]',
  '[\\-]',
  '[a\\-z]',
  '[\\^]',
  '[\\]-a]',
  'a[\\]]c',
  'a[\\\\]c',
  // non-ASCII (Redis matches UTF-8 bytes)
  'é',
  '?é',
  '[é]',
  '[^é]',
  'caf?',
  'caf??',
  'caf[é]',
  'caf[é][é]',
  'caf[a-é]*',
  '[a-é]',
  '[é-a]',
  '[a-é][a-é]',
  '[\u0080-\u00ff]*',
  '*😀',
  '??????',
  'na?ve',
  'na??ve',
  // pathological / nesting limit
  'a*a*a*a*a*b',
  '*a*a*a*a*a*a*a*a*b',
  '*x*x*x*x*x*x*x*x*x*z',
  '*a'.repeat(1000),
  '*a'.repeat(1001),
  `${'a*'.repeat(1000)}`,
];

/** The one client method these tests use. */
interface CommandSender {
  sendCommand<T>(args: readonly string[]): Promise<T>;
}

/** Keys Redis `SCAN 0 MATCH pattern` returns (looping to cursor 0). */
async function redisScan(client: CommandSender, pattern: string): Promise<string[]> {
  const found = new Set<string>();
  let cursor = '0';
  do {
    const [next, keys] = await client.sendCommand<[string, string[]]>([
      'SCAN',
      cursor,
      'MATCH',
      pattern,
      'COUNT',
      '100000',
    ]);
    cursor = next;
    for (const key of keys) found.add(key);
  } while (cursor !== '0');
  return [...found].sort();
}

/** Keys `matchesGlob` selects, with SCAN's own shortcut: the pattern `*` selects every key. */
function ourScan(keys: readonly string[], pattern: string): string[] {
  const isMatch = globMatcher(pattern);
  return keys.filter((key) => pattern === '*' || isMatch(key)).sort();
}

/** Keys the memory engine's scan yields. */
async function engineScan(engine: MemoryEngine, pattern: string): Promise<string[]> {
  const found = new Set<string>();
  for await (const batch of engine.scan(pattern, 7)) for (const key of batch) found.add(key);
  return [...found].sort();
}

interface Mismatch {
  pattern: string;
  redis: string[];
  ours: string[];
}

/** Deterministic PRNG (mulberry32) for the fuzz cases. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomString(next: () => number, alphabet: readonly string[], maxLen: number): string {
  const len = Math.floor(next() * (maxLen + 1));
  let out = '';
  for (let i = 0; i < len; i++) out += alphabet[Math.floor(next() * alphabet.length)] ?? '';
  return out;
}

const FUZZ_PATTERN_ALPHABET = ['*', '?', '[', ']', '^', '-', '\\', 'a', 'b', 'c', 'z', 'é', ':'];
const FUZZ_KEY_ALPHABET = ['a', 'b', 'c', 'z', '-', '^', ']', '[', '\\', '*', '?', 'é', ':', 'A'];

describe('matchesGlob against redis-server SCAN MATCH', () => {
  let server: RedisServer;
  let client: ReturnType<typeof createClient>;

  beforeAll(async () => {
    server = await startRedis();
    client = createClient({ url: server.url });
    await client.connect();
    await client.sendCommand(['MSET', ...KEYS.flatMap((key) => [key, 'v'])]);
  });

  afterAll(async () => {
    client?.destroy();
    await server?.stop();
  });

  async function compare(keys: readonly string[], patterns: readonly string[]): Promise<Mismatch[]> {
    const mismatches: Mismatch[] = [];
    for (const pattern of patterns) {
      const redis = await redisScan(client, pattern);
      const ours = ourScan(keys, pattern);
      if (JSON.stringify(redis) !== JSON.stringify(ours)) mismatches.push({ pattern, redis, ours });
    }
    return mismatches;
  }

  it('the corpus is stored as given', async () => {
    expect(await client.sendCommand(['DBSIZE'])).toBe(KEYS.length);
    expect(await redisScan(client, '*')).toEqual([...KEYS].sort());
  });

  it('agrees on every fixed pattern', async () => {
    expect(await compare(KEYS, PATTERNS)).toEqual([]);
    // The corpus exercises the patterns: most of them select something.
    const selecting = PATTERNS.filter((p) => ourScan(KEYS, p).length > 0);
    expect(selecting.length).toBeGreaterThan(PATTERNS.length * 0.7);
  });

  it('agrees on the nesting limit exactly', () => {
    const long = 'a'.repeat(1200);
    expect(matchesGlob('*a'.repeat(1000), long)).toBe(true);
    expect(matchesGlob('*a'.repeat(1001), long)).toBe(false);
  });

  it('agrees on random patterns over the corpus', async () => {
    const next = prng(42);
    const patterns = Array.from({ length: 400 }, () => randomString(next, FUZZ_PATTERN_ALPHABET, 7));
    expect(await compare(KEYS, patterns)).toEqual([]);
  });

  it('agrees on random patterns over random keys', async () => {
    const next = prng(7);
    const keys = [...new Set(Array.from({ length: 80 }, () => randomString(next, FUZZ_KEY_ALPHABET, 5)))];
    const patterns = Array.from({ length: 400 }, () => randomString(next, FUZZ_PATTERN_ALPHABET, 6));
    const fuzz = createClient({ url: server.url, database: 1 });
    await fuzz.connect();
    try {
      await fuzz.sendCommand(['MSET', ...keys.flatMap((key) => [key, 'v'])]);
      const mismatches: Mismatch[] = [];
      for (const pattern of patterns) {
        const redis = await redisScan(fuzz, pattern);
        const ours = ourScan(keys, pattern);
        if (JSON.stringify(redis) !== JSON.stringify(ours)) mismatches.push({ pattern, redis, ours });
      }
      expect(mismatches).toEqual([]);
    } finally {
      fuzz.destroy();
    }
  });

  it('escapeGlob(key) selects exactly that key', async () => {
    const mismatches: Mismatch[] = [];
    for (const key of KEYS) {
      const pattern = escapeGlob(key);
      const redis = await redisScan(client, pattern);
      const ours = ourScan(KEYS, pattern);
      if (JSON.stringify(redis) !== JSON.stringify([key]) || JSON.stringify(ours) !== JSON.stringify([key])) {
        mismatches.push({ pattern, redis, ours });
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('the memory engine scans like redis-server', async () => {
    const engine = new MemoryEngine();
    try {
      await engine.mset(KEYS.map((key) => [key, 'v'] as const));
      const mismatches: Mismatch[] = [];
      for (const pattern of PATTERNS) {
        const redis = await redisScan(client, pattern);
        const ours = await engineScan(engine, pattern);
        if (JSON.stringify(redis) !== JSON.stringify(ours)) mismatches.push({ pattern, redis, ours });
      }
      expect(mismatches).toEqual([]);
    } finally {
      await engine.close();
    }
  });
});

describe('escapeGlob', () => {
  it('escapes exactly * ? [ ] and backslash', () => {
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f');
    expect(escapeGlob('plain:key-^{}')).toBe('plain:key-^{}');
    expect(escapeGlob('')).toBe('');
  });

  it('an escaped literal matches only itself', () => {
    const literals = [
      '*',
      '?',
      '[',
      ']',
      '\\',
      '[a-z]',
      '[^x]',
      'a\\',
      '\\*',
      '*?[]\\',
      'x\\y',
      'tenant:{*}',
      'é?',
    ];
    const candidates = [...literals, ...KEYS, 'a', 'x', 'xy', 'x\\\\y', 'é', 'éa', 'tenant:{a}'];
    for (const literal of literals) {
      const pattern = escapeGlob(literal);
      for (const candidate of candidates) {
        expect(matchesGlob(pattern, candidate), `${pattern} vs ${candidate}`).toBe(candidate === literal);
      }
      // As a prefix: every key starting with the literal, and no other.
      expect(matchesGlob(`${pattern}*`, `${literal}rest`)).toBe(true);
      expect(matchesGlob(`${pattern}*`, `x${literal}rest`)).toBe(false);
    }
  });
});

describe('matchesGlob', () => {
  it('finishes on pathological patterns', () => {
    const as = 'a'.repeat(20_000);
    expect(matchesGlob('*a*a*a*a*a*a*a*a*b', as)).toBe(false);
    expect(matchesGlob('*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b', as)).toBe(false);
    expect(matchesGlob(`${'a*'.repeat(40)}b`, as)).toBe(false);
    expect(matchesGlob(`${'*?'.repeat(40)}b`, as)).toBe(false);
    expect(matchesGlob('*a*a*a*a*a*a*a*a*b', `${as}b`)).toBe(true);
    expect(matchesGlob(`${'*a'.repeat(500)}`, as)).toBe(true);
  });

  it('matches bytes, not characters', () => {
    expect(matchesGlob('?', 'é')).toBe(false);
    expect(matchesGlob('??', 'é')).toBe(true);
    expect(matchesGlob('caf?', 'café')).toBe(false);
    expect(matchesGlob('[é][é]', 'é')).toBe(true);
  });

  it('is case-sensitive and anchored', () => {
    expect(matchesGlob('hello', 'Hello')).toBe(false);
    expect(matchesGlob('ell', 'hello')).toBe(false);
    expect(matchesGlob('*ell*', 'hello')).toBe(true);
    expect(matchesGlob('*', '')).toBe(false);
    expect(matchesGlob('', '')).toBe(true);
  });
});
