/**
 * Near cache on a real Redis Cluster (3 primaries, 3 replicas), the client connected as the per-tenant ACL
 * user of the README's recipe plus `+cluster|slots` (docs/cluster.md): every node connection is tracked
 * and their invalidations feed one near cache.
 */
import { createCluster } from '@redis/client';
import { aclRecipe } from './helpers/acl.js';
import { type RedisCluster, startRedisCluster } from './helpers/redis-cluster.js';
import { registerNearCacheSuite } from './near-cache.suite.js';

const PASSWORD = 'tenant-pw';

let cluster: RedisCluster;
let foreign: ReturnType<typeof createCluster>;

registerNearCacheSuite(
  'Redis Cluster as a per-tenant ACL user',
  async () => {
    cluster = await startRedisCluster();
    foreign = createCluster({ rootNodes: [{ url: cluster.url }] });
    foreign.on('error', () => {});
    await foreign.connect();
    const port = Number(new URL(cluster.url).port);
    return {
      options: (tenant, nearCache) => ({
        connectionConfig: {
          url: `redis://${tenant}:${PASSWORD}@127.0.0.1:${port}`,
          tenant,
          cluster: true,
        },
        env: {},
        nearCache,
      }),
      cli: (...args) => cluster.clusterCli(...args),
      foreignSet: async (key, value) => {
        await foreign.set(key, value);
      },
      python: { host: '127.0.0.1', port, cluster: true },
      flushAll: async () => {
        for (const node of await cluster.primaries()) await cluster.cli(node, 'FLUSHALL');
      },
      killClients: async () => {
        for (const node of cluster.ports) await cluster.cli(node, 'CLIENT', 'KILL', 'TYPE', 'normal');
      },
      debugCommands: false,
      prepareTenant: async (tenant) => {
        for (const node of cluster.ports) {
          await cluster.cli(node, ...aclRecipe(tenant, PASSWORD, ['+cluster|slots']));
        }
      },
    };
  },
  async () => {
    await foreign?.close().catch(() => foreign.destroy());
    await cluster?.stop();
  },
);
