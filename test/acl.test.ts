/**
 * Server-side isolation: the ACL recipe of the README (one user per tenant, limited to its own keys, as
 * Peak's Valkey users are). The whole conformance suite runs as such users, and reaching another
 * tenant's keys is refused by the server itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheClient, CacheError } from '../src/index.js';
import { registerConformanceSuite } from './conformance.js';
import { aclRecipe } from './helpers/acl.js';
import { commandCalls } from './helpers/command-stats.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';

const PASSWORD = 'tenant-pw';

function tenantUrl(server: RedisServer, tenant: string, password = PASSWORD): string {
  return `redis://${tenant}:${password}@127.0.0.1:${server.port}`;
}

let server: RedisServer;

registerConformanceSuite(
  'redis-server with a per-tenant ACL user',
  async () => {
    server = await startRedis();
    return {
      options: (tenant, extra = {}) => ({
        connectionConfig: { url: tenantUrl(server, tenant), tenant },
        ...extra,
      }),
      rawKeys: (match) => server.scanKeys(match),
      rawGet: (key) => server.rawGet(key),
      inspectable: true,
      commandCalls: async () => commandCalls(await server.cli('INFO', 'commandstats')),
      prepareTenants: async (tenants) => {
        for (const tenant of tenants) await server.cli(...aclRecipe(tenant, PASSWORD));
      },
    };
  },
  () => server.stop(),
);

describe('ACL: the server refuses another tenant', () => {
  let acl: RedisServer;
  const clients: CacheClient[] = [];

  beforeAll(async () => {
    acl = await startRedis();
    await acl.cli(...aclRecipe('acme', PASSWORD));
    await acl.cli(...aclRecipe('globex', PASSWORD));
    await acl.cli('SET', 'globex:secret', 'globex-only');
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await acl.stop();
  });

  it("acme's credentials cannot read, write or delete globex's keys", async () => {
    // A client misconfigured with acme's credentials but tenant globex: the server says no.
    const intruder = new CacheClient({ connectionConfig: { url: tenantUrl(acl, 'acme'), tenant: 'globex' } });
    clients.push(intruder);
    for (const call of [
      () => intruder.get('secret'),
      () => intruder.set('secret', 'overwritten'),
      () => intruder.delete('secret'),
      () => intruder.mget('secret'),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CacheError);
      expect(String(err)).toMatch(/NOPERM/);
    }
    expect(await acl.cli('GET', 'globex:secret')).toBe('globex-only');
  });

  it('dangerous commands are refused to a tenant user', async () => {
    for (const command of [['KEYS', '*'], ['FLUSHALL'], ['FLUSHDB'], ['CONFIG', 'GET', '*']]) {
      await expect(
        acl.cli('--user', 'acme', '--pass', PASSWORD, '--no-auth-warning', ...command),
      ).resolves.toMatch(/NOPERM/);
    }
    expect(await acl.cli('GET', 'globex:secret')).toBe('globex-only');
  });

  it("acme's own client works and its flushes leave globex alone", async () => {
    const acme = new CacheClient({ connectionConfig: { url: tenantUrl(acl, 'acme'), tenant: 'acme' } });
    clients.push(acme);
    await acme.mset({ a: 1, b: 2 });
    expect(await acme.flushTenant()).toBe(2);
    expect(await acl.cli('GET', 'globex:secret')).toBe('globex-only');
  });
});
