/**
 * Test helper: a redis-server as the target of the near cache suite (test/near-cache.suite.ts), as the
 * default user (with `DEBUG` enabled, so keys can be kept from expiring in the background) or as the
 * README's per-tenant ACL user.
 */
import { createClient } from '@redis/client';
import type { CacheClient, CacheClientOptions } from '../../src/index.js';
import type { NearCacheSetup } from '../near-cache.suite.js';
import { aclRecipe } from './acl.js';
import { type RedisServer, startRedis } from './redis-server.js';

const PASSWORD = 'tenant-pw';

/** `start`/`stop` of `registerNearCacheSuite` for one redis-server; `open` makes the clients (default `new CacheClient`). */
export function nearCacheServer(
  acl: boolean,
  open?: (options: CacheClientOptions) => CacheClient,
): { start: () => Promise<NearCacheSetup>; stop: () => Promise<void> } {
  let server: RedisServer;
  let foreign: ReturnType<typeof createClient>;
  return {
    async start() {
      server = await startRedis({ args: acl ? [] : ['--enable-debug-command', 'yes'] });
      foreign = createClient({ url: server.url });
      foreign.on('error', () => {});
      await foreign.connect();
      return {
        options: (tenant, nearCache) => ({
          connectionConfig: {
            url: acl ? `redis://${tenant}:${PASSWORD}@127.0.0.1:${server.port}` : server.url,
            tenant,
          },
          env: {},
          nearCache,
        }),
        cli: (...args) => server.cli(...args),
        foreignSet: async (key, value) => {
          await foreign.set(key, value);
        },
        python: { host: '127.0.0.1', port: server.port, cluster: false },
        flushAll: async () => {
          await server.cli('FLUSHALL');
        },
        killClients: async () => {
          await server.cli('CLIENT', 'KILL', 'TYPE', 'normal');
        },
        debugCommands: !acl,
        ...(acl
          ? {
              prepareTenant: async (tenant: string) =>
                void (await server.cli(...aclRecipe(tenant, PASSWORD))),
            }
          : {}),
        ...(open === undefined ? {} : { open }),
      };
    },
    async stop() {
      await foreign?.close().catch(() => foreign.destroy());
      await server?.stop();
    },
  };
}
