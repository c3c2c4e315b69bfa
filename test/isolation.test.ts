/**
 * Tenant isolation: flushes of one tenant never touch another tenant's keys, even when names differ only
 * by a suffix or contain glob characters; unsafe tenant names never reach the server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheClient, CacheValidationError } from '../src/index.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const TENANTS = ['acme', 'acme2', 'acme-eu', 'acm', 'ac', 'Acme', 'acme.x', 'acme_x'];
const PREFIXES = [null, 'pricing', 'pricing:v2', 'p'];
const KEYS = ['user:1', 'user:2', 'order:*', 'a?b', '[x]', 'back\\slash', '{tag}', 'ünï', ''];

async function totalCommands(server: RedisServer): Promise<number> {
  const info = await server.cli('INFO', 'stats');
  const match = /total_commands_processed:(\d+)/.exec(info);
  return Number(match?.[1]);
}

describe('tenant isolation on a shared keyspace', () => {
  let server: RedisServer;
  const pool = new ClientPool();
  const client = (tenant: string, additionalPrefix: string | null = null) =>
    pool.open({ connectionConfig: { url: server.url, tenant }, additionalPrefix });

  /** Every key of every tenant, seeded afresh. */
  async function seed(): Promise<Set<string>> {
    await server.cli('FLUSHALL');
    const all = new Set<string>();
    for (const tenant of TENANTS) {
      for (const prefix of PREFIXES) {
        const mapping = Object.fromEntries(KEYS.map((k) => [k, `${tenant}/${prefix}/${k}`]));
        await client(tenant, prefix).mset(mapping);
        for (const k of KEYS) all.add(`${tenant}:${prefix === null ? '' : `${prefix}:`}${k}`);
      }
    }
    return all;
  }

  async function storedKeys(): Promise<Set<string>> {
    const out = await server.cli('--scan', '--pattern', '*');
    return new Set(out === '' ? [] : out.split('\n'));
  }

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await pool.closeAll();
    await server.stop();
  });

  for (const tenant of ['acme', 'acm', 'Acme']) {
    it(`flushTenant of ${tenant} removes exactly its keys`, async () => {
      const all = await seed();
      const own = [...all].filter((k) => k.startsWith(`${tenant}:`));
      expect(await client(tenant, 'pricing').flushTenant()).toBe(own.length);
      const left = await storedKeys();
      for (const key of all) expect(left.has(key), key).toBe(!key.startsWith(`${tenant}:`));
    });
  }

  const patterns: [string, string | null, string][] = [
    ['acme', null, '*'],
    ['acme', 'pricing', '*'],
    ['acme', null, 'user:*'],
    ['acme', null, '*:*'],
    ['acme', null, 'order:\\*'],
    ['acme', 'pricing', '[a-z]*'],
    ['acm', null, '*'],
    ['acme', null, 'a?b'],
    ['acme', null, '{tag}*'],
    ['acme', null, 'back\\*'],
    ['acme', 'pricing', '[^u]*'],
    ['acme', null, '\\'],
    ['ac', null, '*[*'],
  ];
  for (const [tenant, prefix, pattern] of patterns) {
    it(`flushByPattern(${JSON.stringify(pattern)}) of ${tenant}/${prefix} stays inside its namespace`, async () => {
      const all = await seed();
      const namespace = `${tenant}:${prefix === null ? '' : `${prefix}:`}`;
      const deleted = await client(tenant, prefix).flushByPattern(pattern);
      const left = await storedKeys();
      const removed = [...all].filter((k) => !left.has(k));
      expect(removed.length).toBe(deleted);
      for (const key of removed) expect(key.startsWith(namespace), key).toBe(true);
      expect(left.size).toBe(all.size - deleted);
    });
  }

  it('a prefix-less flush of acme leaves acme2 and acme-eu whole', async () => {
    const all = await seed();
    await client('acme').flushByPattern('*');
    const left = await storedKeys();
    for (const key of all) if (!key.startsWith('acme:')) expect(left.has(key), key).toBe(true);
  });

  it('reads prototype-poisoning values written by another client without polluting anything', async () => {
    const payloads = [
      '{"__proto__": {"polluted": "yes"}}',
      '{"constructor": {"prototype": {"polluted": "yes"}}}',
      '[{"a": {"__proto__": {"polluted": "yes"}}}]',
    ];
    for (const [i, payload] of payloads.entries()) await server.cli('SET', `acme:poison${i}`, payload);
    const values = await client('acme').mget('poison0', 'poison1', 'poison2');
    const merged = Object.assign({}, ...values.flat(2).map((v) => ({ ...(v as object) })));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(merged.polluted).toBeUndefined();
    expect(values[0]).toEqual({});
  });

  it('rejects unsafe tenant names before any command reaches the server', async () => {
    const before = await totalCommands(server);
    const bad = [
      '',
      'a:b',
      'a*',
      'a?',
      'a[b]',
      'a\\b',
      '{a}',
      'a b',
      ' a',
      'a\t',
      'a\n',
      'a\u0000',
      'аcme',
      'ａcme',
      'x'.repeat(10_000),
    ];
    for (const tenant of bad) {
      expect(
        () => new CacheClient({ connectionConfig: { url: server.url, tenant } }),
        JSON.stringify(tenant),
      ).toThrow(tenant === '' ? Error : CacheValidationError);
    }
    for (const prefix of ['*', 'a?', '[b]', 'a\\', '{x}', 'a b', '\u0007', 'ａ', 'x'.repeat(10_000)]) {
      expect(() => client('acme', prefix)).toThrow(CacheValidationError);
      expect(() => client('acme').setAdditionalPrefix(prefix)).toThrow(CacheValidationError);
    }
    // Only the INFO of this check itself reached the server.
    expect(await totalCommands(server)).toBe(before + 1);
  });
});
