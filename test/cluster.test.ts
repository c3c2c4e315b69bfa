/**
 * Redis Cluster mode on a real cluster (3 primaries, 3 replicas): multi-key operations across slots and
 * nodes, flushes on every primary, configuration, credentials, a frozen primary and a failover.
 * One cluster for the whole file; the failover test runs last (it changes the topology).
 */

import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createClient } from '@redis/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterEngine } from '../src/engines/cluster.js';
import { MSET_EX_SHA } from '../src/engines/mset-ttl.js';
import { crc16, keySlot } from '../src/engines/slot.js';
import {
  CacheAuthError,
  CacheClient,
  type CacheClientOptions,
  CacheConnectionError,
  CacheError,
  type CacheLogger,
  CacheTimeoutError,
  CacheValidationError,
  Session,
} from '../src/index.js';
import { type RedisCluster, startRedisCluster } from './helpers/redis-cluster.js';
import { startRedis } from './helpers/redis-server.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let c: RedisCluster;
const clients: CacheClient[] = [];

beforeAll(async () => {
  c = await startRedisCluster({ nodeTimeoutMs: 2000 });
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await c?.stop();
});

/** A cluster-mode client of `tenant`; `config` is merged into the connection config. */
function client(
  tenant: string,
  config: CacheClientOptions['connectionConfig'] = {},
  extra = {},
): CacheClient {
  const cache = new CacheClient({
    connectionConfig: { url: c.url, tenant, cluster: true, ...config },
    env: {},
    ...extra,
  });
  clients.push(cache);
  return cache;
}

/** Run a Lua script on one node over its keys matching `match`; the script's reply lines. */
async function onNode(port: number, script: string, match: string): Promise<number[]> {
  const out = await c.cli(port, '--raw', 'EVAL', script, '0', match);
  return out === '' ? [] : out.split('\n').map(Number);
}

/** Number of keys matching `match` on each primary (SCAN, node by node). */
async function perPrimary(match: string): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  for (const port of await c.primaries()) counts.set(port, new Set(await c.scanNode(port, match)).size);
  return counts;
}

const sum = (counts: Map<number, number>) => [...counts.values()].reduce((a, b) => a + b, 0);

describe('hash slots', () => {
  it('CRC16-XMODEM and the slots of known keys', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('{user1000}.followers'));
    // An empty tag means no tag: the whole key is hashed (not `bar`).
    expect(keySlot('foo{}{bar}')).toBe(crc16(Buffer.from('foo{}{bar}')) % 16384);
    expect(keySlot('foo{bar}{zap}')).toBe(keySlot('bar'));
  });

  it('keySlot agrees with CLUSTER KEYSLOT (tags, empty tags, unicode, random keys)', async () => {
    const keys = [
      '',
      'a',
      'foo',
      '{',
      '}',
      '{}',
      '}{',
      '{a}',
      'x{a}y',
      '{a}{b}',
      'foo{}{bar}',
      'foo{{bar}}zap',
      'foo{bar}{zap}',
      '{{}}',
      'acme:{tag}',
      'acme:pricing:{}',
      'ünïcødé',
      '日本{語}',
      '😀',
      '{😀}x',
      'sp ace',
      'a*b?[c]\\d',
    ];
    for (let i = 0; i < 1000; i++) {
      const len = Math.floor(Math.random() * 12);
      let key = '';
      for (let j = 0; j < len; j++) key += '{}ab:😀é'[Math.floor(Math.random() * 8)];
      keys.push(key, `t${i}:${Math.random().toString(36).slice(2)}`);
    }
    const raw = createClient({ url: c.url });
    await raw.connect();
    try {
      const server = await Promise.all(keys.map((k) => raw.sendCommand(['CLUSTER', 'KEYSLOT', k])));
      expect(keys.map(keySlot)).toEqual(server);
    } finally {
      raw.destroy();
    }
  });
});

describe('driver API', () => {
  it('uses node-redis public API only: no private field of the driver in the engines', () => {
    const dir = join(import.meta.dirname, '../src/engines');
    // `_slots`, `_self`, `_execute...`, `_options`, `_commandOptions` are node-redis internals; a node's
    // `client` / `connectPromise` fields are its bookkeeping (the public way is `nodeClient()`).
    const privateField = /\._[a-zA-Z]|\.(client|connectPromise)\b|\bdelete\s+\w+\.client/;
    const offending: string[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      readFileSync(join(dir, file), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (privateField.test(line.replace(/\/\/.*$|^\s*\*.*$/, '')))
            offending.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offending).toEqual([]);
  });
});

describe('configuration', () => {
  it('cluster mode with memory:// is an error', () => {
    expect(
      () => new CacheClient({ connectionConfig: { url: 'memory://', tenant: 't', cluster: true }, env: {} }),
    ).toThrow(CacheValidationError);
    expect(
      () =>
        new CacheClient({
          connectionConfig: { url: 'memory://', tenant: 't' },
          env: { PEAK_CACHE_CLUSTER: '1' },
        }),
    ).toThrow(/memory:\/\/ cannot be used in cluster mode/);
  });

  it('validates nodes and the cluster flag', () => {
    const make = (connectionConfig: Record<string, unknown>, env: Record<string, string> = {}) =>
      new CacheClient({ connectionConfig: { tenant: 't', ...connectionConfig }, env });
    expect(() => make({ nodes: [] })).toThrow(CacheValidationError);
    expect(() => make({ nodes: 'redis://127.0.0.1:1' })).toThrow(CacheValidationError);
    expect(() => make({ nodes: ['http://127.0.0.1:1'] })).toThrow(/connectionConfig\.nodes\[0\]/);
    expect(() => make({ nodes: ['redis://127.0.0.1:1'], cluster: false })).toThrow(/cluster: false/);
    expect(() => make({ url: 'redis://127.0.0.1:1', cluster: 'yes' })).toThrow(/must be a boolean/);
    expect(() => make({ nodes: ['redis://a:pw@127.0.0.1:1', 'redis://a:other@127.0.0.1:2'] })).toThrow(
      /connectionConfig\.nodes\[1\]` must use the same scheme .* and credentials/,
    );
    expect(() => make({ nodes: ['redis://127.0.0.1:1', 'rediss://127.0.0.1:2'] })).toThrow(
      CacheValidationError,
    );
    expect(() => make({ url: 'redis://127.0.0.1:1/2', cluster: true })).toThrow(/database 0 only/);
    expect(() => make({ url: 'redis://127.0.0.1:1' }, { PEAK_CACHE_CLUSTER: 'maybe' })).toThrow(
      /PEAK_CACHE_CLUSTER/,
    );
    // Messages never repeat a URL (it may hold a password).
    try {
      make({ nodes: ['redis://a:s3cret@127.0.0.1:1', 'redis://a:other@127.0.0.1:2'] });
    } catch (err) {
      expect(String((err as Error).message)).not.toMatch(/s3cret|other/);
    }
  });

  it('nodes alone select cluster mode; a dead seed is skipped', async () => {
    const cache = new CacheClient({
      connectionConfig: { nodes: ['redis://127.0.0.1:1', c.url], tenant: 'seeds' },
      env: {},
    });
    clients.push(cache);
    const mapping = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i]));
    await cache.mset(mapping);
    expect(await cache.mget(...Object.keys(mapping))).toEqual(Object.values(mapping).map(String));
  });

  it('env PEAK_CACHE_CLUSTER=1 with PEAK_CACHE_URL selects cluster mode', async () => {
    const cache = new CacheClient({
      env: { PEAK_CACHE_URL: c.url, PEAK_CACHE_TENANT: 'envco', PEAK_CACHE_CLUSTER: '1' },
    });
    clients.push(cache);
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    await cache.mset(Object.fromEntries(keys.map((k) => [k, k])));
    expect(await cache.mget(...keys)).toEqual(keys);
    expect(await cache.ping()).toBe(true);
  });

  it('platform mode: cluster applies, nodes is ignored with a warning', async () => {
    const http: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ tenant: 'platco', url: c.url, engine: 'redis' }));
    });
    http.listen(0, '127.0.0.1');
    await new Promise((r) => http.once('listening', r));
    const warnings: string[] = [];
    const logger: CacheLogger = { debug: () => {}, warn: (m) => warnings.push(m) };
    try {
      const baseUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
      const cache = new CacheClient({
        session: new Session({ authToken: 'tok', baseUrl, env: {} }),
        connectionConfig: { cluster: true, nodes: ['redis://127.0.0.1:1'] },
        logger,
        env: {},
      });
      clients.push(cache);
      expect(warnings.join('\n')).toMatch(/nodes ignored/);
      const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
      await cache.mset(Object.fromEntries(keys.map((k) => [k, k])), 60);
      expect(await cache.mget(...keys)).toEqual(keys);
      expect(await cache.exists(...keys)).toBe(100);
      expect(await cache.flushTenant()).toBe(100);
    } finally {
      http.close();
    }
  });

  it('an unreachable seed, or a server without cluster support, rejects with a CacheError', async () => {
    const engine = (url: string) =>
      new ClusterEngine({
        nodes: [url],
        timeoutMs: 1000,
        connectTimeoutMs: 1000,
        maxQueueLength: 100,
        keepAliveMs: false,
      });
    const refused = engine('redis://127.0.0.1:1');
    await expect(refused.get('k')).rejects.toBeInstanceOf(CacheConnectionError);
    await refused.close();
    const standalone = await startRedis();
    try {
      const notCluster = engine(standalone.url);
      await expect(notCluster.get('k')).rejects.toThrow(/cluster support disabled/);
      await notCluster.close();
    } finally {
      await standalone.stop();
    }
  });

  it('a client not in cluster mode on a cluster node: MOVED and CROSSSLOT say to set cluster: true', async () => {
    const single = new CacheClient({ connectionConfig: { url: c.url, tenant: 'nocluster' }, env: {} });
    clients.push(single);
    const hint = /^get failed: .* is a Redis Cluster node \(MOVED\): set connectionConfig\.cluster: true/;
    const moved = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => single.get(`k${i}`)));
    const failures = moved.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(failures.length).toBeGreaterThan(0); // 12 keys over 3 primaries: some are elsewhere
    for (const { reason } of failures) {
      expect(reason).toBeInstanceOf(CacheError);
      expect(String(reason.message)).toMatch(hint);
    }
    const cross = await single.mget('a', 'b', 'c', 'd').catch((err: unknown) => err);
    expect(cross).toBeInstanceOf(CacheError);
    expect((cross as Error).message).toMatch(/\(CROSSSLOT\): set connectionConfig\.cluster: true/);
  });
});

describe('multi-key operations across slots and nodes', () => {
  it('keys spread over all three primaries; mget of 1,000 keys returns every value in order', async () => {
    const cache = client('spread');
    const keys = Array.from({ length: 1000 }, (_, i) => `user:${i}`);
    await cache.mset(Object.fromEntries(keys.map((k, i) => [k, { i }])));
    const counts = await perPrimary('spread:*');
    expect(counts.size).toBe(3);
    for (const n of counts.values()) expect(n).toBeGreaterThan(200);
    expect(sum(counts)).toBe(1000);

    const asked = [...keys].reverse();
    asked.splice(500, 0, 'missing:1', 'user:7', 'missing:2', 'user:7');
    const expected = asked.map((k) => (k.startsWith('missing') ? null : { i: Number(k.split(':')[1]) }));
    expect(await cache.mget(...asked)).toEqual(expected);
  });

  it('mset of 1,000 keys with a ttl leaves no key without its ttl (checked on every node)', async () => {
    const cache = client('ttlco');
    const mapping = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k:${i}`, `v${i}`]));
    await cache.mset(mapping, 300);
    const script =
      "local t,n=0,0 for _,k in ipairs(redis.call('KEYS',ARGV[1])) do t=t+1 " +
      "local ttl=redis.call('TTL',k) if ttl<0 or ttl>300 then n=n+1 end end return {t,n}";
    let total = 0;
    const primaries = await c.primaries();
    expect(primaries).toHaveLength(3);
    for (const port of primaries) {
      const [keys = 0, withoutTtl = -1] = await onNode(port, script, 'ttlco:*');
      expect(keys).toBeGreaterThan(200);
      expect(withoutTtl).toBe(0);
      total += keys;
    }
    expect(total).toBe(1000);
    // Slots with several keys go through MULTI; each key still has its own value.
    const keys = Object.keys(mapping);
    expect(await cache.mget(...keys)).toEqual(Object.values(mapping));
  });

  it('delete and exists count exactly across slots, repeats included', async () => {
    const cache = client('countco');
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    await cache.mset(Object.fromEntries(keys.map((k) => [k, 1])));
    const repeated = [...keys, 'k1', 'k1', 'k299', 'nope', 'nope'];
    expect(await cache.exists(...repeated)).toBe(303);
    expect(await cache.exists('k5', 'k5', 'k5')).toBe(3);
    expect(await cache.delete(...keys.slice(0, 100), 'k0', 'k50', 'nope')).toBe(100);
    expect(await cache.delete('k0')).toBe(0);
    expect(await cache.exists(...keys)).toBe(200);
    expect(sum(await perPrimary('countco:*'))).toBe(200);
  });

  it('mget across slots does not CROSSSLOT', async () => {
    const cache = client('xslot');
    // Two keys on the same primary but in different slots, and keys on every primary.
    const owner = await c.slotOwners();
    const byPort = new Map<number, string[]>();
    for (let i = 0; byPort.size < 3 || [...byPort.values()].some((ks) => ks.length < 2); i++) {
      const key = `k${i}`;
      const port = owner(keySlot(`xslot:${key}`)) as number;
      byPort.set(port, [...(byPort.get(port) ?? []), key]);
    }
    const sameNode = (byPort.values().next().value as string[]).slice(0, 2);
    expect(keySlot(`xslot:${sameNode[0]}`)).not.toBe(keySlot(`xslot:${sameNode[1]}`));
    // The server itself refuses such an MGET: the client must split it.
    const port = byPort.keys().next().value as number;
    await expect(c.cli(port, 'MGET', ...sameNode.map((k) => `xslot:${k}`))).resolves.toMatch(/CROSSSLOT/);

    const keys = [...byPort.values()].flat();
    expect(await cache.mget(...sameNode)).toEqual([null, null]);
    await cache.mset(Object.fromEntries(keys.map((k) => [k, `v-${k}`])));
    await cache.mset(Object.fromEntries(sameNode.map((k) => [k, `ttl-${k}`])), 60);
    expect(await cache.mget(...sameNode)).toEqual(sameNode.map((k) => `ttl-${k}`));
    expect(await cache.mget(...keys)).toEqual(
      keys.map((k) => (sameNode.includes(k) ? `ttl-${k}` : `v-${k}`)),
    );
    expect(await cache.exists(...keys)).toBe(keys.length);
    expect(await cache.delete(...keys)).toBe(keys.length);
  });

  it('flushes a tenant on every primary, leaving every other tenant (acme / acme2) intact', async () => {
    const tenants = ['acme', 'acme2', 'acm', 'xacme', 'other'];
    const written = new Map<string, number>();
    for (const [t, tenant] of tenants.entries()) {
      const plain = client(tenant);
      const pricing = client(tenant, {}, { additionalPrefix: 'pricing' });
      const n = 400 + t * 50;
      await plain.mset(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k:${i}`, i])));
      await pricing.mset(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`p:${i}`, i])), 600);
      written.set(tenant, n + 100);
    }
    for (const tenant of tenants) {
      const counts = await perPrimary(`${tenant}:*`);
      expect(counts.size).toBe(3);
      for (const n of counts.values()) expect(n).toBeGreaterThan(0);
      expect(sum(counts)).toBe(written.get(tenant));
    }

    // A pattern flush inside one tenant's namespace, then a whole-tenant flush.
    let progress = 0;
    expect(await client('acme2').flushByPattern('k:1*', { onProgress: (n) => (progress = n) })).toBe(111);
    expect(progress).toBe(111);
    written.set('acme2', (written.get('acme2') ?? 0) - 111);
    expect(await client('acme').flushTenant()).toBe(written.get('acme'));
    written.set('acme', 0);

    for (const port of await c.primaries()) {
      expect(await c.scanNode(port, 'acme:*')).toEqual([]);
      expect((await c.scanNode(port, 'acme2:k:1*')).length).toBe(0);
    }
    for (const tenant of tenants) expect(sum(await perPrimary(`${tenant}:*`))).toBe(written.get(tenant));
    expect(await client('acme').flushTenant()).toBe(0);
  });
});

describe('topology changes', () => {
  it('follows ASK and MOVED while a slot moves to another primary under a live client', async () => {
    const cache = client('moving');
    // Hash tags in the user keys put them in one slot (the tenant prefix is outside the tag).
    await cache.mset({ '{x}a': 'a', '{x}b': 'b' });
    const slot = String(keySlot('moving:{x}a'));
    const src = (await c.slotOwners())(Number(slot)) as number;
    const dst = (await c.primaries()).find((p) => p !== src) as number;
    const srcId = await c.cli(src, 'CLUSTER', 'MYID');
    const dstId = await c.cli(dst, 'CLUSTER', 'MYID');
    await c.cli(dst, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', srcId);
    await c.cli(src, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', dstId);
    await c.cli(src, 'MIGRATE', '127.0.0.1', String(dst), '', '0', '5000', 'KEYS', 'moving:{x}a');
    // Migrating: keys already moved (or new) are answered with ASK by the source.
    expect(await cache.get('{x}a')).toBe('a');
    expect(await cache.set('{x}new', 'n', 60)).toBe(true);
    expect(await cache.get('{x}b')).toBe('b');
    await c.cli(src, 'MIGRATE', '127.0.0.1', String(dst), '', '0', '5000', 'KEYS', 'moving:{x}b');
    for (const port of await c.primaries()) await c.cli(port, 'CLUSTER', 'SETSLOT', slot, 'NODE', dstId);
    // Moved: the client's map is stale; the source answers MOVED, the client refreshes and follows.
    expect(await cache.mget('{x}a', '{x}b', '{x}new')).toEqual(['a', 'b', 'n']);
    expect(await cache.delete('{x}a')).toBe(1);
    expect(await c.scanNode(dst, 'moving:*')).toHaveLength(2);
    expect(await c.scanNode(src, 'moving:{x}*')).toEqual([]);
  });
});

describe('credentials', () => {
  const user = 'peakuser';
  const aclAll = async (...args: string[]) => {
    for (const port of c.ports) await c.cli(port, 'ACL', ...args);
  };

  it('a wrong password, and a password rotated under a live client, are CacheAuthErrors', async () => {
    await aclAll('SETUSER', user, 'reset', 'on', '>first', '~*', '+@all');
    const at = (password: string) => c.url.replace('redis://', `redis://${user}:${password}@`);
    const wrong = client('authco', { url: at('wrong') });
    await expect(wrong.get('k')).rejects.toBeInstanceOf(CacheAuthError);

    const live = client('authco', { url: at('first') });
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    await live.mset(Object.fromEntries(keys.map((k) => [k, k])));
    await aclAll('SETUSER', user, 'resetpass', '>second');
    for (const port of c.ports) await c.cli(port, 'CLIENT', 'KILL', 'USER', user);
    let last: unknown;
    for (const end = Date.now() + 5000; Date.now() < end; ) {
      last = await live.mget(...keys).catch((err: unknown) => err);
      if (last instanceof CacheAuthError) break;
      await sleep(50);
    }
    expect(last).toBeInstanceOf(CacheAuthError);
    expect(String((last as Error).message)).not.toMatch(/first|second/);
    await aclAll('DELUSER', user);
  });

  it('clients of several users on one cluster each run as their own user (one shared connection class)', async () => {
    // The node-redis classes are built once (src/engines/client-factory.ts), the credentials travel in a
    // per-client provider: a mix-up would show as NOPERM (each user may touch only its tenant's keys).
    const users = ['ten1', 'ten2', 'ten3'];
    for (const u of users)
      await aclAll('SETUSER', u, 'reset', 'on', `>pw-${u}`, `~${u}:*`, '+@all', '-@dangerous');
    try {
      const clients = users.map((u) =>
        client(u, { url: c.url.replace('redis://', `redis://${u}:pw-${u}@`) }),
      );
      const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
      await Promise.all(
        clients.map((cl, n) => cl.mset(Object.fromEntries(keys.map((k) => [k, `${users[n]}-${k}`])))),
      );
      const read = await Promise.all(clients.map((cl) => cl.mget(...keys)));
      read.forEach((values, n) => {
        expect(values).toEqual(keys.map((k) => `${users[n]}-${k}`));
      });
      const whoami = (await Promise.all(c.ports.map((port) => c.cli(port, 'CLIENT', 'LIST')))).join('\n');
      for (const u of users) expect(whoami).toContain(`user=${u} `);
    } finally {
      for (const u of users) await aclAll('DELUSER', u);
    }
  });

  it('mset with a ttl: the SET EX script per slot, and MULTI per slot under an ACL that refuses scripting', async () => {
    // Keys sharing a hash tag share a slot (several keys in one slot take the script / MULTI path).
    const mapping = Object.fromEntries(
      Array.from({ length: 40 }, (_, i) => [`{g${i % 4}}:k${i}`, { i }] as const),
    );
    const check = async (cache: CacheClient) => {
      const keys = Object.keys(mapping);
      expect(await cache.mget(...keys)).toEqual(Object.values(mapping));
      for (const ttl of await Promise.all(keys.map((k) => cache.ttl(k)))) {
        expect(ttl).toBeGreaterThan(3000);
        expect(ttl).toBeLessThanOrEqual(3600);
      }
    };
    const scripted = client('scripted');
    await scripted.mset(mapping, 3600);
    await check(scripted);
    expect(Number(await c.clusterCli('SCRIPT', 'EXISTS', MSET_EX_SHA))).toBe(1);

    const aclUser = 'noscript';
    await aclAll(
      'SETUSER',
      aclUser,
      'reset',
      'on',
      '>pw',
      '~noacl:*',
      '+@all',
      '-@scripting',
      '+cluster|slots',
    );
    try {
      const cache = client('noacl', { url: c.url.replace('redis://', `redis://${aclUser}:pw@`) });
      await cache.mset(mapping, 3600); // NOPERM on the script: falls back to MULTI, nothing run twice
      await cache.mset(mapping, 3600); // MULTI from then on
      await check(cache);
    } finally {
      await aclAll('DELUSER', aclUser);
    }
  });
});

describe('node failures', () => {
  it('a frozen primary: its calls reject within timeoutMs + 20%, then fail fast; the others carry on', async () => {
    const timeoutMs = 500;
    const cache = client('frozen', { timeoutMs });
    const owner = await c.slotOwners();
    const [victim, ...others] = await c.primaries();
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);
    const onVictim = keys.filter((k) => owner(keySlot(`frozen:${k}`)) === victim);
    const elsewhere = keys.filter((k) => others.includes(owner(keySlot(`frozen:${k}`)) as number));
    await cache.mset(Object.fromEntries(keys.map((k) => [k, k])));
    const frozenKey = onVictim[0] as string;
    const otherKey = elsewhere[0] as string;

    await c.kill(victim as number, 'SIGSTOP');
    try {
      // First round: the watchdog notices the silence after timeoutMs.
      const start = Date.now();
      const [frozen, many, other] = await Promise.allSettled([
        cache.get(frozenKey).finally(() => {
          expect(Date.now() - start).toBeLessThanOrEqual(timeoutMs * 1.2);
        }),
        cache.mget(...keys),
        cache.get(otherKey),
      ]);
      expect(Date.now() - start).toBeLessThanOrEqual(timeoutMs * 1.2);
      expect(frozen.status === 'rejected' && frozen.reason).toBeInstanceOf(CacheTimeoutError);
      expect(many.status === 'rejected' && many.reason).toBeInstanceOf(CacheTimeoutError);
      expect(other).toEqual({ status: 'fulfilled', value: otherKey });
      // Then the node is known to be down (its connection is being replaced): its calls fail fast.
      for (let round = 0; round < 3; round++) {
        const again = Date.now();
        const [frozen2, many2, other2] = await Promise.allSettled([
          cache.get(frozenKey),
          cache.mget(...keys),
          cache.get(otherKey),
        ]);
        expect(Date.now() - again).toBeLessThan(timeoutMs / 2);
        expect(frozen2.status === 'rejected' && frozen2.reason).toBeInstanceOf(CacheConnectionError);
        expect(many2.status === 'rejected' && many2.reason).toBeInstanceOf(CacheConnectionError);
        expect(other2).toEqual({ status: 'fulfilled', value: otherKey });
      }
    } finally {
      await c.kill(victim as number, 'SIGCONT');
    }
    let value: unknown;
    for (const end = Date.now() + 5000; Date.now() < end && value !== frozenKey; await sleep(50)) {
      value = await cache.get(frozenKey).catch((err: unknown) => err);
    }
    expect(value).toBe(frozenKey);
    expect(await cache.mget(...keys)).toEqual(keys);
  });

  it('a primary killed under load: only CacheErrors, error-free within node timeout + 3 s, no replicated write lost', async () => {
    const timeoutMs = 1000;
    const cache = client('failover', { timeoutMs });
    const workers = 4;
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    // Each key is written by one worker only, with increasing versions: `<key>#<version>`.
    const acked = new Map<string, number>(keys.map((k) => [k, 0]));
    const attempted = new Map<string, number>(keys.map((k) => [k, 0]));
    await cache.mset(Object.fromEntries(keys.map((k) => [k, `${k}#0`])));
    const owner = await c.slotOwners();
    const primaries = await c.primaries();
    const victim = primaries[0] as number;
    const victimKeys = new Set(keys.filter((k) => owner(keySlot(`failover:${k}`)) === victim));
    expect(victimKeys.size).toBeGreaterThan(50);

    // Replication barrier: a raw connection per primary writes a key of its own slots, then WAITs for one
    // replica. Every write the cache acknowledged before the barrier started has then reached a replica.
    const barrierKeys = new Map<number, string>();
    for (let i = 0; barrierKeys.size < primaries.length; i++) {
      const port = owner(keySlot(`barrier:${i}`)) as number;
      if (!barrierKeys.has(port)) barrierKeys.set(port, `barrier:${i}`);
    }
    const raw = await Promise.all(
      primaries.map(async (port) => {
        const r = createClient({ socket: { port, reconnectStrategy: false } });
        r.on('error', () => {});
        return [port, await r.connect()] as const;
      }),
    );
    let replicated = new Map(acked);
    let barriers = 0;
    const barrier = async () => {
      const snapshot = new Map(acked);
      const replies = await Promise.all(
        raw.map(async ([port, r]) => {
          await r.set(barrierKeys.get(port) as string, String(Date.now()));
          return r.sendCommand(['WAIT', '1', '500']);
        }),
      );
      if (replies.every((n) => Number(n) >= 1)) {
        replicated = snapshot;
        barriers++;
      }
    };

    interface Outcome {
      readonly start: number;
      readonly ms: number;
      readonly key: string;
      readonly error?: unknown;
    }
    const outcomes: Outcome[] = [];
    let stop = false;
    const worker = async (w: number) => {
      const mine = keys.filter((_, i) => i % workers === w);
      for (let i = 0; !stop; i++) {
        const key = mine[i % mine.length] as string;
        const other = mine[(i + 1) % mine.length] as string;
        const start = Date.now();
        try {
          if (i % 3 === 0) {
            const vk = (attempted.get(key) as number) + 1;
            const vo = (attempted.get(other) as number) + 1;
            attempted.set(key, vk);
            attempted.set(other, vo);
            await cache.mset({ [key]: `${key}#${vk}`, [other]: `${other}#${vo}` }, 60);
            acked.set(key, vk);
            acked.set(other, vo);
          } else if (i % 3 === 1) {
            const v = (attempted.get(key) as number) + 1;
            attempted.set(key, v);
            await cache.set(key, `${key}#${v}`);
            acked.set(key, v);
          } else {
            await cache.get(key);
          }
          outcomes.push({ start, ms: Date.now() - start, key });
        } catch (error) {
          outcomes.push({ start, ms: Date.now() - start, key, error });
          await sleep(10);
        }
      }
    };
    const running = Array.from({ length: workers }, (_, w) => worker(w));
    await sleep(500);
    await barrier();
    const killedAt = Date.now();
    await c.kill(victim, 'SIGKILL');
    // A client created now still finds the dead primary in the topology: its calls for the dead node's
    // slots fail fast (the connection attempt is refused), they do not wait timeoutMs.
    const late = new CacheClient({
      connectionConfig: {
        nodes: c.ports.map((port) => `redis://127.0.0.1:${port}`),
        tenant: 'failover',
        timeoutMs,
      },
      env: {},
    });
    clients.push(late);
    const lateKey = [...victimKeys][0] as string;
    await late.get(keys.find((k) => !victimKeys.has(k)) as string); // discovery, on a live node
    const lateStart = Date.now();
    const lateResult = await late.get(lateKey).catch((err: unknown) => err);
    const lateMs = Date.now() - lateStart;
    const errorFreeMs = 2000;
    const lastError = () => {
      const failed = outcomes.filter((o) => o.error !== undefined);
      const last = failed[failed.length - 1];
      return last === undefined ? killedAt : last.start + last.ms;
    };
    while (Date.now() - killedAt < 25_000) {
      await sleep(100);
      if (Date.now() - lastError() > errorFreeMs && Date.now() - killedAt > 1000) break;
    }
    stop = true;
    await Promise.all(running);
    await Promise.all(raw.map(([, r]) => r.destroy()));

    const before = outcomes.filter((o) => o.start + o.ms < killedAt);
    const failures = outcomes.filter((o) => o.error !== undefined);
    const recoveredAt = lastError();
    const recoveredAfter = recoveredAt - killedAt;
    const after = outcomes.filter((o) => o.start > recoveredAt);
    const slowest = outcomes.reduce((max, o) => Math.max(max, o.ms), 0);
    const kinds = new Map<string, number>();
    for (const f of failures) {
      const kind = f.error instanceof Error ? f.error.name : typeof f.error;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    // Every key after recovery: never older than its last replicated write, never a value not written.
    const values = (await cache.mget(...keys)) as string[];
    let olderThanAcked = 0;
    const olderThanReplicated: string[] = [];
    const phantom: string[] = [];
    keys.forEach((key, i) => {
      const [name, version] = String(values[i]).split('#');
      const v = Number(version);
      if (name !== key || v > (attempted.get(key) as number)) phantom.push(`${key}=${values[i]}`);
      if (v < (replicated.get(key) as number)) olderThanReplicated.push(`${key}=${values[i]}`);
      if (v < (acked.get(key) as number)) olderThanAcked++;
    });
    console.info(
      `failover: ${outcomes.length} calls, ${failures.length} failed (${[...kinds].map(([k, n]) => `${k} x${n}`).join(', ')}), ` +
        `error-free again ${recoveredAfter} ms after the kill (node timeout ${c.nodeTimeoutMs} ms), slowest call ${slowest} ms; ` +
        `a new client's first call on the dead node failed in ${lateMs} ms; ${barriers} replication barriers; ` +
        `${olderThanAcked} key(s) older than their last acknowledged write (lost by asynchronous replication), ` +
        `${olderThanReplicated.length} older than their last replicated write`,
    );
    expect(before.length).toBeGreaterThan(0);
    expect(before.filter((o) => o.error !== undefined)).toEqual([]);
    expect(failures.filter((f) => !(f.error instanceof CacheError))).toEqual([]);
    expect(slowest).toBeLessThanOrEqual(timeoutMs + 500);
    expect(recoveredAfter).toBeLessThanOrEqual(c.nodeTimeoutMs + 3000);
    expect(lateResult).toBeInstanceOf(CacheConnectionError);
    expect(lateMs).toBeLessThan(timeoutMs / 4);
    // Error-free again, on the failed primary's slots too (now served by its promoted replica).
    expect(after.length).toBeGreaterThan(50);
    expect(after.filter((o) => victimKeys.has(o.key)).length).toBeGreaterThan(10);
    expect(await c.primaries()).not.toContain(victim);
    expect(barriers).toBeGreaterThan(0);
    expect(phantom).toEqual([]);
    expect(olderThanReplicated).toEqual([]);
  });
});
