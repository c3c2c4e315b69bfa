/**
 * `peak-cache/keyv` on a real Redis Cluster (3 primaries): Keyv's adapter test suite (main and iterator
 * tests), and multi-key calls whose keys span hash slots (no CROSSSLOT reaches Keyv), `clear()` of one
 * namespace on every primary.
 */
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import { Keyv } from 'keyv';
import * as vitest from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheClient } from '../src/index.js';
import { createKeyv, KeyvPeakCache } from '../src/integrations/keyv.js';
import { ClientPool } from './helpers/clients.js';
import { type RedisCluster, startRedisCluster } from './helpers/redis-cluster.js';

let cluster: RedisCluster;
const pool = new ClientPool();

beforeAll(async () => {
  cluster = await startRedisCluster();
});

afterAll(async () => {
  await pool.closeAll();
  await cluster?.stop();
});

function client(tenant: string, additionalPrefix: string | null = null): CacheClient {
  return pool.open({ connectionConfig: { url: cluster.url, tenant, cluster: true }, additionalPrefix });
}

describe("Keyv's adapter test suite on a Redis Cluster", () => {
  let shared: CacheClient;
  beforeAll(() => {
    shared = client('suite', 'kv');
  });
  keyvTestSuite(vitest, Keyv, () => new KeyvPeakCache(shared));
  keyvIteratorTests(vitest, Keyv, () => new KeyvPeakCache(shared));
});

describe('KeyvPeakCache on a Redis Cluster', () => {
  it('multi-key calls across hash slots; clear() of one namespace on every primary, nothing else', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const mine = createKeyv(client('acme'), { namespace: 'mine' });
    const theirs = createKeyv(client('acme'), { namespace: 'mine2' });
    const otherTenant = createKeyv(client('acme2'), { namespace: 'mine' });
    for (const keyv of [mine, theirs, otherTenant]) {
      await keyv.setMany(keys.map((key, i) => ({ key, value: i, ...(i % 2 === 0 ? { ttl: 60_000 } : {}) })));
    }
    // The keys really span nodes: several primaries hold some of them.
    const holders = [];
    for (const port of await cluster.primaries()) {
      if ((await cluster.scanNode(port, 'acme:mine:*')).length > 0) holders.push(port);
    }
    expect(holders.length).toBeGreaterThan(1);

    expect(await mine.get(keys)).toEqual(keys.map((_, i) => i));
    expect(await mine.hasMany(['k1', 'nope', 'k199'])).toEqual([true, false, true]);
    let seen = 0;
    for await (const [key] of mine.iterator?.(undefined) ?? []) {
      expect(keys).toContain(key);
      seen++;
    }
    expect(seen).toBe(keys.length);
    expect(await mine.delete(['k0', 'k1', 'k2'])).toBe(true);

    await mine.clear();
    expect(await cluster.scanAll('acme:mine:*')).toEqual([]);
    expect(await cluster.scanAll('acme:mine2:*')).toHaveLength(keys.length);
    expect(await cluster.scanAll('acme2:mine:*')).toHaveLength(keys.length);
    expect(await theirs.get('k0')).toBe(0);
    expect(await otherTenant.get('k199')).toBe(199);
  });
});
