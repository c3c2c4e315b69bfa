import { registerConformanceSuite } from './conformance.js';
import { commandCalls } from './helpers/command-stats.js';
import { type RedisCluster, startRedisCluster } from './helpers/redis-cluster.js';

let cluster: RedisCluster | undefined;

registerConformanceSuite(
  'redis-cluster',
  async () => {
    const c = await startRedisCluster();
    cluster = c;
    return {
      options: (tenant, extra = {}) => ({
        connectionConfig: { url: c.url, tenant, cluster: true },
        ...extra,
      }),
      // SCAN on every primary: one node holds only its own slots' keys.
      rawKeys: (match = '*') => c.scanAll(match),
      rawGet: (key) => c.rawGet(key),
      inspectable: true,
      // Every primary (the client never uses replicas, and a replica counts the expiries its primary
      // sends it as commands).
      commandCalls: async () => {
        let total = 0;
        for (const port of await c.primaries()) {
          total += commandCalls(await c.cli(port, 'INFO', 'commandstats'));
        }
        return total;
      },
    };
  },
  async () => {
    await cluster?.stop();
  },
);
