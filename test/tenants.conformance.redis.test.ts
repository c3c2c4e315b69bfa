/**
 * Issue 18: the conformance and cached-function suites, unchanged, through `TenantCaches` views
 * (shared mode) on a redis-server: the suites' tenants share one connection.
 */
import { afterAll, beforeAll } from 'vitest';
import { registerCachedSuite } from './cached-conformance.js';
import { registerConformanceSuite } from './conformance.js';
import { commandCalls } from './helpers/command-stats.js';
import { type RedisServer, startRedis } from './helpers/redis-server.js';
import { TenantViews } from './helpers/tenant-views.js';

const views = new TenantViews();
let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await views.closeAll();
  await server.stop();
});

registerConformanceSuite('tenant views on redis-server', async () => ({
  options: (tenant, extra = {}) => ({ connectionConfig: { url: server.url, tenant }, ...extra }),
  open: views.open,
  rawKeys: (match) => server.scanKeys(match),
  rawGet: (key) => server.rawGet(key),
  inspectable: true,
  commandCalls: async () => commandCalls(await server.cli('INFO', 'commandstats')),
}));

registerCachedSuite('tenant views on redis-server', async () => ({
  options: (tenant, extra = {}) => ({ connectionConfig: { url: server.url, tenant }, ...extra }),
  open: views.open,
}));
